//! One network namespace made ahead of the next pod's sandbox. Making one is
//! the costliest step of a sandbox (0.5 ms of the 3 ms from manifest to
//! `runc run` measured here: the kernel registers a loopback device and its
//! sysctls), so it is made when no container start is pending, off the path
//! of the next pod's start. It is held by an fd only: it goes with the agent.

use super::sandbox;
use rustix::fd::OwnedFd;

pub enum SpareNetwork {
    /// No pod has taken a network namespace yet: none is made on spec, so a
    /// node of host-network pods never holds one.
    Unwanted,
    /// The spare was taken, or none was ready: make one when it is quiet.
    Wanted,
    Ready(OwnedFd),
}

impl SpareNetwork {
    /// The ready spare, if any; another one is wanted from now on.
    pub fn take(&mut self) -> Option<OwnedFd> {
        match std::mem::replace(self, SpareNetwork::Wanted) {
            SpareNetwork::Ready(fd) => Some(fd),
            SpareNetwork::Unwanted | SpareNetwork::Wanted => None,
        }
    }

    /// Make the wanted spare. A failure is logged and not retried until a
    /// pod takes a namespace again, which reports the same failure itself.
    pub fn refill(&mut self) {
        if let SpareNetwork::Wanted = self {
            *self = match sandbox::new_network_namespace() {
                Ok(fd) => SpareNetwork::Ready(fd),
                Err(e) => {
                    log::warn!("making a spare network namespace: {e}");
                    SpareNetwork::Unwanted
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(fd: &OwnedFd) -> u64 {
        rustix::fs::fstat(fd).unwrap().st_ino
    }

    #[test]
    fn a_taken_spare_is_made_again_as_a_new_namespace() {
        let mut spare = SpareNetwork::Unwanted;
        spare.refill();
        assert!(spare.take().is_none(), "none is made before one is taken");
        spare.refill();
        let first = spare.take().expect("made once wanted");
        spare.refill();
        let second = spare.take().expect("made again once taken");
        let host = rustix::fs::stat("/proc/thread-self/ns/net").unwrap().st_ino;
        assert_ne!(inode(&first), inode(&second));
        assert_ne!(inode(&first), host, "the agent stays in its own namespace");
        assert_ne!(inode(&second), host);
    }
}

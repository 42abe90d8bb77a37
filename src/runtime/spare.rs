//! What the next container start needs, made ahead while no start is
//! pending, so that making it delays no start. Measured here (the bench's
//! disk, x86_64): a network namespace costs 0.5 ms of kernel time (a
//! loopback device and its sysctls), each directory of a writable layer
//! 0.2-0.45 ms (ext4 inode allocation).

use std::io;

/// One thing made ahead.
pub enum Spare<T> {
    /// Never taken: none is made on spec, so a node of host-network pods
    /// never holds a network namespace.
    Unwanted,
    /// Taken, or none was ready when wanted: make one when it is quiet.
    Wanted,
    Ready(T),
}

impl<T> Spare<T> {
    /// The ready spare, if any; another one is wanted from now on.
    pub fn take(&mut self) -> Option<T> {
        match std::mem::replace(self, Spare::Wanted) {
            Spare::Ready(spare) => Some(spare),
            Spare::Unwanted | Spare::Wanted => None,
        }
    }

    /// Make the wanted spare. A failure is logged and not retried until a
    /// start takes one again, which meets the same failure on its own path
    /// and reports it there.
    pub fn refill(&mut self, what: &str, make: impl FnOnce() -> io::Result<T>) {
        if let Spare::Wanted = self {
            *self = match make() {
                Ok(spare) => Spare::Ready(spare),
                Err(e) => {
                    log::warn!("making a spare {what}: {e}");
                    Spare::Unwanted
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::sandbox::new_network_namespace;
    use rustix::fd::OwnedFd;

    fn inode(fd: &OwnedFd) -> u64 {
        rustix::fs::fstat(fd).unwrap().st_ino
    }

    #[test]
    fn a_taken_spare_is_made_again_as_a_new_network_namespace() {
        let mut spare = Spare::Unwanted;
        spare.refill("network namespace", new_network_namespace);
        assert!(spare.take().is_none(), "none is made before one is taken");
        spare.refill("network namespace", new_network_namespace);
        let first = spare.take().expect("made once wanted");
        spare.refill("network namespace", new_network_namespace);
        let second = spare.take().expect("made again once taken");
        let host = rustix::fs::stat("/proc/thread-self/ns/net").unwrap().st_ino;
        assert_ne!(inode(&first), inode(&second));
        assert_ne!(inode(&first), host, "the agent stays in its own namespace");
        assert_ne!(inode(&second), host);
    }

    #[test]
    fn a_failure_is_not_retried_until_taken_again() {
        let mut spare: Spare<()> = Spare::Wanted;
        spare.refill("thing", || Err(io::Error::other("no")));
        let mut made = false;
        spare.refill("thing", || {
            made = true;
            Ok(())
        });
        assert!(!made, "not retried at every quiet moment");
        assert!(spare.take().is_none());
        spare.refill("thing", || Ok(()));
        assert!(spare.take().is_some(), "tried again once taken");
    }
}

//! A minimal epoll reactor on rustix: register file descriptors under tokens,
//! wait for readiness with a deadline. It starts no thread; the agent's one
//! thread sleeps in `wait` and nowhere else.
//!
//! Pidfds (process exits), pipes (start notices), inotify (manifests) and
//! signalfd (SIGTERM) all share this one epoll set, as in mio.

use rustix::event::epoll;
use rustix::fd::{AsFd, OwnedFd};
use std::io;
use std::time::Duration;

/// Identifies a registered file descriptor in `wait`'s results.
pub type Token = u64;

/// What a registration waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Read,
    /// Writability: a non-blocking connect has finished.
    Write,
}

impl Interest {
    fn flags(self) -> epoll::EventFlags {
        match self {
            Interest::Read => epoll::EventFlags::IN,
            Interest::Write => epoll::EventFlags::OUT,
        }
    }
}

/// The core's epoll set: fds registered under tokens, waited on together.
pub struct Reactor {
    epoll: OwnedFd,
    next_token: Token,
}

impl Reactor {
    /// An empty epoll set.
    pub fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            next_token: 1,
        })
    }

    /// Watch `fd` for readability under a fresh token.
    pub fn register(&mut self, fd: impl AsFd) -> io::Result<Token> {
        self.register_for(fd, Interest::Read)
    }

    /// Watch `fd` for `interest` under a fresh token.
    pub fn register_for(&mut self, fd: impl AsFd, interest: Interest) -> io::Result<Token> {
        let token = self.next_token;
        self.next_token += 1;
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token),
            interest.flags(),
        )?;
        Ok(token)
    }

    /// Change what a registered fd is watched for.
    pub fn reregister(&self, fd: impl AsFd, token: Token, interest: Interest) -> io::Result<()> {
        epoll::modify(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token),
            interest.flags(),
        )?;
        Ok(())
    }

    /// Stop watching `fd`. Must be called before the fd is closed.
    pub fn deregister(&self, fd: impl AsFd) {
        // ENOENT means it was never added or already removed: nothing to do.
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Sleep until a registered fd is readable or `timeout` passes (`None`:
    /// forever); ready tokens go to `ready`.
    pub fn wait(&self, timeout: Option<Duration>, ready: &mut Vec<Token>) -> io::Result<()> {
        let spec = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        let mut events: Vec<epoll::Event> = Vec::with_capacity(32);
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events),
            spec.as_ref(),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        ready.extend(events.iter().map(|e| e.data.u64()));
        Ok(())
    }
}

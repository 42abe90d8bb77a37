//! Termination signals as a readable file descriptor (signalfd), so that the
//! one thread learns of them in its epoll set. rustix has no signalfd: libc.

use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::io;

/// The signalfd of the termination signals, which stay blocked.
pub struct Signals {
    /// Readable while one of [`HANDLED`] is pending.
    fd: OwnedFd,
}

/// The signals that end the agent (its containers keep running).
const HANDLED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

impl Signals {
    /// Block the termination signals and open a signalfd for them. Call
    /// before anything could start a thread. Children must clear the mask
    /// (`runtime::start` does), or their processes would ignore SIGTERM.
    pub fn block() -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset; the
        // calls only read it. signalfd returns a new fd we own.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in HANDLED {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The signalfd, for the epoll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next pending signal number, if any.
    pub fn next(&self) -> Option<i32> {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        match rustix::io::read(&self.fd, &mut info) {
            Ok(n) if n == info.len() => {
                // SAFETY: the kernel wrote a whole signalfd_siginfo; read_unaligned
                // copes with the byte buffer's alignment.
                let si: libc::signalfd_siginfo =
                    unsafe { std::ptr::read_unaligned(info.as_ptr().cast()) };
                Some(si.ssi_signo as i32)
            }
            _ => None,
        }
    }
}

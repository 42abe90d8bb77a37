//! The per-container monitor (`picolet monitor ...`), a mode of the same
//! binary in the spirit of conmon (docs/design.md, decision 2).
//!
//! It makes itself a child subreaper, runs `<runtime> run --detach` with two
//! pipes as the container's stdout and stderr, tells the agent the container
//! started (one byte on fd 3), copies the pipes into the CRI log, reaps the
//! container's init and writes `exit.json`. It holds everything a container
//! needs to keep running and logging while the agent is away, and it does
//! little else: no allocation in the copy loop beyond the log writer's.

use super::logs::{LogWriter, Stream};
use super::records::{ExitRecord, StartedRecord};
use crate::state::write_json;
use crate::time::Time;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::OwnedFd;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The fd on which the agent listens for the start notice.
pub const NOTIFY_FD: i32 = 3;

/// Why the monitor's command line cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorArgsError {
    /// Not the eight arguments the agent passes.
    Usage,
    /// A size or count that is not a number.
    BadNumber { arg: String },
    /// A container id that is not UTF-8.
    BadId,
}

impl std::fmt::Display for MonitorArgsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorArgsError::Usage => f.write_str(
                "usage: picolet monitor RUNTIME ROOT ID DIR LOG MAX_SIZE MAX_FILES CGROUP_DIR|-",
            ),
            MonitorArgsError::BadNumber { arg } => write!(f, "bad number {arg:?}"),
            MonitorArgsError::BadId => f.write_str("bad id"),
        }
    }
}

impl std::error::Error for MonitorArgsError {}

/// What a monitor needs, passed on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorArgs {
    /// The OCI runtime binary.
    pub runtime: PathBuf,
    /// The runtime's `--root`.
    pub runtime_root: PathBuf,
    /// The container id.
    pub id: String,
    /// The bundle directory; records are written here too.
    pub dir: PathBuf,
    /// The CRI log file of this instance.
    pub log_path: PathBuf,
    /// `containerLogMaxSize` in bytes.
    pub log_max_size: u64,
    /// `containerLogMaxFiles`.
    pub log_max_files: usize,
    /// The container's cgroup directory, where an OOM kill is recorded;
    /// `None` without cgroups.
    pub cgroup_dir: Option<PathBuf>,
}

impl MonitorArgs {
    /// The command line after the executable: `monitor` and the arguments, for
    /// [`MonitorArgs::parse`].
    pub fn to_args(&self) -> Vec<OsString> {
        vec![
            "monitor".into(),
            self.runtime.clone().into(),
            self.runtime_root.clone().into(),
            self.id.clone().into(),
            self.dir.clone().into(),
            self.log_path.clone().into(),
            self.log_max_size.to_string().into(),
            self.log_max_files.to_string().into(),
            self.cgroup_dir
                .clone()
                .map_or_else(|| "-".into(), Into::into),
        ]
    }

    /// Parse the arguments after `monitor`.
    pub fn parse(args: &[OsString]) -> Result<MonitorArgs, MonitorArgsError> {
        let [runtime, root, id, dir, log, size, files, cgroup] = args else {
            return Err(MonitorArgsError::Usage);
        };
        let number = |s: &OsString| {
            s.to_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| MonitorArgsError::BadNumber {
                    arg: s.to_string_lossy().into_owned(),
                })
        };
        Ok(MonitorArgs {
            runtime: runtime.into(),
            runtime_root: root.into(),
            id: id.to_str().ok_or(MonitorArgsError::BadId)?.to_string(),
            dir: dir.into(),
            log_path: log.into(),
            log_max_size: number(size)?,
            log_max_files: number(files)? as usize,
            cgroup_dir: (cgroup != "-").then(|| cgroup.into()),
        })
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Run the monitor to the container's end. Returns the process exit code.
pub fn run(args: &MonitorArgs) -> i32 {
    match supervise(args) {
        Ok(()) => 0,
        Err(e) => {
            // Never leave the agent without an exit record.
            let record = ExitRecord {
                code: 128,
                signal: None,
                start_error: Some(format!("monitor: {e}")),
                oom_killed: false,
                finished_at: Time::now().0,
            };
            let _ = write_json(&args.dir.join("exit.json"), &record);
            1
        }
    }
}

fn supervise(args: &MonitorArgs) -> io::Result<()> {
    // SAFETY: ignoring SIGPIPE only changes how a write to a closed pipe is
    // reported (EPIPE instead of death): the agent may be gone.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let pid_file = args.dir.join("pid");
    let status = Command::new(&args.runtime)
        .arg("--root")
        .arg(&args.runtime_root)
        .args(["run", "--detach", "--pid-file"])
        .arg(&pid_file)
        .arg("--bundle")
        .arg(&args.dir)
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .status()?;
    if !status.success() {
        // The process never ran: what the runtime said is the reason.
        let mut said = read_available(err_r)?;
        said.extend(read_available(out_r)?);
        let message = String::from_utf8_lossy(&said).trim().to_string();
        let _ = Command::new(&args.runtime)
            .arg("--root")
            .arg(&args.runtime_root)
            .args(["delete", "--force", &args.id])
            .stderr(Stdio::null())
            .status();
        let record = ExitRecord {
            code: 128,
            signal: None,
            start_error: Some(if message.is_empty() {
                format!("runtime exited with {status}")
            } else {
                message
            }),
            oom_killed: false,
            finished_at: Time::now().0,
        };
        return write_json(&args.dir.join("exit.json"), &record);
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)?
        .trim()
        .parse()
        .map_err(|_| io::Error::other("runtime wrote no pid"))?;
    write_json(
        &args.dir.join("started.json"),
        &StartedRecord {
            pid,
            started_at: Time::now().0,
        },
    )?;
    notify_started();

    let mut log = LogWriter::open(args.log_path.clone(), args.log_max_size, args.log_max_files)?;
    // From here the monitor sleeps until the container writes or ends.
    super::startup_pages::release();
    copy_until_closed(out_r, err_r, &mut log)?;
    log.flush_partial(now_nanos())?;

    let (code, signal) = reap(pid)?;
    // The runtime keeps the container's cgroup until `delete`: its
    // memory.events still tells whether the OOM killer acted.
    let oom_killed = args
        .cgroup_dir
        .as_deref()
        .is_some_and(crate::cgroup::oom_killed);
    write_json(
        &args.dir.join("exit.json"),
        &ExitRecord {
            code,
            signal,
            start_error: None,
            oom_killed,
            finished_at: Time::now().0,
        },
    )
}

/// One byte on fd 3, then close it; the agent may have gone, which is fine.
fn notify_started() {
    // SAFETY: fd 3 is the notify pipe the agent set up for this process and
    // nothing else in the monitor owns it; taking ownership closes it once.
    let mut notify = unsafe { std::fs::File::from_raw_fd(NOTIFY_FD) };
    let _ = notify.write_all(b"s");
}

/// Read what a pipe holds now without waiting for writers that never close.
fn read_available(fd: OwnedFd) -> io::Result<Vec<u8>> {
    rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::NONBLOCK)?;
    let mut file = std::fs::File::from(fd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// Copy both streams into the log until every writer has closed them: the
/// container's processes are all gone (its PID namespace died with init).
fn copy_until_closed(out: OwnedFd, err: OwnedFd, log: &mut LogWriter) -> io::Result<()> {
    let mut open = [
        Some(std::fs::File::from(out)),
        Some(std::fs::File::from(err)),
    ];
    let mut buf = [0u8; 8192];
    while open.iter().any(Option::is_some) {
        let ready = wait_readable(&open)?;
        for ((slot, stream), ready) in open
            .iter_mut()
            .zip([Stream::Stdout, Stream::Stderr])
            .zip(ready)
        {
            let Some(file) = slot.as_mut().filter(|_| ready) else {
                continue;
            };
            match file.read(&mut buf) {
                Ok(0) => *slot = None,
                Ok(n) => log.write(stream, &buf[..n], now_nanos())?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Sleep until a stream still open has data or has closed; which ones. On
/// the stack: the monitor sleeps here for the container's life, and heap
/// work would map malloc back in after `startup_pages::release`.
fn wait_readable(open: &[Option<std::fs::File>; 2]) -> io::Result<[bool; 2]> {
    let in_flags = PollFlags::IN;
    let (first, second) = match open {
        [Some(a), Some(b)] => ((0, a), Some((1, b))),
        [Some(a), None] => ((0, a), None),
        [None, Some(b)] => ((1, b), None),
        [None, None] => return Ok([false; 2]),
    };
    // The second entry repeats the first when only one is open; it is not
    // polled then.
    let mut fds = [
        PollFd::new(first.1, in_flags),
        PollFd::new(second.map_or(first.1, |(_, f)| f), in_flags),
    ];
    let polled = if second.is_some() { 2 } else { 1 };
    loop {
        match poll(&mut fds[..polled], None) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let mut ready = [false; 2];
    ready[first.0] = !fds[0].revents().is_empty();
    if let Some((i, _)) = second {
        ready[i] = !fds[1].revents().is_empty();
    }
    Ok(ready)
}

/// Wait for the container's init, reaping any other orphan on the way.
fn reap(pid: i32) -> io::Result<(i32, Option<i32>)> {
    let target = rustix::process::Pid::from_raw(pid).ok_or_else(|| io::Error::other("bad pid"))?;
    loop {
        match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((p, status))) if p == target => {
                if let Some(code) = status.exit_status() {
                    return Ok((code, None));
                }
                let signal = status.terminating_signal().unwrap_or(9);
                return Ok((128 + signal, Some(signal)));
            }
            Ok(_) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CHILD) => {
                return Err(io::Error::other(
                    "the container's init was reaped elsewhere",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let args = MonitorArgs {
            runtime: "/usr/bin/runc".into(),
            runtime_root: "/run/picolet/runc".into(),
            id: "uid-c-0".into(),
            dir: "/run/picolet/containers/uid-c-0".into(),
            log_path: "/var/log/pods/x/c/0.log".into(),
            log_max_size: 10 << 20,
            log_max_files: 5,
            cgroup_dir: Some("/sys/fs/cgroup/picolet/pod1/c".into()),
        };
        let argv = args.to_args();
        assert_eq!(argv[0], "monitor");
        assert_eq!(MonitorArgs::parse(&argv[1..]), Ok(args));
        assert_eq!(MonitorArgs::parse(&argv[2..]), Err(MonitorArgsError::Usage));
        let mut bad = argv[1..].to_vec();
        bad[5] = "ten".into();
        assert_eq!(
            MonitorArgs::parse(&bad),
            Err(MonitorArgsError::BadNumber { arg: "ten".into() })
        );
    }
}

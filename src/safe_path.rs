//! Paths built from outside input, and opening files inside a directory
//! without ever leaving it (docs/security.md, "Paths").
//!
//! Two rules live here. A name that comes from a pod spec, an API object or
//! an image (a UID, a container or volume name, a key) becomes exactly one
//! path component, through [`component`] or [`join`]. A path inside a tree
//! that someone else writes (an image's rootfs, a volume a container can
//! change) is opened relative to a directory fd, never as a host path
//! string: [`open_in_root`] treats the directory as `/`, so a symlink to
//! `/etc` or `../../..` lands inside it, and [`open_beneath`] follows the
//! links that stay below the directory and refuses the rest.
//!
//! The kernel does the resolution where it can (`openat2` with
//! `RESOLVE_IN_ROOT` or `RESOLVE_BENEATH`, Linux 5.6). Older kernels, and
//! sandboxes whose seccomp filter answers `ENOSYS`, get [`Walk`]: one
//! component at a time, each opened `O_NOFOLLOW` relative to the fd of the
//! one before, with symlinks read and resolved by hand and `..` taken from
//! the walk's own stack of fds, never from the file system.
//!
//! The openers return the kernel's errno (`raw_os_error()` is `ELOOP`,
//! `EXDEV`, `ENOENT`, ...) without a path: the caller knows which entry,
//! file or mount it was resolving and names that.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The longest name one directory entry may have on Linux.
const NAME_MAX: usize = 255;
/// The longest path the kernel takes, its NUL included.
const PATH_MAX: usize = 4096;
/// Symlinks followed while resolving one path: Linux's own limit.
const MAX_LINKS: usize = 40;
/// Directories one walk holds open at once (each level keeps its fd, so
/// that `..` never asks the file system): deeper is `ENAMETOOLONG`, not a
/// process out of fds (a 4096-byte name holds 2048 levels).
const MAX_DEPTH: usize = 255;
/// `openat2` answers `EAGAIN` when a rename or mount raced the lookup.
const RACE_RETRIES: usize = 8;

/// Why a name from outside cannot be one path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The empty name.
    Empty,
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// A `/` in it: more than one component.
    Slash,
    /// A NUL byte in it.
    Nul,
    /// Longer than `NAME_MAX`: its length in bytes.
    TooLong(usize),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "must not be empty"),
            NameError::Dot => write!(f, "must not be '.'"),
            NameError::DotDot => write!(f, "must not be '..'"),
            NameError::Slash => write!(f, "must not contain '/'"),
            NameError::Nul => write!(f, "must not contain NUL"),
            NameError::TooLong(n) => write!(f, "is {n} bytes, more than {NAME_MAX}"),
        }
    }
}

impl std::error::Error for NameError {}

/// `name` if it is one safe path component: not empty, not `.` or `..`, no
/// `/`, no NUL, at most 255 bytes.
pub fn component(name: &str) -> Result<&str, NameError> {
    match name {
        "" => Err(NameError::Empty),
        "." => Err(NameError::Dot),
        ".." => Err(NameError::DotDot),
        _ if name.contains('/') => Err(NameError::Slash),
        _ if name.contains('\0') => Err(NameError::Nul),
        _ if name.len() > NAME_MAX => Err(NameError::TooLong(name.len())),
        _ => Ok(name),
    }
}

/// `base/name`, where `name` must pass [`component`].
pub fn join(base: &Path, name: &str) -> Result<PathBuf, NameError> {
    Ok(base.join(component(name)?))
}

/// An `O_DIRECTORY` fd of one of picolet's own directories; the error
/// names the path.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    })
}

/// Open `rel` inside `root` as if `root` were `/`: absolute symlinks
/// restart at `root`, `..` never climbs above it. A final symlink is
/// followed unless `flags` has `O_NOFOLLOW` (then `ELOOP`, or the link
/// itself with `O_PATH`). `O_CLOEXEC` is always added.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    open_resolved(root, rel, flags, mode, resolve, Links::InRoot)
}

/// Open `rel` below `root`, following the symlinks that stay below it: an
/// absolute link, or a `..` that would climb out, is `EXDEV` (the
/// kubelet's rule for a subPath: links inside the volume are fine, one
/// that leads out is an error).
pub fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    open_resolved(root, rel, flags, mode, resolve, Links::Beneath)
}

/// The directory `rel` inside `root`, resolved as [`open_in_root`] does,
/// every missing directory on the way made with `mode`. A non-directory on
/// the way is `ENOTDIR`.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, rel: &Path, mode: Mode) -> io::Result<OwnedFd> {
    let walk = Walk {
        links: Links::InRoot,
        make_dirs: Some(mode),
    };
    walk.open(root, rel, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
        .map_err(io::Error::from)
}

/// The directory `rel` below `root`, resolved as [`open_beneath`] does
/// (a link leading out is `EXDEV`, and nothing is made outside), every
/// missing directory on the way made with `mode`.
pub fn mkdir_all_beneath(root: BorrowedFd<'_>, rel: &Path, mode: Mode) -> io::Result<OwnedFd> {
    let walk = Walk {
        links: Links::Beneath,
        make_dirs: Some(mode),
    };
    walk.open(root, rel, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
        .map_err(io::Error::from)
}

/// `/proc/self/fd/N`: a path naming exactly this fd's file, for a mount
/// source that no later lookup can redirect.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// How a resolution treats the symlinks it meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Links {
    /// Followed, with `root` standing for `/`.
    InRoot,
    /// Followed while they stay below `root`; an absolute link or a `..`
    /// above it is `EXDEV`.
    Beneath,
}

fn open_resolved(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
    links: Links,
) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC;
    let rel_or_dot = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    for _ in 0..RACE_RETRIES {
        match rustix::fs::openat2(root, rel_or_dot, flags, mode, resolve) {
            Err(Errno::AGAIN) => continue,
            // No openat2 (Linux < 5.6), or a seccomp filter that hides it.
            Err(Errno::NOSYS) => break,
            other => return other.map_err(io::Error::from),
        }
    }
    let walk = Walk {
        links,
        make_dirs: None,
    };
    walk.open(root, rel, flags, mode).map_err(io::Error::from)
}

/// The component-by-component resolution, for kernels without `openat2`
/// and for making directories on the way.
struct Walk {
    links: Links,
    /// Make missing directories with this mode.
    make_dirs: Option<Mode>,
}

impl Walk {
    fn open(
        &self,
        root: BorrowedFd<'_>,
        rel: &Path,
        flags: OFlags,
        mode: Mode,
    ) -> Result<OwnedFd, Errno> {
        // As the kernel: a path with NUL cannot be a C string at all.
        if rel.as_os_str().as_bytes().contains(&0) {
            return Err(Errno::INVAL);
        }
        // As the kernel: a path of PATH_MAX bytes or more is never looked up.
        if rel.as_os_str().len() >= PATH_MAX {
            return Err(Errno::NAMETOOLONG);
        }
        // As RESOLVE_BENEATH: an absolute path starts outside.
        if self.links == Links::Beneath && rel.is_absolute() {
            return Err(Errno::XDEV);
        }
        // Directories entered below `root`; `..` pops one.
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut pending = parts_reversed(rel);
        let mut followed = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                if stack.pop().is_none() && self.links == Links::Beneath {
                    return Err(Errno::XDEV);
                }
                continue;
            }
            let dir = stack.last().map_or(root, AsFd::as_fd);
            let last = pending.is_empty();
            let found = self.step(dir, &part, last)?;
            match found {
                Step::Dir(_) if !last && stack.len() >= MAX_DEPTH => {
                    return Err(Errno::NAMETOOLONG)
                }
                Step::Dir(fd) if !last => stack.push(fd),
                Step::Link(_) if last && flags.contains(OFlags::NOFOLLOW) => {
                    // The link itself with O_PATH, else ELOOP, as open(2).
                    return rustix::fs::openat(dir, part.as_os_str(), flags, mode);
                }
                Step::Link(target) => {
                    followed += 1;
                    if followed > MAX_LINKS {
                        return Err(Errno::LOOP);
                    }
                    if target.as_bytes().starts_with(b"/") {
                        if self.links == Links::Beneath {
                            return Err(Errno::XDEV);
                        }
                        stack.clear();
                    }
                    pending.extend(parts_reversed(Path::new(&target)));
                }
                Step::Dir(_) | Step::Other | Step::Missing if last => {
                    return rustix::fs::openat(
                        dir,
                        part.as_os_str(),
                        flags | OFlags::NOFOLLOW,
                        mode,
                    );
                }
                Step::Other => return Err(Errno::NOTDIR),
                Step::Missing => return Err(Errno::NOENT),
                Step::Dir(_) => unreachable!("handled by the first arm"),
            }
        }
        // The path ended at a directory (`""`, `.`, `a/..`): open it.
        let dir = stack.last().map_or(root, AsFd::as_fd);
        rustix::fs::openat(dir, ".", flags, mode)
    }

    /// Look at one entry of `dir` without following it, making it first if
    /// it is a missing directory this walk makes.
    fn step(&self, dir: BorrowedFd<'_>, part: &OsStr, last: bool) -> Result<Step, Errno> {
        let probe = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(dir, part, probe, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => match self.make_dirs {
                Some(mode) => {
                    match rustix::fs::mkdirat(dir, part, mode) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    rustix::fs::openat(dir, part, probe, Mode::empty())?
                }
                None if last => return Ok(Step::Missing),
                None => return Err(Errno::NOENT),
            },
            Err(e) => return Err(e),
        };
        match FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) {
            FileType::Directory => Ok(Step::Dir(fd)),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, part, Vec::new())?;
                Ok(Step::Link(
                    OsStr::from_bytes(target.as_bytes()).to_os_string(),
                ))
            }
            _ if self.make_dirs.is_some() => Err(Errno::NOTDIR),
            _ => Ok(Step::Other),
        }
    }
}

/// What one entry of a directory turned out to be.
enum Step {
    Dir(OwnedFd),
    Link(OsString),
    Other,
    Missing,
}

/// The path's parts in reverse, to be popped in order: `/` and `.` dropped,
/// `..` kept for the walk to apply.
fn parts_reversed(path: &Path) -> Vec<OsString> {
    let mut parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    parts.reverse();
    parts
}

/// For the fuzz target (src/fuzz.rs): resolve `rel` in `root` both ways,
/// in root or beneath it, and fail loudly if they disagree. Returns what
/// the kernel opened.
pub(crate) fn resolve_both_ways(
    root: BorrowedFd<'_>,
    rel: &Path,
    beneath: bool,
) -> Option<rustix::fs::Stat> {
    let flags = OFlags::PATH;
    let (kernel, links) = if beneath {
        (
            open_beneath(root, rel, flags, Mode::empty()),
            Links::Beneath,
        )
    } else {
        (open_in_root(root, rel, flags, Mode::empty()), Links::InRoot)
    };
    let walk = Walk {
        links,
        make_dirs: None,
    };
    let walked = walk.open(root, rel, flags | OFlags::CLOEXEC, Mode::empty());
    match (kernel, walked) {
        (Ok(k), Ok(w)) => {
            let (k, w) = (rustix::fs::fstat(k).ok()?, rustix::fs::fstat(w).ok()?);
            assert_eq!((k.st_dev, k.st_ino), (w.st_dev, w.st_ino), "{rel:?}");
            Some(k)
        }
        (Err(k), Err(w)) => {
            assert_eq!(k.raw_os_error(), Some(w.raw_os_error()), "{rel:?}");
            None
        }
        (k, w) => panic!("{rel:?}: kernel {k:?}, walk {w:?}"),
    }
}

#[cfg(test)]
mod tests;

//! subPath volume mounts. The path is resolved inside its volume from the
//! volume's directory fd, so that a link a container made in a shared volume
//! (`ln -s / /vol/x`) cannot lead another container out of it; and what was
//! found is pinned by bind-mounting that very fd at
//! `<run>/pods/<uid>/volume-subpaths/<volume>/<container>/<index>`, the
//! path the runtime then mounts: swapping the path after the check changes
//! nothing. The pins go when the pod's sandbox is torn down.

use super::bundle::VolumePaths;
use super::paths::join;
use crate::pod::Container;
use crate::safe_path;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a subPath cannot be mounted; the container cannot be created.
#[derive(Debug)]
pub struct SubPathError {
    pub volume: String,
    pub sub_path: String,
    pub cause: Cause,
}

#[derive(Debug)]
pub enum Cause {
    /// The path, or a link on the way, leads outside the volume.
    Outside,
    /// A link on the way, on a kernel without openat2, which cannot tell
    /// whether it stays inside.
    Link,
    Io(io::Error),
}

impl fmt::Display for SubPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subPath {:?} of volumeMount {:?}: ",
            self.sub_path, self.volume
        )?;
        match &self.cause {
            Cause::Outside => write!(f, "leads outside the volume"),
            Cause::Link => write!(
                f,
                "goes through a symbolic link, which this kernel (no openat2) cannot follow safely"
            ),
            Cause::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Where the resolved subPath of `container`'s mount number `index` is
/// pinned, below `subpaths` (the pod's `volume-subpaths`).
pub fn target(subpaths: &Path, volume: &str, container: &str, index: usize) -> io::Result<PathBuf> {
    Ok(join(&join(subpaths, volume)?, container)?.join(index.to_string()))
}

/// Resolve and pin every subPath mount of `container` (again at each start:
/// the volume may have changed).
pub fn prepare(
    subpaths: &Path,
    volumes: &VolumePaths,
    container: &Container,
) -> Result<(), SubPathError> {
    for (i, m) in container.volume_mounts.iter().enumerate() {
        let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let error = |cause| SubPathError {
            volume: m.name.clone(),
            sub_path: sub.to_string(),
            cause,
        };
        let base = volumes.get(&m.name).ok_or_else(|| {
            error(Cause::Io(io::Error::new(
                io::ErrorKind::NotFound,
                "the volume is not prepared",
            )))
        })?;
        let at = target(subpaths, &m.name, &container.name, i).map_err(|e| error(Cause::Io(e)))?;
        let found = resolve(base, Path::new(sub)).map_err(error)?;
        pin(&found, &at).map_err(|e| error(Cause::Io(e)))?;
    }
    Ok(())
}

/// `sub` inside the volume at `volume`; a missing one is made as a
/// directory inside it, as the kubelet does.
fn resolve(volume: &Path, sub: &Path) -> Result<OwnedFd, Cause> {
    let root = safe_path::open_dir(volume).map_err(Cause::Io)?;
    match open_beneath(&root, sub) {
        Err(Cause::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            safe_path::mkdir_all_in_root(root.as_fd(), sub, Mode::from_raw_mode(0o755))
                .map_err(Cause::Io)?;
            // Opened again as below: what was made is checked like the rest.
            open_beneath(&root, sub)
        }
        other => other,
    }
}

/// `sub` below `root`, following the links that stay below it (the
/// kubelet's rule: links inside the volume are fine, one that leads out is
/// an error). On kernels without openat2, no link at all.
fn open_beneath(root: &OwnedFd, sub: &Path) -> Result<OwnedFd, Cause> {
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    // EAGAIN: a rename raced the lookup; the kernel asks for a retry.
    let mut result = Err(Errno::AGAIN);
    for _ in 0..8 {
        result = rustix::fs::openat2(root, sub, flags, Mode::empty(), resolve);
        if !matches!(result, Err(Errno::AGAIN)) {
            break;
        }
    }
    match result {
        Ok(fd) => Ok(fd),
        Err(Errno::XDEV) => Err(Cause::Outside),
        Err(Errno::NOSYS) => safe_path::open_beneath(root.as_fd(), sub, flags, Mode::empty())
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => Cause::Link,
                Some(libc::EXDEV) => Cause::Outside,
                _ => Cause::Io(e),
            }),
        Err(e) => Err(Cause::Io(e.into())),
    }
}

/// Bind-mount the file or directory `found` at `at` (made to match its
/// type), replacing an earlier pin there.
fn pin(found: &OwnedFd, at: &Path) -> io::Result<()> {
    let is_dir = FileType::from_raw_mode(rustix::fs::fstat(found)?.st_mode).is_dir();
    unmount_all(at)?;
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::symlink_metadata(at) {
        Ok(m) if m.is_dir() == is_dir => {}
        Ok(m) => {
            if m.is_dir() {
                fs::remove_dir(at)?;
            } else {
                fs::remove_file(at)?;
            }
            make_target(at, is_dir)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => make_target(at, is_dir)?,
        Err(e) => return Err(e),
    }
    rustix::mount::mount_bind(safe_path::fd_path(found.as_fd()).as_path(), at)
        .map_err(|e| io::Error::other(format!("bind-mounting at {}: {e}", at.display())))
}

/// A mount point for a directory, or for a file.
fn make_target(at: &Path, is_dir: bool) -> io::Result<()> {
    if is_dir {
        fs::create_dir(at)
    } else {
        fs::File::create(at).map(drop)
    }
}

/// Detach every mount stacked at `at`; none is success.
fn unmount_all(at: &Path) -> io::Result<()> {
    // A bound on the loop: each round removes one mount or ends it.
    for _ in 0..64 {
        match rustix::mount::unmount(at, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => continue,
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => {
                return Err(io::Error::other(format!(
                    "unmounting {}: {e}",
                    at.display()
                )))
            }
        }
    }
    Err(io::Error::other(format!(
        "{}: still mounted after 64 unmounts",
        at.display()
    )))
}

/// Unmount every pin below `subpaths` (`<volume>/<container>/<index>`) and
/// remove the tree.
pub fn remove_all(subpaths: &Path) -> io::Result<()> {
    let entries = |dir: &Path| -> io::Result<Vec<PathBuf>> {
        match fs::read_dir(dir) {
            Ok(list) => list.map(|e| e.map(|e| e.path())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(e),
        }
    };
    for volume in entries(subpaths)? {
        for container in entries(&volume)? {
            for pinned in entries(&container)? {
                unmount_all(&pinned)?;
            }
        }
    }
    super::fsutil::remove_tree(subpaths)
}

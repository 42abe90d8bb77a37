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
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a subPath cannot be mounted; the container cannot be created.
#[derive(Debug)]
pub struct SubPathError {
    /// The volumeMount's volume.
    pub volume: String,
    /// The subPath as the pod wrote it.
    pub sub_path: String,
    /// What is wrong.
    pub cause: Cause,
}

/// Why a subPath cannot be mounted.
#[derive(Debug)]
pub enum Cause {
    /// The path, or a link on the way, leads outside the volume.
    Outside,
    /// Resolving, creating or pinning the path failed.
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

/// `sub` below `root`, following the links that stay below it.
fn open_beneath(root: &OwnedFd, sub: &Path) -> Result<OwnedFd, Cause> {
    let flags = OFlags::PATH;
    safe_path::open_beneath(root.as_fd(), sub, flags, Mode::empty()).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::EXDEV) => Cause::Outside,
            _ => Cause::Io(e),
        }
    })
}

/// Bind-mount the file or directory `found` at `at` (made to match its
/// type), replacing an earlier pin there.
pub(super) fn pin(found: &OwnedFd, at: &Path) -> io::Result<()> {
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
pub(super) fn unmount_all(at: &Path) -> io::Result<()> {
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
    remove_pins(subpaths, 3)
}

/// Unmount every pin `depth` levels below `dir`, then remove the tree: the
/// pins of subPaths and of hostPaths (`host_path.rs`) alike.
pub(super) fn remove_pins(dir: &Path, depth: usize) -> io::Result<()> {
    fn unmount_at(dir: &Path, depth: usize) -> io::Result<()> {
        if depth == 0 {
            return unmount_all(dir);
        }
        let entries = match fs::read_dir(dir) {
            Ok(list) => list,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            unmount_at(&entry?.path(), depth - 1)?;
        }
        Ok(())
    }
    unmount_at(dir, depth)?;
    super::fsutil::remove_tree(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::VolumeMount;
    use std::os::unix::fs::symlink;

    /// A volume and a pod run dir in a temporary directory, unmounted and
    /// removed on drop. Needs root (bind mounts), as the agent.
    struct Fixture {
        dir: PathBuf,
    }

    impl Fixture {
        fn new(tag: &str) -> Fixture {
            let dir =
                std::env::temp_dir().join(format!("picolet-subpath-{tag}-{}", std::process::id()));
            let _ = remove_all(&dir.join("pins"));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("vol")).unwrap();
            Fixture { dir }
        }
        fn vol(&self) -> PathBuf {
            self.dir.join("vol")
        }
        fn pins(&self) -> PathBuf {
            self.dir.join("pins")
        }
        fn prepare(&self, sub: &str) -> Result<PathBuf, SubPathError> {
            let volumes = VolumePaths::from([("data".to_string(), self.vol())]);
            let container = Container {
                name: "c".into(),
                volume_mounts: vec![
                    VolumeMount {
                        name: "data".into(),
                        mount_path: "/all".into(),
                        ..Default::default()
                    },
                    VolumeMount {
                        name: "data".into(),
                        mount_path: "/sub".into(),
                        sub_path: Some(sub.into()),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            };
            prepare(&self.pins(), &volumes, &container)?;
            Ok(target(&self.pins(), "data", "c", 1).unwrap())
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = remove_all(&self.pins());
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn outside(r: Result<PathBuf, SubPathError>) -> String {
        let e = r.expect_err("refused");
        assert!(matches!(e.cause, Cause::Outside), "{e}");
        e.to_string()
    }

    #[test]
    fn a_link_out_of_the_volume_is_an_error_naming_the_mount() {
        // CVE-2017-1002101: one container made `ln -s / /vol/x`.
        let f = Fixture::new("out");
        symlink("/", f.vol().join("x")).unwrap();
        symlink("../../../../../../..", f.vol().join("up")).unwrap();
        fs::create_dir(f.vol().join("d")).unwrap();
        symlink("/etc", f.vol().join("d/etc")).unwrap();
        assert_eq!(
            outside(f.prepare("x")),
            "subPath \"x\" of volumeMount \"data\": leads outside the volume"
        );
        outside(f.prepare("up"));
        outside(f.prepare("d/etc"));
        outside(f.prepare("x/tmp/new"));
        assert!(!Path::new("/tmp/new").exists());
        assert!(
            fs::read_dir(f.pins().join("data/c")).map_or(true, |mut d| d.next().is_none()),
            "nothing pinned"
        );
    }

    #[test]
    fn links_inside_the_volume_and_missing_directories_are_fine() {
        let f = Fixture::new("in");
        fs::create_dir_all(f.vol().join("real/conf")).unwrap();
        fs::write(f.vol().join("real/conf/app.conf"), "inside").unwrap();
        symlink("real", f.vol().join("alias")).unwrap();
        let pinned = f.prepare("alias/conf").unwrap();
        assert_eq!(
            fs::read_to_string(pinned.join("app.conf")).unwrap(),
            "inside"
        );
        // A single file, pinned on a file.
        let pinned = f.prepare("real/conf/app.conf").unwrap();
        assert_eq!(fs::read_to_string(&pinned).unwrap(), "inside");
        // A missing subPath is made inside the volume.
        let pinned = f.prepare("new/dir").unwrap();
        assert!(f.vol().join("new/dir").is_dir());
        fs::write(pinned.join("written"), "x").unwrap();
        assert!(f.vol().join("new/dir/written").exists());
    }

    #[test]
    fn a_swap_after_the_check_does_not_redirect_the_pin() {
        // CVE-2021-25741: the directory is replaced by a link after the check.
        let f = Fixture::new("swap");
        fs::create_dir(f.vol().join("d")).unwrap();
        fs::write(f.vol().join("d/mine"), "").unwrap();
        let found = resolve(&f.vol(), Path::new("d")).unwrap();
        fs::rename(f.vol().join("d"), f.vol().join("moved")).unwrap();
        symlink("/", f.vol().join("d")).unwrap();
        let pinned = target(&f.pins(), "data", "c", 1).unwrap();
        pin(&found, &pinned).unwrap();
        let names = || -> Vec<_> {
            fs::read_dir(&pinned)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect()
        };
        assert_eq!(names(), ["mine"], "the directory that was checked");
        // Nor does a swap after the mount.
        fs::rename(f.vol().join("moved"), f.vol().join("again")).unwrap();
        assert_eq!(names(), ["mine"]);
        // Preparing again (the next start) checks the new state.
        outside(f.prepare("d"));
    }

    #[test]
    fn removing_unmounts_every_pin_and_keeps_the_volume() {
        let f = Fixture::new("remove");
        fs::create_dir(f.vol().join("d")).unwrap();
        fs::write(f.vol().join("d/data"), "kept").unwrap();
        let pinned = f.prepare("d").unwrap();
        // A second start stacks no second mount.
        f.prepare("d").unwrap();
        remove_all(&f.pins()).unwrap();
        assert!(!f.pins().exists());
        assert!(!pinned.exists());
        assert_eq!(fs::read_to_string(f.vol().join("d/data")).unwrap(), "kept");
        remove_all(&f.pins()).unwrap();
    }
}

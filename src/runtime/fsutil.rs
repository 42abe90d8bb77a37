//! File-system teardown that is safe to repeat and never crosses a mount.

use crate::fs_remove::Mounts;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// Detach whatever is mounted at `path`; nothing mounted is success.
pub fn unmount(path: &Path) -> io::Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("unmounting {}: {e}", path.display()),
        )),
    }
}

/// Remove a tree, refusing to descend into anything mounted inside it (an
/// overlay still mounted would otherwise lose its upper layer's files, and a
/// bind mount of a volume or a host directory its content). The walk is by
/// directory fd (src/fs_remove.rs): a container can make its layer or a
/// volume deeper than any path string may be long.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("removing {}: {e}", path.display()));
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(named(io::ErrorKind::InvalidInput.into()));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    // The error of open_dir names the parent.
    let parent = match crate::safe_path::open_dir(parent) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    crate::fs_remove::remove(parent.as_fd(), name, Mounts::Stay).map_err(named)
}

/// `dir`, made if missing, with exactly `mode`: an existing one (an older
/// install's 0755) is narrowed too, so that nothing below it (setuid files
/// of unpacked images, world-writable emptyDirs, pod data) is reachable by
/// other host users.
pub fn dir_with_mode(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

/// Mount a file system with string options (`mode=1777,size=...`), with the
/// target named in any error.
pub fn mount_fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: rustix::mount::MountFlags,
    options: &str,
) -> io::Result<()> {
    let data = std::ffi::CString::new(options).map_err(io::Error::other)?;
    rustix::mount::mount(source, target, fstype, flags, Some(data.as_c_str()))
        .map_err(|e| io::Error::other(format!("mounting {fstype} at {}: {e}", target.display())))
}

/// The `,size=` option of a tmpfs limited to `bytes`: none for 0, which
/// tmpfs takes as no limit at all (an emptyDir's `sizeLimit: 0` would give
/// the pod the node's RAM; as the kubelet, only a limit above 0 is set).
pub fn tmpfs_size(bytes: u64) -> Option<String> {
    (bytes > 0).then(|| format!(",size={bytes}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_bind_mount_of_the_same_file_system_is_not_descended() {
        let dir = std::env::temp_dir().join(format!("picolet-rmtree-{}", std::process::id()));
        let _ = unmount(&dir.join("tree/pin"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("volume")).unwrap();
        fs::write(dir.join("volume/data"), "kept").unwrap();
        fs::create_dir_all(dir.join("tree/pin")).unwrap();
        rustix::mount::mount_bind(dir.join("volume"), dir.join("tree/pin")).unwrap();
        let e = remove_tree(&dir.join("tree")).unwrap_err();
        unmount(&dir.join("tree/pin")).unwrap();
        assert!(
            e.to_string()
                .ends_with("a file system is mounted at tree/pin"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(dir.join("volume/data")).unwrap(), "kept");
        remove_tree(&dir.join("tree")).unwrap();
        assert!(!dir.join("tree").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tree_deeper_than_path_max_is_removed() {
        use rustix::fs::{mkdirat, openat, Mode, OFlags};
        let dir = std::env::temp_dir().join(format!("picolet-rmdeep-{}", std::process::id()));
        let _ = remove_tree(&dir);
        fs::create_dir_all(dir.join("tree")).unwrap();
        let mut fd = crate::safe_path::open_dir(&dir.join("tree")).unwrap();
        // 3000 levels of "a/": 6000 bytes, past PATH_MAX (4096).
        for _ in 0..3000 {
            mkdirat(&fd, "a", Mode::from_raw_mode(0o755)).unwrap();
            fd = openat(&fd, "a", OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        }
        drop(fd);
        remove_tree(&dir.join("tree")).unwrap();
        assert!(!dir.join("tree").exists());
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_zero_size_sets_no_tmpfs_limit_at_all() {
        assert_eq!(tmpfs_size(0), None);
        assert_eq!(tmpfs_size(1).as_deref(), Some(",size=1"));
        assert_eq!(tmpfs_size(64 << 20).as_deref(), Some(",size=67108864"));
    }

    #[test]
    fn an_existing_open_directory_is_narrowed() {
        let dir = std::env::temp_dir().join(format!("picolet-fsutil-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        dir_with_mode(&dir.join("new"), 0o700).unwrap();
        assert_eq!(mode(&dir.join("new")), 0o700);
        fs::create_dir_all(dir.join("old")).unwrap();
        fs::set_permissions(dir.join("old"), fs::Permissions::from_mode(0o755)).unwrap();
        dir_with_mode(&dir.join("old"), 0o750).unwrap();
        assert_eq!(mode(&dir.join("old")), 0o750);
        fs::remove_dir_all(&dir).unwrap();
    }
}

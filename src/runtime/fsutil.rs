//! File-system teardown that is safe to repeat and never crosses a mount.

use std::fs;
use std::io;
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
/// bind mount of a volume or a host directory its content).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (top, _) = match mount_of(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_within(path, top)
}

/// Which mount a file is on: its device, and the mount's id where the
/// kernel gives it (Linux 5.8), which also tells a bind mount of the same
/// file system apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MountOf {
    dev: u64,
    mnt_id: Option<u64>,
}

/// The mount `path` (not followed) is on, and whether it is a directory.
fn mount_of(path: &Path) -> io::Result<(MountOf, bool)> {
    use rustix::fs::{statx, AtFlags, FileType, StatxFlags, CWD};
    let wanted = StatxFlags::TYPE | StatxFlags::MNT_ID;
    let st = statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, wanted)?;
    let dev = rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor);
    let has_id = StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::MNT_ID);
    let mount = MountOf {
        dev,
        mnt_id: has_id.then_some(st.stx_mnt_id),
    };
    let is_dir = FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory;
    Ok((mount, is_dir))
}

fn remove_within(path: &Path, top: MountOf) -> io::Result<()> {
    let (mount, is_dir) = mount_of(path)?;
    if mount != top {
        return Err(io::Error::other(format!(
            "refusing to remove {}: a file system is mounted there",
            path.display()
        )));
    }
    if is_dir {
        for entry in fs::read_dir(path)? {
            remove_within(&entry?.path(), top)?;
        }
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    }
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
        assert!(e.to_string().starts_with("refusing to remove"), "{e}");
        assert_eq!(fs::read_to_string(dir.join("volume/data")).unwrap(), "kept");
        remove_tree(&dir.join("tree")).unwrap();
        assert!(!dir.join("tree").exists());
        fs::remove_dir_all(&dir).unwrap();
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

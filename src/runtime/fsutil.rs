//! File-system teardown that is safe to repeat and never crosses a mount.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
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
/// overlay still mounted would otherwise lose its upper layer's files).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_on_device(path, meta.dev())
}

fn remove_on_device(path: &Path, dev: u64) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.dev() != dev {
        return Err(io::Error::other(format!(
            "refusing to remove {}: a file system is mounted there",
            path.display()
        )));
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            remove_on_device(&entry?.path(), dev)?;
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

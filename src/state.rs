//! Atomic file writes: write a temporary file, fsync it, rename it over the
//! target, fsync the directory. A reader sees the old or the new content,
//! never a mix, even across a power cut.
//!
//! Everything written here holds pod data (specs with env values, status,
//! API objects) and is readable by the owner (root) only. Neither writing
//! nor reading follows a symlink, and reading takes regular files only, so a
//! link or FIFO planted at one of these names can neither redirect a write
//! nor block the agent.

use rustix::fs::{Mode, OFlags};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// The mode of every file written here.
const PRIVATE: u32 = 0o600;

/// Write `path` whole or not at all (a temporary file, fsynced, renamed), mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, PRIVATE)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        // A leftover of an interrupted write, or anything planted there:
        // unlinked (never followed), then made anew, exclusively.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let fd = rustix::fs::open(
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        let mut f = fs::File::from(fd);
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

/// A directory only its owner (root) may enter, made if missing.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Serialize `value` as JSON and write it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Read JSON written by `write_json`; `Ok(None)` if the file does not exist.
pub fn read_json<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> io::Result<Option<T>> {
    let in_context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let bytes = match read_regular(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(in_context(e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// The content of the regular file at `path`, not following a final
/// symlink (ELOOP) and not waiting on a FIFO (opened non-blocking, refused).
fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if !rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    fs::File::from(fd).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Warn when a file holding secrets (`what`: "credentials", "registry
/// passwords") can be read by its group or others: picolet reads it as
/// root, but others on the device should not.
pub fn warn_if_readable_by_others(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "{}: readable by group or others (mode {:o}); it holds {what}: chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("picolet-state-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_json_round_trip() {
        let dir = TempDir::new("json");
        let path = dir.0.join("x.json");
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), None);
        write_json(&path, &vec![1u32, 2]).unwrap();
        write_json(&path, &vec![3u32]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&path).unwrap(), Some(vec![3]));
        assert_eq!(
            fs::read_dir(&dir.0).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn what_is_written_is_readable_by_the_owner_only() {
        let dir = TempDir::new("mode");
        let path = dir.0.join("pod.json");
        // An earlier version's world-readable file is replaced by a private one.
        fs::write(&path, "[]").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_json(&path, &vec![1u32]).unwrap();
        assert_eq!(mode(&path), 0o600);
        write_atomic(&dir.0.join("pods.json"), b"{}").unwrap();
        assert_eq!(mode(&dir.0.join("pods.json")), 0o600);
    }

    #[test]
    fn a_planted_symlink_redirects_neither_a_write_nor_a_read() {
        let dir = TempDir::new("links");
        let victim = dir.0.join("victim");
        fs::write(&victim, "[7]").unwrap();
        // At the temporary name: the write must not go through it.
        symlink(&victim, dir.0.join(".a.json.tmp")).unwrap();
        write_json(&dir.0.join("a.json"), &vec![1u32]).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "[7]");
        assert_eq!(
            read_json::<Vec<u32>>(&dir.0.join("a.json")).unwrap(),
            Some(vec![1])
        );
        // At the name read: an error, not the target's content.
        symlink(&victim, dir.0.join("b.json")).unwrap();
        let e = read_json::<Vec<u32>>(&dir.0.join("b.json")).unwrap_err();
        assert!(e.to_string().contains("b.json"), "{e}");
        assert_eq!(
            e.kind(),
            io::Error::from_raw_os_error(libc::ELOOP).kind(),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = TempDir::new("fifo");
        let fifo = dir.0.join("sandbox.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read_json::<Vec<u32>>(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().ends_with("not a regular file"), "{e}");
    }
}

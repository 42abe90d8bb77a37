//! Removing a name and everything below it relative to a directory fd,
//! following no symlink and one directory open at a time: image whiteouts,
//! entries that replace others, failed or interrupted unpacks, and the
//! runtime's teardown of layers and volumes (src/runtime/fsutil.rs), whose
//! trees a container built and may have made deeper than PATH_MAX.

use rustix::fs::{
    openat, statat, statx, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, StatxFlags,
};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Where a removal may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mounts {
    /// Anywhere below `name` (a tree picolet made, such as an unpack).
    Cross,
    /// Only the mount `name` is on: a directory on another one is refused,
    /// so that a still-mounted overlay keeps its upper layer and a bind
    /// mount of a volume or a host directory its content.
    Stay,
}

/// Remove `name` in `parent` (nothing if it does not exist); a directory is
/// removed with its whole tree. A symlink is removed itself, never followed.
///
/// One directory is open at a time, walking down by name and up by `..`: a
/// layer can build a tree deeper than the fd limit or the stack allows.
pub fn remove_all(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    remove(parent, name, Mounts::Cross)
}

/// [`remove_all`], with `mounts` saying whether it may cross a mount.
pub fn remove(parent: BorrowedFd<'_>, name: &OsStr, mounts: Mounts) -> io::Result<()> {
    match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {
            return ignore_missing(unlinkat(parent, name, AtFlags::empty()));
        }
        Ok(_) => {}
    }
    // The names below `name` down to the directory `dir` is.
    let mut below: Vec<OsString> = Vec::new();
    let mut dir = open_dir(parent, name)?;
    let top = mount_of(dir.as_fd())?;
    loop {
        if let Some(sub) = unlink_files_until_subdir(dir.as_fd())? {
            let next = open_dir(dir.as_fd(), &sub)?;
            below.push(sub);
            if mounts == Mounts::Stay && mount_of(next.as_fd())? != top {
                let at: PathBuf = std::iter::once(name)
                    .chain(below.iter().map(|n| n.as_os_str()))
                    .collect();
                return Err(io::Error::other(format!(
                    "a file system is mounted at {}",
                    at.display()
                )));
            }
            dir = next;
            continue;
        }
        let Some(done) = below.pop() else {
            drop(dir);
            return ignore_missing(unlinkat(parent, name, AtFlags::REMOVEDIR));
        };
        let up = openat(
            dir.as_fd(),
            "..",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        ignore_missing(unlinkat(up.as_fd(), &done, AtFlags::REMOVEDIR))?;
        dir = up;
    }
}

/// Which mount a directory is on: its device, and the mount's id where the
/// kernel gives it (Linux 5.8), which also tells a bind mount of the same
/// file system apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MountOf {
    dev: u64,
    mnt_id: Option<u64>,
}

fn mount_of(dir: BorrowedFd<'_>) -> io::Result<MountOf> {
    let st = statx(dir, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
    let has_id = StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::MNT_ID);
    Ok(MountOf {
        dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        mnt_id: has_id.then_some(st.stx_mnt_id),
    })
}

fn open_dir(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        parent,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Unlink the non-directories of `dir` up to its first subdirectory, whose
/// name is returned; `None` when `dir` has nothing else left.
fn unlink_files_until_subdir(dir: BorrowedFd<'_>) -> io::Result<Option<OsString>> {
    let mut entries = Dir::read_from(dir)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode),
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            },
            known => known,
        };
        if kind == FileType::Directory {
            return Ok(Some(name.to_owned()));
        }
        ignore_missing(unlinkat(dir, name, AtFlags::empty()))?;
    }
    Ok(None)
}

fn ignore_missing(r: rustix::io::Result<()>) -> io::Result<()> {
    match r {
        Err(Errno::NOENT) => Ok(()),
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::mkdirat;
    use rustix::process::{getrlimit, setrlimit, Resource};
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::process::Command;

    const CHILD: &str = "PICOLET_TEST_REMOVE_IN";
    /// Deeper than the child's fd limit: one fd per level would run out.
    const DEPTH: usize = 300;

    #[test]
    fn removes_trees_deeper_than_the_fd_limit_without_following_links() {
        let base = std::env::temp_dir().join(format!("picolet-remove-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/keep"), "host").unwrap();
        let top = crate::safe_path::open_dir(&base).unwrap();
        mkdirat(&top, "tree", Mode::from_raw_mode(0o755)).unwrap();
        let mut dir = open_dir(top.as_fd(), OsStr::new("tree")).unwrap();
        for _ in 0..DEPTH {
            mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).unwrap();
            rustix::fs::symlinkat(base.join("outside").as_path(), &dir, "link").unwrap();
            let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC;
            drop(openat(&dir, "f", flags, Mode::from_raw_mode(0o644)).unwrap());
            dir = open_dir(dir.as_fd(), OsStr::new("d")).unwrap();
        }
        drop(dir);
        // The fd limit is the process's: lowered in a child, not here.
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "fs_remove::tests::remove_in_child", "--ignored"])
            .env(CHILD, &base)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!base.join("tree").exists());
        assert_eq!(
            fs::read_to_string(base.join("outside/keep")).unwrap(),
            "host"
        );
        remove_all(top.as_fd(), OsStr::new("missing")).unwrap();
        symlink(base.join("outside"), base.join("link")).unwrap();
        remove_all(top.as_fd(), OsStr::new("link")).unwrap();
        assert!(base.join("outside/keep").exists() && !base.join("link").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    #[ignore = "run by the test above, in a child process"]
    fn remove_in_child() {
        let base = std::env::var_os(CHILD).expect(CHILD);
        let mut limit = getrlimit(Resource::Nofile);
        limit.current = Some(DEPTH as u64 / 2);
        setrlimit(Resource::Nofile, limit).unwrap();
        let top = crate::safe_path::open_dir(Path::new(&base)).unwrap();
        remove_all(top.as_fd(), OsStr::new("tree")).unwrap();
    }
}

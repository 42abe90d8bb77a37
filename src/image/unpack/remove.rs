//! Removing a name and everything below it relative to a directory fd,
//! following no symlink: whiteouts, entries that replace others, and failed
//! or interrupted unpacks.

use rustix::fs::{openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Remove `name` in `parent` (nothing if it does not exist); a directory is
/// removed with its whole tree. A symlink is removed itself, never followed.
///
/// One directory is open at a time, walking down by name and up by `..`: a
/// layer can build a tree deeper than the fd limit or the stack allows.
pub fn remove_all(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
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
    loop {
        if let Some(sub) = unlink_files_until_subdir(dir.as_fd())? {
            dir = open_dir(dir.as_fd(), &sub)?;
            below.push(sub);
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

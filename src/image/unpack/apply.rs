//! Applying one layer's entries to a root directory fd. Every parent
//! directory is resolved inside the root (`safe_path`: symlinks restart at
//! the root, `..` stops there); the last component is created, replaced or
//! removed with `*at` calls relative to the parent's fd that follow no
//! symlink. No host path string is ever built from an entry's name.

use super::tar::{Archive, Header, Kind, TarError};
use crate::fs_remove::remove_all;
use crate::safe_path::{fd_path, mkdir_all_in_root, open_in_root};
use rustix::fs::{
    chownat, fchmod, fchown, fstat, linkat, mkdirat, mknodat, openat, statat, symlinkat, AtFlags,
    FileType, Gid, Mode, OFlags, Uid, CWD,
};
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const WHITEOUT: &[u8] = b".wh.";
/// `.wh..wh..opq` without the whiteout prefix.
const OPAQUE: &[u8] = b".wh..opq";

/// Why one entry cannot be applied.
#[derive(Debug)]
pub enum EntryError {
    /// A `..` component: it could only climb out.
    DotDot,
    Nul,
    /// A whiteout of `` (`.wh.`), `.` or `..`.
    Whiteout,
    /// A hard link whose target is not in the layers applied so far.
    LinkTarget(io::Error),
    HardLinkToDir,
    /// A uid or gid beyond 32 bits.
    Owner,
    /// A parent directory cannot be resolved or made inside the root.
    Parent(io::Error),
    Io(io::Error),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::DotDot => write!(f, "a '..' component would leave the image root"),
            EntryError::Nul => write!(f, "the name contains NUL"),
            EntryError::Whiteout => write!(f, "a whiteout of '', '.' or '..'"),
            EntryError::LinkTarget(e) => write!(f, "hard link target: {e}"),
            EntryError::HardLinkToDir => write!(f, "a hard link to a directory"),
            EntryError::Owner => write!(f, "uid or gid out of range"),
            EntryError::Parent(e) => write!(f, "parent directory: {e}"),
            EntryError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<Errno> for EntryError {
    fn from(e: Errno) -> EntryError {
        EntryError::Io(e.into())
    }
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> EntryError {
        EntryError::Io(e)
    }
}

/// Why a layer cannot be applied.
#[derive(Debug)]
pub enum LayerError {
    Tar(TarError),
    Entry { entry: String, error: EntryError },
    TooManyEntries { max: u64 },
}

/// Apply every entry of `archive` on top of `root`. `entries` counts the
/// entries of the image so far; more than `max_entries` is an error.
pub fn apply_layer<R: Read>(
    archive: &mut Archive<R>,
    root: BorrowedFd<'_>,
    entries: &mut u64,
    max_entries: u64,
) -> Result<(), LayerError> {
    let mut layer = Layer {
        root,
        created: HashSet::new(),
        hasher: RandomState::new(),
        is_root: rustix::process::geteuid().is_root(),
    };
    while let Some(header) = archive.next().map_err(LayerError::Tar)? {
        *entries += 1;
        if *entries > max_entries {
            return Err(LayerError::TooManyEntries { max: max_entries });
        }
        layer
            .entry(archive, &header)
            .map_err(|error| LayerError::Entry {
                entry: header.name(),
                error,
            })?;
    }
    Ok(())
}

struct Layer<'a> {
    root: BorrowedFd<'a>,
    /// Entries this layer made, as hashes of their parent directory's
    /// (device, inode) and their name: an opaque whiteout hides lower
    /// layers' entries only. 8 bytes an entry, not a copy of its name: a
    /// layer may have a million.
    created: HashSet<u64>,
    hasher: RandomState,
    /// Ownership is applied only by root (tests run unprivileged too).
    is_root: bool,
}

impl Layer<'_> {
    fn entry<R: Read>(&mut self, archive: &mut Archive<R>, h: &Header) -> Result<(), EntryError> {
        let Some((dir, name)) = split(&h.path)? else {
            return Ok(()); // the root itself keeps picolet's mode
        };
        if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT) {
            return self.whiteout(&dir, hidden);
        }
        if matches!(h.kind, Kind::CharDevice | Kind::BlockDevice) {
            return Ok(()); // device nodes come from the runtime's /dev, never from images
        }
        // A hard link's target is found before its name is replaced.
        let link_target = match h.kind {
            Kind::HardLink => Some(self.link_target(&h.link)?),
            _ => None,
        };
        let parent = self.parent(&dir)?;
        let parent = parent.as_fd();
        let keep_dir = self.clear(parent, name, h.kind)?;
        if let Some(fd) = self.make(archive, parent, name, h, keep_dir, link_target)? {
            self.set_metadata(fd.as_fd(), h)?;
        }
        let key = self.key(&fstat(parent)?, name);
        self.created.insert(key);
        Ok(())
    }

    fn key(&self, parent: &rustix::fs::Stat, name: &OsStr) -> u64 {
        self.hasher.hash_one((parent.st_dev, parent.st_ino, name))
    }

    /// Create `name` in `parent` as `h` says; the fd of what has a mode of
    /// its own to set (not links, which have none or share their target's).
    fn make<R: Read>(
        &self,
        archive: &mut Archive<R>,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        h: &Header,
        keep_dir: bool,
        link_target: Option<OwnedFd>,
    ) -> Result<Option<OwnedFd>, EntryError> {
        match (h.kind, link_target) {
            (Kind::Dir, _) => Ok(Some(self.dir(parent, name, keep_dir)?)),
            (Kind::File, _) => Ok(Some(file(archive, parent, name)?)),
            (Kind::Fifo, _) => {
                mknodat(parent, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)?;
                // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
                let flags = OFlags::RDONLY | OFlags::NONBLOCK;
                Ok(Some(open_nofollow(parent, name, flags)?))
            }
            (Kind::Symlink, _) => {
                symlinkat(h.link.as_slice(), parent, name)?;
                if self.is_root {
                    let (uid, gid) = owner(h)?;
                    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
                    chownat(parent, name, Some(uid), Some(gid), nofollow)?;
                }
                Ok(None)
            }
            (Kind::HardLink, Some(target)) => {
                // The magic /proc link names the target's inode itself.
                let source = fd_path(target.as_fd());
                linkat(CWD, &source, parent, name, AtFlags::SYMLINK_FOLLOW)?;
                Ok(None)
            }
            (Kind::HardLink | Kind::CharDevice | Kind::BlockDevice, _) => Ok(None),
        }
    }

    /// The entry's parent directory inside the root, made if missing.
    fn parent(&self, dir: &Path) -> Result<OwnedFd, EntryError> {
        mkdir_all_in_root(self.root, dir, Mode::from_raw_mode(0o755)).map_err(EntryError::Parent)
    }

    /// Make room for a new `name`: an existing directory stays for a
    /// directory entry (returns true); anything else is removed, and a
    /// symlink is removed itself, never followed.
    fn clear(&self, parent: BorrowedFd<'_>, name: &OsStr, kind: Kind) -> Result<bool, EntryError> {
        match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
            Ok(st)
                if kind == Kind::Dir
                    && FileType::from_raw_mode(st.st_mode) == FileType::Directory =>
            {
                Ok(true)
            }
            Ok(_) => Ok(remove_all(parent, name).map(|()| false)?),
        }
    }

    fn dir(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        exists: bool,
    ) -> Result<OwnedFd, EntryError> {
        if !exists {
            mkdirat(parent, name, Mode::from_raw_mode(0o700))?;
        }
        Ok(open_nofollow(
            parent,
            name,
            OFlags::DIRECTORY | OFlags::RDONLY,
        )?)
    }

    /// The file a hard link names, as an O_PATH fd of the link target's own
    /// inode (a final symlink is linked, not followed, as tar does).
    fn link_target(&self, link: &[u8]) -> Result<OwnedFd, EntryError> {
        let Some((dir, name)) = split(link)? else {
            return Err(EntryError::HardLinkToDir);
        };
        let path = dir.join(name);
        let fd = open_in_root(
            self.root,
            &path,
            OFlags::PATH | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(EntryError::LinkTarget)?;
        if FileType::from_raw_mode(fstat(&fd)?.st_mode) == FileType::Directory {
            return Err(EntryError::HardLinkToDir);
        }
        Ok(fd)
    }

    /// Owner first: chown clears the setuid and setgid bits that the mode
    /// then sets (images need them; `<root>` keeps host users away).
    fn set_metadata(&self, fd: BorrowedFd<'_>, h: &Header) -> Result<(), EntryError> {
        if self.is_root {
            let (uid, gid) = owner(h)?;
            fchown(fd, Some(uid), Some(gid))?;
        }
        fchmod(fd, Mode::from_raw_mode(h.mode & 0o7777))?;
        Ok(())
    }

    /// `.wh.<name>` removes `name` of lower layers from the entry's own
    /// directory; `.wh..wh..opq` every entry of it this layer did not make.
    /// Layer writers put the opaque marker right after its directory's own
    /// entry, before anything below it, so the entries kept are new ones.
    fn whiteout(&self, dir: &Path, hidden: &[u8]) -> Result<(), EntryError> {
        let opaque = hidden == OPAQUE;
        if !opaque && hidden.starts_with(WHITEOUT) {
            return Ok(()); // AUFS's own metadata (.wh..wh.plnk, ...): nothing for OCI
        }
        if !opaque && matches!(hidden, b"" | b"." | b"..") {
            return Err(EntryError::Whiteout);
        }
        let parent = match open_in_root(
            self.root,
            dir,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Nothing there to hide.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(())
            }
            Err(e) => return Err(EntryError::Parent(e)),
        };
        if !opaque {
            return Ok(remove_all(parent.as_fd(), OsStr::from_bytes(hidden))?);
        }
        let st = fstat(&parent)?;
        // Removing entries already read does not make readdir skip others.
        let mut entries = rustix::fs::Dir::read_from(&parent)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." && !self.created.contains(&self.key(&st, name)) {
                remove_all(parent.as_fd(), name)?;
            }
        }
        Ok(())
    }
}

/// A new regular file with the entry's content; its mode comes after.
fn file<R: Read>(
    archive: &mut Archive<R>,
    parent: BorrowedFd<'_>,
    name: &OsStr,
) -> Result<OwnedFd, EntryError> {
    let fd = openat(
        parent,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let mut out = File::from(fd);
    io::copy(&mut archive.contents(), &mut out)?;
    Ok(out.into())
}

fn open_nofollow(parent: BorrowedFd<'_>, name: &OsStr, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(openat(
        parent,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn owner(h: &Header) -> Result<(Uid, Gid), EntryError> {
    let uid = u32::try_from(h.uid).map_err(|_| EntryError::Owner)?;
    let gid = u32::try_from(h.gid).map_err(|_| EntryError::Owner)?;
    Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
}

/// An entry's name as its parent directory (relative to the root, maybe
/// empty) and last component; `None` for the root itself. Empty and `.`
/// components are dropped (`./a//b` is `a/b`, `/a` is `a`); `..` and NUL are
/// errors.
fn split(path: &[u8]) -> Result<Option<(PathBuf, &OsStr)>, EntryError> {
    let mut parts = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(EntryError::DotDot),
            p if p.contains(&0) => return Err(EntryError::Nul),
            p => parts.push(OsStr::from_bytes(p)),
        }
    }
    let Some(name) = parts.pop() else {
        return Ok(None);
    };
    Ok(Some((parts.iter().collect(), name)))
}

#[cfg(test)]
mod tests {
    use super::super::tar_writer::TarBuilder;
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// `<tmp>/<tag>/root` to unpack into, with room beside it for the host
    /// files an attack aims at.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p =
                std::env::temp_dir().join(format!("picolet-apply-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(p.join("root")).unwrap();
            TempDir(p)
        }

        fn root(&self) -> PathBuf {
            self.0.join("root")
        }

        /// A host file outside the root, with its mode.
        fn victim(&self, name: &str, mode: u32) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, "host").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            path
        }

        /// A relative link target from `root/<depth dirs>` that climbs to `path`.
        fn climb_to(&self, path: &Path) -> String {
            format!("{}{}", "../".repeat(20), path.display())
        }

        fn apply(&self, layer: &[u8]) -> Result<(), LayerError> {
            let root = crate::safe_path::open_dir(&self.root()).unwrap();
            apply_layer(&mut Archive::new(layer, 4096), root.as_fd(), &mut 0, 1000)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entry_error(r: Result<(), LayerError>) -> (String, EntryError) {
        match r {
            Err(LayerError::Entry { entry, error }) => (entry, error),
            other => panic!("expected an entry error, got {other:?}"),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn dot_dot_is_an_error_naming_the_entry() {
        let t = TempDir::new("dotdot");
        let (entry, error) =
            entry_error(t.apply(&TarBuilder::new().file("a/../../escaped", "x").finish()));
        assert_eq!(entry, "a/../../escaped");
        assert!(matches!(error, EntryError::DotDot), "{error}");
        assert!(!t.0.join("escaped").exists());
    }

    #[test]
    fn absolute_names_land_inside_the_root() {
        let t = TempDir::new("absname");
        let outside = t.0.join("abs");
        let layer = TarBuilder::new()
            .file(&format!("{}", outside.display()), "inside")
            .finish();
        t.apply(&layer).unwrap();
        assert!(!outside.exists());
        let landed = t.root().join(outside.strip_prefix("/").unwrap());
        assert_eq!(fs::read_to_string(landed).unwrap(), "inside");
    }

    /// The reported attack: `evil -> ../../../tmp/victim`, then `evil/` with
    /// mode 0777 chmodded the host's file.
    #[test]
    fn a_directory_entry_replaces_a_symlink_and_never_follows_it() {
        let t = TempDir::new("symdir");
        let victim = t.0.join("victim");
        fs::create_dir(&victim).unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o700)).unwrap();
        for target in [t.climb_to(&victim), victim.display().to_string()] {
            let layer = TarBuilder::new()
                .symlink("evil", &target)
                .dir("evil/", 0o777)
                .file("evil/planted", "x")
                .finish();
            t.apply(&layer).unwrap();
            assert_eq!(mode(&victim), 0o700);
            assert_eq!(fs::read_dir(&victim).unwrap().count(), 0);
            let evil = fs::symlink_metadata(t.root().join("evil")).unwrap();
            assert!(evil.is_dir());
            assert_eq!(evil.mode() & 0o7777, 0o777);
            fs::remove_dir_all(t.root().join("evil")).unwrap();
        }
    }

    #[test]
    fn a_file_entry_replaces_a_symlink_and_never_writes_through_it() {
        let t = TempDir::new("symfile");
        let victim = t.victim("victim", 0o644);
        let layer = TarBuilder::new()
            .symlink("f", &victim.display().to_string())
            .entry(b"f", b'0', 0o4777, b"", b"image")
            .finish();
        t.apply(&layer).unwrap();
        assert_eq!(
            (fs::read_to_string(&victim).unwrap(), mode(&victim)),
            ("host".into(), 0o644)
        );
        assert_eq!(fs::read_to_string(t.root().join("f")).unwrap(), "image");
    }

    #[test]
    fn entries_below_symlinks_resolve_inside_the_root() {
        let t = TempDir::new("below");
        let outside = t.0.join("outside");
        fs::create_dir(&outside).unwrap();
        // Across layers: a chain of links, then a directory replaced by a link.
        let lower = TarBuilder::new()
            .symlink("l1", "l2")
            .symlink("l2", &t.climb_to(&outside))
            .dir("d/", 0o755)
            .finish();
        t.apply(&lower).unwrap();
        let upper = TarBuilder::new()
            .file("l1/x", "via the chain")
            .symlink("d", &outside.display().to_string())
            .file("d/y", "via the replaced dir")
            .finish();
        t.apply(&upper).unwrap();
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside"
        );
        let inside = t.root().join(outside.strip_prefix("/").unwrap());
        assert_eq!(
            fs::read_to_string(inside.join("x")).unwrap(),
            "via the chain"
        );
        assert_eq!(
            fs::read_to_string(inside.join("y")).unwrap(),
            "via the replaced dir"
        );
    }

    #[test]
    fn hard_links_cannot_reach_outside() {
        let t = TempDir::new("hardlink");
        let secret = t.victim("secret", 0o600);
        let (_, error) =
            entry_error(t.apply(&TarBuilder::new().hard_link("a", "../secret").finish()));
        assert!(matches!(error, EntryError::DotDot), "{error}");
        // An absolute target, and one through a link out, are looked up in
        // the root, where they do not exist.
        let layer = TarBuilder::new()
            .hard_link("b", &secret.display().to_string())
            .finish();
        let (entry, error) = entry_error(t.apply(&layer));
        assert_eq!(entry, "b");
        assert!(
            matches!(&error, EntryError::LinkTarget(e) if e.kind() == io::ErrorKind::NotFound),
            "{error}"
        );
        let layer = TarBuilder::new()
            .symlink("up", &t.climb_to(&t.0))
            .hard_link("c", "up/secret")
            .finish();
        assert!(matches!(
            entry_error(t.apply(&layer)).1,
            EntryError::LinkTarget(_)
        ));
        // A link to a symlink links the symlink itself, as tar does.
        let layer = TarBuilder::new()
            .symlink("s", &secret.display().to_string())
            .hard_link("h", "s")
            .file("f", "data")
            .hard_link("g", "f")
            .finish();
        t.apply(&layer).unwrap();
        assert!(fs::symlink_metadata(t.root().join("h"))
            .unwrap()
            .is_symlink());
        assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
        assert_eq!(fs::read_to_string(t.root().join("g")).unwrap(), "data");
        assert_eq!(fs::metadata(t.root().join("f")).unwrap().nlink(), 2);
        let layer = TarBuilder::new()
            .dir("dir/", 0o755)
            .hard_link("dl", "dir")
            .finish();
        assert!(matches!(
            entry_error(t.apply(&layer)).1,
            EntryError::HardLinkToDir
        ));
    }

    #[test]
    fn whiteouts_remove_lower_entries() {
        let t = TempDir::new("whiteout");
        let lower = TarBuilder::new()
            .dir("etc/", 0o755)
            .file("etc/a", "1")
            .file("etc/b", "2")
            .dir("opt/", 0o755)
            .file("opt/old", "3")
            .dir("opt/olddir/", 0o755)
            .file("opt/olddir/f", "4")
            .finish();
        t.apply(&lower).unwrap();
        let upper = TarBuilder::new()
            .file("etc/.wh.a", "")
            .dir("opt/", 0o755)
            .file("opt/-early", "made before the marker")
            .file("opt/.wh..wh..opq", "")
            .file("opt/new", "4")
            .file("etc/.wh..wh.plnk", "")
            .file("missing/.wh.x", "")
            .finish();
        t.apply(&upper).unwrap();
        let names = |d: &str| {
            let mut n: Vec<_> = fs::read_dir(t.root().join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names("etc"), ["b"]);
        assert_eq!(names("opt"), ["-early", "new"]);
        assert!(!t.root().join("missing").exists());
    }

    /// The reported attack: `.wh...`, a whiteout of `..`, deleted every
    /// unpacked image beside the one being unpacked.
    #[test]
    fn whiteouts_of_dot_names_are_errors() {
        let t = TempDir::new("whdots");
        let sibling = t.victim("sibling-image", 0o644);
        t.apply(
            &TarBuilder::new()
                .dir("d/", 0o755)
                .file("d/keep", "k")
                .finish(),
        )
        .unwrap();
        for name in ["d/.wh.", "d/.wh..", "d/.wh...", ".wh...", ".wh.."] {
            let (entry, error) = entry_error(t.apply(&TarBuilder::new().file(name, "").finish()));
            assert_eq!(entry, name);
            assert!(matches!(error, EntryError::Whiteout), "{name}: {error}");
        }
        assert!(sibling.exists());
        assert!(t.root().join("d/keep").exists());
    }

    #[test]
    fn whiteouts_below_symlinks_stay_inside() {
        let t = TempDir::new("whlink");
        let victim = t.victim("victim", 0o644);
        let layer = TarBuilder::new()
            .symlink("out", &t.0.display().to_string())
            .symlink("up", &t.climb_to(&t.0))
            .file("out/.wh.victim", "")
            .file("up/.wh.victim", "")
            .file(".wh.out", "")
            .finish();
        t.apply(&layer).unwrap();
        assert!(victim.exists());
        assert!(
            !t.root().join("out").exists(),
            "the link itself is whited out"
        );
    }

    #[test]
    fn modes_owners_and_special_files() {
        let t = TempDir::new("modes");
        let layer = TarBuilder::new()
            .entry(b"bin/su", b'0', 0o4755, b"", b"#!")
            .entry(b"bin/wall", b'0', 0o2755, b"", b"#!")
            .dir("tmp/", 0o1777)
            .entry(b"run/fifo", b'6', 0o640, b"", b"")
            .entry(b"dev/null", b'3', 0o666, b"", b"")
            .entry(b"dev/sda", b'4', 0o660, b"", b"")
            .finish();
        t.apply(&layer).unwrap();
        assert_eq!(mode(&t.root().join("bin/su")), 0o4755, "setuid kept");
        assert_eq!(mode(&t.root().join("bin/wall")), 0o2755, "setgid kept");
        assert_eq!(mode(&t.root().join("bin")), 0o755, "implicit parents");
        assert_eq!(mode(&t.root().join("tmp")), 0o1777);
        let fifo = fs::symlink_metadata(t.root().join("run/fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
        assert_eq!(fifo.mode() & 0o7777, 0o640);
        assert!(
            !t.root().join("dev/null").exists(),
            "device nodes come from the runtime"
        );
        assert!(!t.root().join("dev/sda").exists());
    }

    #[test]
    fn a_directory_entry_keeps_an_existing_directory() {
        let t = TempDir::new("keepdir");
        t.apply(&TarBuilder::new().dir("d/", 0o755).file("d/f", "x").finish())
            .unwrap();
        t.apply(&TarBuilder::new().dir("d/", 0o700).finish())
            .unwrap();
        assert_eq!(mode(&t.root().join("d")), 0o700);
        assert!(t.root().join("d/f").exists());
        // A non-directory goes, with everything below a directory it replaces.
        t.apply(&TarBuilder::new().file("d", "now a file").finish())
            .unwrap();
        assert_eq!(
            fs::read_to_string(t.root().join("d")).unwrap(),
            "now a file"
        );
    }

    #[test]
    fn the_entry_count_is_capped() {
        let t = TempDir::new("entries");
        let root = crate::safe_path::open_dir(&t.root()).unwrap();
        let layer = TarBuilder::new()
            .file("a", "")
            .file("b", "")
            .file("c", "")
            .finish();
        let mut count = 1;
        let r = apply_layer(
            &mut Archive::new(&layer[..], 4096),
            root.as_fd(),
            &mut count,
            3,
        );
        assert!(
            matches!(r, Err(LayerError::TooManyEntries { max: 3 })),
            "{r:?}"
        );
        assert!(!t.root().join("c").exists());
    }

    #[test]
    fn names_with_nul_are_errors() {
        let t = TempDir::new("nul");
        let layer = TarBuilder::new()
            .pax(&[("path", b"a\0b")])
            .file("x", "")
            .finish();
        assert!(matches!(entry_error(t.apply(&layer)).1, EntryError::Nul));
        let layer = TarBuilder::new().symlink("x", "").finish();
        assert!(matches!(entry_error(t.apply(&layer)).1, EntryError::Io(_)));
        // Only the root's own entry: nothing to do.
        t.apply(&TarBuilder::new().dir("./", 0o777).dir("/", 0o777).finish())
            .unwrap();
        assert_eq!(mode(&t.root()), 0o755);
    }
}

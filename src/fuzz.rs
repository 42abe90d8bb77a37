//! Entry points for the fuzz targets (fuzz/fuzz_targets/): each takes
//! arbitrary bytes, runs one parser of outside input on them, and must
//! never panic, hang or leave anything behind (docs/security.md, "Fuzzing").

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Bytes as a name and as a path from outside: a name `component` accepts
/// joins to exactly one entry below the base, and a path resolved inside a
/// tree of hostile links resolves alike by `openat2` and by the fallback
/// walk, to a file inside the tree.
pub fn safe_join(data: &[u8]) {
    if let Ok(name) = std::str::from_utf8(data) {
        if let Ok(joined) = crate::safe_path::join(Path::new("/base"), name) {
            assert_eq!(joined.parent(), Some(Path::new("/base")), "{name:?}");
            assert_eq!(joined.file_name().and_then(|n| n.to_str()), Some(name));
        }
    }
    let (root, outside) = hostile_tree();
    let Ok(fd) = crate::safe_path::open_dir(root) else {
        return;
    };
    let rel = Path::new(OsStr::from_bytes(data));
    if let Some(found) = crate::safe_path::resolve_both_ways(rustix::fd::AsFd::as_fd(&fd), rel) {
        assert_ne!(found.st_ino, *outside, "{rel:?} resolved outside the root");
    }
}

/// A root with links to `/`, up and around, beside a file outside it;
/// made once per process. Returns the root and the outside file's inode.
fn hostile_tree() -> &'static (PathBuf, u64) {
    static TREE: OnceLock<(PathBuf, u64)> = OnceLock::new();
    TREE.get_or_init(|| {
        use std::os::unix::fs::{symlink, MetadataExt};
        let base = std::env::temp_dir().join(format!("picolet-fuzz-{}", std::process::id()));
        let root = base.join("root");
        let made = std::fs::create_dir_all(root.join("a/b"))
            .and_then(|()| std::fs::write(base.join("outside"), "host"))
            .and_then(|()| symlink("/", root.join("abs")))
            .and_then(|()| symlink("../../../..", root.join("a/up")))
            .and_then(|()| symlink("../outside", root.join("a/b/rel")))
            .and_then(|()| symlink("loop", root.join("loop")))
            .and_then(|()| std::fs::metadata(base.join("outside")));
        let inode = made.map_or(0, |m| m.ino());
        (root, inode)
    })
}

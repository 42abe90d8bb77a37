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
    for beneath in [false, true] {
        let root = rustix::fd::AsFd::as_fd(&fd);
        if let Some(found) = crate::safe_path::resolve_both_ways(root, rel, beneath) {
            assert_ne!(found.st_ino, *outside, "{rel:?} resolved outside the root");
        }
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

/// Bytes as a manifest file, through the manifest directory's own path
/// (src/source/static_pod.rs): bounded YAML or JSON, decode, validate,
/// default. Any outcome but a panic (or a hang) is fine.
pub fn manifest(data: &[u8]) {
    use crate::source::static_pod::{decode, Origin};
    let now = crate::time::Time(1_795_932_295_000);
    let _ = decode(data, Origin::File, "/fuzz/pod.yaml", "node1", now);
}

/// Bytes as an API server's answer: the list body and one watch line, each
/// object then decoded as node mode takes a pod (src/source/api/mod.rs).
pub fn api_object(data: &[u8]) {
    use crate::source::api::client::{decode_event, decode_reply};
    let mut objects = Vec::new();
    if let Ok(reply) = decode_reply(200, data) {
        if let Some(items) = reply.body.get("items").and_then(|i| i.as_array()) {
            objects.extend(items.iter().cloned());
        }
    }
    if let Ok(event) = decode_event(data) {
        objects.push(event["object"].clone());
    }
    for mut object in objects {
        let _ = crate::source::api::decode(&mut object);
    }
}

/// Bytes as a quantity, of memory and of cpu: an error or a value below
/// 2^63, never a panic.
pub fn quantity(data: &[u8]) {
    use crate::pod::quantity::{parse_bytes, parse_millicores};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for v in [parse_bytes(text), parse_millicores(text)]
        .into_iter()
        .flatten()
    {
        assert!(v < 1 << 63, "{text:?}: {v}");
    }
}

/// Bytes as a container log file, read as `picolet logs` reads it: what it
/// prints is never longer than what it read, and it reads no further than
/// the input.
pub fn cri_log(data: &[u8]) {
    let timestamps = data.first().is_some_and(|b| b & 1 == 1);
    let mut out = Vec::new();
    if let Ok(consumed) = crate::runtime::logs::print_from(data, timestamps, &mut out) {
        assert!(consumed <= data.len() as u64);
        assert!(out.len() <= data.len());
    }
}

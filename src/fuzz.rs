//! Entry points for the fuzz targets (fuzz/fuzz_targets/): each takes
//! arbitrary bytes, runs one parser of outside input on them, and must
//! never panic, hang or leave anything behind (docs/security.md, "Fuzzing").

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod archive;
pub use archive::image_archive;

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

/// Bytes as an image layer applied on a root whose links point out of it:
/// after any layer, nothing outside the root has changed. A first byte 0
/// takes the rest as a raw tar (checksums fixed, so the reader's other
/// checks are reached); anything else as a script of entries with hostile
/// names and link targets (see `layer_script`).
pub fn unpack(data: &[u8]) {
    use crate::image::unpack::{apply, tar::Archive};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (base, outside) = unpack_sandbox();
    let layer = match mode {
        0 => with_checksums(rest),
        _ => layer_script(rest, outside),
    };
    let Ok(root) = fresh_root(base, outside) else {
        return;
    };
    let root = rustix::fd::AsFd::as_fd(&root);
    let _ = apply::apply_layer(&mut Archive::new(&layer[..], 4096), root, &mut 0, 1000);
    assert_outside_untouched(base, outside);
}

/// `<base>/outside` (0700) with a file `keep` (0600, "host") and an empty
/// directory `dir` (0700) that the layers aim at; made once per process.
fn unpack_sandbox() -> (&'static Path, &'static Path) {
    static BASE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    let (base, outside) = BASE.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("picolet-fuzz-unpack-{}", std::process::id()));
        let outside = base.join("outside");
        let _ = std::fs::create_dir_all(outside.join("dir"));
        let _ = std::fs::write(outside.join("keep"), "host");
        let _ =
            std::fs::set_permissions(outside.join("keep"), std::fs::Permissions::from_mode(0o600));
        for dir in [outside.join("dir"), outside.clone()] {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        (base, outside)
    });
    (base, outside)
}

/// An empty `<base>/root` again, with links out: to `/`, up, and to the
/// outside directory by absolute and relative paths.
fn fresh_root(base: &Path, outside: &Path) -> std::io::Result<rustix::fd::OwnedFd> {
    use std::os::unix::fs::symlink;
    let base_fd = crate::safe_path::open_dir(base)?;
    crate::fs_remove::remove_all(rustix::fd::AsFd::as_fd(&base_fd), OsStr::new("root"))?;
    let root = base.join("root");
    std::fs::create_dir(&root)?;
    symlink("/", root.join("abs"))?;
    symlink("../../../..", root.join("up"))?;
    symlink(outside, root.join("out"))?;
    symlink("../outside", root.join("rel"))?;
    crate::safe_path::open_dir(&root)
}

/// The raw stream with each header's checksum made right, and nothing
/// else changed: the walk takes headers as the reader does
/// (src/image/unpack/tar.rs), up to the first zero block, stepping over the
/// data blocks each declares (extension records, file content) by its size
/// field; a PAX `size` record is not followed.
fn with_checksums(raw: &[u8]) -> Vec<u8> {
    use crate::image::unpack::tar::number;
    let mut data = raw.to_vec();
    let mut at = 0usize;
    while let Some(block) = data.get_mut(at..at.saturating_add(512)) {
        if block.iter().all(|&b| b == 0) {
            break;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let has_data = match block[156] {
            b'0' | b'7' | b'L' | b'K' | b'x' | b'g' => true,
            // Pre-POSIX tar: a "regular file" named with a '/' is a directory.
            0 => !block[..100]
                .split(|&b| b == 0)
                .next()
                .is_some_and(|n| n.ends_with(b"/")),
            _ => false,
        };
        let Some(size) = number(&block[124..136]) else {
            break;
        };
        let size = if has_data { size } else { 0 };
        at = usize::try_from(size.div_ceil(512))
            .ok()
            .and_then(|blocks| blocks.checked_add(1)?.checked_mul(512)?.checked_add(at))
            .unwrap_or(usize::MAX);
    }
    data
}

/// Entries built from bytes, 6 a piece: a kind, a name of up to three
/// parts and a link target from lists of the names that attacks use, a
/// mode, a content length.
fn layer_script(script: &[u8], outside: &Path) -> Vec<u8> {
    use crate::image::unpack::tar_writer::TarBuilder;
    const PARTS: [&str; 18] = [
        "out",
        "rel",
        "abs",
        "up",
        "d",
        "f",
        "..",
        ".",
        "",
        ".wh.",
        ".wh..",
        ".wh...",
        ".wh.out",
        ".wh.d",
        ".wh..wh..opq",
        "keep",
        "dir",
        "outside",
    ];
    const KINDS: [u8; 8] = [b'0', b'5', b'2', b'1', b'6', b'3', b'0', b'5'];
    let host = outside.display().to_string();
    let links = [
        "/".to_string(),
        "..".into(),
        "../..".into(),
        "out".into(),
        "/outside".into(),
        "d".into(),
        "f".into(),
        "rel/keep".into(),
        "out/keep".into(),
        "up/outside/keep".into(),
        "out/dir".into(),
        String::new(),
        host.clone(),
        format!("{host}/keep"),
        format!("{host}/dir"),
    ];
    let mut tar = TarBuilder::new();
    for e in script.chunks_exact(6) {
        let kind = KINDS[usize::from(e[0]) % KINDS.len()];
        let parts = 1 + usize::from(e[1] >> 6);
        let name: Vec<&str> = (0..parts)
            .map(|i| PARTS[usize::from(e[1].rotate_left(2 * i as u32) & 0x3f) % PARTS.len()])
            .collect();
        let name = name.join("/");
        let link = &links[usize::from(e[2]) % links.len()];
        let mode = u32::from(u16::from_le_bytes([e[3], e[4]])) & 0o7777;
        let body = vec![b'x'; usize::from(e[5] % 16)];
        let body = if kind == b'0' { &body[..] } else { &[][..] };
        tar = tar.entry(name.as_bytes(), kind, mode, link.as_bytes(), body);
    }
    tar.finish()
}

/// The outside directory exactly as `unpack_sandbox` made it, and nothing
/// new beside the root.
fn assert_outside_untouched(base: &Path, outside: &Path) {
    use std::os::unix::fs::MetadataExt;
    let names = |dir: &Path| {
        let mut n: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        n.sort();
        n
    };
    assert_eq!(names(base), ["outside", "root"], "written beside the root");
    assert_eq!(names(outside), ["dir", "keep"], "written outside");
    assert_eq!(names(&outside.join("dir")).len(), 0, "written outside");
    let keep = std::fs::symlink_metadata(outside.join("keep")).expect("keep removed");
    assert_eq!(
        (keep.mode() & 0o7777, keep.nlink(), keep.len()),
        (0o600, 1, 4)
    );
    assert_eq!(
        std::fs::read(outside.join("keep")).ok().as_deref(),
        Some(&b"host"[..])
    );
    for dir in [outside.join("dir"), outside.to_path_buf()] {
        let meta = std::fs::symlink_metadata(&dir).expect("removed");
        assert_eq!(meta.mode() & 0o7777, 0o700, "{} chmodded", dir.display());
    }
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
    use crate::apiserver::client::{decode_event, decode_reply};
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

/// Bytes as what a registry and its users send: the first byte picks the
/// parser (registries.yaml, a pull secret, a `WWW-Authenticate` value, an
/// image reference), the rest is its input (src/registry/, src/image/reference.rs).
pub fn registry_input(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 4 == 1 {
        pull_secret(rest);
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 4 {
        0 => {
            let path = Path::new("/fuzz/registries.yaml");
            if let Err(e) = crate::registry::RegistryConfig::parse(text, path) {
                let _ = e.to_string();
            }
        }
        2 => challenges(text),
        _ => reference(text),
    }
}

/// A kubernetes.io/dockerconfigjson Secret, looked up for an exact host,
/// a host with a port, and one that only a `*.` key matches; the password
/// never shows in `Debug`.
fn pull_secret(data: &[u8]) {
    use crate::registry::from_docker_config_json;
    for host in ["docker.io", "registry.example:5000", "a.example.com"] {
        match from_docker_config_json(data, host) {
            Ok(Some(credentials)) => {
                assert!(format!("{credentials:?}").contains("<hidden>"));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// A `WWW-Authenticate` value: what is kept is never longer than the
/// header (schemes, names and unquoted values are all taken from it).
fn challenges(header: &str) {
    let kept: usize = crate::registry::parse_challenges(header)
        .iter()
        .map(|c| {
            c.scheme.len()
                + c.params
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    assert!(kept <= header.len(), "{header:?}: {kept} bytes kept");
}

/// An image reference: its forms do not panic, its registry and
/// repository make up its name, and its full form (the store's `ref.name`)
/// parses back to the same reference. `full` leaves out the tag of
/// `name:tag@digest` (the digest names the image), so that tag is not
/// compared.
fn reference(text: &str) {
    use crate::image::reference::Reference;
    let Ok(r) = Reference::parse(text) else {
        return;
    };
    let _ = r.familiar();
    let (registry, repository) = r.registry_and_repository();
    assert_eq!(format!("{registry}/{repository}"), r.name, "{text:?}");
    let full = r.full();
    assert_eq!(Reference::parse(&full), Ok(r), "{text:?} -> {full:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::unpack::tar::Archive;
    use crate::image::unpack::tar_writer::TarBuilder;
    use std::io::Read;

    /// The review's input: a list whose item is not an object made
    /// `api::decode` index a number by a key, which panics.
    #[test]
    fn an_api_list_of_numbers_is_not_a_panic() {
        api_object(b"{\"items\":[0]}");
        let err = crate::source::api::decode(&mut serde_json::json!(0)).unwrap_err();
        assert!(
            matches!(err, crate::source::api::DecodeError::NotAnObject),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "a pod is a JSON object");
    }

    /// A GNU long name, then a file whose content fills blocks: with the
    /// headers' checksums broken, `with_checksums` mends the headers and
    /// leaves the name and the content as they were, so that long names
    /// reach the unpacker in raw mode.
    #[test]
    fn checksums_are_fixed_in_headers_only() {
        let long = "d/".repeat(300) + "f";
        let body: Vec<u8> = (0..1300u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut raw = TarBuilder::new()
            .entry(
                b"././@LongLink",
                b'L',
                0o644,
                b"",
                format!("{long}\0").as_bytes(),
            )
            .entry(b"short", b'0', 0o644, b"", &body)
            .finish();
        // The headers: the L entry's at 0, the file's after 2 name blocks.
        for header in [0, 3 * 512] {
            raw[header + 148..header + 156].copy_from_slice(b"0000000\0");
        }
        let mended = with_checksums(&raw);
        let mut archive = Archive::new(&mended[..], 4096);
        let header = archive.next().unwrap().unwrap();
        assert_eq!(header.path, long.as_bytes());
        let mut content = Vec::new();
        archive.contents().read_to_end(&mut content).unwrap();
        assert_eq!(content, body);
        assert!(archive.next().unwrap().is_none());
    }
}

//! The `image_archive` fuzz entry: a hostile docker-archive or oci-archive
//! imported into a fresh layout (src/image/import/), which must stay a
//! sound layout inside its own directory whatever the archive says.

use crate::image::digest::{Algorithm, Digest};
use crate::image::layout::{Layout, MANIFEST};
use crate::image::reference::Reference;
use crate::image::unpack::tar_writer::TarBuilder;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

/// Bytes as an archive given to `picolet image import`. The first byte
/// picks how the rest becomes the file: 0 as it is (gzip when it starts
/// with gzip's magic), 1 as a tar with its headers' checksums made right,
/// 2 the same gzipped, 3 a script that builds a valid archive and then
/// breaks it (see `script`), so the importer's later steps are reached
/// without a seed corpus. After the import, the sandbox holds only the
/// archive and the layout, the layout holds no link, every blob matches
/// its name, nothing is left in `ingest/` (a blob that fails leaves
/// nothing behind), and every reference the import returned resolves (but
/// see the digest case below).
pub fn image_archive(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match mode % 4 {
        0 => rest.to_vec(),
        1 => super::with_checksums(rest),
        2 => gzip(&super::with_checksums(rest)),
        _ => script(rest),
    };
    let base = std::env::temp_dir().join(format!("picolet-fuzz-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let file = base.join("archive");
    if std::fs::create_dir_all(base.join("root"))
        .and_then(|()| std::fs::write(&file, &bytes))
        .is_err()
    {
        return;
    }
    let layout = Layout::new(base.join("root/layout"));
    let imported = crate::image::import::import_archive(&layout, &file);
    assert_eq!(
        names(&base),
        ["archive", "root"],
        "written beside the layout"
    );
    let root = names(&base.join("root"));
    assert!(root.is_empty() || root == ["layout"], "{root:?}");
    assert_blobs_sound(layout.dir());
    assert!(
        names(&layout.dir().join("ingest")).is_empty(),
        "ingest left: {imported:?}"
    );
    for name in imported.iter().flatten() {
        let reference = Reference::parse(name).expect("an imported name parses");
        let found = layout.resolve(&reference);
        // A name with a digest is imported even when the digest is not its
        // manifest's (the archive's word), and then resolves to nothing.
        assert!(
            matches!(found, Ok(Some(_))) || reference.digest.is_some() && found.is_ok(),
            "{name} imported, not resolved: {found:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// The names in `dir`, sorted; none when it cannot be read.
fn names(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// No link anywhere in the layout, and each `blobs/<algorithm>/<hex>` a
/// file whose content has that digest.
fn assert_blobs_sound(layout: &Path) {
    let mut dirs = vec![layout.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let kind = std::fs::symlink_metadata(&path)
                .expect("listed")
                .file_type();
            assert!(
                !kind.is_symlink(),
                "a link in the layout: {}",
                path.display()
            );
            if kind.is_dir() {
                dirs.push(path);
            }
        }
    }
    for algorithm in names(&layout.join("blobs")) {
        let dir = layout.join("blobs").join(&algorithm);
        for hex in names(&dir) {
            let name = format!("{}:{}", algorithm.to_string_lossy(), hex.to_string_lossy());
            let digest = Digest::parse(&name).expect("a blob named by a digest");
            let content = std::fs::read(dir.join(&hex)).expect("a blob is a file");
            assert_eq!(
                Digest::of(digest.algorithm(), &content),
                digest,
                "a blob that does not match its name"
            );
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(data);
    gz.finish().unwrap_or_default()
}

/// One archive member: name, tar kind, content, link target.
type Member = (String, u8, Vec<u8>, String);

/// Names that hostile archives use, for renamed and added members.
const NAMES: [&str; 12] = [
    "manifest.json",
    "index.json",
    "oci-layout",
    "./manifest.json",
    "/manifest.json",
    "../manifest.json",
    "layer.tar",
    "config.json",
    "blobs/sha256/../../../x",
    "blobs/sha256/",
    "blobs/sha512/00",
    "blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
];

/// Names an archive gives its image.
const TAGS: [&str; 8] = [
    "busybox:1.36",
    "localhost:5000/a/b:c",
    "docker.io/library/x:latest",
    "../../x",
    "UPPER:1",
    "a:",
    "x@sha256:00",
    "reg.example/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
];

/// A valid archive built from `s`, then broken: `s[0]`'s bits choose an
/// oci-archive (else a docker-archive), a gzipped file, a gzipped layer,
/// a layer that does not match its digest; `s[1]` the image's name; then
/// each 3 bytes an edit of the members (`edit`).
fn script(s: &[u8]) -> Vec<u8> {
    let flags = s.first().copied().unwrap_or(0);
    let tag = TAGS[usize::from(s.get(1).copied().unwrap_or(0)) % TAGS.len()];
    let mut members = match flags & 1 {
        0 => docker_members(tag, flags & 4 != 0, flags & 8 != 0),
        _ => oci_members(tag, flags & 4 != 0, flags & 8 != 0),
    };
    for op in s.get(2..).unwrap_or(&[]).chunks_exact(3) {
        edit(&mut members, op);
    }
    let mut tar = TarBuilder::new();
    for (name, kind, body, link) in &members {
        tar = tar.entry(name.as_bytes(), *kind, 0o644, link.as_bytes(), body);
    }
    let tar = tar.finish();
    match flags & 2 {
        0 => tar,
        _ => gzip(&tar),
    }
}

/// One edit `[op, a, b]` of member `a`: renamed to a hostile name, copied,
/// removed, made a link to a hostile name, cut short, or a hostile name
/// added with its content.
fn edit(members: &mut Vec<Member>, op: &[u8]) {
    if members.is_empty() {
        return;
    }
    let i = usize::from(op[1]) % members.len();
    let name = NAMES[usize::from(op[2]) % NAMES.len()].to_string();
    match op[0] % 6 {
        0 => members[i].0 = name,
        1 => members.push(members[i].clone()),
        2 => {
            members.remove(i);
        }
        3 => {
            members[i].1 = if op[2] & 1 == 0 { b'2' } else { b'1' };
            members[i].2.clear();
            members[i].3 = name;
        }
        4 => members[i].2.truncate(usize::from(op[2])),
        _ => {
            let body = members[i].2.clone();
            members.insert(i, (name, b'0', body, String::new()));
        }
    }
}

/// A one-file layer: its uncompressed digest (the diff_id), the digest of
/// the member as stored, and the member's content, gzipped if `gz`; if
/// `wrong`, another tar, which matches neither digest.
fn layer(gz: bool, wrong: bool) -> (Digest, Digest, Vec<u8>) {
    let store = |tar: Vec<u8>| if gz { gzip(&tar) } else { tar };
    let motd = |text: &str| {
        TarBuilder::new()
            .entry(b"etc/motd", b'0', 0o644, b"", text.as_bytes())
            .finish()
    };
    let tar = motd("hello");
    let diff_id = sha(&tar);
    let stored = store(tar);
    let digest = sha(&stored);
    match wrong {
        true => (diff_id, digest, store(motd("hullo"))),
        false => (diff_id, digest, stored),
    }
}

fn sha(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

/// An image config of this machine's platform with one layer.
fn config(diff_id: &Digest) -> Vec<u8> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    serde_json::json!({"architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    .to_string()
    .into_bytes()
}

fn file(name: &str, body: Vec<u8>) -> Member {
    (name.to_string(), b'0', body, String::new())
}

/// `docker save`'s members for one image named `tag`.
fn docker_members(tag: &str, gz: bool, wrong: bool) -> Vec<Member> {
    let (diff_id, _, layer) = layer(gz, wrong);
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": [tag],
        "Layers": ["layer.tar"]}]);
    vec![
        file("layer.tar", layer),
        file("config.json", config(&diff_id)),
        file("manifest.json", manifest.to_string().into_bytes()),
    ]
}

/// An OCI image layout's members for one image named `tag`.
fn oci_members(tag: &str, gz: bool, wrong: bool) -> Vec<Member> {
    let (diff_id, layer_digest, layer) = layer(gz, wrong);
    let layer_type = match gz {
        true => "application/vnd.oci.image.layer.v1.tar+gzip",
        false => "application/vnd.oci.image.layer.v1.tar",
    };
    let config = config(&diff_id);
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len()}]})
    .to_string()
    .into_bytes();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": MANIFEST,
        "digest": sha(&manifest), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    vec![
        file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        file(&blob(&layer_digest), layer),
        file(&blob(&sha(&config)), config),
        file(&blob(&sha(&manifest)), manifest),
        file("index.json", index.to_string().into_bytes()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::import::{import_archive, ImportError};

    fn import(script_bytes: &[u8]) -> Result<Vec<String>, ImportError> {
        let base = std::env::temp_dir().join(format!(
            "picolet-fuzz-script-{}-{}",
            std::process::id(),
            script_bytes[0]
        ));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let file = base.join("archive");
        std::fs::write(&file, script(script_bytes)).unwrap();
        let result = import_archive(&Layout::new(base.join("layout")), &file);
        std::fs::remove_dir_all(&base).unwrap();
        result
    }

    /// The script's unedited archives, of both formats, plain or gzipped,
    /// with plain or gzipped layers, import: the fuzzer starts past the
    /// importer's checks without a seed corpus. A layer that does not
    /// match its digest is refused as one.
    #[test]
    fn unedited_scripts_are_importable_archives() {
        for flags in 0..8u8 {
            let refs = import(&[flags, 0]).unwrap_or_else(|e| panic!("{flags}: {e}"));
            assert_eq!(refs, ["docker.io/library/busybox:1.36"], "{flags}");
            let err = import(&[flags | 8, 0]).unwrap_err();
            assert!(matches!(err, ImportError::Layer { .. }), "{flags}: {err:?}");
        }
    }
}

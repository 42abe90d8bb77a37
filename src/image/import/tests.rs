use super::*;
use crate::image::blobs::tests::TempLayout;
use crate::image::blobs::INGEST_DIR;
use crate::image::digest::{Algorithm, Digest};
use crate::image::gc::collect::tests::put_image;
use crate::image::reference::Reference;
use crate::image::unpack::tar_writer::TarBuilder;
use crate::image::unpack::{unpack_image, Limits};
use std::fs;
use std::io::Write;

fn sha(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Two layers (one stored gzipped, as some tools save them) and a config
/// whose diff_ids are the layers' uncompressed digests.
struct Saved {
    layers: [Vec<u8>; 2],
    config: String,
}

fn saved() -> Saved {
    let layers = [
        TarBuilder::new()
            .dir("bin", 0o755)
            .file("bin/sh", "shell")
            .finish(),
        TarBuilder::new().file("etc/motd", "hello").finish(),
    ];
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&layers[0]), sha(&layers[1])]}})
    .to_string();
    Saved { layers, config }
}

/// A docker-archive of `s` with `manifest` as its manifest.json.
fn docker_archive(s: &Saved, manifest: serde_json::Value, second_layer: &[u8]) -> Vec<u8> {
    TarBuilder::new()
        .entry(b"abc/layer.tar", b'0', 0o644, b"", &s.layers[0])
        .entry(b"def/layer.tar", b'0', 0o644, b"", second_layer)
        .file("cfg.json", &s.config)
        .file("manifest.json", &manifest.to_string())
        .finish()
}

fn manifest_json(tags: serde_json::Value) -> serde_json::Value {
    serde_json::json!([{"Config": "cfg.json", "RepoTags": tags,
        "Layers": ["abc/layer.tar", "def/layer.tar"]}])
}

fn write_file(layout: &Layout, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = layout.dir().with_extension("files");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_docker_archive_imports_and_unpacks() {
    let t = TempLayout::new("import-docker");
    let s = saved();
    let tags = serde_json::json!(["busybox:1.36", "registry.local:5000/app:v1"]);
    let bytes = gzip(&docker_archive(
        &s,
        manifest_json(tags),
        &gzip(&s.layers[1]),
    ));
    let file = write_file(&t.0, "saved.tar.gz", &bytes);
    let refs = import_archive(&t.0, &file).unwrap();
    assert_eq!(
        refs,
        [
            "docker.io/library/busybox:1.36",
            "registry.local:5000/app:v1"
        ]
    );
    let reference = Reference::parse("busybox:1.36").unwrap();
    let manifest = t.0.resolve(&reference).unwrap().unwrap();
    assert_eq!(manifest.config_digest, sha(s.config.as_bytes()).to_string());
    let dest = t.0.dir().with_extension("rootfs").join("img");
    unpack_image(&t.0, &manifest, &dest, &Limits::with_max_bytes(1 << 20)).unwrap();
    assert_eq!(fs::read(dest.join("etc/motd")).unwrap(), b"hello");
    // Again: the same manifest, nothing new.
    assert_eq!(import_archive(&t.0, &file).unwrap(), refs);
    assert_eq!(t.0.list().unwrap().len(), 2);
    let _ = fs::remove_dir_all(t.0.dir().with_extension("rootfs"));
    let _ = fs::remove_dir_all(t.0.dir().with_extension("files"));
}

#[test]
fn a_tampered_layer_leaves_nothing_behind() {
    let t = TempLayout::new("import-tampered");
    let s = saved();
    let evil = TarBuilder::new().file("etc/motd", "owned").finish();
    let file = write_file(
        &t.0,
        "evil.tar",
        &docker_archive(&s, manifest_json(serde_json::json!(["app:1"])), &evil),
    );
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(
        matches!(&e, ImportError::Layer { member, error: BlobError::DigestMismatch { .. }, .. } if member == "def/layer.tar"),
        "{e}"
    );
    assert!(e.to_string().contains("evil.tar"), "{e}");
    assert_eq!(t.0.list().unwrap(), []);
    assert!(!t.0.has_blob(&sha(&evil)));
    let partials = fs::read_dir(t.0.dir().join(INGEST_DIR)).unwrap().count();
    assert_eq!(partials, 0);
    let _ = fs::remove_dir_all(t.0.dir().with_extension("files"));
}

#[test]
fn hostile_names_untagged_images_and_other_tars_are_refused() {
    let t = TempLayout::new("import-hostile");
    let s = saved();
    // manifest.json only as a link and under hostile names: never read.
    let hostile = TarBuilder::new()
        .symlink("manifest.json", "/etc/shadow")
        .file("../manifest.json", "[]")
        .file("/index.json", "{}")
        .finish();
    let file = write_file(&t.0, "hostile.tar", &hostile);
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(matches!(e, ImportError::Format { .. }), "{e}");

    let untagged = docker_archive(&s, manifest_json(serde_json::Value::Null), &s.layers[1]);
    let file = write_file(&t.0, "untagged.tar", &untagged);
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(matches!(e, ImportError::NoTag { .. }), "{e}");

    let missing = serde_json::json!([{"Config": "cfg.json", "RepoTags": ["a:1"],
        "Layers": ["abc/layer.tar", "nope/layer.tar"]}]);
    let file = write_file(
        &t.0,
        "missing.tar",
        &docker_archive(&s, missing, &s.layers[1]),
    );
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(
        matches!(&e, ImportError::MissingMember { member, .. } if member == "nope/layer.tar"),
        "{e}"
    );

    let e = import_archive(&t.0, Path::new("/nonexistent.tar")).unwrap_err();
    assert!(matches!(e, ImportError::Open { .. }), "{e}");
    assert_eq!(t.0.list().unwrap(), []);
    let _ = fs::remove_dir_all(t.0.dir().with_extension("files"));
}

/// The files of a layout directory as an oci-archive.
fn oci_archive(layout: &Layout, tamper: Option<&Digest>) -> Vec<u8> {
    let mut tar = TarBuilder::new()
        .file(
            "oci-layout",
            &fs::read_to_string(layout.dir().join("oci-layout")).unwrap(),
        )
        .file(
            "index.json",
            &fs::read_to_string(layout.dir().join("index.json")).unwrap(),
        );
    for entry in fs::read_dir(layout.dir().join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let name = format!("blobs/sha256/{}", entry.file_name().to_str().unwrap());
        let mut body = fs::read(entry.path()).unwrap();
        if tamper.is_some_and(|d| name.ends_with(d.hex())) {
            body[0] ^= 1;
        }
        tar = tar.entry(name.as_bytes(), b'0', 0o644, b"", &body);
    }
    tar.finish()
}

#[test]
fn an_oci_archive_imports_its_named_images() {
    let source = TempLayout::new("import-oci-source");
    let (manifest, config) = put_image(&source.0, "quay.io/org/app:2", &[b"layer one", b"two"]);
    let t = TempLayout::new("import-oci");
    let file = write_file(&t.0, "app.tar", &oci_archive(&source.0, None));
    assert_eq!(import_archive(&t.0, &file).unwrap(), ["quay.io/org/app:2"]);
    let found = t.0.resolve(&Reference::parse("quay.io/org/app:2").unwrap());
    let found = found.unwrap().unwrap();
    assert_eq!(found.digest, manifest.to_string());
    assert_eq!(found.config_digest, config.to_string());
    assert!(t.0.has_blob(&sha(b"layer one")));

    let t = TempLayout::new("import-oci-tampered");
    let file = write_file(&t.0, "app.tar", &oci_archive(&source.0, Some(&sha(b"two"))));
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(
        matches!(
            &e,
            ImportError::Layer {
                error: BlobError::DigestMismatch { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(t.0.list().unwrap(), []);
    assert!(!t.0.has_blob(&sha(b"two")));
    let _ = fs::remove_dir_all(t.0.dir().with_extension("files"));
}

#[test]
fn a_directory_is_imported_once_per_file_version() {
    let t = TempLayout::new("import-dir");
    let s = saved();
    let one = docker_archive(
        &s,
        manifest_json(serde_json::json!(["one:1"])),
        &s.layers[1],
    );
    write_file(&t.0, "one.tar", &one);
    write_file(&t.0, "notes.txt", b"not an image");
    let bad = write_file(&t.0, "bad.tgz", b"junk");
    let dir = bad.parent().unwrap().to_path_buf();

    let results = import_dir(&t.0, &dir).unwrap();
    let names: Vec<_> = results
        .iter()
        .map(|(p, _)| p.file_name().unwrap())
        .collect();
    assert_eq!(names, ["bad.tgz", "one.tar"]);
    assert!(
        matches!(results[0].1, Err(ImportError::Tar { .. })),
        "{:?}",
        results[0].1
    );
    let refs = results[1].1.as_ref().unwrap().clone();
    assert_eq!(refs, Some(vec!["docker.io/library/one:1".to_string()]));

    // Removed by hand; the unchanged file is not imported again.
    t.0.remove_ref("one:1").unwrap();
    let results = import_dir(&t.0, &dir).unwrap();
    assert!(matches!(results[1].1, Ok(None)));
    assert!(results[0].1.is_err(), "failures are retried");
    assert_eq!(t.0.list().unwrap(), []);

    // A new version of the file is.
    let two = docker_archive(
        &s,
        manifest_json(serde_json::json!(["one:1", "one:2"])),
        &s.layers[1],
    );
    write_file(&t.0, "one.tar", &two);
    let results = import_dir(&t.0, &dir).unwrap();
    assert_eq!(results[1].1.as_ref().unwrap().as_ref().unwrap().len(), 2);
    assert!(import_dir(&t.0, &dir.join("absent")).unwrap().is_empty());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_layer_that_expands_past_the_ratio_bound_is_refused() {
    let t = TempLayout::new("import-bomb");
    let s = saved();
    // 32 MiB of zeros gzip to about 32 KiB: a bomb's ratio.
    let bomb = gzip(&vec![0u8; 32 << 20]);
    let file = write_file(
        &t.0,
        "bomb.tar",
        &docker_archive(&s, manifest_json(serde_json::json!(["bomb:1"])), &bomb),
    );
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(
        matches!(&e, ImportError::TooLarge { member, .. } if member == "def/layer.tar"),
        "{e}"
    );
    assert_eq!(t.0.list().unwrap(), []);
    let partials = fs::read_dir(t.0.dir().join(INGEST_DIR)).unwrap().count();
    assert_eq!(partials, 0, "the expanded bytes were removed");
    let _ = fs::remove_dir_all(t.0.dir().with_extension("files"));
}

#[test]
fn repeated_or_oversized_json_members_are_refused_before_they_fill_memory() {
    // Found by fuzz/fuzz_targets/image_archive.rs: 200 members named
    // manifest.json of 4 MiB each were all kept, 830 MB.
    let t = TempLayout::new("import-repeated");
    let manifest = manifest_json(serde_json::json!(["app:1"])).to_string();
    let twice = TarBuilder::new()
        .file("manifest.json", &manifest)
        .file("manifest.json", &manifest)
        .finish();
    let file = write_file(&t.0, "twice.tar", &twice);
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(
        matches!(&e, ImportError::Format { why, .. } if why.contains("\"manifest.json\" appears twice")),
        "{e}"
    );
    // Five configs of almost 4 MiB each: each within the member bound,
    // together over the archive's.
    let big = format!("{{\"pad\":\"{}\"}}", " ".repeat((4 << 20) - 16));
    let names: Vec<String> = (0..5).map(|i| format!("cfg{i}.json")).collect();
    let saved_images: Vec<serde_json::Value> = names
        .iter()
        .map(|n| serde_json::json!({"Config": n, "RepoTags": [format!("app:{n}")], "Layers": []}))
        .collect();
    let mut tar = TarBuilder::new().file(
        "manifest.json",
        &serde_json::Value::from(saved_images).to_string(),
    );
    for n in &names {
        tar = tar.file(n, &big);
    }
    let file = write_file(&t.0, "heavy.tar", &tar.finish());
    let e = import_archive(&t.0, &file).unwrap_err();
    assert!(
        matches!(&e, ImportError::Format { why, .. } if why.contains("JSON members take more than")),
        "{e}"
    );
    assert_eq!(t.0.list().unwrap(), []);
    let _ = fs::remove_dir_all(t.0.dir().with_extension("files"));
}

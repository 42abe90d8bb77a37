//! Images for the registry tests, made at test time: what an OCI layout
//! holds for a tag, a multi-arch index of the host's platform and another,
//! distinct images (busybox plus a layer of random bytes), and the
//! docker-archive and oci-archive files `picolet image import` takes.

use super::super::busybox_layout;
use super::super::layers::{add_image_on_busybox, read_json, Layer};
use super::copy_dir;
use crate::common::run;
use serde_json::{json, Value};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The digests of one image manifest.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    pub manifest: String,
    pub config: String,
    pub layers: Vec<String>,
}

impl ImageInfo {
    /// The hex of the config digest: the name of the unpacked tree under
    /// `<root>/rootfs`.
    pub fn config_hex(&self) -> &str {
        &self.config[7..]
    }

    /// The biggest layer's digest (the one worth cutting or tampering).
    pub fn biggest_layer(&self, layout: &Path) -> String {
        self.layers
            .iter()
            .max_by_key(|d| fs::metadata(blob(layout, d)).map_or(0, |m| m.len()))
            .expect("a layer")
            .clone()
    }
}

/// The path of blob `digest` in an OCI layout.
pub fn blob(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("a digest");
    layout.join("blobs").join(alg).join(hex)
}

/// The descriptor tagged `tag` (`org.opencontainers.image.ref.name`).
fn descriptor(layout: &Path, tag: &str) -> Value {
    read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{tag} in {}", layout.display()))
        .clone()
}

/// The image manifest tagged `tag` in `layout`.
pub fn image_in_layout(layout: &Path, tag: &str) -> ImageInfo {
    manifest_info(layout, descriptor(layout, tag)["digest"].as_str().unwrap())
}

fn manifest_info(layout: &Path, digest: &str) -> ImageInfo {
    let manifest = read_json(&blob(layout, digest));
    ImageInfo {
        manifest: digest.to_string(),
        config: manifest["config"]["digest"].as_str().unwrap().to_string(),
        layers: manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect(),
    }
}

/// The OCI name of the host's architecture, as an index's platform says it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no test platform for {other}"),
    }
}

/// A multi-arch index (tag [`MultiArch::TAG`]) of busybox for the host's
/// architecture and for another one.
pub struct MultiArch {
    pub layout: PathBuf,
    pub host: ImageInfo,
    pub other: ImageInfo,
    /// The digest of the index.
    pub index: String,
}

impl MultiArch {
    pub const TAG: &'static str = "multi";
}

/// The multi-arch layout, built once per test binary: the busybox layout,
/// a second build with `ARCH=<other>` (umoci writes the architecture into
/// its config; its binary stays the host's, so only the platform choice
/// tells them apart), and an OCI index naming both with their platforms.
pub fn multi_arch() -> &'static MultiArch {
    static MULTI: OnceLock<MultiArch> = OnceLock::new();
    MULTI.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("multi-arch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let layout = base.join("layout");
        copy_dir(busybox_layout(), &layout);
        let other_arch = if host_arch() == "amd64" {
            "arm64"
        } else {
            "amd64"
        };
        let other_layout = base.join("other");
        run(Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/images/build-busybox"
        ))
        .env("ARCH", other_arch)
        .arg(&other_layout));
        let host = image_in_layout(&layout, "busybox:1.36");
        let other = image_in_layout(&other_layout, "busybox:1.36");
        for entry in fs::read_dir(other_layout.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let to = layout.join("blobs/sha256").join(entry.file_name());
            if !to.exists() {
                fs::copy(entry.path(), to).unwrap();
            }
        }
        let platform = |arch: &str| {
            if arch == "arm64" {
                json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
            } else {
                json!({"architecture": arch, "os": "linux"})
            }
        };
        let entry = |info: &ImageInfo, arch: &str| {
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": info.manifest,
                "size": fs::metadata(blob(&layout, &info.manifest)).unwrap().len(),
                "platform": platform(arch),
            })
        };
        // The other platform first: taking the first entry would be wrong.
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry(&other, other_arch), entry(&host, host_arch())],
        });
        let index_bytes = serde_json::to_vec(&index).unwrap();
        let index_digest = super::super::layers::put_blob(&layout, &index_bytes);
        let mut top = read_json(&layout.join("index.json"));
        top["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest,
            "size": index_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": MultiArch::TAG},
        }));
        fs::write(layout.join("index.json"), top.to_string()).unwrap();
        MultiArch {
            layout,
            host,
            other,
            index: index_digest,
        }
    })
}

/// A copy of the busybox layout at `dir` with `tag` = busybox:1.36 plus a
/// layer holding one file of `size` random bytes (incompressible, so the
/// image really weighs `size`): an image no other test shares.
pub fn layout_with_random_layer(dir: &Path, tag: &str, size: usize) -> ImageInfo {
    if !dir.join("index.json").exists() {
        copy_dir(busybox_layout(), dir);
    }
    let files = dir.join(format!(".files-{tag}"));
    fs::create_dir_all(&files).unwrap();
    let mut data = vec![0u8; size];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    fs::write(files.join("random.bin"), &data).unwrap();
    let tar = run(Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(&files)
        .arg("random.bin"))
    .stdout;
    fs::remove_dir_all(&files).unwrap();
    add_image_on_busybox(dir, tag, Layer::gzip(dir, &tar));
    image_in_layout(dir, tag)
}

/// `skopeo copy oci:<layout>:<tag> <transport>:<out>:<name>`.
fn skopeo_to_archive(layout: &Path, tag: &str, transport: &str, out: &Path, name: &str) {
    run(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("{transport}:{}:{name}", out.display())));
}

/// A docker-archive (`docker save`'s format) of `tag` at `out`, its
/// RepoTags `[name]`.
pub fn docker_archive(layout: &Path, tag: &str, out: &Path, name: &str) {
    skopeo_to_archive(layout, tag, "docker-archive", out, name);
}

/// An oci-archive (a tar of an OCI layout) of `tag` at `out`, its index
/// entry annotated `org.opencontainers.image.ref.name` = `name`.
pub fn oci_archive(layout: &Path, tag: &str, out: &Path, name: &str) {
    skopeo_to_archive(layout, tag, "oci-archive", out, name);
}

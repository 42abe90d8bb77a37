//! The pull tests' images (a config and one gzip layer, OCI and Docker
//! manifests) and store (a temporary root, what a failed pull may leave).

use super::super::*;
use super::registry::{Registry, Reply, Repo, Seen};
use crate::image::blobs::INGEST_DIR;
use crate::image::digest::Algorithm;
use crate::image::platform;
use crate::image::unpack::tar_writer::TarBuilder;
use crate::registry::RegistryConfig;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

pub(super) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(super) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(super) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(super) const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub(super) fn sha(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A tiny runnable image: a config and one gzip layer of a few KiB (bytes
/// that do not compress, so that a cut falls inside the layer).
pub(super) struct TestImage {
    pub(super) config: Vec<u8>,
    pub(super) layer: Vec<u8>,
}

pub(super) fn test_image() -> TestImage {
    let mut noise = 0x2545_f491_u32;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (noise >> 16) as u8
        })
        .collect();
    let tar = TarBuilder::new()
        .dir("bin", 0o755)
        .entry(b"bin/hello", b'0', 0o755, b"", &random)
        .finish();
    let config = json!({"architecture": platform::host().architecture, "os": "linux",
        "config": {"Cmd": ["/bin/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar).to_string()]}});
    TestImage {
        config: config.to_string().into_bytes(),
        layer: gzip(&tar),
    }
}

/// This machine's platform as an index entry gives it.
pub(super) fn host_platform() -> Value {
    let host = platform::host();
    json!({"os": host.os, "architecture": host.architecture, "variant": host.variant})
}

pub(super) fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha(bytes).to_string(), "size": bytes.len()})
}

pub(super) fn manifest_doc(media_type: &str, config: Value, layers: Vec<Value>) -> Vec<u8> {
    json!({"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers})
        .to_string()
        .into_bytes()
}

impl TestImage {
    /// Its OCI manifest.
    pub(super) fn manifest(&self) -> Vec<u8> {
        self.manifest_with(MANIFEST, OCI_CONFIG, OCI_LAYER)
    }

    pub(super) fn manifest_with(&self, media_type: &str, config: &str, layer: &str) -> Vec<u8> {
        manifest_doc(
            media_type,
            descriptor(config, &self.config),
            vec![descriptor(layer, &self.layer)],
        )
    }

    /// A registry holding it as `app:v1` (an OCI manifest), its blobs,
    /// answered by `lie` first where it returns a reply.
    pub(super) fn serve(&self, lie: impl Fn(&Seen) -> Option<Reply> + Send + 'static) -> Registry {
        let repo = Repo::default()
            .manifest(Some("v1"), MANIFEST, &self.manifest())
            .blob(&self.config)
            .blob(&self.layer);
        Registry::start(move |req| lie(req).unwrap_or_else(|| repo.answer(req)))
    }

    pub(super) fn layer_path(&self) -> String {
        format!("/v2/app/blobs/{}", sha(&self.layer))
    }

    /// Everything the image's config and layer take.
    pub(super) fn bytes(&self) -> u64 {
        (self.config.len() + self.layer.len()) as u64
    }
}

// ---- the store -----------------------------------------------------------

/// A temporary picolet root, removed on drop.
pub(super) struct TempRoot(pub(super) PathBuf);

impl TempRoot {
    pub(super) fn new(tag: &str) -> TempRoot {
        let dir = std::env::temp_dir().join(format!("picolet-pull-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempRoot(dir)
    }

    pub(super) fn layout(&self) -> Layout {
        Layout::new(self.0.join("images"))
    }

    pub(super) fn ingest_files(&self) -> Vec<PathBuf> {
        fs::read_dir(self.0.join("images").join(INGEST_DIR))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    /// Every file under `blobs/`.
    pub(super) fn stored_blobs(&self) -> Vec<PathBuf> {
        let dir = self.0.join("images/blobs/sha256");
        fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    /// The failed pull left no partial file, no entry in index.json, and
    /// none of `absent`.
    pub(super) fn assert_clean(&self, absent: &[&[u8]]) {
        assert_eq!(self.ingest_files(), Vec::<PathBuf>::new(), "partial files");
        assert_eq!(self.layout().list().unwrap(), vec![], "index.json entries");
        for blob in absent {
            assert!(!self.layout().has_blob(&sha(blob)), "{} stored", sha(blob));
        }
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A pull of `image` (`{addr}/app...`) from `registry`, into `root`.
pub(super) fn job(
    registry: &Registry,
    root: &TempRoot,
    image: &str,
    limit: Option<u64>,
) -> PullJob {
    let yaml = format!(
        "mirrors:\n  '{0}':\n    endpoint: ['http://{0}']\n",
        registry.addr
    );
    let config = RegistryConfig::parse(&yaml, Path::new("registries.yaml")).unwrap();
    let registries = Arc::new(Registries::new(Arc::new(config)));
    let reference = Reference::parse(image).unwrap();
    PullJob::new(image, reference, Vec::new(), registries, &root.0, limit)
}

/// `app:v1` from `registry`.
pub(super) fn job_v1(registry: &Registry, root: &TempRoot) -> PullJob {
    job(registry, root, &format!("{}/app:v1", registry.addr), None)
}

//! Images made at test time from the busybox layout: busybox:1.36 with one
//! more layer, as a new tag, its diff_id in the config as a real image
//! would have it.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Write `data` as a blob of `layout`; its digest.
pub fn put_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    fs::write(layout.join("blobs/sha256").join(&digest[7..]), data).unwrap();
    digest
}

/// A layer blob already in the layout.
pub struct Layer {
    pub digest: String,
    pub size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: String,
    pub media_type: &'static str,
}

impl Layer {
    /// `tar` gzipped into a blob of `layout`.
    pub fn gzip(layout: &Path, tar: &[u8]) -> Layer {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(tar).unwrap();
        let compressed = gz.finish().unwrap();
        Layer {
            digest: put_blob(layout, &compressed),
            size: compressed.len() as u64,
            diff_id: sha256(tar),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }
}

/// Tag `name` in `layout` as busybox:1.36 with `layer` on top.
pub fn add_image_on_busybox(layout: &Path, name: &str, layer: Layer) {
    let mut index = read_json(&layout.join("index.json"));
    let busybox = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "busybox:1.36")
        .unwrap()
        .clone();
    let blob = |digest: &Value| {
        layout
            .join("blobs/sha256")
            .join(&digest.as_str().unwrap()[7..])
    };
    let mut manifest = read_json(&blob(&busybox["digest"]));
    let mut config = read_json(&blob(&manifest["config"]["digest"]));
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(layer.diff_id));
    let config = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = json!(put_blob(layout, &config));
    manifest["config"]["size"] = json!(config.len());
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": layer.media_type,
        "digest": layer.digest,
        "size": layer.size,
    }));
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut descriptor = busybox;
    descriptor["digest"] = json!(put_blob(layout, &manifest));
    descriptor["size"] = json!(manifest.len());
    descriptor["annotations"]["org.opencontainers.image.ref.name"] = json!(name);
    index["manifests"].as_array_mut().unwrap().push(descriptor);
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
}

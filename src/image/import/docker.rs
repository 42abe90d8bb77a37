//! docker-archive (`docker save`, `podman save`, `skopeo copy
//! docker-archive:`): `manifest.json` lists each image's config member,
//! its `RepoTags` and its layer members. Each layer is stored uncompressed
//! (gunzipped if it came compressed), so its blob digest is the config's
//! `rootfs.diff_ids` entry and the blob writer verifies it as it is
//! written; an OCI manifest is made for the image (OCI rather than Docker
//! v2 media types, so that OCI tools such as umoci read the layout too) and
//! named by each of its tags.

use super::archive::{for_each_file, read_error, read_small};
use super::ImportError;
use crate::image::blobs::Blobs;
use crate::image::digest::{Algorithm, Digest};
use crate::image::index::{full_name, Descriptor};
use crate::image::layout::{Layout, MANIFEST};
use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// The media types of what is made here (image-spec `manifest.md`).
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// A compressed layer may expand this many times once past
/// [`RATIO_GRACE`] bytes: the unpacker's bound (src/image/unpack.rs),
/// applied before the layer is stored uncompressed.
const MAX_RATIO: u64 = 100;
const RATIO_GRACE: u64 = 16 * 1024 * 1024;

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Saved {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<Digest>,
}

/// An image ready to be stored: its tags, config and layers' diff_ids.
struct Planned {
    tags: Vec<String>,
    config: (Digest, Vec<u8>),
    diff_ids: Vec<Digest>,
}

/// Import every image of the docker-archive `file`; the references added.
/// `manifest` is the content of its manifest.json.
pub(super) fn import(
    layout: &Layout,
    file: &Path,
    manifest: &[u8],
) -> Result<Vec<String>, ImportError> {
    let format = |why: String| ImportError::Format {
        file: file.to_path_buf(),
        why,
    };
    let saved: Vec<Saved> =
        serde_json::from_slice(manifest).map_err(|e| format(format!("manifest.json: {e}")))?;
    let configs: BTreeMap<String, Vec<u8>> =
        read_small(file, |n| saved.iter().any(|s| s.config == n))?
            .into_iter()
            .collect();
    let mut planned = Vec::new();
    // Layer member -> the diff_id it must hash to.
    let mut layers: BTreeMap<&str, Digest> = BTreeMap::new();
    for image in &saved {
        let p = plan(file, image, &configs)?;
        for (member, diff_id) in image.layers.iter().zip(&p.diff_ids) {
            if layers
                .insert(member, diff_id.clone())
                .is_some_and(|d| d != *diff_id)
            {
                return Err(format(format!("layer {member:?} has two diff_ids")));
            }
        }
        planned.push(p);
    }
    let blobs = layout.blobs().map_err(|error| ImportError::Store {
        file: file.to_path_buf(),
        error,
    })?;
    store_layers(file, layout, &blobs, &layers)?;
    let mut refs = Vec::new();
    for p in planned {
        refs.extend(store_image(file, layout, &blobs, p)?);
    }
    Ok(refs)
}

/// Check one image of manifest.json against its config.
fn plan(
    file: &Path,
    image: &Saved,
    configs: &BTreeMap<String, Vec<u8>>,
) -> Result<Planned, ImportError> {
    let tags = match &image.repo_tags {
        Some(tags) if !tags.is_empty() => tags.clone(),
        _ => {
            return Err(ImportError::NoTag {
                file: file.to_path_buf(),
                image: image.config.clone(),
            })
        }
    };
    for tag in &tags {
        full_name(tag).map_err(|error| ImportError::Index {
            file: file.to_path_buf(),
            error,
        })?;
    }
    let bytes = configs
        .get(&image.config)
        .ok_or_else(|| missing(file, &image.config))?;
    let config: Config = serde_json::from_slice(bytes).map_err(|e| ImportError::Format {
        file: file.to_path_buf(),
        why: format!("config {}: {e}", image.config),
    })?;
    if config.rootfs.diff_ids.len() != image.layers.len() {
        return Err(ImportError::Format {
            file: file.to_path_buf(),
            why: format!(
                "config {} lists {} diff_ids for {} layers",
                image.config,
                config.rootfs.diff_ids.len(),
                image.layers.len()
            ),
        });
    }
    let digest = Digest::of(Algorithm::Sha256, bytes);
    Ok(Planned {
        tags,
        config: (digest, bytes.clone()),
        diff_ids: config.rootfs.diff_ids,
    })
}

fn missing(file: &Path, member: &str) -> ImportError {
    ImportError::MissingMember {
        file: file.to_path_buf(),
        member: member.to_string(),
    }
}

/// Stream each layer member the layout lacks into its blob, in one pass.
fn store_layers(
    file: &Path,
    layout: &Layout,
    blobs: &Blobs<'_>,
    layers: &BTreeMap<&str, Digest>,
) -> Result<(), ImportError> {
    for_each_file(file, |name, size, content| {
        let Some(diff_id) = layers.get(name) else {
            return Ok(());
        };
        if layout.has_blob(diff_id) {
            return Ok(());
        }
        let store = |error| ImportError::Layer {
            file: file.to_path_buf(),
            member: name.to_string(),
            error,
        };
        let mut content = BufReader::new(content);
        let head = content.fill_buf().map_err(|e| read_error(file, name, e))?;
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(ImportError::Format {
                file: file.to_path_buf(),
                why: format!("layer {name:?} is zstd-compressed, which is not supported"),
            });
        }
        let limit = RATIO_GRACE.max(size.saturating_mul(MAX_RATIO));
        let mut tar: Box<dyn Read> = match head.starts_with(&[0x1f, 0x8b]) {
            true => Box::new(MultiGzDecoder::new(content).take(limit + 1)),
            false => Box::new(content),
        };
        let mut writer = blobs.writer(diff_id, None).map_err(store)?;
        writer.restart().map_err(store)?;
        match io::copy(&mut tar, &mut writer) {
            Ok(n) if n <= limit => {}
            Ok(_) => {
                writer.discard().map_err(store)?;
                return Err(ImportError::TooLarge {
                    file: file.to_path_buf(),
                    member: name.to_string(),
                    max: limit,
                });
            }
            Err(e) => {
                writer.discard().map_err(store)?;
                return Err(read_error(file, name, e));
            }
        }
        writer.commit().map_err(store)
    })?;
    match layers.iter().find(|(_, d)| !layout.has_blob(d)) {
        Some((member, _)) => Err(missing(file, member)),
        None => Ok(()),
    }
}

/// Store one image's config and a manifest for it, and name it by its
/// tags; the full references.
fn store_image(
    file: &Path,
    layout: &Layout,
    blobs: &Blobs<'_>,
    image: Planned,
) -> Result<Vec<String>, ImportError> {
    let store = |error| ImportError::Store {
        file: file.to_path_buf(),
        error,
    };
    let (config_digest, config) = &image.config;
    blobs.write_whole(config_digest, config).map_err(store)?;
    let layers: Vec<_> = image
        .diff_ids
        .iter()
        .map(|d| {
            let size = std::fs::metadata(layout.blob_path(d)).map_or(0, |m| m.len());
            serde_json::json!({"mediaType": LAYER_TYPE, "digest": d, "size": size})
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config.len()},
        "layers": layers,
    })
    .to_string();
    let digest = Digest::of(Algorithm::Sha256, manifest.as_bytes());
    blobs
        .write_whole(&digest, manifest.as_bytes())
        .map_err(store)?;
    let descriptor = Descriptor {
        media_type: MANIFEST.into(),
        digest,
        size: manifest.len() as u64,
    };
    let mut refs = Vec::new();
    for tag in &image.tags {
        let index = |error| ImportError::Index {
            file: file.to_path_buf(),
            error,
        };
        layout.add_ref(tag, &descriptor).map_err(index)?;
        refs.push(full_name(tag).map_err(index)?);
    }
    Ok(refs)
}

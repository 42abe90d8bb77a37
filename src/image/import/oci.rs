//! oci-archive (`skopeo copy ... oci-archive:FILE:NAME`): a tar of an OCI
//! image layout. The named entries of its `index.json` are imported: the
//! small blobs first (indexes, manifests, configs: at most MAX_JSON bytes),
//! then the larger ones those name, each verified against the digest its
//! member name gives. Blobs nothing names are not copied, except small
//! ones, which the collector removes later (src/image/gc.rs).

use super::archive::{for_each_file, read_error};
use super::ImportError;
use crate::image::blobs::Blobs;
use crate::image::digest::Digest;
use crate::image::gc::reachable;
use crate::image::index::{full_name, Descriptor, REF_NAME};
use crate::image::layout::{Layout, MAX_JSON};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Import the named images of the oci-archive `file`; the references added.
/// `index` is the content of its index.json.
pub(super) fn import(
    layout: &Layout,
    file: &Path,
    index: &[u8],
) -> Result<Vec<String>, ImportError> {
    let index: Index = serde_json::from_slice(index).map_err(|e| ImportError::Format {
        file: file.to_path_buf(),
        why: format!("index.json: {e}"),
    })?;
    let named: Vec<(String, Descriptor)> = index
        .manifests
        .into_iter()
        .filter_map(|e| Some((e.annotations.get(REF_NAME)?.clone(), e.descriptor)))
        .collect();
    if named.is_empty() {
        return Err(ImportError::NoTag {
            file: file.to_path_buf(),
            image: "index.json".into(),
        });
    }
    let index_error = |error| ImportError::Index {
        file: file.to_path_buf(),
        error,
    };
    for (name, _) in &named {
        full_name(name).map_err(index_error)?;
    }
    let blobs = layout.blobs().map_err(|error| ImportError::Store {
        file: file.to_path_buf(),
        error,
    })?;
    copy_blobs(file, layout, &blobs, |_, size| size <= MAX_JSON)?;
    let needed = reachable(layout, named.iter().map(|(_, d)| &d.digest));
    copy_blobs(file, layout, &blobs, |d, _| needed.contains(d))?;
    let mut refs = Vec::new();
    for (name, descriptor) in &named {
        check_complete(file, layout, name, descriptor)?;
        layout.add_ref(name, descriptor).map_err(index_error)?;
        refs.push(full_name(name).map_err(index_error)?);
    }
    Ok(refs)
}

/// The digest a member `blobs/<algorithm>/<hex>` names, if it is one.
fn blob_member(name: &str) -> Option<Digest> {
    let rest = name.strip_prefix("blobs/")?;
    let (algorithm, hex) = rest.split_once('/')?;
    Digest::parse(&format!("{algorithm}:{hex}")).ok()
}

/// Copy the blob members `wanted` says yes to (by digest and size) that
/// the layout lacks, each verified.
fn copy_blobs(
    file: &Path,
    layout: &Layout,
    blobs: &Blobs<'_>,
    wanted: impl Fn(&Digest, u64) -> bool,
) -> Result<(), ImportError> {
    for_each_file(file, |name, size, content| {
        let Some(digest) = blob_member(name).filter(|d| wanted(d, size)) else {
            return Ok(());
        };
        if layout.has_blob(&digest) {
            return Ok(());
        }
        let store = |error| ImportError::Layer {
            file: file.to_path_buf(),
            member: name.to_string(),
            error,
        };
        let mut writer = blobs.writer(&digest, Some(size)).map_err(store)?;
        writer.restart().map_err(store)?;
        if let Err(e) = io::copy(content, &mut writer) {
            writer.discard().map_err(store)?;
            return Err(read_error(file, name, e));
        }
        writer.commit().map_err(store)
    })
}

/// Everything the image `name` needs on this machine is in the layout.
fn check_complete(
    file: &Path,
    layout: &Layout,
    name: &str,
    d: &Descriptor,
) -> Result<(), ImportError> {
    let incomplete = |why: String| ImportError::Incomplete {
        file: file.to_path_buf(),
        reference: name.to_string(),
        why,
    };
    let manifest = layout
        .manifest_of(&d.media_type, &d.digest)
        .map_err(|e| incomplete(e.to_string()))?;
    let needed: BTreeSet<&str> = std::iter::once(manifest.config_digest.as_str())
        .chain(manifest.layers.iter().map(|l| l.digest.as_str()))
        .collect();
    for digest in needed {
        let present = Digest::parse(digest).is_ok_and(|d| layout.has_blob(&d));
        if !present {
            return Err(incomplete(format!("blob {digest} is not in the archive")));
        }
    }
    Ok(())
}

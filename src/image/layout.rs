//! Reading an OCI image layout (image-spec `image-layout.md`): `oci-layout`,
//! `index.json`, `blobs/sha256/...`, with every blob verified against its
//! digest before use.

use super::config::ImageConfig;
use super::digest::{Digest, Hasher};
use super::platform::{self, Platform};
use super::reference::Reference;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// An OCI image manifest's media type.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// A Docker v2 schema 2 manifest's media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// An OCI image index's media type.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A Docker manifest list's media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The most bytes of index.json, a manifest or a config read into memory:
/// registries refuse manifests over 4 MiB; configs are a few KiB.
pub const MAX_JSON: u64 = 4 * 1024 * 1024;

/// A content descriptor (image-spec `descriptor.md`), as far as picolet
/// reads one: in index.json, an index, a manifest, a registry's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    /// Bytes; index.json entries written by some tools leave it out.
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// An image index or index.json (image-spec `image-index.md`).
#[derive(Debug, Deserialize)]
pub(crate) struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// Whether a layer of this media type is gzip-compressed; `None` for a
/// layer picolet cannot unpack (zstd, foreign layers).
pub(crate) fn layer_is_gzip(media_type: &str) -> Option<bool> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Some(false),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(true),
        _ => None,
    }
}

impl Index {
    /// This machine's entry (`platform.rs`), or the machine's platform.
    pub fn for_host(&self) -> Result<&Descriptor, Platform> {
        let host = platform::host();
        host.choose(
            self.manifests
                .iter()
                .filter_map(|m| Some((m.platform.as_ref()?, m))),
        )
        .ok_or(host)
    }
}

/// An image manifest (image-spec `manifest.md`).
#[derive(Debug, Deserialize)]
pub(crate) struct ManifestDoc {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A resolved image manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `sha256:...` of the manifest: the imageID.
    pub digest: String,
    /// `sha256:...` of the config blob; names the unpacked rootfs too.
    pub config_digest: String,
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
}

/// One layer blob of a manifest.
#[derive(Debug, Clone)]
pub struct Layer {
    /// `sha256:...` of the blob as stored.
    pub digest: String,
    /// The blob is gzip-compressed (`tar+gzip`), else a plain tar.
    pub gzip: bool,
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/`).
pub struct Layout {
    dir: PathBuf,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl Layout {
    /// The layout at `dir`; nothing is read until asked.
    pub fn new(dir: PathBuf) -> Layout {
        Layout { dir }
    }

    /// The layout's directory, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob of `digest` is (`blobs/<algorithm>/<hex>`): the
    /// digest is validated, so the name stays in `blobs/`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    fn parse_digest(digest: &str) -> io::Result<Digest> {
        Digest::parse(digest).map_err(|e| invalid(e.to_string()))
    }

    /// A blob's file, not yet verified: layers are hashed as they are read
    /// (src/image/unpack.rs), once.
    pub fn open_blob(&self, digest: &str) -> io::Result<File> {
        let path = self.blob_path(&Self::parse_digest(digest)?);
        File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// A small blob (index, manifest, config) whole, at most [`MAX_JSON`]
    /// bytes, verified against its digest.
    pub fn read_small_blob(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let data = read_capped(&path)?;
        let mut hasher = Hasher::new(digest.algorithm());
        hasher.update(&data);
        let actual = hasher.finish();
        if actual != *digest {
            return Err(invalid(format!(
                "blob {} has digest {actual}, expected {digest}",
                path.display()
            )));
        }
        Ok(data)
    }

    /// A JSON blob (index, manifest, config), at most [`MAX_JSON`] bytes,
    /// verified against its digest.
    fn read_json<T: for<'de> Deserialize<'de>>(&self, digest: &str) -> io::Result<T> {
        let data = self.read_small_blob(&Self::parse_digest(digest)?)?;
        serde_json::from_slice(&data).map_err(|e| invalid(format!("blob {digest}: {e}")))
    }

    /// The manifest `reference` names, if the layout has it. A missing
    /// layout is simply empty.
    pub fn resolve(&self, reference: &Reference) -> io::Result<Option<Manifest>> {
        let index_path = self.dir.join("index.json");
        let text = match read_capped(&index_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let index: Index = serde_json::from_slice(&text)
            .map_err(|e| invalid(format!("{}: {e}", index_path.display())))?;
        let found = index.manifests.into_iter().find(|d| {
            let names = [
                "org.opencontainers.image.ref.name",
                "io.containerd.image.name",
            ];
            let named = names
                .iter()
                .filter_map(|k| d.annotations.get(*k))
                .any(|n| reference.matches_name(n));
            match &reference.digest {
                Some(digest) => d.digest == *digest,
                None => named,
            }
        });
        match found {
            Some(d) => self.manifest(d, 0).map(Some),
            None => Ok(None),
        }
    }

    /// The image manifest the blob `digest` of `media_type` (a manifest or
    /// an index) gives for this machine, as [`Layout::resolve`] would.
    pub fn manifest_of(&self, media_type: &str, digest: &Digest) -> io::Result<Manifest> {
        let d = Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: 0,
            annotations: BTreeMap::new(),
            platform: None,
        };
        self.manifest(d, 0)
    }

    /// Follow a descriptor to an image manifest, choosing this machine's
    /// platform in a multi-platform index.
    fn manifest(&self, d: Descriptor, depth: u8) -> io::Result<Manifest> {
        match d.media_type.as_str() {
            INDEX | DOCKER_LIST if depth == 0 => {
                let index: Index = self.read_json(&d.digest)?;
                let chosen = index.for_host().cloned().map_err(|host| {
                    invalid(format!("index {} has no {host} manifest", d.digest))
                })?;
                self.manifest(chosen, 1)
            }
            MANIFEST | DOCKER_MANIFEST | "" => {
                let doc: ManifestDoc = self.read_json(&d.digest)?;
                let layers = doc
                    .layers
                    .iter()
                    .map(|l| {
                        let gzip = layer_is_gzip(&l.media_type).ok_or_else(|| {
                            invalid(format!(
                                "layer {}: unsupported media type {:?}",
                                l.digest, l.media_type
                            ))
                        })?;
                        Ok(Layer {
                            digest: l.digest.clone(),
                            gzip,
                        })
                    })
                    .collect::<io::Result<_>>()?;
                Ok(Manifest {
                    digest: d.digest,
                    config_digest: doc.config.digest,
                    layers,
                })
            }
            other => Err(invalid(format!(
                "{}: unsupported media type {other:?}",
                d.digest
            ))),
        }
    }

    /// The image config blob a manifest names.
    pub fn config(&self, manifest: &Manifest) -> io::Result<ImageConfig> {
        self.read_json(&manifest.config_digest)
    }
}

/// A file of at most [`MAX_JSON`] bytes, whole.
pub(crate) fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut data = Vec::new();
    file.take(MAX_JSON + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_JSON {
        return Err(invalid(format!(
            "{} is larger than {MAX_JSON} bytes",
            path.display()
        )));
    }
    Ok(data)
}

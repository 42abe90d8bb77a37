//! Pulling an image from a registry into the store, on the pull worker
//! (`worker.rs`): the manifest (this machine's entry of an index), then each
//! blob missing from the layout, streamed into a [`BlobWriter`] that hashes
//! as it writes and resumes with `Range` after a broken transfer, then the
//! reference's entry in index.json. The unpack path (`unpack.rs`) takes it
//! from there, as for an image that arrived any other way.
//!
//! Nothing is trusted before it is verified: a manifest named by digest
//! must hash to it; every blob must hash to its descriptor's digest and
//! have its size, or it is removed; sizes are bounded before anything is
//! fetched. docs/images.md tells the rules, docs/security.md the threats.

use super::blobs::{BlobError, BlobWriter, Blobs};
use super::digest::{Algorithm, Digest};
use super::index::{self, IndexError};
use super::layout::{
    layer_is_gzip, Descriptor, Index, Layout, ManifestDoc, DOCKER_LIST, DOCKER_MANIFEST, INDEX,
    MANIFEST,
};
use super::platform::Platform;
use super::reference::Reference;
use super::worker::Job;
use super::ImageError;
use crate::registry::{Credentials, Registries, RegistryError, Session};
use serde::Deserialize;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// How many times one blob's transfer is taken up again where it broke
/// before the pull fails: a flaky link gets several chances, a server that
/// keeps cutting off does not get forever.
const BLOB_ATTEMPTS: u32 = 5;

/// The most layers a manifest may list: real images have tens; the unpack
/// limits (`unpack.rs`) bound what they hold.
const MAX_LAYERS: usize = 1000;

/// The copy buffer: the pull's memory does not grow with the layer.
const COPY_BUFFER: usize = 64 * 1024;

/// One image to pull, with all the worker thread needs.
pub struct PullJob {
    /// The reference as the pod names it, for messages.
    image: String,
    reference: Reference,
    /// The pod's pull secrets' credentials, tried first.
    credentials: Vec<Credentials>,
    registries: Arc<Registries>,
    layout: Arc<Layout>,
    /// `imageUnpackLimit`: the most bytes of blobs a pull may fetch.
    limit: Option<u64>,
    root: std::path::PathBuf,
}

/// What a pull fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The digest of the reference's manifest or index.
    pub digest: String,
    /// The image's size: its config and layers as stored.
    pub bytes: u64,
    /// The store changed: a blob came or the name moved (`Always` on an
    /// unchanged tag changes nothing).
    pub changed: bool,
}

/// Why a pull failed; the container waits with `ErrImagePull` and this.
#[derive(Debug)]
pub enum PullError {
    /// The registry refused or could not be reached.
    Registry(RegistryError),
    /// A blob did not hash to its digest or had another size; removed.
    Blob(BlobError),
    /// A manifest named by digest hashed to another.
    ManifestDigest { expected: String, actual: String },
    /// A manifest or index that is not what its media type says.
    Decode {
        what: String,
        source: serde_json::Error,
    },
    /// A descriptor's digest is not one picolet can verify.
    BadDigest { digest: String },
    /// An index without an entry for this machine.
    NoPlatform { platform: Platform },
    /// A media type picolet does not run.
    MediaType { what: String, media_type: String },
    /// More layers than [`MAX_LAYERS`].
    TooManyLayers { count: usize },
    /// The blobs are larger than the space the pull may take.
    TooLarge { bytes: u64, limit: u64, why: String },
    /// A transfer broke [`BLOB_ATTEMPTS`] times.
    Interrupted { digest: String, source: io::Error },
    /// Writing the store.
    Store { what: String, source: io::Error },
    /// index.json could not name the image.
    Index(IndexError),
}

impl fmt::Display for PullError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullError::Registry(e) => e.fmt(f),
            PullError::Blob(e) => e.fmt(f),
            PullError::ManifestDigest { expected, actual } => write!(
                f,
                "manifest digest mismatch: the registry's manifest has digest {actual}, not {expected}"
            ),
            PullError::Decode { what, source } => write!(f, "{what}: {source}"),
            PullError::BadDigest { digest } => write!(f, "unsupported digest {digest:?}"),
            PullError::NoPlatform { platform } => {
                write!(f, "no matching manifest for {platform} in the manifest list entries")
            }
            PullError::MediaType { what, media_type } => {
                write!(f, "{what}: unsupported media type {media_type:?}")
            }
            PullError::TooManyLayers { count } => {
                write!(f, "the manifest lists {count} layers, more than {MAX_LAYERS}")
            }
            PullError::TooLarge { bytes, limit, why } => write!(
                f,
                "the image's blobs take {bytes} bytes, more than the {limit} bytes a pull may take ({why})"
            ),
            PullError::Interrupted { digest, source } => write!(
                f,
                "blob {digest}: the transfer broke {BLOB_ATTEMPTS} times, last: {source}"
            ),
            PullError::Store { what, source } => write!(f, "{what}: {source}"),
            PullError::Index(e) => write!(f, "adding the image to the store: {e}"),
        }
    }
}

impl std::error::Error for PullError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PullError::Registry(e) => Some(e),
            PullError::Blob(e) => Some(e),
            PullError::Index(e) => Some(e),
            PullError::Decode { source, .. } => Some(source),
            PullError::Interrupted { source, .. } | PullError::Store { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<RegistryError> for PullError {
    fn from(e: RegistryError) -> Self {
        PullError::Registry(e)
    }
}

impl From<BlobError> for PullError {
    fn from(e: BlobError) -> Self {
        PullError::Blob(e)
    }
}

impl PullJob {
    /// A pull of `reference` (as written: `image`) into the layout of
    /// `root`, which may take `limit` bytes (`imageUnpackLimit`), else half
    /// the free space.
    pub fn new(
        image: &str,
        reference: Reference,
        credentials: Vec<Credentials>,
        registries: Arc<Registries>,
        root: &std::path::Path,
        limit: Option<u64>,
    ) -> PullJob {
        PullJob {
            image: image.to_string(),
            reference,
            credentials,
            registries,
            layout: Arc::new(Layout::new(root.join("images"))),
            limit,
            root: root.to_path_buf(),
        }
    }
}

/// The pull worker: one pull per reference however many pods wait.
impl Job for PullJob {
    type Key = String;
    type Output = Result<Pulled, ImageError>;
    const THREAD: &'static str = "image-pull";

    fn key(&self) -> String {
        self.reference.full()
    }

    fn run(&self) -> Self::Output {
        self.pull().map_err(|e| ImageError {
            reason: "ErrImagePull",
            message: format!("failed to pull image {:?}: {e}", self.reference.full()),
        })
    }

    fn lost(key: &String) -> Self::Output {
        Err(ImageError {
            reason: "ErrImagePull",
            message: format!("failed to pull image {key:?}: the pull worker stopped unexpectedly"),
        })
    }
}

impl PullJob {
    /// The pull; blocks for as long as the transfers take. The store's
    /// shared GC lock is held from the first blob to the index entry, so
    /// that a collection never takes blobs written but not yet named.
    fn pull(&self) -> Result<Pulled, PullError> {
        let (registry, repository) = self.reference.registry_and_repository();
        let mut session =
            self.registries
                .session(registry, repository, self.credentials.clone())?;
        let top = self.manifest(&mut session, self.reference.tag_or_digest(), None)?;
        let manifest = match top.media_type.as_str() {
            INDEX | DOCKER_LIST => Some(self.platform_manifest(&mut session, &top)?),
            _ => None,
        };
        let doc = image_manifest(manifest.as_ref().unwrap_or(&top))?;
        let parts: Vec<&Descriptor> = std::iter::once(&doc.config).chain(&doc.layers).collect();
        self.check_size(&parts)?;
        // Only an image that passed the checks leaves anything in the store.
        let blobs = self.layout.blobs()?;
        for fetched in std::iter::once(&top).chain(&manifest) {
            blobs.write_whole(&fetched.digest, &fetched.bytes)?;
        }
        let mut changed = false;
        for part in &parts {
            changed |= self.fetch_blob(&mut session, &blobs, part)?;
        }
        let entry = index::Descriptor {
            media_type: top.media_type.clone(),
            digest: top.digest.clone(),
            size: top.bytes.len() as u64,
        };
        // `Always` asks the registry at every start: an unchanged tag
        // writes nothing (flash wear).
        let renamed = self
            .layout
            .add_ref(&self.reference.full(), &entry)
            .map_err(PullError::Index)?;
        Ok(Pulled {
            digest: top.digest.to_string(),
            bytes: parts.iter().fold(0u64, |sum, d| sum.saturating_add(d.size)),
            changed: changed || renamed,
        })
    }

    /// A manifest or index by tag or digest, verified when a digest is
    /// known (`expected`, or the reference's own).
    fn manifest(
        &self,
        session: &mut Session,
        tag_or_digest: &str,
        expected: Option<&Digest>,
    ) -> Result<Fetched, PullError> {
        let body = session.manifest(tag_or_digest)?;
        let by_digest = match expected {
            Some(d) => Some(d.clone()),
            None => self
                .reference
                .digest
                .as_deref()
                .map(parse_digest)
                .transpose()?,
        };
        let algorithm = by_digest
            .as_ref()
            .map_or(Algorithm::Sha256, Digest::algorithm);
        let actual = Digest::of(algorithm, &body.bytes);
        if let Some(expected) = by_digest {
            if actual != expected {
                return Err(PullError::ManifestDigest {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok(Fetched {
            media_type: body.media_type,
            digest: actual,
            bytes: body.bytes,
        })
    }

    /// This machine's manifest of an index.
    fn platform_manifest(
        &self,
        session: &mut Session,
        index: &Fetched,
    ) -> Result<Fetched, PullError> {
        let doc: Index = decode(index)?;
        let chosen = doc
            .for_host()
            .map_err(|platform| PullError::NoPlatform { platform })?;
        let digest = parse_digest(&chosen.digest)?;
        self.manifest(session, &chosen.digest, Some(&digest))
    }

    /// Refuse an image whose missing blobs, as the manifest gives their
    /// sizes, would take more than a pull may: the writer holds each blob
    /// to its size.
    fn check_size(&self, parts: &[&Descriptor]) -> Result<(), PullError> {
        let missing = parts
            .iter()
            .filter(|d| Digest::parse(&d.digest).map_or(true, |d| !self.layout.has_blob(&d)))
            .fold(0u64, |sum, d| sum.saturating_add(d.size));
        let (limit, why) =
            super::space_limit(self.limit, &self.root).map_err(|source| PullError::Store {
                what: format!("reading the free space of {}", self.root.display()),
                source,
            })?;
        if missing > limit {
            return Err(PullError::TooLarge {
                bytes: missing,
                limit,
                why,
            });
        }
        Ok(())
    }

    /// One blob into the layout unless it is there: streamed, hashed, and
    /// taken up again where it broke. True when it came now.
    fn fetch_blob(
        &self,
        session: &mut Session,
        blobs: &Blobs<'_>,
        d: &Descriptor,
    ) -> Result<bool, PullError> {
        let digest = parse_digest(&d.digest)?;
        if self.layout.has_blob(&digest) {
            return Ok(false);
        }
        let mut writer = blobs.writer(&digest, Some(d.size))?;
        if writer.offset() >= d.size {
            // Already whole: the agent stopped between the last write and
            // the commit. `Range: bytes=<size>-` would only get a 416.
            match writer.commit() {
                Ok(()) => return Ok(true),
                // Not the blob after all, and removed: fetch it whole.
                Err(BlobError::SizeMismatch { .. } | BlobError::DigestMismatch { .. }) => {
                    writer = blobs.writer(&digest, Some(d.size))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        for attempt in 1..=BLOB_ATTEMPTS {
            let offset = writer.offset();
            let mut body = session.blob(&d.digest, offset)?;
            if offset > 0 && !body.resumed {
                writer.restart()?;
            }
            let broke = match copy(&mut *body.reader, &mut writer) {
                Ok(Ok(())) if writer.offset() >= d.size => {
                    writer.commit()?;
                    return Ok(true);
                }
                Ok(Ok(())) => io::Error::from(io::ErrorKind::UnexpectedEof),
                Ok(Err(e)) => e,
                Err(fatal) => {
                    // The store refused (a blob longer than its
                    // descriptor, a full disk): nothing stays behind.
                    if let Err(e) = writer.discard() {
                        log::warn!("image {:?}: blob {digest}: {e}", self.image);
                    }
                    return Err(fatal);
                }
            };
            if attempt == BLOB_ATTEMPTS {
                writer.discard()?;
                return Err(PullError::Interrupted {
                    digest: digest.to_string(),
                    source: broke,
                });
            }
            log::warn!(
                "image {:?}: blob {digest}: the transfer broke at {} of {} bytes ({broke}); resuming",
                self.image,
                writer.offset(),
                d.size
            );
        }
        unreachable!("the last attempt returns")
    }
}

/// A manifest or index as fetched and verified.
#[derive(Debug, Clone)]
struct Fetched {
    media_type: String,
    digest: Digest,
    bytes: Vec<u8>,
}

fn decode<T: for<'de> Deserialize<'de>>(fetched: &Fetched) -> Result<T, PullError> {
    serde_json::from_slice(&fetched.bytes).map_err(|source| PullError::Decode {
        what: format!("manifest {}", fetched.digest),
        source,
    })
}

/// An image manifest picolet can run: its media type, its number of
/// layers and theirs checked before a blob is fetched.
fn image_manifest(fetched: &Fetched) -> Result<ManifestDoc, PullError> {
    if ![MANIFEST, DOCKER_MANIFEST].contains(&fetched.media_type.as_str()) {
        return Err(PullError::MediaType {
            what: format!("manifest {}", fetched.digest),
            media_type: fetched.media_type.clone(),
        });
    }
    let doc: ManifestDoc = decode(fetched)?;
    if doc.layers.len() > MAX_LAYERS {
        return Err(PullError::TooManyLayers {
            count: doc.layers.len(),
        });
    }
    if let Some(layer) = doc
        .layers
        .iter()
        .find(|l| layer_is_gzip(&l.media_type).is_none())
    {
        return Err(PullError::MediaType {
            what: format!("layer {}", layer.digest),
            media_type: layer.media_type.clone(),
        });
    }
    Ok(doc)
}

fn parse_digest(text: &str) -> Result<Digest, PullError> {
    Digest::parse(text).map_err(|_| PullError::BadDigest {
        digest: text.into(),
    })
}

/// Copy `from` into `to` through a fixed buffer. The outer error is the
/// writer's (the store, or a blob longer than its descriptor: fatal); the
/// inner one is the transfer's (taken up again).
fn copy(from: &mut dyn Read, to: &mut BlobWriter<'_>) -> Result<io::Result<()>, PullError> {
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(e)),
        };
        to.write_all(&buf[..n]).map_err(|source| PullError::Store {
            what: "writing a blob".into(),
            source,
        })?;
    }
}

#[cfg(test)]
mod tests;

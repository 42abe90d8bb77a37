//! Removing images from the layout: the index entries, then a mark and
//! sweep of the blobs (marked from every remaining index entry and every
//! image in use, through indexes and manifests), the unpacked trees of
//! configs nothing marks, and stale partial downloads. The caller holds
//! `gc.lock` exclusively ([`GcLock`], src/image/blobs.rs) from before it
//! reads the store until the collection is done, so no pull or import is
//! between writing its blobs and naming them, nor names a victim between
//! the plan and the removal.

use super::GcImage;
use crate::fs_remove::{remove, Mounts};
use crate::image::blobs::{remove_stale_partials, take_lock, BlobError, GC_LOCK};
use crate::image::digest::{Algorithm, Digest};
use crate::image::index::IndexError;
use crate::image::layout::Layout;
use crate::image::reference::Reference;
use crate::time::Time;
use rustix::fs::FlockOperation;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A partial download untouched this long is abandoned: a pull retries
/// within minutes (src/engine's back-off tops at 5 minutes).
pub const STALE_PARTIAL_AGE: Duration = Duration::from_secs(3600);
/// An unmarked blob younger than this stays unless a victim named it:
/// tools other than picolet (skopeo, umoci) write blobs into the layout
/// before they name them in index.json, without picolet's lock; and a
/// failed pull leaves committed but unnamed blobs its retry reuses. Not
/// shorter than [`STALE_PARTIAL_AGE`]: the committed blobs of a retried
/// pull must last as long as its partial one does.
const FRESH_BLOB_AGE: Duration = STALE_PARTIAL_AGE;
/// Index nesting followed when marking: an index of manifests is one
/// level; deeper nesting is not a real image's.
const MAX_DEPTH: u8 = 4;

/// `gc.lock` held exclusively: while it lives no pull or import writes
/// blobs or names an image (src/image/blobs.rs). Take it before reading
/// the store for a plan, and collect under it.
pub struct GcLock {
    _file: File,
}

/// `gc.lock` if no pull or import holds it now; `None` if one does (a
/// pull holds it from its first blob to its index entry, which may take an
/// hour, so a background collection comes back later rather than wait).
pub fn try_lock(layout: &Layout) -> Result<Option<GcLock>, GcError> {
    match take_lock(layout, GC_LOCK, FlockOperation::NonBlockingLockExclusive) {
        Ok(file) => Ok(Some(GcLock { _file: file })),
        Err(BlobError::Io { error, .. }) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(GcError::Lock(e)),
    }
}

/// `gc.lock`, waiting while pulls and imports write (for `picolet image
/// rm`, which an operator runs and can interrupt).
pub fn lock(layout: &Layout) -> Result<GcLock, GcError> {
    let file = take_lock(layout, GC_LOCK, FlockOperation::LockExclusive).map_err(GcError::Lock)?;
    Ok(GcLock { _file: file })
}

/// What [`collect`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freed {
    /// Bytes of blobs and partial downloads (unpacked trees not counted).
    pub bytes: u64,
    /// Index entries removed.
    pub images: usize,
    /// Blob files removed.
    pub blobs: usize,
    /// Unpacked trees removed.
    pub rootfs: usize,
}

/// Why collecting failed part way (what was removed before stays removed).
#[derive(Debug)]
pub enum GcError {
    /// The lock file.
    Lock(BlobError),
    /// index.json.
    Index(IndexError),
    /// Reading or removing a file or tree.
    Io { path: PathBuf, error: io::Error },
}

impl fmt::Display for GcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcError::Lock(e) => write!(f, "{e}"),
            GcError::Index(e) => write!(f, "{e}"),
            GcError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for GcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GcError::Lock(e) => Some(e),
            GcError::Index(e) => Some(e),
            GcError::Io { error, .. } => Some(error),
        }
    }
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> GcError + '_ {
    move |error| GcError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Blobs reachable from some roots, and which of them are configs.
#[derive(Default)]
struct Marks {
    blobs: BTreeSet<Digest>,
    configs: BTreeSet<Digest>,
}

impl Marks {
    /// Mark `digest` and what it names. A blob that is missing or not
    /// JSON names nothing (a layer, or a broken image).
    fn walk(&mut self, layout: &Layout, digest: &Digest, depth: u8) {
        if !self.blobs.insert(digest.clone()) {
            return;
        }
        let Ok(bytes) = layout.read_small_blob(digest) else {
            return;
        };
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            return;
        };
        let digest_of = |d: &Value| {
            d.get("digest")?
                .as_str()
                .and_then(|s| Digest::parse(s).ok())
        };
        if let Some(config) = doc.get("config").and_then(digest_of) {
            self.blobs.insert(config.clone());
            self.configs.insert(config);
        }
        for layer in doc
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.blobs.extend(digest_of(layer));
        }
        if depth < MAX_DEPTH {
            let children = doc.get("manifests").and_then(Value::as_array);
            for child in children.into_iter().flatten().filter_map(digest_of) {
                self.walk(layout, &child, depth + 1);
            }
        }
    }
}

/// The blobs `roots` (manifests or indexes) name, themselves included,
/// through the ones in the layout.
pub(crate) fn reachable<'a>(
    layout: &Layout,
    roots: impl IntoIterator<Item = &'a Digest>,
) -> BTreeSet<Digest> {
    let mut marks = Marks::default();
    for root in roots {
        marks.walk(layout, root, 0);
    }
    marks.blobs
}

/// The images of the layout, one per manifest digest index.json names.
/// `last_used` is the caller's, keyed by either digest of an image (its
/// entry's or its platform manifest's, [`GcImage::image_id`]): the agent's
/// map, or the CLI's reading of images-used.json (src/published.rs).
pub fn inventory(
    layout: &Layout,
    last_used: &BTreeMap<Digest, Time>,
) -> Result<Vec<GcImage>, GcError> {
    let mut by_digest: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for entry in layout.list().map_err(GcError::Index)? {
        let refs = by_digest.entry(entry.descriptor.digest).or_default();
        refs.extend(entry.name);
    }
    let mut images = Vec::with_capacity(by_digest.len());
    for (manifest, refs) in by_digest {
        let mut marks = Marks::default();
        marks.walk(layout, &manifest, 0);
        let size = marks
            .blobs
            .iter()
            .filter_map(|d| fs::symlink_metadata(layout.blob_path(d)).ok())
            .map(|m| m.len())
            .sum();
        let first_seen = fs::symlink_metadata(layout.blob_path(&manifest))
            .and_then(|m| m.modified())
            .map_or(Time(0), system_time);
        let resolved = resolve(layout, &manifest);
        let image_id = resolved
            .as_ref()
            .and_then(|m| Digest::parse(&m.digest).ok());
        let config = resolved.and_then(|m| Digest::parse(&m.config_digest).ok());
        let used = |d: &Digest| last_used.get(d).copied();
        images.push(GcImage {
            last_used: used(&manifest).max(image_id.as_ref().and_then(used)),
            manifest,
            image_id,
            config,
            refs,
            size,
            first_seen,
        });
    }
    Ok(images)
}

/// This machine's image manifest of the index entry `manifest`, as
/// [`Layout::resolve`] gives it to the runtime; `None` when it cannot be
/// read.
fn resolve(layout: &Layout, manifest: &Digest) -> Option<crate::image::layout::Manifest> {
    let by_digest = Reference {
        name: String::new(),
        tag: None,
        digest: Some(manifest.to_string()),
    };
    layout.resolve(&by_digest).ok().flatten()
}

/// The imageID the runtime records for containers of the index entry
/// `manifest`: its platform manifest's digest (see [`GcImage::image_id`]).
pub(crate) fn image_id(layout: &Layout, manifest: &Digest) -> Option<Digest> {
    Digest::parse(&resolve(layout, manifest)?.digest).ok()
}

fn system_time(t: SystemTime) -> Time {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Time(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Remove the images `victims` (manifest digests: every index entry
/// pointing to one goes), then every blob no remaining entry and no image
/// in `in_use` needs, the unpacked trees in `rootfs_dir` of configs nothing
/// needs, and partial downloads older than [`STALE_PARTIAL_AGE`]. With no
/// victims, only sweeps. `in_use` may hold either digest of an image.
/// Under `_lock`, taken before the plan was made.
pub fn collect(
    _lock: &GcLock,
    layout: &Layout,
    rootfs_dir: &Path,
    victims: &BTreeSet<Digest>,
    in_use: &BTreeSet<Digest>,
    now: SystemTime,
) -> Result<Freed, GcError> {
    let mut doomed = Marks::default();
    for v in victims.iter().filter(|v| !in_use.contains(*v)) {
        doomed.walk(layout, v, 0);
    }
    let gone: BTreeSet<Digest> = victims.difference(in_use).cloned().collect();
    let mut freed = Freed {
        images: layout.remove_digests(&gone).map_err(GcError::Index)?,
        ..Freed::default()
    };
    let mut keep = Marks::default();
    for entry in layout.list().map_err(GcError::Index)? {
        keep.walk(layout, &entry.descriptor.digest, 0);
    }
    for digest in in_use {
        keep.walk(layout, digest, 0);
    }
    sweep_blobs(layout, &keep, &doomed, now, &mut freed)?;
    sweep_rootfs(rootfs_dir, &keep, &mut freed)?;
    let dir = layout.dir().join(crate::image::blobs::INGEST_DIR);
    freed.bytes += remove_stale_partials(layout, STALE_PARTIAL_AGE, now).map_err(io_at(&dir))?;
    Ok(freed)
}

/// Remove the blobs `keep` does not mark: those `doomed` marks, and the
/// others once older than [`FRESH_BLOB_AGE`]. Names that are not digests
/// are not picolet's and stay.
fn sweep_blobs(
    layout: &Layout,
    keep: &Marks,
    doomed: &Marks,
    now: SystemTime,
    freed: &mut Freed,
) -> Result<(), GcError> {
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let dir = layout.dir().join("blobs").join(algorithm.name());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_at(&dir))?;
            let name = entry.file_name();
            let text = format!("{}:{}", algorithm.name(), name.to_string_lossy());
            let Ok(digest) = Digest::parse(&text) else {
                continue;
            };
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
            let old = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= FRESH_BLOB_AGE);
            if keep.blobs.contains(&digest) || !(old || doomed.blobs.contains(&digest)) {
                continue;
            }
            fs::remove_file(&path).map_err(io_at(&path))?;
            freed.bytes += meta.len();
            freed.blobs += 1;
        }
    }
    Ok(())
}

/// The name of the unpacked tree of an image whose config is `config`,
/// under `<root>/rootfs`: the hex of a sha256 digest (the names trees
/// always had), `sha512-<hex>` for sha512, so the two never collide and
/// no name holds a `:`.
pub fn rootfs_name(config: &Digest) -> String {
    match config.algorithm() {
        Algorithm::Sha256 => config.hex().to_string(),
        Algorithm::Sha512 => format!("sha512-{}", config.hex()),
    }
}

/// The config whose tree [`rootfs_name`] names `name`, if it names one.
fn rootfs_config(name: &str) -> Option<Digest> {
    let text = match name.strip_prefix("sha512-") {
        Some(hex) => format!("sha512:{hex}"),
        None => format!("sha256:{name}"),
    };
    Digest::parse(&text).ok()
}

/// Remove the unpacked trees whose config `keep` does not mark; unpacks in
/// progress (dot names) and other names stay. Removed by fd, not crossing
/// a mount (src/fs_remove.rs).
fn sweep_rootfs(rootfs_dir: &Path, keep: &Marks, freed: &mut Freed) -> Result<(), GcError> {
    let dir = match crate::safe_path::open_dir(rootfs_dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_at(rootfs_dir)(e)),
    };
    let kept: BTreeSet<String> = keep.configs.iter().map(rootfs_name).collect();
    let entries = fs::read_dir(rootfs_dir).map_err(io_at(rootfs_dir))?;
    for entry in entries {
        let name = entry.map_err(io_at(rootfs_dir))?.file_name();
        let Some(text) = name.to_str() else { continue };
        if rootfs_config(text).is_none() || kept.contains(text) {
            continue;
        }
        let path = rootfs_dir.join(text);
        remove(dir.as_fd(), OsStr::new(text), Mounts::Stay).map_err(io_at(&path))?;
        freed.rootfs += 1;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;

//! Unpacking an image's layers into `<root>/rootfs/<config digest>`: each
//! layer read once, its blob digest and its uncompressed digest (the
//! config's `rootfs.diff_ids`) checked, within [`Limits`], into a temporary
//! directory renamed into place only when complete. Entries never leave the
//! rootfs (see `apply`); the tar reader bounds every header (see `tar`).

pub(crate) mod apply;
pub(crate) mod tar;
pub(crate) mod tar_writer;

use super::layout::{Layer, Layout, Manifest};
use crate::safe_path;
use apply::{EntryError, LayerError};
use rustix::fs::{fchmod, mkdirat, openat, renameat, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use tar::{Archive, TarError};

/// Names of unpacks in progress in the rootfs directory.
const TMP_PREFIX: &str = ".tmp-";
/// A layer may compress better than `max_ratio` for this many bytes: small
/// layers of zeros or of one repeated file are legitimate.
const RATIO_GRACE: u64 = 16 * 1024 * 1024;

/// What one image may cost to unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of all layers together.
    pub max_bytes: u64,
    /// Entries of all layers together.
    pub max_entries: u64,
    /// Bytes of one entry's path or link target.
    pub max_name_len: usize,
    /// Uncompressed to compressed bytes of one layer, past [`RATIO_GRACE`].
    pub max_ratio: u64,
}

impl Limits {
    /// `max_bytes` with the other limits at values no real image reaches:
    /// a million entries (the largest common images have a few hundred
    /// thousand files), names of PATH_MAX bytes (the kernel resolves no
    /// longer path in one call), and 100:1 per layer (real layers compress
    /// 2-10:1; gzip's densest is about 1000:1, a bomb's ratio).
    pub fn with_max_bytes(max_bytes: u64) -> Limits {
        Limits {
            max_bytes,
            max_entries: 1_000_000,
            max_name_len: 4096,
            max_ratio: 100,
        }
    }
}

/// Why an image cannot be unpacked.
#[derive(Debug)]
pub enum UnpackError {
    /// The image config, which has the diff_ids, cannot be read.
    Config(io::Error),
    DiffIdCount {
        layers: usize,
        diff_ids: usize,
    },
    /// picolet's own directory (the rootfs dir, the temporary dir) failed.
    Dest {
        path: PathBuf,
        error: io::Error,
    },
    Blob {
        layer: String,
        error: io::Error,
    },
    /// The blob's content does not hash to its digest.
    Digest {
        layer: String,
        actual: String,
    },
    DiffId {
        layer: String,
        expected: String,
        actual: String,
    },
    Tar {
        layer: String,
        error: TarError,
    },
    Entry {
        layer: String,
        entry: String,
        error: EntryError,
    },
    TooLarge {
        layer: String,
        max: u64,
    },
    TooManyEntries {
        layer: String,
        max: u64,
    },
    Ratio {
        layer: String,
        max: u64,
    },
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnpackError::Config(e) => write!(f, "image config: {e}"),
            UnpackError::DiffIdCount { layers, diff_ids } => write!(
                f,
                "the manifest has {layers} layers but the config's rootfs.diff_ids has {diff_ids}"
            ),
            UnpackError::Dest { path, error } => write!(f, "{}: {error}", path.display()),
            UnpackError::Blob { layer, error } => write!(f, "layer {layer}: {error}"),
            UnpackError::Digest { layer, actual } => {
                write!(f, "layer {layer}: the blob's content has digest {actual}")
            }
            UnpackError::DiffId { layer, expected, actual } => write!(
                f,
                "layer {layer}: uncompressed digest {actual}, but the config's diff_id is {expected}"
            ),
            UnpackError::Tar { layer, error } => write!(f, "layer {layer}: {error}"),
            UnpackError::Entry { layer, entry, error } => {
                write!(f, "layer {layer}: entry {entry:?}: {error}")
            }
            UnpackError::TooLarge { layer, max } => write!(
                f,
                "layer {layer}: the image unpacks to more than the limit of {max} bytes"
            ),
            UnpackError::TooManyEntries { layer, max } => write!(
                f,
                "layer {layer}: the image has more than the limit of {max} entries"
            ),
            UnpackError::Ratio { layer, max } => write!(
                f,
                "layer {layer}: decompresses more than {max} times its size (a decompression bomb?)"
            ),
        }
    }
}

/// Unpack every layer of `manifest` into `dest`, atomically: a partial
/// unpack never appears at `dest`. `dest`'s parent, the rootfs directory, is
/// made 0700: nothing unpacked (setuid files included) is reachable by other
/// host users through it; containers see their image through the overlay
/// picolet mounts as root.
pub fn unpack_image(
    layout: &Layout,
    manifest: &Manifest,
    dest: &Path,
    limits: &Limits,
) -> Result<(), UnpackError> {
    let config = layout.config(manifest).map_err(UnpackError::Config)?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(UnpackError::DiffIdCount {
            layers: manifest.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let (parent_path, name) = match (dest.parent(), dest.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(dest_error(dest, Errno::INVAL.into())),
    };
    let parent = open_rootfs_dir(parent_path).map_err(|e| dest_error(parent_path, e))?;
    let tmp = tmp_name(name);
    let tmp_path = parent_path.join(&tmp);
    // 0700 until complete: a partial tree is nobody's business.
    let root = mkdirat(&parent, &tmp, Mode::from_raw_mode(0o700))
        .and_then(|()| open_dir_nofollow(parent.as_fd(), &tmp))
        .map_err(|e| dest_error(&tmp_path, e.into()))?;
    let mut budget = Budget::default();
    let result = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .try_for_each(|(layer, diff_id)| {
            unpack_layer(layout, layer, diff_id, root.as_fd(), limits, &mut budget)
        })
        .and_then(|()| finish(parent.as_fd(), root, &tmp, name).map_err(|e| dest_error(dest, e)));
    if !matches!(result, Ok(true)) {
        if let Err(e) = crate::fs_remove::remove_all(parent.as_fd(), OsStr::new(&tmp)) {
            log::warn!("removing {}: {e}", tmp_path.display());
        }
    }
    result.map(drop)
}

/// Give the complete tree its mode and its name; false if another unpack of
/// the same image got there first.
fn finish(parent: BorrowedFd<'_>, root: OwnedFd, tmp: &str, name: &OsStr) -> io::Result<bool> {
    // The image's own `/`: searchable by the container's users.
    fchmod(&root, Mode::from_raw_mode(0o755))?;
    drop(root);
    match renameat(parent, tmp, parent, name) {
        Ok(()) => Ok(true),
        Err(Errno::NOTEMPTY | Errno::EXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Remove what interrupted unpacks left in `rootfs_dir` (at start, before
/// any unpack), and make the directory 0700 if an older picolet made it
/// 0755.
pub fn clean_leftovers(rootfs_dir: &Path) {
    let dir = match open_rootfs_dir(rootfs_dir) {
        Ok(dir) => dir,
        Err(e) => return log::warn!("{}: {e}", rootfs_dir.display()),
    };
    let mut names = Vec::new();
    let read = rustix::fs::Dir::read_from(&dir).and_then(|mut entries| {
        while let Some(entry) = entries.read() {
            let name = OsStr::from_bytes(entry?.file_name().to_bytes()).to_owned();
            if name.as_bytes().starts_with(TMP_PREFIX.as_bytes()) {
                names.push(name);
            }
        }
        Ok(())
    });
    if let Err(e) = read {
        log::warn!("{}: {e}", rootfs_dir.display());
    }
    for name in names {
        match crate::fs_remove::remove_all(dir.as_fd(), &name) {
            Ok(()) => log::info!(
                "removed the interrupted unpack {}",
                rootfs_dir.join(&name).display()
            ),
            Err(e) => log::warn!("removing {}: {e}", rootfs_dir.join(&name).display()),
        }
    }
}

/// `<root>/rootfs`, made if missing, 0700.
fn open_rootfs_dir(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let fd = safe_path::open_dir(path)?;
    fchmod(&fd, Mode::from_raw_mode(0o700))?;
    Ok(fd)
}

/// A name no other unpack uses, in this process or an earlier one.
fn tmp_name(dest: &OsStr) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{TMP_PREFIX}{}-{}-{}",
        dest.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn open_dir_nofollow(parent: BorrowedFd<'_>, name: &str) -> rustix::io::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn dest_error(path: &Path, error: io::Error) -> UnpackError {
    UnpackError::Dest {
        path: path.to_path_buf(),
        error,
    }
}

/// What the image has used of its limits so far.
#[derive(Default)]
struct Budget {
    bytes: u64,
    entries: u64,
}

/// Read one layer blob once: decompress, hash both forms, apply to `root`.
fn unpack_layer(
    layout: &Layout,
    layer: &Layer,
    diff_id: &str,
    root: BorrowedFd<'_>,
    limits: &Limits,
    budget: &mut Budget,
) -> Result<(), UnpackError> {
    let blob_error = |error| UnpackError::Blob {
        layer: layer.digest.clone(),
        error,
    };
    let file = layout.open_blob(&layer.digest).map_err(blob_error)?;
    let compressed = Hashed::new(file);
    let read_compressed = compressed.count.clone();
    let decoder = match layer.gzip {
        true => Decoder::Gzip(flate2::read::MultiGzDecoder::new(compressed)),
        false => Decoder::Plain(compressed),
    };
    let metered = Metered {
        inner: Hashed::new(decoder),
        before: budget.bytes,
        compressed: read_compressed,
        limits: limits.clone(),
        hit: None,
    };
    let mut archive = Archive::new(metered, limits.max_name_len);
    let applied = apply::apply_layer(&mut archive, root, &mut budget.entries, limits.max_entries);
    let mut metered = archive.into_inner();
    // The rest of the stream (end-of-archive blocks, padding) is part of the diff_id.
    let drained = applied
        .map_err(|e| layer_error(&layer.digest, e))
        .and_then(|()| {
            io::copy(&mut metered, &mut io::sink())
                .map(drop)
                .map_err(blob_error)
        });
    if let Some(hit) = metered.hit {
        return Err(hit.error(&layer.digest));
    }
    drained?;
    budget.bytes += metered.inner.count.get();
    let (decoder, diff) = metered.inner.finish();
    let mut compressed = decoder.into_inner();
    io::copy(&mut compressed, &mut io::sink()).map_err(blob_error)?;
    let (_, actual) = compressed.finish();
    if actual != layer.digest {
        return Err(UnpackError::Digest {
            layer: layer.digest.clone(),
            actual,
        });
    }
    if diff != diff_id {
        return Err(UnpackError::DiffId {
            layer: layer.digest.clone(),
            expected: diff_id.to_string(),
            actual: diff,
        });
    }
    Ok(())
}

fn layer_error(layer: &str, e: LayerError) -> UnpackError {
    let layer = layer.to_string();
    match e {
        LayerError::Tar(error) => UnpackError::Tar { layer, error },
        LayerError::Entry { entry, error } => UnpackError::Entry {
            layer,
            entry,
            error,
        },
        LayerError::TooManyEntries { max } => UnpackError::TooManyEntries { layer, max },
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashed<R> {
    inner: R,
    hasher: Sha256,
    count: Rc<Cell<u64>>,
}

impl<R> Hashed<R> {
    fn new(inner: R) -> Hashed<R> {
        Hashed {
            inner,
            hasher: Sha256::new(),
            count: Rc::new(Cell::new(0)),
        }
    }

    /// The reader back, and the digest of what it read.
    fn finish(self) -> (R, String) {
        (self.inner, format!("sha256:{:x}", self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

enum Decoder {
    Plain(Hashed<File>),
    Gzip(flate2::read::MultiGzDecoder<Hashed<File>>),
}

impl Decoder {
    fn into_inner(self) -> Hashed<File> {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.into_inner(),
        }
    }
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
        }
    }
}

/// Which limit a layer's stream reached.
#[derive(Debug, Clone, Copy)]
enum Hit {
    Bytes(u64),
    Ratio(u64),
}

impl Hit {
    fn error(self, layer: &str) -> UnpackError {
        let layer = layer.to_string();
        match self {
            Hit::Bytes(max) => UnpackError::TooLarge { layer, max },
            Hit::Ratio(max) => UnpackError::Ratio { layer, max },
        }
    }
}

/// The uncompressed stream, cut off at the first limit it reaches; `hit`
/// says which (the error itself travels through the tar reader as I/O).
struct Metered {
    inner: Hashed<Decoder>,
    /// Bytes of the image's earlier layers.
    before: u64,
    compressed: Rc<Cell<u64>>,
    limits: Limits,
    hit: Option<Hit>,
}

impl Read for Metered {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.hit.is_some() {
            return Err(io::Error::other("a limit was reached"));
        }
        let n = self.inner.read(buf)?;
        let layer = self.inner.count.get();
        let compressed = self.compressed.get().max(1);
        if self.before.saturating_add(layer) > self.limits.max_bytes {
            self.hit = Some(Hit::Bytes(self.limits.max_bytes));
        } else if layer > RATIO_GRACE && layer / compressed > self.limits.max_ratio {
            self.hit = Some(Hit::Ratio(self.limits.max_ratio));
        }
        match self.hit {
            Some(_) => Err(io::Error::other("a limit was reached")),
            None => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tar_writer::TarBuilder;
    use super::*;
    use crate::image::reference::Reference;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    /// An OCI layout made in the test, and where to unpack it.
    struct Image {
        base: PathBuf,
        layout: Layout,
        manifest: Manifest,
    }

    impl Drop for Image {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    fn sha256(data: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(data))
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn write_blob(dir: &Path, data: &[u8]) -> String {
        let digest = sha256(data);
        fs::write(dir.join(&digest[7..]), data).unwrap();
        digest
    }

    /// `layers` (tar streams) gzipped into an image whose config says
    /// `diff_ids` (their real ones if `None`).
    fn image(tag: &str, layers: &[Vec<u8>], diff_ids: Option<Vec<String>>) -> Image {
        let base =
            std::env::temp_dir().join(format!("picolet-unpack-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let blobs = base.join("layout/blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let descriptors: Vec<_> = layers
            .iter()
            .map(|l| {
                let digest = write_blob(&blobs, &gzip(l));
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest})
            })
            .collect();
        let diff_ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| sha256(l)).collect());
        let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let config = write_blob(&blobs, config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config},
            "layers": descriptors,
        });
        let manifest = write_blob(&blobs, manifest.to_string().as_bytes());
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest,
            "annotations": {"org.opencontainers.image.ref.name": "test:1"},
        }]});
        fs::write(base.join("layout/index.json"), index.to_string()).unwrap();
        let layout = Layout::new(base.join("layout"));
        let manifest = layout
            .resolve(&Reference::parse("test:1").unwrap())
            .unwrap()
            .unwrap();
        Image {
            base,
            layout,
            manifest,
        }
    }

    impl Image {
        fn rootfs_dir(&self) -> PathBuf {
            self.base.join("rootfs")
        }

        fn dest(&self) -> PathBuf {
            self.rootfs_dir().join("abc")
        }

        fn unpack(&self, limits: &Limits) -> Result<(), UnpackError> {
            unpack_image(&self.layout, &self.manifest, &self.dest(), limits)
        }

        /// Names in the rootfs dir: the result, never a temporary left.
        fn unpacked(&self) -> Vec<String> {
            fs::read_dir(self.rootfs_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        }
    }

    fn limits() -> Limits {
        Limits::with_max_bytes(1 << 30)
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn layers_unpack_into_place() {
        let lower = TarBuilder::new()
            .dir("etc/", 0o755)
            .file("etc/a", "1")
            .file("etc/b", "2")
            .finish();
        let upper = TarBuilder::new()
            .file("etc/.wh.a", "")
            .file("etc/c", "3")
            .finish();
        let img = image("ok", &[lower, upper], None);
        img.unpack(&limits()).unwrap();
        assert_eq!(img.unpacked(), ["abc"]);
        assert_eq!(
            mode(&img.rootfs_dir()),
            0o700,
            "nothing unpacked is reachable by host users"
        );
        assert_eq!(
            mode(&img.dest()),
            0o755,
            "the image's / is searchable in the container"
        );
        let mut etc: Vec<_> = fs::read_dir(img.dest().join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        etc.sort();
        assert_eq!(etc, ["b", "c"]);
        // A second unpack of the same image finding the first one's result.
        img.unpack(&limits()).unwrap();
        assert_eq!(img.unpacked(), ["abc"]);
    }

    #[test]
    fn a_diff_id_mismatch_is_an_error_naming_the_layer() {
        let layer = TarBuilder::new().file("a", "1").finish();
        let img = image("diffid", &[layer], Some(vec![sha256(b"other")]));
        let err = img.unpack(&limits()).unwrap_err();
        match &err {
            UnpackError::DiffId {
                layer, expected, ..
            } => {
                assert_eq!(layer, &img.manifest.layers[0].digest);
                assert_eq!(expected, &sha256(b"other"));
            }
            other => panic!("{other}"),
        }
        assert!(
            err.to_string().contains(&img.manifest.layers[0].digest),
            "{err}"
        );
        assert_eq!(
            img.unpacked(),
            Vec::<String>::new(),
            "no partial unpack, no temporary"
        );
        let img = image("count", &[], Some(vec![sha256(b"x")]));
        assert!(matches!(
            img.unpack(&limits()),
            Err(UnpackError::DiffIdCount {
                layers: 0,
                diff_ids: 1
            })
        ));
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_is_an_error() {
        let layer = TarBuilder::new().file("a", "1").finish();
        let img = image("digest", &[layer], None);
        let blob = img
            .layout
            .dir()
            .join("blobs/sha256")
            .join(&img.manifest.layers[0].digest[7..]);
        let mut data = fs::read(&blob).unwrap();
        data.extend_from_slice(&gzip(b"appended member"));
        fs::write(&blob, &data).unwrap();
        match img.unpack(&limits()) {
            Err(UnpackError::Digest { layer, actual }) => {
                assert_eq!(
                    (layer, actual),
                    (img.manifest.layers[0].digest.clone(), sha256(&data))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(img.unpacked(), Vec::<String>::new());
    }

    #[test]
    fn limits_are_errors() {
        // 6144 bytes each: two headers, 8 blocks of content, 2 end blocks.
        let lower = TarBuilder::new()
            .file("a", &"x".repeat(4000))
            .file("b", "")
            .finish();
        let upper = TarBuilder::new()
            .file("c", &"y".repeat(4000))
            .file("d", "")
            .finish();
        let img = image("bytes", &[lower, upper], None);
        match img.unpack(&Limits::with_max_bytes(10_000)) {
            Err(UnpackError::TooLarge { layer, max: 10_000 }) => {
                assert_eq!(layer, img.manifest.layers[1].digest)
            }
            other => panic!("{other:?}"),
        }
        let few = Limits {
            max_entries: 3,
            ..limits()
        };
        assert!(matches!(
            img.unpack(&few),
            Err(UnpackError::TooManyEntries { max: 3, .. })
        ));
        let short = Limits {
            max_name_len: 1,
            ..limits()
        };
        assert!(matches!(img.unpack(&short), Ok(())), "one-letter names fit");
        assert_eq!(img.unpacked(), ["abc"]);
        // 32 MiB of zeros gzip to about 32 KiB: a bomb's ratio.
        let zeros = TarBuilder::new()
            .entry(b"zeros", b'0', 0o644, b"", &vec![0u8; 32 << 20])
            .finish();
        let img = image("ratio", &[zeros], None);
        assert!(matches!(
            img.unpack(&limits()),
            Err(UnpackError::Ratio { max: 100, .. })
        ));
        assert_eq!(img.unpacked(), Vec::<String>::new());
    }

    #[test]
    fn a_hostile_entry_fails_the_image_and_leaves_nothing() {
        let layer = TarBuilder::new()
            .file("ok", "1")
            .file(".wh...", "")
            .finish();
        let img = image("hostile", &[layer], None);
        let err = img.unpack(&limits()).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Entry { entry, .. } if entry == ".wh..."),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "layer {}: entry \".wh...\": a whiteout of '', '.' or '..'",
                img.manifest.layers[0].digest
            )
        );
        assert_eq!(img.unpacked(), Vec::<String>::new());
    }

    #[test]
    fn leftovers_are_removed_without_following_their_links() {
        let base = std::env::temp_dir().join(format!("picolet-leftovers-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dir = base.join("rootfs");
        fs::create_dir_all(dir.join(".tmp-abc-1-0/sub")).unwrap();
        fs::create_dir_all(dir.join("done/etc")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/keep"), "host").unwrap();
        symlink(base.join("outside"), dir.join(".tmp-abc-1-0/sub/out")).unwrap();
        symlink(base.join("outside"), dir.join(".tmp-link")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        clean_leftovers(&dir);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["done"]);
        assert_eq!(
            fs::read_to_string(base.join("outside/keep")).unwrap(),
            "host"
        );
        assert_eq!(mode(&dir), 0o700);
        fs::remove_dir_all(&base).unwrap();
    }
}

//! Writing blobs into the layout, safe while the agent and a CLI command
//! write at once. A blob is written to `ingest/<algorithm>-<hex>` (0600, in
//! a 0700 directory), hashed while written, and renamed into
//! `blobs/<algorithm>/<hex>` only once its size and digest match: a blob
//! that does not match leaves nothing behind. A partial file that an
//! interrupted download left is rehashed and continued (Range resume).
//!
//! Two locks keep writers and the collector (src/image/gc.rs) apart:
//! - each partial file is flocked by its writer, so two writers of one blob
//!   take turns and the collector skips a partial in use;
//! - `<layout>/gc.lock` is held shared by [`Blobs`] from the first blob of an
//!   image until its index entry is added, and exclusively by the
//!   collector, so blobs not yet named by index.json are never collected.

use super::digest::{Digest, Hasher};
use super::layout::Layout;
use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The directory of partial blobs in the layout.
pub const INGEST_DIR: &str = "ingest";
/// The lock file writers hold shared and the collector exclusively.
pub const GC_LOCK: &str = "gc.lock";
/// How often a writer reopens a partial file that another writer committed
/// or removed while this one waited for its lock: each retry follows a
/// completed write, so a few are plenty.
const REOPEN_TRIES: u32 = 8;

/// Why a blob could not be written.
#[derive(Debug)]
pub enum BlobError {
    /// A file or directory of the layout failed.
    Io { path: PathBuf, error: io::Error },
    /// The bytes written are not the size the descriptor gives; the
    /// partial file was removed.
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// The bytes written do not hash to the digest; the partial file was
    /// removed.
    DigestMismatch { expected: Digest, actual: Digest },
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            BlobError::SizeMismatch {
                digest,
                expected,
                actual,
            } => write!(
                f,
                "blob {digest}: {actual} bytes, but its descriptor says {expected}"
            ),
            BlobError::DigestMismatch { expected, actual } => {
                write!(f, "digest mismatch: expected {expected}, got {actual}")
            }
        }
    }
}

impl std::error::Error for BlobError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BlobError::Io { error, .. } => Some(error),
            BlobError::SizeMismatch { .. } | BlobError::DigestMismatch { .. } => None,
        }
    }
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> BlobError + '_ {
    move |error| BlobError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The right to write blobs: holds `gc.lock` shared until dropped. Take it
/// before the first blob of an image and drop it after its index entry is
/// added (src/image/index.rs), so the collector cannot remove blobs in
/// between.
pub struct Blobs<'a> {
    layout: &'a Layout,
    _lock: File,
}

impl Layout {
    /// Start writing blobs (see [`Blobs`]); makes the layout's directory
    /// if missing. Blocks while the collector runs.
    pub fn blobs(&self) -> Result<Blobs<'_>, BlobError> {
        Ok(Blobs {
            layout: self,
            _lock: take_lock(self, GC_LOCK, FlockOperation::LockShared)?,
        })
    }

    /// Whether the blob of `digest` is in the layout (not verified).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        fs::symlink_metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file())
    }
}

/// `<layout>/<name>`, a lock file, opened (made if missing) without
/// following a link; the layout directory is made if missing.
fn open_lock(layout: &Layout, name: &str) -> Result<File, BlobError> {
    make_dir(layout.dir())?;
    let path = layout.dir().join(name);
    let fd = rustix::fs::open(
        &path,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| io_at(&path)(e.into()))?;
    Ok(File::from(fd))
}

/// [`open_lock`], then flock it with `operation`.
pub(crate) fn take_lock(
    layout: &Layout,
    name: &str,
    operation: FlockOperation,
) -> Result<File, BlobError> {
    let lock = open_lock(layout, name)?;
    let path = layout.dir().join(name);
    flock(&lock, operation).map_err(|e| io_at(&path)(e.into()))?;
    Ok(lock)
}

/// A directory of the layout, made 0700 if missing (an existing one keeps
/// its mode: layouts made by skopeo are 0755).
fn make_dir(dir: &Path) -> Result<(), BlobError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_at(dir))
}

impl Blobs<'_> {
    /// A writer of the blob `digest`, continuing its partial file if one
    /// is there ([`BlobWriter::offset`]). With `expected_size`, writing
    /// past it is an error, and a longer partial file starts over. The
    /// writer borrows the guard: no blob is written without `gc.lock`.
    pub fn writer(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter<'_>, BlobError> {
        let ingest = self.layout.dir().join(INGEST_DIR);
        crate::state::create_private_dir(&ingest).map_err(io_at(&ingest))?;
        let path = ingest.join(format!("{}-{}", digest.algorithm().name(), digest.hex()));
        let file = open_partial(&path)?;
        let mut writer = BlobWriter {
            layout: self.layout,
            digest: digest.clone(),
            expected_size,
            file,
            path,
            hasher: Hasher::new(digest.algorithm()),
            written: 0,
        };
        writer.rehash()?;
        Ok(writer)
    }

    /// Write a small blob (a manifest, config or index) whole, verified
    /// against `digest`; nothing if the layout has it already.
    pub fn write_whole(&self, digest: &Digest, data: &[u8]) -> Result<(), BlobError> {
        if self.layout.has_blob(digest) {
            return Ok(());
        }
        let mut writer = self.writer(digest, Some(data.len() as u64))?;
        writer.restart()?;
        let path = writer.path.clone();
        writer.write_all(data).map_err(io_at(&path))?;
        writer.commit()
    }
}

/// Open and lock the partial file at `path`. While this writer waited for
/// the lock, the one before may have committed (renamed) or removed the
/// file: then the name is opened again, so that nothing is written into a
/// committed blob.
fn open_partial(path: &Path) -> Result<File, BlobError> {
    for _ in 0..REOPEN_TRIES {
        let fd = rustix::fs::open(
            path,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_at(path)(e.into()))?;
        let file = File::from(fd);
        flock(&file, FlockOperation::LockExclusive).map_err(|e| io_at(path)(e.into()))?;
        let held = file.metadata().map_err(io_at(path))?;
        if !held.is_file() {
            return Err(io_at(path)(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            )));
        }
        match fs::symlink_metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(file),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(path)(e)),
        }
    }
    Err(io_at(path)(io::Error::other(
        "the partial file keeps changing under other writers",
    )))
}

/// One blob being written: hashed as written, renamed into `blobs/` by
/// [`BlobWriter::commit`]. Dropped without a commit, the partial file stays
/// for a later writer to continue.
pub struct BlobWriter<'a> {
    layout: &'a Layout,
    digest: Digest,
    expected_size: Option<u64>,
    file: File,
    path: PathBuf,
    hasher: Hasher,
    written: u64,
}

impl BlobWriter<'_> {
    /// Bytes already written (a resumed download asks for the rest with
    /// `Range: bytes=<offset>-`).
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// Throw the partial content away and start at 0 (a server that
    /// ignored `Range`).
    pub fn restart(&mut self) -> Result<(), BlobError> {
        let at = io_at(&self.path);
        self.file.set_len(0).map_err(&at)?;
        self.file.rewind().map_err(&at)?;
        self.hasher = Hasher::new(self.digest.algorithm());
        self.written = 0;
        Ok(())
    }

    /// Hash what the partial file holds, leaving the position at its end;
    /// more than the expected size starts over.
    fn rehash(&mut self) -> Result<(), BlobError> {
        let len = self.file.metadata().map_err(io_at(&self.path))?.len();
        if self.expected_size.is_some_and(|max| len > max) {
            return self.restart();
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.file.read(&mut buf).map_err(io_at(&self.path))?;
            if n == 0 {
                return Ok(());
            }
            self.hasher.update(&buf[..n]);
            self.written += n as u64;
        }
    }

    /// Remove the partial file: for a failed copy that nothing will resume
    /// (an import), so that nothing is left behind.
    pub fn discard(self) -> Result<(), BlobError> {
        fs::remove_file(&self.path).map_err(io_at(&self.path))
    }

    /// Check size and digest, then move the blob into `blobs/` (fsynced);
    /// nothing to move if the layout has it already. A mismatch removes the
    /// partial file.
    pub fn commit(self) -> Result<(), BlobError> {
        let actual = self.hasher.clone().finish();
        let mismatch = match self.expected_size {
            Some(expected) if expected != self.written => Some(BlobError::SizeMismatch {
                digest: self.digest.clone(),
                expected,
                actual: self.written,
            }),
            _ if actual != self.digest => Some(BlobError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            }),
            _ => None,
        };
        let at = io_at(&self.path);
        if let Some(e) = mismatch {
            fs::remove_file(&self.path).map_err(&at)?;
            return Err(e);
        }
        if self.layout.has_blob(&self.digest) {
            return fs::remove_file(&self.path).map_err(at);
        }
        self.file.sync_all().map_err(&at)?;
        let dest = self.layout.blob_path(&self.digest);
        let dir = dest.parent().unwrap_or(self.layout.dir());
        make_dir(dir)?;
        fs::rename(&self.path, &dest).map_err(&at)?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_at(dir))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(max) = self.expected_size {
            if self.written.saturating_add(buf.len() as u64) > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {}: more than the expected {max} bytes", self.digest),
                ));
            }
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Remove the partial files in `ingest/` not written for `max_age` and not
/// held by a writer; the bytes freed. For the collector (src/image/gc.rs).
pub(crate) fn remove_stale_partials(
    layout: &Layout,
    max_age: Duration,
    now: SystemTime,
) -> io::Result<u64> {
    let dir = layout.dir().join(INGEST_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut freed = 0;
    for entry in entries {
        let path = entry?.path();
        let fd = match rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => File::from(fd),
            // A link planted there: unlinked, never followed.
            Err(_) => {
                unlink_stray(&path);
                continue;
            }
        };
        let meta = fd.metadata()?;
        if !meta.is_file() {
            unlink_stray(&path);
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= max_age);
        let free = flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok();
        if old && free {
            fs::remove_file(&path)?;
            freed += meta.len();
        }
    }
    Ok(freed)
}

/// Unlink something in `ingest/` that no writer made; what cannot be
/// unlinked (a directory) is only reported: the sweep goes on.
fn unlink_stray(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        log::warn!("{}: {e}", path.display());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::digest::Algorithm;
    use super::*;

    /// A temporary layout directory, removed on drop.
    pub(crate) struct TempLayout(pub Layout);

    impl TempLayout {
        pub(crate) fn new(tag: &str) -> TempLayout {
            let dir = std::env::temp_dir().join(format!(
                "picolet-blobs-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            TempLayout(Layout::new(dir))
        }
    }

    impl Drop for TempLayout {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(self.0.dir());
        }
    }

    fn sha(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }

    fn ingest_files(layout: &Layout) -> usize {
        fs::read_dir(layout.dir().join(INGEST_DIR)).map_or(0, |d| d.count())
    }

    #[test]
    fn a_blob_is_committed_and_read_back() {
        let t = TempLayout::new("commit");
        let data = b"layer bytes".repeat(1000);
        let blobs = t.0.blobs().unwrap();
        let mut w = blobs.writer(&sha(&data), Some(data.len() as u64)).unwrap();
        assert_eq!(w.offset(), 0);
        w.write_all(&data).unwrap();
        w.commit().unwrap();
        assert!(t.0.has_blob(&sha(&data)));
        assert_eq!(fs::read(t.0.blob_path(&sha(&data))).unwrap(), data);
        assert_eq!(ingest_files(&t.0), 0);
        // Again: the blob is there, nothing changes.
        blobs.write_whole(&sha(&data), &data).unwrap();
        let long = Digest::of(Algorithm::Sha512, b"{}");
        blobs.write_whole(&long, b"{}").unwrap();
        assert_eq!(t.0.read_small_blob(&long).unwrap(), b"{}");
    }

    #[test]
    fn an_interrupted_write_resumes_where_it_stopped() {
        let t = TempLayout::new("resume");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let blobs = t.0.blobs().unwrap();
        let mut w = blobs.writer(&sha(&data), Some(data.len() as u64)).unwrap();
        w.write_all(&data[..30_000]).unwrap();
        drop(w);
        let mut w = blobs.writer(&sha(&data), Some(data.len() as u64)).unwrap();
        assert_eq!(w.offset(), 30_000);
        w.write_all(&data[30_000..]).unwrap();
        w.commit().unwrap();
        assert_eq!(fs::read(t.0.blob_path(&sha(&data))).unwrap(), data);

        // A server that ignores Range: start over.
        let other = b"other".to_vec();
        let mut w = blobs.writer(&sha(&other), None).unwrap();
        w.write_all(b"junk").unwrap();
        w.restart().unwrap();
        w.write_all(&other).unwrap();
        w.commit().unwrap();
        assert!(t.0.has_blob(&sha(&other)));
    }

    #[test]
    fn a_mismatch_leaves_nothing_behind() {
        let t = TempLayout::new("mismatch");
        let blobs = t.0.blobs().unwrap();
        let expected = sha(b"good");
        let mut w = blobs.writer(&expected, Some(4)).unwrap();
        w.write_all(b"evil").unwrap();
        let e = w.commit().unwrap_err();
        assert!(
            matches!(&e, BlobError::DigestMismatch { expected: x, actual } if *x == expected && *actual == sha(b"evil")),
            "{e}"
        );
        assert!(!t.0.has_blob(&expected));
        assert_eq!(ingest_files(&t.0), 0);

        let mut w = blobs.writer(&expected, Some(4)).unwrap();
        let over = w.write_all(b"goodmore").unwrap_err();
        assert!(over.to_string().contains(&expected.to_string()), "{over}");
        let e = w.commit().unwrap_err();
        assert!(
            matches!(e, BlobError::SizeMismatch { expected: 4, .. }),
            "{e}"
        );
        assert_eq!(ingest_files(&t.0), 0);
        let e = blobs.write_whole(&expected, b"bad!").unwrap_err();
        assert!(matches!(e, BlobError::DigestMismatch { .. }), "{e}");
    }

    /// Whether some process waits for a flock on the file `ino`.
    fn lock_waited_on(ino: u64) -> bool {
        let locks = fs::read_to_string("/proc/locks").unwrap();
        let suffix = format!(":{ino} 0 EOF");
        locks
            .lines()
            .any(|l| l.contains("->") && l.contains("FLOCK") && l.ends_with(&suffix))
    }

    #[test]
    fn a_second_writer_of_a_blob_waits_and_never_writes_into_the_first_ones() {
        let t = TempLayout::new("two-writers");
        let data = b"the same layer".to_vec();
        let d = sha(&data);
        let blobs = t.0.blobs().unwrap();
        let mut first = blobs.writer(&d, Some(data.len() as u64)).unwrap();
        first.write_all(&data[..4]).unwrap();
        let ino = first.file.metadata().unwrap().ino();
        std::thread::scope(|s| {
            let second = s.spawn(|| {
                let blobs = t.0.blobs().unwrap();
                let mut w = blobs.writer(&d, Some(data.len() as u64)).unwrap();
                // It had to wait until the first one committed.
                assert!(t.0.has_blob(&d));
                assert_eq!(w.offset(), 0, "a new partial file, not the committed blob");
                w.write_all(&data).unwrap();
                w.commit().unwrap();
            });
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !lock_waited_on(ino) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the second writer never waited"
                );
                std::thread::yield_now();
            }
            first.write_all(&data[4..]).unwrap();
            first.commit().unwrap();
            second.join().unwrap();
        });
        assert_eq!(fs::read(t.0.blob_path(&d)).unwrap(), data);
    }

    #[test]
    fn a_link_planted_in_ingest_is_not_followed() {
        let t = TempLayout::new("link");
        let blobs = t.0.blobs().unwrap();
        let d = sha(b"x");
        let ingest = t.0.dir().join(INGEST_DIR);
        fs::create_dir_all(&ingest).unwrap();
        let victim = t.0.dir().join("victim");
        fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, ingest.join(format!("sha256-{}", d.hex()))).unwrap();
        let e = blobs.writer(&d, None).err().unwrap();
        assert!(matches!(e, BlobError::Io { .. }), "{e}");
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn stale_partials_go_and_held_ones_stay() {
        let t = TempLayout::new("stale");
        let blobs = t.0.blobs().unwrap();
        let mut held = blobs.writer(&sha(b"held"), None).unwrap();
        held.write_all(b"he").unwrap();
        let mut idle = blobs.writer(&sha(b"idle"), None).unwrap();
        idle.write_all(b"idl").unwrap();
        drop(idle);
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert_eq!(
            remove_stale_partials(&t.0, Duration::from_secs(7200), later).unwrap(),
            0
        );
        assert_eq!(
            remove_stale_partials(&t.0, Duration::from_secs(60), later).unwrap(),
            3
        );
        assert_eq!(ingest_files(&t.0), 1);
        held.write_all(b"ld").unwrap();
        held.commit().unwrap();
    }
}

//! Importing images from archives into the layout, for air-gapped devices
//! and factory flashing: docker-archive (`docker save`, `podman save`) and
//! oci-archive, plain or gzipped (`docker.rs`, `oci.rs`). Blobs stream from
//! the archive into the blob writer (src/image/blobs.rs), verified, never
//! whole in memory; members are read by name and nothing is extracted to a
//! path. An image without a name (`docker save <id>`) is refused: a name is
//! what a pod asks for, and one made up here would match nothing.
//!
//! [`import_dir`] imports the archives of a directory (as k3s's
//! `agent/images`), remembering each imported file's size and mtime in
//! `<layout>/imported.json`, so that a restart does not import it again and
//! an image removed with `picolet image rm` stays removed until its file
//! changes.

mod archive;
mod docker;
mod oci;
#[cfg(test)]
mod tests;

use super::blobs::{take_lock, BlobError};
use super::index::IndexError;
use super::layout::{read_capped, Layout};
use super::unpack::tar::TarError;
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The record of imported files in the layout.
pub const IMPORTED_FILE: &str = "imported.json";
/// Held while a directory is imported and its record updated.
const IMPORT_LOCK: &str = "import.lock";
/// The most archives one directory scan looks at: an import directory holds
/// a few images, and the record of them must stay far below MAX_JSON.
const MAX_DIR_FILES: usize = 1000;

/// Why an archive could not be imported; every variant names the file.
#[derive(Debug)]
pub enum ImportError {
    /// The file cannot be opened or read.
    Open { file: PathBuf, error: io::Error },
    /// The archive is not a tar the bounded reader accepts.
    Tar { file: PathBuf, error: TarError },
    /// A member's content cannot be read (or decompressed).
    Read {
        file: PathBuf,
        member: String,
        error: io::Error,
    },
    /// Neither a docker-archive nor an oci-archive, or one whose JSON is wrong.
    Format { file: PathBuf, why: String },
    /// A member the archive's own manifest names is not in it.
    MissingMember { file: PathBuf, member: String },
    /// A member larger than allowed (a JSON document, or a layer that
    /// expands past the ratio bound).
    TooLarge {
        file: PathBuf,
        member: String,
        max: u64,
    },
    /// An image with no name to import it under; `image` says which.
    NoTag { file: PathBuf, image: String },
    /// Writing a blob failed, or it does not match its digest.
    Layer {
        file: PathBuf,
        member: String,
        error: BlobError,
    },
    /// The layout could not be written to.
    Store { file: PathBuf, error: BlobError },
    /// A name is not a reference, or index.json could not be updated.
    Index { file: PathBuf, error: IndexError },
    /// An image the archive names lacks what this machine needs of it.
    Incomplete {
        file: PathBuf,
        reference: String,
        why: String,
    },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImportError::*;
        match self {
            Open { file, error } => write!(f, "{}: {error}", file.display()),
            Tar { file, error } => write!(f, "{}: {error}", file.display()),
            Read {
                file,
                member,
                error,
            } => write!(f, "{}: member {member:?}: {error}", file.display()),
            Format { file, why } => write!(f, "{}: {why}", file.display()),
            MissingMember { file, member } => {
                write!(f, "{}: member {member:?} is missing", file.display())
            }
            TooLarge { file, member, max } => write!(
                f,
                "{}: member {member:?} is larger than {max} bytes",
                file.display()
            ),
            NoTag { file, image } => write!(
                f,
                "{}: image {image:?} has no name (saved by ID?); save it by name:tag",
                file.display()
            ),
            Layer {
                file,
                member,
                error,
            } => write!(f, "{}: member {member:?}: {error}", file.display()),
            Store { file, error } => write!(f, "{}: {error}", file.display()),
            Index { file, error } => write!(f, "{}: {error}", file.display()),
            Incomplete {
                file,
                reference,
                why,
            } => write!(f, "{}: image {reference}: {why}", file.display()),
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        use ImportError::*;
        match self {
            Open { error, .. } | Read { error, .. } => Some(error),
            Layer { error, .. } | Store { error, .. } => Some(error),
            Index { error, .. } => Some(error),
            // TarError (src/image/unpack/tar.rs) is Display only.
            Tar { .. }
            | Format { .. }
            | MissingMember { .. }
            | TooLarge { .. }
            | NoTag { .. }
            | Incomplete { .. } => None,
        }
    }
}

/// Import the images of the archive `file` (docker-archive when it has a
/// `manifest.json`, else oci-archive); the full references now naming them.
pub fn import_archive(layout: &Layout, file: &Path) -> Result<Vec<String>, ImportError> {
    let wanted = |n: &str| n == "manifest.json" || n == "index.json";
    let found = archive::read_small(file, wanted)?;
    let last = |name: &str| found.iter().rev().find(|(n, _)| n == name);
    if let Some((_, manifest)) = last("manifest.json") {
        return docker::import(layout, file, manifest);
    }
    match last("index.json") {
        Some((_, index)) => oci::import(layout, file, index),
        None => Err(ImportError::Format {
            file: file.to_path_buf(),
            why: "neither manifest.json nor index.json: not a docker-archive or an oci-archive"
                .into(),
        }),
    }
}

/// What a file was when it was imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
}

/// What one file of [`import_dir`] gave: the references imported, or
/// `Ok(None)` when it was imported before and has not changed.
pub type DirResult = Result<Option<Vec<String>>, ImportError>;

/// Import every `*.tar`, `*.tar.gz` and `*.tgz` of `dir` (in name order,
/// at most [`MAX_DIR_FILES`]) not imported before in its present size and
/// mtime. A missing directory has nothing to import.
pub fn import_dir(layout: &Layout, dir: &Path) -> Result<Vec<(PathBuf, DirResult)>, ImportError> {
    let dir_error = |error| ImportError::Open {
        file: dir.to_path_buf(),
        error,
    };
    let files = match archives_in(dir) {
        Ok(files) => files,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(dir_error(e)),
    };
    let _lock = take_lock(layout, IMPORT_LOCK, FlockOperation::LockExclusive).map_err(|error| {
        ImportError::Store {
            file: dir.to_path_buf(),
            error,
        }
    })?;
    let record_path = layout.dir().join(IMPORTED_FILE);
    let mut record: BTreeMap<PathBuf, Stamp> = read_capped(&record_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    // Entries of files gone from this directory go: the record stays bounded.
    record.retain(|p, _| p.parent() != Some(dir) || files.contains(p));
    let mut results = Vec::with_capacity(files.len());
    for file in files {
        let result = import_if_changed(layout, &file, &mut record);
        results.push((file, result));
    }
    let bytes = serde_json::to_vec(&record).map_err(|e| ImportError::Format {
        file: record_path.clone(),
        why: e.to_string(),
    })?;
    crate::state::write_atomic(&record_path, &bytes).map_err(|error| ImportError::Open {
        file: record_path,
        error,
    })?;
    Ok(results)
}

/// The first [`MAX_DIR_FILES`] archives of `dir` in name order, whatever
/// the directory's order and however many it holds: the set imported does
/// not change with the order `readdir` gives, and at most that many names
/// are held at once.
fn archives_in(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        if !is_archive_name(&path) {
            continue;
        }
        files.insert(path);
        if files.len() > MAX_DIR_FILES {
            files.pop_last();
        }
    }
    Ok(files.into_iter().collect())
}

/// Whether `path` names an archive [`import_dir`] imports: `*.tar`,
/// `*.tar.gz`, `*.tgz`, not hidden.
pub(crate) fn is_archive_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|s| name.ends_with(s))
        && !name.starts_with('.')
}

fn import_if_changed(
    layout: &Layout,
    file: &Path,
    record: &mut BTreeMap<PathBuf, Stamp>,
) -> DirResult {
    let meta = std::fs::metadata(file).map_err(|error| ImportError::Open {
        file: file.to_path_buf(),
        error,
    })?;
    let stamp = Stamp {
        size: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    };
    if record.get(file) == Some(&stamp) {
        return Ok(None);
    }
    let refs = import_archive(layout, file)?;
    record.insert(file.to_path_buf(), stamp);
    Ok(Some(refs))
}

/// The directory scan (the archives themselves: `tests.rs`).
#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn a_full_directory_gives_the_first_names_whatever_its_order() {
        let dir = std::env::temp_dir().join(format!("picolet-import-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Made last to first: tmpfs and many file systems list the newest first.
        for i in (0..=MAX_DIR_FILES).rev() {
            std::fs::write(dir.join(format!("a{i:05}.tar")), b"").unwrap();
        }
        std::fs::write(dir.join("notes.txt"), b"").unwrap();
        std::fs::write(dir.join(".hidden.tar"), b"").unwrap();
        let files = archives_in(&dir).unwrap();
        let expected: Vec<PathBuf> = (0..MAX_DIR_FILES)
            .map(|i| dir.join(format!("a{i:05}.tar")))
            .collect();
        assert_eq!(files, expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn archive_names() {
        for yes in ["a.tar", "b.tar.gz", "c.tgz"] {
            assert!(is_archive_name(Path::new(yes)), "{yes}");
        }
        for no in [".a.tar", "a.tar.zst", "a.txt"] {
            assert!(!is_archive_name(Path::new(no)), "{no}");
        }
    }
}

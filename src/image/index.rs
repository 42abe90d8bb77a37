//! Updating the layout's `index.json`: the image names (references) and the
//! manifests they point to. Every change is a read-modify-write under an
//! exclusive flock on `<layout>/index.lock`, written atomically
//! (src/state.rs), so the agent's pulls and a CLI command never lose each
//! other's entries. Entries are annotated `org.opencontainers.image.ref.name`
//! with the full normalized reference (`docker.io/library/busybox:1.36`),
//! which [`Layout::resolve`] matches. Entries this module did not write
//! (skopeo's, umoci's) are kept as they are, whatever fields they carry.

use super::blobs::{take_lock, BlobError};
use super::digest::Digest;
use super::layout::{read_capped, Layout, MAX_JSON};
use super::reference::{Reference, ReferenceError};
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// The lock file of index.json updates.
pub const INDEX_LOCK: &str = "index.lock";
/// The annotation naming an entry, as the image-spec and skopeo write it.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's name annotation, which [`Layout::resolve`] also reads.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The `oci-layout` file a layout starts with.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// What an index entry points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// A manifest's or an index's media type (src/image/layout.rs).
    pub media_type: String,
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
}

/// One entry of index.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The reference the entry is named by, as stored; `None` for an entry
    /// with no name (kept, but found by digest only).
    pub name: Option<String>,
    pub descriptor: Descriptor,
}

/// Why index.json could not be read or changed.
#[derive(Debug)]
pub enum IndexError {
    /// The lock file.
    Lock(BlobError),
    /// Reading or writing a file of the layout.
    Io { path: PathBuf, error: io::Error },
    /// index.json is not an image index.
    Invalid { path: PathBuf, why: String },
    /// The new index.json would be larger than the readers accept.
    TooLarge { path: PathBuf, max: u64 },
    /// The name to add or remove is not an image reference.
    BadName { name: String, error: ReferenceError },
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::Lock(e) => write!(f, "{e}"),
            IndexError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            IndexError::Invalid { path, why } => write!(f, "{}: {why}", path.display()),
            IndexError::TooLarge { path, max } => write!(
                f,
                "{}: the index would be larger than {max} bytes",
                path.display()
            ),
            IndexError::BadName { name, error } => {
                write!(f, "invalid image name {name:?}: {error}")
            }
        }
    }
}

impl std::error::Error for IndexError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IndexError::Lock(e) => Some(e),
            IndexError::Io { error, .. } => Some(error),
            IndexError::BadName { error, .. } => Some(error),
            IndexError::Invalid { .. } | IndexError::TooLarge { .. } => None,
        }
    }
}

/// The full normalized form of `name` ([`Reference::full`]):
/// `docker.io/library/busybox:1.36`, `quay.io/x/y@sha256:...`,
/// `host:5000/a:1@sha256:...`.
pub fn full_name(name: &str) -> Result<String, IndexError> {
    Reference::parse(name)
        .map(|r| r.full())
        .map_err(|error| IndexError::BadName {
            name: name.to_string(),
            error,
        })
}

/// index.json as read: its other fields and its entries kept as JSON.
struct IndexDoc {
    path: PathBuf,
    top: Map<String, Value>,
    manifests: Vec<Value>,
}

impl Layout {
    /// Name `descriptor` `name` (normalized with [`full_name`]), replacing
    /// an entry of the same name; the manifest it named stays until the
    /// collector finds it unnamed (src/image/gc.rs). Makes `oci-layout` if
    /// missing. When the name already points to `descriptor` nothing is
    /// written (a pull with `Always` of an unchanged tag, an archive
    /// imported again: no flash wear); true when index.json changed.
    pub fn add_ref(&self, name: &str, descriptor: &Descriptor) -> Result<bool, IndexError> {
        let full = full_name(name)?;
        let _lock =
            take_lock(self, INDEX_LOCK, FlockOperation::LockExclusive).map_err(IndexError::Lock)?;
        let mut doc = self.read_index()?;
        let unchanged = doc.manifests.iter().any(|m| {
            entry_named(m, &full) && entry(m).is_some_and(|e| e.descriptor == *descriptor)
        });
        if unchanged {
            return Ok(false);
        }
        doc.manifests.retain(|m| !entry_named(m, &full));
        let mut entry = serde_json::to_value(descriptor).map_err(|e| IndexError::Invalid {
            path: doc.path.clone(),
            why: e.to_string(),
        })?;
        entry["annotations"] = serde_json::json!({ REF_NAME: full });
        doc.manifests.push(entry);
        self.write_index(doc).map(|()| true)
    }

    /// Remove the entry named `name`; what it pointed to, if there was one.
    pub fn remove_ref(&self, name: &str) -> Result<Option<Descriptor>, IndexError> {
        let full = full_name(name)?;
        let _lock =
            take_lock(self, INDEX_LOCK, FlockOperation::LockExclusive).map_err(IndexError::Lock)?;
        let mut doc = self.read_index()?;
        let Some(at) = doc.manifests.iter().position(|m| entry_named(m, &full)) else {
            return Ok(None);
        };
        let removed = doc.manifests.remove(at);
        self.write_index(doc)?;
        Ok(entry(&removed).map(|e| e.descriptor))
    }

    /// Remove every entry pointing to one of `digests`, whatever its name;
    /// how many went. For the collector (src/image/gc.rs).
    pub fn remove_digests(&self, digests: &BTreeSet<Digest>) -> Result<usize, IndexError> {
        let _lock =
            take_lock(self, INDEX_LOCK, FlockOperation::LockExclusive).map_err(IndexError::Lock)?;
        let mut doc = self.read_index()?;
        let before = doc.manifests.len();
        doc.manifests
            .retain(|m| !entry(m).is_some_and(|e| digests.contains(&e.descriptor.digest)));
        let removed = before - doc.manifests.len();
        if removed > 0 {
            self.write_index(doc)?;
        }
        Ok(removed)
    }

    /// The entries of index.json (none if there is none). Entries whose
    /// digest is not valid are left out: nothing can be read through them.
    pub fn list(&self) -> Result<Vec<IndexEntry>, IndexError> {
        Ok(self
            .read_index()?
            .manifests
            .iter()
            .filter_map(entry)
            .collect())
    }

    fn read_index(&self) -> Result<IndexDoc, IndexError> {
        let path = self.dir().join("index.json");
        let bytes = match read_capped(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => b"{}".to_vec(),
            Err(error) => return Err(IndexError::Io { path, error }),
        };
        let invalid = |why: String| IndexError::Invalid {
            path: path.clone(),
            why,
        };
        let mut top: Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let manifests = match top.remove("manifests") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(invalid("\"manifests\" is not a list".into())),
        };
        Ok(IndexDoc {
            path,
            top,
            manifests,
        })
    }

    /// Write `doc` back atomically, with `oci-layout` beside it.
    fn write_index(&self, doc: IndexDoc) -> Result<(), IndexError> {
        let IndexDoc {
            path,
            mut top,
            manifests,
        } = doc;
        top.entry("schemaVersion").or_insert(Value::from(2));
        top.insert("manifests".into(), Value::Array(manifests));
        let bytes = serde_json::to_vec(&top).map_err(|e| IndexError::Invalid {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if bytes.len() as u64 > MAX_JSON {
            return Err(IndexError::TooLarge {
                path,
                max: MAX_JSON,
            });
        }
        let marker = self.dir().join("oci-layout");
        if !marker.exists() {
            crate::state::write_atomic(&marker, OCI_LAYOUT).map_err(|error| IndexError::Io {
                path: marker.clone(),
                error,
            })?;
        }
        crate::state::write_atomic(&path, &bytes).map_err(|error| IndexError::Io { path, error })
    }
}

/// The name an entry carries, as stored.
fn stored_name(entry: &Value) -> Option<&str> {
    let annotations = entry.get("annotations")?;
    [REF_NAME, CONTAINERD_NAME]
        .iter()
        .find_map(|k| annotations.get(*k)?.as_str())
}

/// Whether `entry` is named `full` (a [`full_name`]) in any of the forms
/// it may be stored in (`busybox:1.36` by skopeo).
fn entry_named(entry: &Value, full: &str) -> bool {
    stored_name(entry).is_some_and(|n| full_name(n).is_ok_and(|n| n == full))
}

fn entry(value: &Value) -> Option<IndexEntry> {
    let descriptor = Descriptor::deserialize(value).ok()?;
    Some(IndexEntry {
        name: stored_name(value).map(String::from),
        descriptor,
    })
}

#[cfg(test)]
mod tests {
    use super::super::blobs::tests::TempLayout;
    use super::super::digest::Algorithm;
    use super::super::layout::MANIFEST;
    use super::*;

    fn descriptor(seed: &[u8]) -> Descriptor {
        Descriptor {
            media_type: MANIFEST.into(),
            digest: Digest::of(Algorithm::Sha256, seed),
            size: seed.len() as u64,
        }
    }

    #[test]
    fn refs_are_added_replaced_and_removed() {
        let t = TempLayout::new("index");
        let layout = &t.0;
        assert_eq!(layout.list().unwrap(), []);
        layout.add_ref("busybox:1.36", &descriptor(b"a")).unwrap();
        layout.add_ref("quay.io/x/y:2", &descriptor(b"b")).unwrap();
        layout
            .add_ref("docker.io/library/busybox:1.36", &descriptor(b"c"))
            .unwrap();
        let list = layout.list().unwrap();
        let names: Vec<_> = list.iter().map(|e| e.name.clone().unwrap()).collect();
        assert_eq!(names, ["quay.io/x/y:2", "docker.io/library/busybox:1.36"]);
        assert_eq!(list[1].descriptor, descriptor(b"c"));
        assert!(layout.dir().join("oci-layout").is_file());
        // The same name for the same descriptor writes nothing.
        let index = layout.dir().join("index.json");
        let before = std::fs::metadata(&index).unwrap().modified().unwrap();
        let again = layout.add_ref("busybox:1.36", &descriptor(b"c")).unwrap();
        assert!(!again, "nothing changed");
        assert_eq!(
            std::fs::metadata(&index).unwrap().modified().unwrap(),
            before
        );

        let removed = layout.remove_ref("busybox:1.36").unwrap();
        assert_eq!(removed, Some(descriptor(b"c")));
        assert_eq!(layout.remove_ref("busybox:1.36").unwrap(), None);
        assert_eq!(layout.list().unwrap().len(), 1);
        let e = layout.add_ref("Bad Name", &descriptor(b"d")).unwrap_err();
        assert!(matches!(e, IndexError::BadName { .. }), "{e}");
    }

    #[test]
    fn foreign_entries_and_fields_are_kept_and_resolve_finds_ours() {
        let t = TempLayout::new("foreign");
        let layout = &t.0;
        std::fs::create_dir_all(layout.dir()).unwrap();
        let theirs = descriptor(b"theirs");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "annotations": {"x": "y"},
            "manifests": [{"mediaType": MANIFEST, "digest": theirs.digest, "size": 6,
                "platform": {"os": "linux", "architecture": "arm64"},
                "annotations": {REF_NAME: "app:1"}},
                {"mediaType": MANIFEST, "digest": "sha256:short", "size": 1}]
        });
        std::fs::write(layout.dir().join("index.json"), index.to_string()).unwrap();
        layout.add_ref("app:2", &descriptor(b"ours")).unwrap();
        let text = std::fs::read_to_string(layout.dir().join("index.json")).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["annotations"]["x"], "y");
        assert_eq!(doc["manifests"][0]["platform"]["architecture"], "arm64");
        assert_eq!(doc["manifests"].as_array().unwrap().len(), 3);
        let names: Vec<_> = layout.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [Some("app:1".into()), Some("docker.io/library/app:2".into())]
        );
        // skopeo's short name is replaced by ours of the same image.
        layout.add_ref("app:1", &descriptor(b"new")).unwrap();
        assert_eq!(layout.list().unwrap().len(), 2);
        // resolve() finds the entry (it fails later, at the missing blob).
        let r = Reference::parse("app:2").unwrap();
        let e = layout.resolve(&r).unwrap_err();
        assert!(
            e.to_string().contains(descriptor(b"ours").digest.hex()),
            "{e}"
        );
    }

    #[test]
    fn concurrent_writers_lose_no_entry() {
        let t = TempLayout::new("race");
        let dir = t.0.dir().to_path_buf();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let layout = Layout::new(dir);
                    for j in 0..10 {
                        let name = format!("app{i}:{j}");
                        layout.add_ref(&name, &descriptor(name.as_bytes())).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(t.0.list().unwrap().len(), 40);
    }
}

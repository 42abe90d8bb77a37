//! Static pods from a manifest directory, read as the kubelet reads it
//!, driven by inotify: regular files not starting with '.', no
//! subdirectories, at most 10 MiB each; UID from the content, node name and
//! path; the API name `<name>-<node>`.
//!
//! Beyond the kubelet: a file that becomes invalid keeps the last good
//! version of its pods, and the error is kept to be shown on them.

use super::static_pod::{self, Origin};
use crate::pod::Pod;
use crate::time::Time;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::inotify;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The kubelet's limit on one manifest file.
const MAX_FILE_SIZE: u64 = 10 << 20;

/// What one file contributes.
#[derive(Debug, Clone, Default)]
struct FileState {
    /// The last good content's pods.
    pods: Vec<Arc<Pod>>,
    /// Hash of the last content read, good or bad: unchanged files are not
    /// decoded again.
    content: [u8; 32],
    /// Inode, size and modification time when last read: a file whose stamp
    /// did not change is not read again (a scan costs a stat per file).
    stamp: Option<(u64, u64, i64, i64)>,
    /// Why the current content is not used.
    error: Option<String>,
}

use crate::published::ManifestError;

/// Which manifests inotify said changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    /// These names in the directory.
    Files(BTreeSet<OsString>),
    /// The directory itself, or more than the event queue held.
    Everything,
}

/// The manifest directory, watched by inotify, with the pods its files hold.
pub struct ManifestDir {
    dir: PathBuf,
    node_name: String,
    inotify: OwnedFd,
    files: BTreeMap<PathBuf, FileState>,
    /// Errors that concern no single file's content (name conflicts).
    conflicts: Vec<ManifestError>,
}

impl ManifestDir {
    /// Watch `dir` (created if missing) for manifests of node `node_name`.
    pub fn open(dir: &Path, node_name: &str) -> io::Result<ManifestDir> {
        fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let inotify =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let mask = inotify::WatchFlags::CREATE
            | inotify::WatchFlags::DELETE
            | inotify::WatchFlags::CLOSE_WRITE
            | inotify::WatchFlags::MOVED_TO
            | inotify::WatchFlags::MOVED_FROM
            | inotify::WatchFlags::ATTRIB
            | inotify::WatchFlags::MODIFY;
        inotify::add_watch(&inotify, dir, mask)
            .map_err(|e| io::Error::other(format!("watching {}: {e}", dir.display())))?;
        Ok(ManifestDir {
            dir: dir.to_path_buf(),
            node_name: node_name.to_string(),
            inotify,
            files: BTreeMap::new(),
            conflicts: Vec::new(),
        })
    }

    /// The inotify fd, for the core's epoll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Consume pending inotify events: which manifests they concern, if any.
    /// Events for hidden files (an editor's or `kubectl`'s temporary file
    /// before its rename) concern none.
    fn drain_events(&mut self) -> Option<Changed> {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut names = BTreeSet::new();
        let mut everything = false;
        let mut reader = inotify::Reader::new(&self.inotify, &mut buf);
        while let Ok(event) = reader.next() {
            match event.file_name() {
                // Only an event on the directory itself, or a lost queue,
                // has no name: the directory must be read again.
                None => everything = true,
                Some(name) if name.to_bytes().starts_with(b".") => {}
                Some(name) => {
                    names.insert(OsStr::from_bytes(name.to_bytes()).to_os_string());
                }
            }
        }
        if everything {
            Some(Changed::Everything)
        } else if names.is_empty() {
            None
        } else {
            Some(Changed::Files(names))
        }
    }

    /// Take inotify's events and read again what they concern; true if
    /// any manifest may have changed.
    pub fn drain(&mut self, now: Time) -> bool {
        match self.drain_events() {
            Some(changed) => {
                self.rescan(&changed, now);
                true
            }
            None => false,
        }
    }

    /// Read what changed again; a file whose stamp did not change is not
    /// read, a content seen before is not decoded.
    fn rescan(&mut self, changed: &Changed, now: Time) {
        match changed {
            Changed::Everything => self.scan(now),
            Changed::Files(names) => {
                for name in names {
                    self.refresh(self.dir.join(name), now);
                }
            }
        }
    }

    /// Read the whole directory again.
    pub fn scan(&mut self, now: Time) {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                log::error!("manifest directory {}: {e}", self.dir.display());
                return;
            }
        };
        let names: BTreeSet<PathBuf> = entries
            .flatten()
            .filter(|e| !e.file_name().as_bytes().starts_with(b"."))
            .map(|e| e.path())
            .collect();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !names.contains(*p))
            .cloned()
            .collect();
        for path in gone.into_iter().chain(names) {
            self.refresh(path, now);
        }
    }

    /// Bring one directory entry's pods up to date: gone unless it is a
    /// regular file.
    fn refresh(&mut self, path: PathBuf, now: Time) {
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            _ => {
                if self.files.remove(&path).is_some_and(|f| !f.pods.is_empty()) {
                    log::info!("manifest {} removed", path.display());
                }
                return;
            }
        };
        let mut state = self.files.remove(&path).unwrap_or_default();
        let stamp = Some((meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()));
        if stamp != state.stamp {
            state.stamp = stamp;
            if meta.len() > MAX_FILE_SIZE {
                state.error = Some(format!("larger than {MAX_FILE_SIZE} bytes"));
            } else {
                match fs::read(&path) {
                    Ok(bytes) => self.read_file(&path, &bytes, &mut state, now),
                    Err(e) => state.error = Some(e.to_string()),
                }
            }
        }
        self.files.insert(path, state);
    }

    fn read_file(&self, path: &Path, bytes: &[u8], state: &mut FileState, now: Time) {
        let content: [u8; 32] = Sha256::digest(bytes).into();
        if content == state.content {
            return;
        }
        state.content = content;
        match self.decode(path, bytes, now) {
            Ok(pods) => {
                if state.error.take().is_some() || !state.pods.is_empty() {
                    log::info!("manifest {} changed", path.display());
                }
                state.pods = pods;
            }
            Err(fault) => {
                let message = fault.to_string();
                let keep = if state.pods.is_empty() {
                    String::new()
                } else {
                    "; the last good version keeps running".to_string()
                };
                log::error!("manifest {}: {message}{keep}", path.display());
                state.error = Some(message);
            }
        }
    }

    fn decode(
        &self,
        path: &Path,
        bytes: &[u8],
        now: Time,
    ) -> Result<Vec<Arc<Pod>>, static_pod::ManifestFault> {
        let location = path.display().to_string();
        static_pod::decode(bytes, Origin::File, &location, &self.node_name, now)
    }

    /// The pods wanted now, the later of two same-named pods ignored.
    pub fn pods(&mut self) -> Vec<Arc<Pod>> {
        let mut by_name: BTreeMap<String, (PathBuf, Arc<Pod>)> = BTreeMap::new();
        self.conflicts.clear();
        for (path, state) in &self.files {
            for pod in &state.pods {
                let name = pod.full_name();
                if let Some((first, _)) = by_name.get(&name) {
                    let message = format!(
                        "pod {name} is already defined in {}; this one is ignored",
                        first.display()
                    );
                    log::error!("manifest {}: {message}", path.display());
                    self.conflicts.push(ManifestError {
                        file: path.clone(),
                        pods: vec![],
                        message,
                    });
                    continue;
                }
                by_name.insert(name, (path.clone(), pod.clone()));
            }
        }
        by_name.into_values().map(|(_, pod)| pod).collect()
    }

    /// Every current manifest problem.
    pub fn errors(&self) -> Vec<ManifestError> {
        let per_file = self.files.iter().filter_map(|(path, state)| {
            Some(ManifestError {
                file: path.clone(),
                pods: state.pods.iter().map(|p| p.full_name()).collect(),
                message: state.error.clone()?,
            })
        });
        per_file.chain(self.conflicts.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("picolet-src-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn manifest(name: &str, image: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: {image}\n")
    }

    #[test]
    fn static_pods_are_named_and_annotated_like_the_kubelet() {
        let d = Dir::new("names");
        let mut src = ManifestDir::open(&d.0, "edge1").unwrap();
        fs::write(d.0.join("web.yaml"), manifest("web", "busybox")).unwrap();
        fs::write(d.0.join(".hidden.yaml"), manifest("hidden", "busybox")).unwrap();
        fs::create_dir(d.0.join("sub")).unwrap();
        fs::write(d.0.join("sub/x.yaml"), manifest("sub", "busybox")).unwrap();
        let changed = src.drain_events().expect("inotify saw the writes");
        let named = |n: &[&str]| n.iter().map(OsString::from).collect();
        assert_eq!(changed, Changed::Files(named(&["sub", "web.yaml"])));
        src.rescan(&changed, Time::from_secs(1));
        let pods = src.pods();
        assert_eq!(pods.len(), 1);
        let p = &pods[0];
        assert_eq!(p.metadata.name, "web-edge1");
        assert_eq!(p.metadata.namespace, "default");
        assert_eq!(p.metadata.uid.len(), 32);
        assert_eq!(
            p.metadata.annotations["kubernetes.io/config.hash"],
            p.metadata.uid
        );
        assert_eq!(
            p.metadata.annotations["kubernetes.io/config.source"],
            "file"
        );
        assert_eq!(p.spec.node_name.as_deref(), Some("edge1"));
        assert_eq!(p.spec.tolerations.as_ref().unwrap().len(), 1);
        assert_eq!(src.drain_events(), None, "no events pending after draining");
    }

    /// The images of the pods wanted after reading what the events name.
    fn follow_events(src: &mut ManifestDir, now: Time) -> Vec<String> {
        if let Some(changed) = src.drain_events() {
            src.rescan(&changed, now);
        }
        let pods = src.pods();
        pods.iter()
            .map(|p| p.spec.containers[0].image.clone())
            .collect()
    }

    #[test]
    fn events_name_the_files_to_read_again() {
        let d = Dir::new("events");
        let mut src = ManifestDir::open(&d.0, "n").unwrap();
        let (tmp, a, b) = (d.0.join(".a.tmp"), d.0.join("a.yaml"), d.0.join("b.yaml"));
        fs::write(&tmp, manifest("web", "busybox:1")).unwrap();
        assert_eq!(src.drain_events(), None, "a hidden file is no manifest");
        fs::rename(&tmp, &a).unwrap();
        assert_eq!(follow_events(&mut src, Time(1)), ["busybox:1"]);
        fs::write(&tmp, manifest("web", "busybox:2")).unwrap();
        fs::rename(&tmp, &a).unwrap();
        assert_eq!(
            follow_events(&mut src, Time(2)),
            ["busybox:2"],
            "renamed over"
        );
        fs::write(&b, manifest("other", "busybox:3")).unwrap();
        assert_eq!(follow_events(&mut src, Time(3)), ["busybox:3", "busybox:2"]);
        fs::rename(&a, d.0.join(".a.old")).unwrap();
        assert_eq!(
            follow_events(&mut src, Time(4)),
            ["busybox:3"],
            "moved away"
        );
        fs::remove_file(&b).unwrap();
        assert!(follow_events(&mut src, Time(5)).is_empty(), "deleted");
    }

    #[test]
    fn a_lost_event_queue_reads_the_whole_directory() {
        let d = Dir::new("overflow");
        let mut src = ManifestDir::open(&d.0, "n").unwrap();
        let limit: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
            .map_err(|e| e.to_string())
            .and_then(|s| s.trim().parse().map_err(|e| format!("{e}")))
            .unwrap();
        // Alternating names: inotify merges an event equal to the last one.
        for i in 0..=limit {
            fs::write(d.0.join([".x", ".y"][i % 2]), "").unwrap();
        }
        fs::write(d.0.join("a.yaml"), manifest("web", "busybox:1")).unwrap();
        // a.yaml's own event was dropped with the queue full.
        let changed = src.drain_events();
        assert_eq!(changed, Some(Changed::Everything));
        src.rescan(&Changed::Everything, Time(1));
        assert_eq!(src.pods()[0].spec.containers[0].image, "busybox:1");
    }

    #[test]
    fn content_decides_the_uid() {
        let d = Dir::new("uid");
        let mut src = ManifestDir::open(&d.0, "n").unwrap();
        fs::write(d.0.join("a.yaml"), manifest("web", "busybox:1")).unwrap();
        src.scan(Time(0));
        let first = src.pods()[0].metadata.uid.clone();
        src.scan(Time(1000));
        assert_eq!(src.pods()[0].metadata.uid, first, "same content, same pod");
        fs::write(d.0.join("a.yaml"), manifest("web", "busybox:2")).unwrap();
        src.scan(Time(2000));
        assert_ne!(
            src.pods()[0].metadata.uid,
            first,
            "changed content, new pod"
        );
        fs::write(d.0.join("a.yaml"), manifest("web", "busybox:1")).unwrap();
        src.scan(Time(3000));
        assert_eq!(
            src.pods()[0].metadata.uid,
            first,
            "identical content again, the same UID"
        );
    }

    #[test]
    fn a_broken_edit_keeps_the_last_good_version_and_reports() {
        let d = Dir::new("broken");
        let mut src = ManifestDir::open(&d.0, "n").unwrap();
        fs::write(d.0.join("a.yaml"), manifest("web", "busybox")).unwrap();
        fs::write(d.0.join("b.yaml"), manifest("other", "busybox")).unwrap();
        src.scan(Time(0));
        let before = src.pods();
        fs::write(
            d.0.join("a.yaml"),
            manifest("web", "busybox").replace("containers:", "containers: ["),
        )
        .unwrap();
        src.scan(Time(1000));
        assert_eq!(src.pods(), before, "both pods unchanged");
        let errors = src.errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, d.0.join("a.yaml"));
        assert_eq!(errors[0].pods, ["default/web-n"]);
        // An invalid field is reported by path.
        fs::write(d.0.join("a.yaml"), manifest("web", "''")).unwrap();
        src.scan(Time(2000));
        assert!(
            src.errors()[0]
                .message
                .contains("spec.containers[0].image: required"),
            "{:?}",
            src.errors()
        );
        fs::write(d.0.join("a.yaml"), manifest("web", "busybox")).unwrap();
        src.scan(Time(3000));
        assert!(src.errors().is_empty());
    }

    #[test]
    fn duplicate_names_keep_the_first_file() {
        let d = Dir::new("dup");
        let mut src = ManifestDir::open(&d.0, "n").unwrap();
        fs::write(d.0.join("a.yaml"), manifest("web", "busybox:1")).unwrap();
        fs::write(d.0.join("b.yaml"), manifest("web", "busybox:2")).unwrap();
        src.scan(Time(0));
        let pods = src.pods();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].spec.containers[0].image, "busybox:1");
        assert!(src.errors()[0].message.contains("already defined"));
    }
}

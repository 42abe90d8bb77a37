//! The run dir's status files (src/published.rs): the PodList `picolet get
//! pods` reads and the manifest errors, written when they change and only
//! then.

use crate::engine::{PodReport, Snapshot};
use crate::pod::status::{PodList, PodObject};
use crate::published::{ManifestError, ERRORS_FILE};
use crate::runtime::paths::Paths;
use crate::state::write_atomic;
use crate::time::Time;
use std::hash::{Hash, Hasher};

/// Writes the PodList and manifest errors to the run dir when they change.
/// Nothing is computed while the engine's generation and the errors stay the
/// same: the agent runs this after every wake-up.
#[derive(Default)]
pub struct StatusWriter {
    /// The PodList then the errors, serialized; kept between writes: with
    /// 50 pods it is about 100 KiB, which malloc would otherwise map, fault
    /// in and unmap at every change.
    buf: Vec<u8>,
    /// A hash of `buf` as last written.
    last: Option<u64>,
    seen: Option<(u64, Vec<ManifestError>)>,
}

impl StatusWriter {
    /// Write both files if what they would hold changed.
    pub fn write_if_changed(
        &mut self,
        paths: &Paths,
        engine: Snapshot<'_>,
        errors: &[ManifestError],
    ) {
        if self
            .seen
            .as_ref()
            .is_some_and(|(g, e)| *g == engine.generation() && e == errors)
        {
            return;
        }
        let list = PodList::new(engine.pods().map(|r| pod_object(r, errors)).collect());
        self.buf.clear();
        let serialized = serde_json::to_writer(&mut self.buf, &list);
        let split = self.buf.len();
        let serialized = serialized.and_then(|()| serde_json::to_writer(&mut self.buf, errors));
        if let Err(e) = serialized {
            log::error!("writing status: {e}");
            return;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        split.hash(&mut hasher);
        self.buf.hash(&mut hasher);
        let hash = hasher.finish();
        if self.last == Some(hash) {
            self.seen = Some((engine.generation(), errors.to_vec()));
            return;
        }
        let (list, errors_json) = self.buf.split_at(split);
        // The errors first: a reader that sees the new PodList then finds
        // the errors that go with it.
        let written = write_atomic(&paths.run.join(ERRORS_FILE), errors_json)
            .and_then(|()| write_atomic(&paths.status_file(), list));
        match written {
            Ok(()) => {
                self.last = Some(hash);
                self.seen = Some((engine.generation(), errors.to_vec()));
            }
            Err(e) => log::error!("writing status: {e}"),
        }
    }
}

/// One pod as the PodList shows it; a pod whose manifest is broken says
/// that its last good version runs.
fn pod_object(report: PodReport<'_>, errors: &[ManifestError]) -> PodObject {
    let PodReport {
        pod,
        mut status,
        deleting_since,
    } = report;
    let mut metadata = pod.metadata.clone();
    metadata.creation_timestamp = status.start_time.clone().map(serde_json::Value::String);
    metadata.deletion_timestamp = deleting_since.map(Time::rfc3339);
    let name = pod.full_name();
    if let Some(e) = errors.iter().find(|e| e.pods.contains(&name)) {
        status.message = Some(format!(
            "manifest {}: {}; running the last good version",
            e.file.display(),
            e.message
        ));
    }
    PodObject {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata,
        spec: pod.spec.clone(),
        status,
    }
}

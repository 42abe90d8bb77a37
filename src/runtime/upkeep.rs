//! The image store's upkeep from the runtime's side: the import directory
//! at start, image GC when it may be due (at start when the disk is over
//! the high threshold or a pull was interrupted; a settling time after a
//! pull that changed the store or a pod that went, so that a burst of
//! changes costs one collection and none runs beside the starts it
//! follows; and every five minutes only with `imageMaximumGCAge`), the
//! starts held back meanwhile, and when each image was last used
//! (published for `picolet images`). The work runs on the upkeep worker
//! (`src/image/upkeep.rs`); docs/images.md tells the rules.

use super::pending::{Awaited, PendingStart};
use super::Runtime;
use crate::engine::Observation;
use crate::image::blobs::INGEST_DIR;
use crate::image::digest::Digest;
use crate::image::gc::collect::Freed;
use crate::image::gc::{GcPolicy, Plan, Usage};
use crate::image::import::{is_archive_name, DirResult, ImportError};
use crate::image::index::full_name;
use crate::image::upkeep::{Collection, Upkeep, UpkeepDone, UpkeepError};
use crate::image::used::{self, LastUsed};
use crate::image::Found;
use crate::published::IMAGES_USED_FILE;
use crate::reactor::Reactor;
use crate::time::Time;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// How often image GC looks again when `imageMaximumGCAge` is set (the
/// kubelet's GC period); without it no timer runs.
const MAX_AGE_CHECK: Duration = Duration::from_secs(300);

/// How long after a pull or a change of the pods image GC waits: the
/// starts the change brings go first, and further changes join it.
const SETTLE: Duration = Duration::from_secs(10);

/// What upkeep in progress holds back.
#[derive(Debug)]
pub(super) enum Gate {
    /// An import: starts that would pull wait, as the import may bring
    /// their image.
    Import,
    /// A collection: starts of images in the store it may remove (not
    /// named by a pod it was told of) wait.
    Collect { protected: BTreeSet<String> },
}

/// The runtime's upkeep state.
#[derive(Debug, Default)]
pub(super) struct UpkeepState {
    gate: Option<Gate>,
    /// When a collection should run (once the worker is free).
    due: Option<Time>,
    /// With `imageMaximumGCAge`: when GC looks again.
    next_check: Option<Time>,
    /// When a container last started on each image (by imageID).
    last_used: LastUsed,
    /// `last_used` changed since it was published.
    unpublished: bool,
}

impl Runtime {
    /// At start: when images were last used, as the agent before this one
    /// published it (the run dir outlives an agent, not a reboot); import
    /// the import directory's new archives, then collect.
    pub fn begin_upkeep(&mut self, now: Time, reactor: &mut Reactor) {
        match used::read(&self.config.paths.run) {
            Ok(last_used) => self.upkeep.last_used = last_used,
            Err(e) => log::warn!("{IMAGES_USED_FILE}: {e}"),
        }
        let dir = self.config.images.import_dir.clone();
        let has_archives = std::fs::read_dir(&dir)
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| is_archive_name(&e.path()))));
        if has_archives {
            let layout = self.images.layout().clone();
            match self
                .upkeep_worker
                .request(Upkeep::Import { layout, dir }, reactor)
            {
                Ok(_) => self.upkeep.gate = Some(Gate::Import),
                Err(e) => log::warn!("image import: {e}"),
            }
        }
        let max_age = !self.config.images.gc_max_age.is_zero();
        if has_archives || max_age || self.store_needs_collecting() {
            self.upkeep.due = Some(now);
        }
        if max_age {
            self.upkeep.next_check = Some(now + MAX_AGE_CHECK);
        }
    }

    /// At start: is the disk over the high threshold, or did an interrupted
    /// pull leave partial files? Otherwise a collection would find nothing
    /// to do, and the agent starts without the thread and the code it
    /// would page in (the next pull or removed pod brings one).
    fn store_needs_collecting(&self) -> bool {
        let ingest = self.images.layout().dir().join(INGEST_DIR);
        let interrupted = std::fs::read_dir(ingest).is_ok_and(|mut d| d.next().is_some());
        let full = Usage::of(self.images.root()).is_ok_and(|u| {
            let used = u.capacity.saturating_sub(u.available);
            used.saturating_mul(100)
                >= u.capacity
                    .saturating_mul(self.config.images.gc_high_percent.into())
        });
        interrupted || full
    }

    /// A pull changed the store or a pod went: an image may have become
    /// unused or the disk fuller. Collect once things settle.
    pub fn images_may_be_unused(&mut self, now: Time) {
        let settled = now + SETTLE;
        self.upkeep.due = Some(self.upkeep.due.map_or(settled, |t| t.min(settled)));
    }

    /// Is a collection due at `now` and the worker free for it?
    pub fn collection_due(&self, now: Time) -> bool {
        self.upkeep.due.is_some_and(|t| t <= now) && self.upkeep.gate.is_none()
    }

    /// Collect unused images: never one that `named` names (the images of
    /// every pod the device is asked to run) or a waiting start needs, nor
    /// the tree of an image a container runs (`image_ids`).
    pub fn collect_images(
        &mut self,
        named: &[String],
        image_ids: &[String],
        now: Time,
        reactor: &mut Reactor,
    ) {
        self.upkeep.due = None;
        let protected: BTreeSet<String> = named
            .iter()
            .map(String::as_str)
            .chain(self.pending.images())
            .filter_map(|image| full_name(image).ok())
            .collect();
        let images = &self.config.images;
        let collection = Collection {
            layout: self.images.layout().clone(),
            rootfs_dir: self.images.rootfs_dir().to_path_buf(),
            root: self.images.root().to_path_buf(),
            in_use: image_ids
                .iter()
                .filter_map(|id| Digest::parse(id).ok())
                .collect(),
            protected: protected.clone(),
            last_used: self.upkeep.last_used.clone(),
            policy: GcPolicy {
                high_pct: images.gc_high_percent,
                low_pct: images.gc_low_percent,
                min_age: images.gc_min_age,
                max_age: images.gc_max_age,
            },
            now,
        };
        match self
            .upkeep_worker
            .request(Upkeep::Collect(collection), reactor)
        {
            Ok(_) => self.upkeep.gate = Some(Gate::Collect { protected }),
            Err(e) => log::warn!("image GC: {e}"),
        }
    }

    /// Should this start wait for the upkeep in progress?
    pub(super) fn held_by_upkeep(&self, image: &str, found: &Found) -> bool {
        match &self.upkeep.gate {
            None => false,
            Some(Gate::Import) => matches!(found, Found::Pull(_)),
            // An absent image is not the collection's to remove; a present
            // one it was not told of may be.
            Some(Gate::Collect { protected }) => {
                !matches!(found, Found::Pull(_))
                    && full_name(image).map_or(true, |name| !protected.contains(&name))
            }
        }
    }

    /// The upkeep worker has news: report it, and release the starts held
    /// back.
    pub(super) fn on_upkeep(&mut self, reactor: &mut Reactor) -> Vec<Observation> {
        let mut observations = Vec::new();
        for done in self.upkeep_worker.finished(reactor) {
            self.upkeep.gate = None;
            match done.output {
                UpkeepDone::Imported(result) => log_imports(result),
                // A pull holds the store: come back once it may be done.
                UpkeepDone::Collected(Err(UpkeepError::Busy)) => {
                    self.images_may_be_unused(Time::now());
                }
                UpkeepDone::Collected(result) => log_collection(result, done.took),
            }
            for PendingStart { pod, instance } in self.pending.take(&Awaited::Upkeep) {
                observations.extend(self.start_container(pod, instance, reactor));
            }
        }
        observations
    }

    /// A container started on the image of manifest `digest`.
    pub(super) fn image_used(&mut self, digest: &str, now: Time) {
        if let Ok(digest) = Digest::parse(digest) {
            self.upkeep.last_used.insert(digest, now);
            self.upkeep.unpublished = true;
        }
    }

    /// The next time upkeep has work of its own: a collection due (while
    /// the worker is free: its end wakes the core anyway), the periodic
    /// look.
    pub(super) fn upkeep_timeout(&self) -> Option<Time> {
        let due = self.upkeep.due.filter(|_| self.upkeep.gate.is_none());
        [due, self.upkeep.next_check].into_iter().flatten().min()
    }

    /// With `imageMaximumGCAge`, look again every [`MAX_AGE_CHECK`].
    pub(super) fn upkeep_handle_timeout(&mut self, now: Time) {
        if self.upkeep.next_check.is_some_and(|t| t <= now) {
            self.upkeep.due = Some(now);
            self.upkeep.next_check = Some(now + MAX_AGE_CHECK);
        }
    }

    /// Publish when each image was last used, if that changed
    /// (`published.rs`; the run dir is tmpfs, so this costs no flash).
    pub(super) fn publish_images_used(&mut self) {
        if !self.upkeep.unpublished {
            return;
        }
        self.upkeep.unpublished = false;
        if let Err(e) = used::write(&self.config.paths.run, &self.upkeep.last_used) {
            log::warn!("{IMAGES_USED_FILE}: {e}");
        }
    }
}

fn log_imports(result: Result<Vec<(PathBuf, DirResult)>, ImportError>) {
    match result {
        Err(e) => log::error!("image import: {e}"),
        Ok(files) => {
            for (file, result) in files {
                match result {
                    Ok(Some(refs)) => {
                        log::info!("image import: {}: {}", file.display(), refs.join(", "));
                    }
                    Ok(None) => {}
                    Err(e) => log::error!("image import: {e}"),
                }
            }
        }
    }
}

fn log_collection(result: Result<(Plan, Freed), UpkeepError>, took: Duration) {
    match result {
        Err(e) => log::warn!("image GC: {e}"),
        Ok((plan, freed)) => {
            // Collections are rare (at start, after changes): each says so.
            log::info!(
                "image GC: removed {} image(s), {} blob(s), {} unpacked tree(s): {} bytes in {took:.1?}",
                freed.images,
                freed.blobs,
                freed.rootfs,
                freed.bytes
            );
            if plan.shortfall > 0 {
                log::warn!(
                    "image GC: failed to free the required amount: {} bytes more than unused images hold",
                    plan.shortfall
                );
            }
        }
    }
}

//! The store's upkeep, on its own worker (`worker.rs`): importing the
//! import directory's archives at start (k3s's agent/images), and image
//! garbage collection (`gc.rs`). Both write the store while pods may start;
//! the runtime holds back the starts they could disturb until they are done
//! (`src/runtime/upkeep.rs`).

use super::digest::Digest;
use super::gc::collect::Freed;
use super::gc::{self, GcError, GcPolicy, Plan, Usage};
use super::import::{import_dir, DirResult, ImportError};
use super::layout::Layout;
use super::worker::Job;
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// One piece of upkeep.
pub enum Upkeep {
    /// Import the archives of this directory not imported before.
    Import { layout: Arc<Layout>, dir: PathBuf },
    /// Collect unused images, as the kubelet's image GC.
    Collect(Collection),
}

/// What a collection needs from the core.
pub struct Collection {
    pub layout: Arc<Layout>,
    /// `<root>/rootfs`: the unpacked trees.
    pub rootfs_dir: PathBuf,
    /// The filesystem whose use the thresholds are of: the root.
    pub root: PathBuf,
    /// Platform manifest digests (imageIDs) of the containers that exist:
    /// their blobs and trees stay even when no name points to them any
    /// more (a tag that moved under a running container).
    pub in_use: BTreeSet<Digest>,
    /// References (normalized) of every pod the device is asked to run:
    /// never collected.
    pub protected: BTreeSet<String>,
    /// When a container last started on each manifest.
    pub last_used: BTreeMap<Digest, Time>,
    pub policy: GcPolicy,
    pub now: Time,
}

/// What a piece of upkeep did.
pub enum UpkeepDone {
    /// Each archive of the directory: its references, or `None` when it
    /// was imported before.
    Imported(Result<Vec<(PathBuf, DirResult)>, ImportError>),
    /// What was planned and removed.
    Collected(Result<(Plan, Freed), UpkeepError>),
}

/// Why a collection failed.
#[derive(Debug)]
pub enum UpkeepError {
    /// The root's filesystem could not be measured.
    Usage(std::io::Error),
    /// Listing or removing.
    Gc(GcError),
    /// A pull or an import holds `gc.lock`: the collection did not start.
    Busy,
    /// The worker ended without finishing.
    Lost,
}

impl fmt::Display for UpkeepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpkeepError::Usage(e) => write!(f, "measuring the disk: {e}"),
            UpkeepError::Gc(e) => e.fmt(f),
            UpkeepError::Busy => {
                f.write_str("a pull or an import holds the store; GC comes back later")
            }
            UpkeepError::Lost => f.write_str("the image upkeep worker stopped unexpectedly"),
        }
    }
}

impl std::error::Error for UpkeepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpkeepError::Usage(e) => Some(e),
            UpkeepError::Gc(e) => Some(e),
            UpkeepError::Busy | UpkeepError::Lost => None,
        }
    }
}

/// Which kind of upkeep: one of each at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpkeepKind {
    Import,
    Collect,
}

impl Job for Upkeep {
    type Key = UpkeepKind;
    type Output = UpkeepDone;
    const THREAD: &'static str = "image-upkeep";

    fn key(&self) -> UpkeepKind {
        match self {
            Upkeep::Import { .. } => UpkeepKind::Import,
            Upkeep::Collect(_) => UpkeepKind::Collect,
        }
    }

    fn run(&self) -> UpkeepDone {
        match self {
            Upkeep::Import { layout, dir } => UpkeepDone::Imported(import_dir(layout, dir)),
            Upkeep::Collect(c) => UpkeepDone::Collected(c.run()),
        }
    }

    fn lost(key: &UpkeepKind) -> UpkeepDone {
        match key {
            UpkeepKind::Import => UpkeepDone::Imported(Ok(Vec::new())),
            UpkeepKind::Collect => UpkeepDone::Collected(Err(UpkeepError::Lost)),
        }
    }
}

impl Collection {
    /// Plan with the store and the disk as they are now, then remove,
    /// all under `gc.lock`; a pull or an import under way makes it wait
    /// for the next collection instead ([`UpkeepError::Busy`]).
    fn run(&self) -> Result<(Plan, Freed), UpkeepError> {
        let Some(lock) = gc::try_lock(&self.layout).map_err(UpkeepError::Gc)? else {
            return Err(UpkeepError::Busy);
        };
        let in_use = &self.in_use;
        let images = gc::inventory(&self.layout, &self.last_used).map_err(UpkeepError::Gc)?;
        let usage = Usage::of(&self.root).map_err(UpkeepError::Usage)?;
        let plan = gc::plan(
            &images,
            in_use,
            &self.protected,
            usage,
            &self.policy,
            self.now,
        );
        let victims: BTreeSet<Digest> = plan.victims.iter().map(|v| v.manifest.clone()).collect();
        let freed = gc::collect(
            &lock,
            &self.layout,
            &self.rootfs_dir,
            &victims,
            in_use,
            std::time::SystemTime::now(),
        )
        .map_err(UpkeepError::Gc)?;
        Ok((plan, freed))
    }
}

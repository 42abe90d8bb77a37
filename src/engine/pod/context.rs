//! What a pod's methods work with besides the pod itself ([`Cx`]): the time,
//! the engine's output queues, the back-offs, and the handler runs in flight
//! ([`Runs`]), each run owned by one container instance and purpose.

use super::PodEvent;
use crate::engine::backoff::CrashLoopBackoff;
use crate::engine::probe::ProbeKind;
use crate::engine::Action;
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};

/// Why the engine asked the runtime to run a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Probe(ProbeKind),
    PostStart,
    PreStop,
}

/// Whose a handler run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOwner {
    pub pod_uid: String,
    pub container: String,
    pub attempt: u32,
    pub purpose: Purpose,
}

/// Handler runs in flight, by id.
#[derive(Debug, Default)]
pub struct Runs {
    next: u64,
    open: BTreeMap<u64, RunOwner>,
}

impl Runs {
    pub(super) fn launch(&mut self, owner: RunOwner) -> u64 {
        self.next += 1;
        self.open.insert(self.next, owner);
        self.next
    }

    pub fn take(&mut self, run: u64) -> Option<RunOwner> {
        self.open.remove(&run)
    }
}

/// What `sync` needs besides the pod: the time, the output queue, back-offs,
/// handler runs.
pub struct Cx<'a> {
    pub now: Time,
    pub actions: &'a mut VecDeque<Action>,
    pub events: &'a mut VecDeque<PodEvent>,
    pub crash_backoff: &'a mut CrashLoopBackoff,
    pub start_backoff: &'a mut CrashLoopBackoff,
    pub runs: &'a mut Runs,
}

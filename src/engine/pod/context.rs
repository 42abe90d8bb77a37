//! What a pod's methods work with besides the pod itself ([`Cx`]): the time,
//! the engine's output queues, the back-offs, and the handler runs in flight
//! ([`Runs`]), each run owned by one container instance and purpose, and
//! how a run fails ([`HandlerError`]).

use super::PodEvent;
use crate::engine::backoff::CrashLoopBackoff;
use crate::engine::image::PullBackoff;
use crate::engine::probe::ProbeKind;
use crate::engine::Action;
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

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
    /// The instance the run belongs to: an answer for an older one is stale.
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
    /// A new run of `owner`, by a fresh id.
    pub(super) fn launch(&mut self, owner: RunOwner) -> u64 {
        self.next += 1;
        self.open.insert(self.next, owner);
        self.next
    }

    /// The owner of a run that ended or is abandoned; `None` for a run
    /// already taken (cancelled, or answered before).
    pub fn take(&mut self, run: u64) -> Option<RunOwner> {
        self.open.remove(&run)
    }
}

/// What `sync` needs besides the pod: the time, the output queue, back-offs,
/// handler runs.
pub struct Cx<'a> {
    pub now: Time,
    /// The engine's queue of actions for the shell.
    pub actions: &'a mut VecDeque<Action>,
    /// The engine's queue of events for users.
    pub events: &'a mut VecDeque<PodEvent>,
    /// The back-off of restarts after exits.
    pub crash_backoff: &'a mut CrashLoopBackoff,
    /// The back-off of retries after failed starts and sandboxes.
    pub start_backoff: &'a mut CrashLoopBackoff,
    /// The ImagePullBackOff of failed pulls, by pod and image.
    pub pull_backoff: &'a mut PullBackoff,
    pub runs: &'a mut Runs,
}

/// A handler run that did not succeed: which handler it was, and the
/// runtime's account of what went wrong. Its `Display` is the message of the
/// kubelet's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// A probe attempt failed or could not run.
    Probe { kind: ProbeKind, message: String },
    /// The postStart hook failed: the container is stopped.
    PostStart { message: String },
    /// The preStop hook failed: the stop goes on.
    PreStop { message: String },
}

impl HandlerError {
    /// The failure of a run for `purpose`, as the runtime reported it.
    pub fn new(purpose: Purpose, message: String) -> Self {
        match purpose {
            Purpose::Probe(kind) => HandlerError::Probe { kind, message },
            Purpose::PostStart => HandlerError::PostStart { message },
            Purpose::PreStop => HandlerError::PreStop { message },
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Probe { kind, message } => {
                let mut kind_name = kind.name().to_string();
                kind_name[..1].make_ascii_uppercase();
                write!(f, "{kind_name} probe failed: {message}")
            }
            HandlerError::PostStart { message } => write!(f, "PostStartHook failed: {message}"),
            HandlerError::PreStop { message } => write!(f, "PreStopHook failed: {message}"),
        }
    }
}

impl std::error::Error for HandlerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_the_error_of_its_purpose() {
        let error = |purpose| HandlerError::new(purpose, "exit 1".into());
        assert_eq!(
            error(Purpose::Probe(ProbeKind::Liveness)),
            HandlerError::Probe {
                kind: ProbeKind::Liveness,
                message: "exit 1".into()
            }
        );
        assert!(matches!(
            error(Purpose::PostStart),
            HandlerError::PostStart { .. }
        ));
        assert!(matches!(
            error(Purpose::PreStop),
            HandlerError::PreStop { .. }
        ));
    }

    #[test]
    fn its_text_is_the_kubelets_event_message() {
        let text = |purpose| HandlerError::new(purpose, "exit 1".into()).to_string();
        assert_eq!(
            text(Purpose::Probe(ProbeKind::Readiness)),
            "Readiness probe failed: exit 1"
        );
        assert_eq!(text(Purpose::PostStart), "PostStartHook failed: exit 1");
        assert_eq!(text(Purpose::PreStop), "PreStopHook failed: exit 1");
    }
}

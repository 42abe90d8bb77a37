//! Which container starts next: init containers and sidecars in spec order,
//! then regular containers one at a time, restarts under the restart policy
//! and the CrashLoopBackOff.

use super::events::Warning;
use super::{Cx, PodMachine, StopCause};
use crate::engine::backoff::{go_duration, BackoffKey};
use crate::engine::container::{ContainerMachine, Hook, Role, State, Waiting};
use crate::engine::Action;
use crate::pod::status::PodPhase;
use crate::pod::RestartPolicy;

impl PodMachine {
    /// Drive init containers and sidecars in spec order:
    /// the next starts when a plain one exited 0 or a sidecar is started.
    /// True once all are through.
    pub(super) fn sync_init(&mut self, cx: &mut Cx) -> bool {
        let policy = self.policy();
        for i in 0..self.containers.len() {
            let c = &self.containers[i];
            match (c.role(), c.state()) {
                (Role::Regular, _) => continue,
                (Role::Init, State::Exited { finished, .. }) if finished.succeeded() => continue,
                (Role::Sidecar, State::Running(r)) if r.start_complete() => continue,
                (_, State::Starting { .. } | State::Running(_)) => return false,
                (Role::Init, State::Exited { .. }) if policy == RestartPolicy::Never => {
                    self.begin_stop(StopCause::Completed(PodPhase::Failed), cx);
                    return false;
                }
                (_, State::Exited { .. }) => {
                    self.restart_or_back_off(i, cx);
                    return false;
                }
                (_, State::Waiting(w)) => {
                    if w.due(cx.now) {
                        self.start(i, cx);
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Once initialized: keep sidecars running whatever the policy,
    /// start or restart regular containers one at a time, each start
    /// including its postStart hook, then see whether the
    /// pod completed; sidecars never keep it alive.
    pub(super) fn sync_regular(&mut self, cx: &mut Cx) {
        for i in 0..self.containers.len() {
            if self.containers[i].role() != Role::Sidecar {
                continue;
            }
            match self.containers[i].state() {
                State::Exited { .. } => self.restart_or_back_off(i, cx),
                State::Waiting(w) if w.due(cx.now) => {
                    self.start(i, cx);
                }
                _ => {}
            }
        }
        if let Some(blocking) = self.start_next_regular(cx) {
            // The containers after it wait for its start; a due timer of
            // theirs would wake the engine for nothing until it is answered,
            // which syncs the pod again.
            let later = self.containers.iter_mut().skip(blocking + 1);
            for c in later.filter(|c| c.role() == Role::Regular) {
                c.park(cx.now);
            }
        }
        if let Some(phase) = self.completed_phase() {
            self.begin_stop(StopCause::Completed(phase), cx);
        }
    }

    /// Start or restart the first regular container that is due, in spec
    /// order; the index of the one whose start is in progress, if any.
    fn start_next_regular(&mut self, cx: &mut Cx) -> Option<usize> {
        let policy = self.policy();
        for i in 0..self.containers.len() {
            if self.containers[i].role() != Role::Regular {
                continue;
            }
            let blocking = match self.containers[i].state() {
                State::Starting { .. } => true,
                State::Running(r) => r.post_start != Hook::Done,
                // A start held by its image's back-off blocks nothing.
                State::Waiting(w) => w.due(cx.now) && self.start(i, cx),
                State::Exited { finished, .. } => {
                    let restart = match policy {
                        RestartPolicy::Always => true,
                        RestartPolicy::OnFailure => !finished.succeeded(),
                        RestartPolicy::Never => false,
                    };
                    if restart {
                        self.restart_or_back_off(i, cx);
                    }
                    self.containers[i].is_live()
                }
            };
            if blocking {
                return Some(i);
            }
        }
        None
    }

    /// A restart is due: start now, or wait in CrashLoopBackOff.
    pub(super) fn restart_or_back_off(&mut self, i: usize, cx: &mut Cx) {
        let c = &self.containers[i];
        let Some(finished) = c.finished() else { return };
        let key = self.backoff_key(c);
        match cx
            .crash_backoff
            .in_backoff(&key, finished.exit.finished_at, cx.now)
        {
            Some((until, backoff)) => {
                let message = format!(
                    "back-off {} restarting failed container={} pod={}",
                    go_duration(backoff),
                    c.name(),
                    self.display_name()
                );
                let waiting = Waiting {
                    reason: Some("CrashLoopBackOff".into()),
                    message: Some(message),
                    retry_at: Some(until),
                };
                if self.containers[i].back_off(waiting) {
                    let pod_name = &self.pod.metadata.name;
                    let name = self.containers[i].name();
                    cx.warn(self.uid(), name, Warning::BackOff { pod_name });
                }
            }
            None => {
                cx.crash_backoff
                    .advance(key, finished.exit.finished_at, cx.now);
                self.start(i, cx);
            }
        }
    }

    /// The key of a container's CrashLoopBackOff: a new image starts over.
    pub(super) fn backoff_key(&self, c: &ContainerMachine) -> BackoffKey {
        BackoffKey {
            pod_uid: self.uid().to_string(),
            container: c.name().to_string(),
            image: c.image().to_string(),
        }
    }

    /// Ask the runtime for the next instance of container `i`, unless its
    /// image's pull back-off holds it. True when an instance was asked for.
    pub(super) fn start(&mut self, i: usize, cx: &mut Cx) -> bool {
        if self.pull_held(i, cx) {
            return false;
        }
        let attempt = self.containers[i].begin_start();
        cx.actions.push_back(Action::StartContainer {
            pod: self.pod.clone(),
            container: self.containers[i].name().to_string(),
            attempt,
        });
        true
    }
}

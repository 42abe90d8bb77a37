//! One pod's lifecycle: sandbox, init containers in order, regular
//! containers under the restart policy, completion and termination.
//!
//! `sync` is the kubelet's SyncPod for one pod, as a pure function of the
//! machine's state and the time: it is called after every observation and
//! timer of the pod and queues the actions that move it forward.

use super::backoff::{go_duration, BackoffKey, CrashLoopBackoff};
use super::container::{ContainerMachine, Finished, Role, Running, State, Stopping, Waiting};
use super::{Action, InstanceRef, StopSignal};
use crate::pod::status::PodPhase;
use crate::pod::{Pod, RestartPolicy};
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The kubelet's floor for the time between SIGTERM and SIGKILL (rule 41).
const MIN_STOP_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    Absent,
    Creating,
    Ready,
    Failed {
        message: String,
        retry_at: Time,
    },
    /// Torn down after the pod completed; records and volumes stay.
    Stopped,
}

/// Why a pod is stopping, which decides what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// Its manifest is gone or replaced: forget it when everything stopped.
    Deleted,
    /// It completed on its own with this terminal phase (rule 45).
    Completed(PodPhase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Stopping {
        cause: StopCause,
        grace: Duration,
        since: Time,
    },
    /// Terminal (Succeeded or Failed) and kept for its status (rule 52).
    Finished(PodPhase),
    /// Deleted and fully stopped: the engine drops it.
    Gone,
}

/// What `sync` needs besides the pod: the time, the output queue, back-offs.
pub struct Cx<'a> {
    pub now: Time,
    pub actions: &'a mut VecDeque<Action>,
    pub crash_backoff: &'a mut CrashLoopBackoff,
    pub start_backoff: &'a mut CrashLoopBackoff,
}

#[derive(Debug, Clone)]
pub struct PodMachine {
    pub pod: Arc<Pod>,
    pub created_at: Time,
    pub sandbox: Sandbox,
    pub lifecycle: Lifecycle,
    /// Init containers first, then regular ones, each in spec order.
    pub containers: Vec<ContainerMachine>,
    /// When each condition last changed: (status, time).
    pub condition_times: BTreeMap<&'static str, (bool, Time)>,
}

impl PodMachine {
    pub fn new(pod: Arc<Pod>, first_attempts: &BTreeMap<String, u32>, now: Time) -> Self {
        let attempt = |name: &str| first_attempts.get(name).copied().unwrap_or(0);
        let init = pod
            .spec
            .init_containers
            .iter()
            .map(|c| ContainerMachine::new(&c.name, &c.image, Role::Init, attempt(&c.name)));
        let regular = pod
            .spec
            .containers
            .iter()
            .map(|c| ContainerMachine::new(&c.name, &c.image, Role::Regular, attempt(&c.name)));
        let containers = init.chain(regular).collect();
        PodMachine {
            pod,
            created_at: now,
            sandbox: Sandbox::Absent,
            lifecycle: Lifecycle::Active,
            containers,
            condition_times: BTreeMap::new(),
        }
    }

    pub fn uid(&self) -> &str {
        &self.pod.metadata.uid
    }

    fn policy(&self) -> RestartPolicy {
        self.pod.spec.restart_policy
    }

    pub fn container_mut(&mut self, name: &str) -> Option<&mut ContainerMachine> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    fn instance(&self, name: &str, attempt: u32) -> InstanceRef {
        InstanceRef {
            pod_uid: self.uid().to_string(),
            container: name.to_string(),
            attempt,
        }
    }

    /// Rule 56 / rule 11: initialized once any regular container ran, or every
    /// init container completed successfully.
    pub fn initialized(&self) -> bool {
        let (init, regular): (Vec<_>, Vec<_>) =
            self.containers.iter().partition(|c| c.role == Role::Init);
        regular.iter().any(|c| c.ever_ran()) || init.iter().all(|c| c.ready())
    }

    /// The next time this pod needs `sync`, if any.
    pub fn deadline(&self) -> Option<Time> {
        match self.lifecycle {
            Lifecycle::Finished(_) | Lifecycle::Gone => None,
            Lifecycle::Active => {
                let sandbox = match &self.sandbox {
                    Sandbox::Failed { retry_at, .. } => Some(*retry_at),
                    _ => None,
                };
                self.containers
                    .iter()
                    .filter_map(ContainerMachine::deadline)
                    .chain(sandbox)
                    .min()
            }
            Lifecycle::Stopping { .. } => self
                .containers
                .iter()
                .filter_map(|c| c.running()?.stopping.filter(|s| !s.killed))
                .map(|s| s.kill_at)
                .min(),
        }
    }

    /// Begin graceful termination of the whole pod (rules 40-41, 45).
    pub fn begin_stop(&mut self, cause: StopCause, cx: &mut Cx) {
        let (grace, since) = match self.lifecycle {
            Lifecycle::Stopping { grace, since, .. } => (grace, since),
            Lifecycle::Active => (
                Duration::from_secs(self.pod.grace_period_seconds().max(0) as u64),
                cx.now,
            ),
            Lifecycle::Finished(_) | Lifecycle::Gone => {
                if cause == StopCause::Deleted {
                    self.finish_stop(cause, cx);
                }
                return;
            }
        };
        self.lifecycle = Lifecycle::Stopping {
            cause,
            grace,
            since,
        };
        self.sync(cx);
    }

    pub fn sync(&mut self, cx: &mut Cx) {
        match self.lifecycle {
            Lifecycle::Finished(_) | Lifecycle::Gone => return,
            Lifecycle::Stopping { cause, grace, .. } => return self.drive_stop(cause, grace, cx),
            Lifecycle::Active => {}
        }
        match &self.sandbox {
            Sandbox::Ready => {}
            Sandbox::Creating => return,
            Sandbox::Failed { retry_at, .. } if cx.now < *retry_at => return,
            Sandbox::Absent | Sandbox::Failed { .. } | Sandbox::Stopped => {
                self.sandbox = Sandbox::Creating;
                cx.actions.push_back(Action::CreateSandbox {
                    pod: self.pod.clone(),
                });
                return;
            }
        }
        if !self.initialized() && !self.sync_init(cx) {
            return;
        }
        self.sync_regular(cx);
    }

    /// Drive plain init containers in order (rules 5, 9). True once all completed.
    fn sync_init(&mut self, cx: &mut Cx) -> bool {
        let policy = self.policy();
        for i in 0..self.containers.len() {
            if self.containers[i].role != Role::Init {
                continue;
            }
            match &self.containers[i].state {
                State::Exited { finished, .. } if finished.succeeded() => continue,
                State::Starting { .. } | State::Running(_) => return false,
                State::Exited { .. } if policy == RestartPolicy::Never => {
                    self.begin_stop(StopCause::Completed(PodPhase::Failed), cx);
                    return false;
                }
                State::Exited { .. } => {
                    self.restart_or_back_off(i, cx);
                    return false;
                }
                State::Waiting(w) => {
                    if w.due(cx.now) {
                        self.start(i, cx);
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Start, restart or leave regular containers (rules 7, 19, 23), then see
    /// whether the pod completed (rule 45).
    fn sync_regular(&mut self, cx: &mut Cx) {
        let policy = self.policy();
        for i in 0..self.containers.len() {
            if self.containers[i].role != Role::Regular {
                continue;
            }
            match &self.containers[i].state {
                State::Waiting(w) if w.due(cx.now) => self.start(i, cx),
                State::Exited { finished, .. } => {
                    let restart = match policy {
                        RestartPolicy::Always => true,
                        RestartPolicy::OnFailure => !finished.succeeded(),
                        RestartPolicy::Never => false,
                    };
                    if restart {
                        self.restart_or_back_off(i, cx);
                    }
                }
                _ => {}
            }
        }
        let regular = || self.containers.iter().filter(|c| c.role == Role::Regular);
        let done = regular().all(|c| matches!(c.state, State::Exited { restart: None, .. }));
        if policy != RestartPolicy::Always && done {
            let all_ok = regular().all(|c| c.finished().is_some_and(Finished::succeeded));
            let phase = if all_ok {
                PodPhase::Succeeded
            } else {
                PodPhase::Failed
            };
            self.begin_stop(StopCause::Completed(phase), cx);
        }
    }

    /// A restart is due: start now, or wait in CrashLoopBackOff (rules 23-24).
    fn restart_or_back_off(&mut self, i: usize, cx: &mut Cx) {
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
                    c.name,
                    self.display_name()
                );
                if let State::Exited { restart, .. } = &mut self.containers[i].state {
                    *restart = Some(Waiting {
                        reason: Some("CrashLoopBackOff".into()),
                        message: Some(message),
                        retry_at: Some(until),
                    });
                }
            }
            None => {
                cx.crash_backoff
                    .advance(key, finished.exit.finished_at, cx.now);
                self.start(i, cx);
            }
        }
    }

    fn backoff_key(&self, c: &ContainerMachine) -> BackoffKey {
        BackoffKey {
            pod_uid: self.uid().to_string(),
            container: c.name.clone(),
            image: c.image.clone(),
        }
    }

    /// `name_namespace(uid)`, the kubelet's way of naming a pod in messages.
    pub fn display_name(&self) -> String {
        let m = &self.pod.metadata;
        format!("{}_{}({})", m.name, m.namespace, m.uid)
    }

    fn start(&mut self, i: usize, cx: &mut Cx) {
        let attempt = self.containers[i].begin_start();
        cx.actions.push_back(Action::StartContainer {
            pod: self.pod.clone(),
            container: self.containers[i].name.clone(),
            attempt,
        });
    }

    /// The runtime could not create the instance: wait and retry under the
    /// start back-off, without spending an attempt number.
    pub fn start_failed(
        &mut self,
        name: &str,
        attempt: u32,
        reason: String,
        message: String,
        cx: &mut Cx,
    ) {
        let key = BackoffKey {
            pod_uid: self.uid().to_string(),
            container: name.to_string(),
            image: String::new(),
        };
        let Some(c) = self.container_mut(name) else {
            return;
        };
        if c.state != (State::Starting { attempt }) {
            return;
        }
        cx.start_backoff.advance(key.clone(), cx.now, cx.now);
        let retry_at = cx
            .start_backoff
            .in_backoff(&key, cx.now, cx.now)
            .map(|(until, _)| until);
        c.next_attempt = attempt;
        c.state = State::Waiting(Waiting {
            reason: Some(reason),
            message: Some(message),
            retry_at,
        });
        self.sync(cx);
    }

    pub fn started(
        &mut self,
        name: &str,
        attempt: u32,
        container_id: String,
        image_id: String,
        at: Time,
        cx: &mut Cx,
    ) {
        let Some(c) = self.container_mut(name) else {
            return;
        };
        if c.state != (State::Starting { attempt }) {
            return;
        }
        c.state = State::Running(Running {
            attempt,
            container_id,
            image_id,
            started_at: at,
            stopping: None,
        });
        self.sync(cx);
    }

    pub fn exited(&mut self, name: &str, attempt: u32, finished: Finished, cx: &mut Cx) {
        let Some(c) = self.container_mut(name) else {
            return;
        };
        let live_attempt = match &c.state {
            State::Starting { attempt } => *attempt,
            State::Running(r) => r.attempt,
            _ => return,
        };
        if live_attempt != attempt {
            return;
        }
        c.state = State::Exited {
            finished,
            restart: None,
        };
        self.sync(cx);
    }

    pub fn sandbox_result(&mut self, result: Result<(), String>, cx: &mut Cx) {
        if self.sandbox != Sandbox::Creating {
            return;
        }
        self.sandbox = match result {
            Ok(()) => Sandbox::Ready,
            Err(message) => {
                let key = BackoffKey {
                    pod_uid: self.uid().to_string(),
                    container: String::new(),
                    image: String::new(),
                };
                cx.start_backoff.advance(key.clone(), cx.now, cx.now);
                let retry_at = cx
                    .start_backoff
                    .in_backoff(&key, cx.now, cx.now)
                    .map_or(cx.now, |(until, _)| until);
                Sandbox::Failed { message, retry_at }
            }
        };
        self.sync(cx);
    }

    /// Stop every live instance: SIGTERM now, SIGKILL after the grace period
    /// (at least 2 s); finish once none is live.
    fn drive_stop(&mut self, cause: StopCause, grace: Duration, cx: &mut Cx) {
        let kill_after = grace.max(MIN_STOP_GRACE);
        for i in 0..self.containers.len() {
            self.containers[i].cancel_restart();
            let instance = match &self.containers[i].state {
                State::Running(r) => self.instance(&self.containers[i].name, r.attempt),
                _ => continue,
            };
            let State::Running(r) = &mut self.containers[i].state else {
                continue;
            };
            match &mut r.stopping {
                None => {
                    r.stopping = Some(Stopping {
                        kill_at: cx.now + kill_after,
                        killed: false,
                    });
                    cx.actions.push_back(Action::Signal {
                        instance,
                        signal: StopSignal::Term,
                    });
                }
                Some(s) if !s.killed && cx.now >= s.kill_at => {
                    s.killed = true;
                    cx.actions.push_back(Action::Signal {
                        instance,
                        signal: StopSignal::Kill,
                    });
                }
                Some(_) => {}
            }
        }
        let creating = self.sandbox == Sandbox::Creating;
        if !creating && !self.containers.iter().any(ContainerMachine::is_live) {
            self.finish_stop(cause, cx);
        }
    }

    fn finish_stop(&mut self, cause: StopCause, cx: &mut Cx) {
        match cause {
            StopCause::Deleted => {
                cx.actions.push_back(Action::ForgetPod {
                    pod_uid: self.uid().to_string(),
                });
                cx.crash_backoff.forget_pod(self.uid());
                cx.start_backoff.forget_pod(self.uid());
                self.lifecycle = Lifecycle::Gone;
            }
            StopCause::Completed(phase) => {
                if matches!(self.sandbox, Sandbox::Ready | Sandbox::Failed { .. }) {
                    cx.actions.push_back(Action::StopSandbox {
                        pod_uid: self.uid().to_string(),
                    });
                }
                self.sandbox = Sandbox::Stopped;
                self.lifecycle = Lifecycle::Finished(phase);
            }
        }
    }
}

//! One pod's lifecycle: sandbox, init containers in order, regular
//! containers under the restart policy, completion and termination.
//!
//! `sync` is the kubelet's SyncPod for one pod, as a pure function of the
//! machine's state and the time: it is called after every observation and
//! timer of the pod and queues the actions that move it forward.

mod status;

use super::backoff::{go_duration, BackoffKey, CrashLoopBackoff};
use super::container::{
    ContainerMachine, Exit, Finished, Hook, Role, Running, State, StopStage, Stopping, Waiting,
};
use super::probe::{ProbeKind, ProbeWorker};
use super::{Action, InstanceRef, Recovered, RecoveredSandbox, StopSignal};
use crate::pod::status::PodPhase;
use crate::pod::{Container, Handler, LifecycleHandler, Pod, RestartPolicy};
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The kubelet's floor for the time between SIGTERM and SIGKILL.
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
    /// It completed on its own with this terminal phase.
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
    /// Terminal (Succeeded or Failed) and kept for its status.
    Finished(PodPhase),
    /// Deleted and fully stopped: the engine drops it.
    Gone,
}

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
    fn launch(&mut self, owner: RunOwner) -> u64 {
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

/// An event for `kubectl describe pod` users (Created, Started, Killing,
/// BackOff, Unhealthy, FailedPreStopHook, ...), with the kubelet's reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub pod_uid: String,
    pub container: Option<String>,
    pub kind: EventType,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl Cx<'_> {
    fn event(
        &mut self,
        pod_uid: &str,
        container: Option<&str>,
        kind: EventType,
        reason: &'static str,
        message: String,
    ) {
        self.events.push_back(PodEvent {
            pod_uid: pod_uid.to_string(),
            container: container.map(str::to_string),
            kind,
            reason,
            message,
        });
    }
}

/// One pod and its containers. Its fields change only through its methods
/// (here and in this module's children), so that the lifecycle's invariants
/// live in one place.
#[derive(Debug, Clone)]
pub struct PodMachine {
    pod: Arc<Pod>,
    created_at: Time,
    sandbox: Sandbox,
    lifecycle: Lifecycle,
    /// Init containers first, then regular ones, each in spec order.
    containers: Vec<ContainerMachine>,
    /// When each condition last changed: (status, time).
    condition_times: BTreeMap<&'static str, (bool, Time)>,
    /// Why admission refused the pod: (reason, message).
    rejection: Option<(String, String)>,
    /// The sandbox was lost (a reboot) and the init sequence runs again:
    /// until it completes the pod counts as not initialized.
    reinit: bool,
}

impl PodMachine {
    pub fn new(pod: Arc<Pod>, first_attempts: &BTreeMap<String, u32>, now: Time) -> Self {
        let attempt = |name: &str| first_attempts.get(name).copied().unwrap_or(0);
        let init = pod.spec.init_containers.iter().map(|c| {
            let role = if c.is_sidecar() {
                Role::Sidecar
            } else {
                Role::Init
            };
            ContainerMachine::new(&c.name, &c.image, role, attempt(&c.name))
        });
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
            reinit: false,
            rejection: None,
        }
    }

    /// A pod a previous run of the agent left, with what the runtime found
    /// of it: nothing is restarted, restart counts are kept, completed init
    /// containers are not re-run.
    pub fn restored(recovered: Recovered, now: Time) -> Self {
        let mut machine = PodMachine::new(
            recovered.pod,
            &recovered.first_attempts,
            recovered.created_at,
        );
        let mut instances = recovered.instances;
        instances.sort_by_key(|i| i.attempt);
        let pod = machine.pod.clone();
        for i in instances {
            let Some(c) = machine.container_mut(&i.container) else {
                continue;
            };
            match i.exit {
                Some(exit) => c.adopt_exited(Finished {
                    attempt: i.attempt,
                    container_id: Some(i.container_id),
                    image_id: i.image_id,
                    started_at: i.started_at,
                    exit,
                }),
                None => c.adopt_running(Running {
                    attempt: i.attempt,
                    probes: adopted_probe_workers(&pod, &i.container, &i.container_id, now),
                    container_id: i.container_id,
                    image_id: i.image_id,
                    started_at: i.started_at.unwrap_or(now),
                    post_start: Hook::Done,
                    stopping: None,
                }),
            }
        }
        match recovered.sandbox {
            RecoveredSandbox::Ready => machine.sandbox = Sandbox::Ready,
            RecoveredSandbox::Stopped => {
                machine.sandbox = Sandbox::Stopped;
                if let Some(phase) = machine.completed_phase() {
                    machine.lifecycle = Lifecycle::Finished(phase);
                }
            }
            RecoveredSandbox::Lost => machine.sandbox_lost(),
        }
        machine
    }

    /// The pod as the sources gave it.
    pub fn pod(&self) -> &Arc<Pod> {
        &self.pod
    }

    pub fn uid(&self) -> &str {
        &self.pod.metadata.uid
    }

    /// Deleted and fully stopped: the engine drops it.
    pub fn is_gone(&self) -> bool {
        self.lifecycle == Lifecycle::Gone
    }

    /// When its deletion began, if it is being deleted.
    pub fn deleting_since(&self) -> Option<Time> {
        match self.lifecycle {
            Lifecycle::Stopping {
                cause: StopCause::Deleted,
                since,
                ..
            } => Some(since),
            _ => None,
        }
    }

    fn policy(&self) -> RestartPolicy {
        self.pod.spec.restart_policy
    }

    fn container_mut(&mut self, name: &str) -> Option<&mut ContainerMachine> {
        self.containers.iter_mut().find(|c| c.name() == name)
    }

    fn spec(&self, name: &str) -> Option<&Container> {
        self.pod.container(name)
    }

    /// Initialized once any regular container ran, or every
    /// plain init container completed successfully and every sidecar started.
    pub fn initialized(&self) -> bool {
        let mut regular_ran = false;
        let mut init_done = true;
        for c in &self.containers {
            match c.role() {
                Role::Regular => regular_ran |= c.ever_ran(),
                Role::Init => init_done &= c.ready(),
                Role::Sidecar => init_done &= c.running().is_some_and(Running::started),
            }
        }
        init_done || (regular_ran && !self.reinit)
    }

    /// Refused at admission: terminal at once, nothing runs.
    pub fn reject(&mut self, rejection: (String, String)) {
        self.rejection = Some(rejection);
        self.lifecycle = Lifecycle::Finished(PodPhase::Failed);
    }

    /// Does this pod count against the node's allocatable resources?
    pub fn holds_resources(&self) -> bool {
        matches!(
            self.lifecycle,
            Lifecycle::Active | Lifecycle::Stopping { .. }
        )
    }

    /// The terminal phase if the pod is done: every regular container exited
    /// and none is due to restart under the policy.
    pub fn completed_phase(&self) -> Option<PodPhase> {
        let policy = self.policy();
        if policy == RestartPolicy::Always {
            return None;
        }
        let mut all_ok = true;
        for c in self.containers.iter().filter(|c| c.role() == Role::Regular) {
            let State::Exited {
                finished,
                restart: None,
            } = c.state()
            else {
                return None;
            };
            let ok = finished.succeeded();
            if policy == RestartPolicy::OnFailure && !ok {
                return None;
            }
            all_ok &= ok;
        }
        Some(if all_ok {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        })
    }

    /// After a reboot: a Never pod that ran is terminal; any other
    /// runs its init sequence again from the first, then its regular
    /// containers, restart counts growing on.
    pub fn sandbox_lost(&mut self) {
        self.sandbox = Sandbox::Absent;
        if self.pod.spec.restart_policy == RestartPolicy::Never {
            let ran = self.containers.iter().any(ContainerMachine::ever_ran);
            let init_failed = self
                .containers
                .iter()
                .any(|c| c.role() == Role::Init && c.finished().is_some_and(|f| !f.succeeded()));
            if ran {
                let phase = match self.completed_phase() {
                    Some(phase) if !init_failed => phase,
                    _ => PodPhase::Failed,
                };
                self.sandbox = Sandbox::Stopped;
                self.lifecycle = Lifecycle::Finished(phase);
            }
            return;
        }
        for c in &mut self.containers {
            c.start_over();
        }
        self.reinit = true;
    }

    /// The next time this pod needs `sync`, if any.
    pub fn deadline(&self) -> Option<Time> {
        match self.lifecycle {
            Lifecycle::Finished(_) | Lifecycle::Gone => None,
            Lifecycle::Active | Lifecycle::Stopping { .. } => {
                let stopping = self.lifecycle != Lifecycle::Active;
                let sandbox = match &self.sandbox {
                    Sandbox::Failed { retry_at, .. } if !stopping => Some(*retry_at),
                    _ => None,
                };
                self.containers
                    .iter()
                    .filter_map(|c| c.deadline(stopping))
                    .chain(sandbox)
                    .min()
            }
        }
    }

    /// Begin graceful termination of the whole pod with
    /// the pod's own grace period.
    pub fn begin_stop(&mut self, cause: StopCause, cx: &mut Cx) {
        let grace = Duration::from_secs(self.pod.grace_period_seconds().max(0) as u64);
        self.stop_within(cause, grace, cx);
    }

    /// Begin termination, or shorten it, so that it ends `grace` from now at
    /// the latest: once termination started its grace only goes down.
    pub fn stop_within(&mut self, cause: StopCause, grace: Duration, cx: &mut Cx) {
        let (grace, since) = match self.lifecycle {
            Lifecycle::Stopping {
                grace: current,
                since,
                ..
            } => (current.min(cx.now.saturating_sub(since) + grace), since),
            Lifecycle::Active => (grace, cx.now),
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
            Lifecycle::Stopping {
                cause,
                grace,
                since,
            } => return self.drive_stop(cause, since + grace, cx),
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
                    created_at: self.created_at,
                });
                return;
            }
        }
        self.drive_running(cx);
        if !self.initialized() && !self.sync_init(cx) {
            return;
        }
        self.reinit = false;
        self.sync_regular(cx);
    }

    /// Drive init containers and sidecars in spec order:
    /// the next starts when a plain one exited 0 or a sidecar is started.
    /// True once all are through.
    fn sync_init(&mut self, cx: &mut Cx) -> bool {
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
    fn sync_regular(&mut self, cx: &mut Cx) {
        let policy = self.policy();
        for i in 0..self.containers.len() {
            if self.containers[i].role() != Role::Sidecar {
                continue;
            }
            match self.containers[i].state() {
                State::Exited { .. } => self.restart_or_back_off(i, cx),
                State::Waiting(w) if w.due(cx.now) => self.start(i, cx),
                _ => {}
            }
        }
        for i in 0..self.containers.len() {
            if self.containers[i].role() != Role::Regular {
                continue;
            }
            match self.containers[i].state() {
                State::Starting { .. } => break,
                State::Running(r) if r.post_start != Hook::Done => break,
                State::Waiting(w) if w.due(cx.now) => {
                    self.start(i, cx);
                    break;
                }
                State::Exited { finished, .. } => {
                    let restart = match policy {
                        RestartPolicy::Always => true,
                        RestartPolicy::OnFailure => !finished.succeeded(),
                        RestartPolicy::Never => false,
                    };
                    if restart {
                        self.restart_or_back_off(i, cx);
                        if self.containers[i].is_live() {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(phase) = self.completed_phase() {
            self.begin_stop(StopCause::Completed(phase), cx);
        }
    }

    /// Hooks, probes and single-container stops of running instances.
    fn drive_running(&mut self, cx: &mut Cx) {
        let pod_stopping = matches!(self.lifecycle, Lifecycle::Stopping { .. });
        let pod = self.pod.clone();
        for i in 0..self.containers.len() {
            let name = self.containers[i].name().to_string();
            let Some(spec) = pod.container(&name) else {
                continue;
            };
            let uid = self.uid().to_string();
            let Some(r) = self.containers[i].running_mut() else {
                continue;
            };
            if let Hook::Sleeping { until } = r.post_start {
                if cx.now >= until {
                    r.post_start = Hook::Done;
                }
            }
            let started = r.started();
            let attempt = r.attempt;
            let started_at = r.started_at;
            let mut outcomes = Vec::new();
            for w in &mut r.probes {
                if !w.kind.active(started, pod_stopping) {
                    continue;
                }
                if let Some((run, timeout_at)) = w.in_flight {
                    if cx.now >= timeout_at {
                        cx.runs.take(run);
                        cx.actions.push_back(Action::CancelHandler { run });
                        outcomes.push((w.kind, false));
                    }
                    continue;
                }
                w.arm(cx.now);
                if w.due(cx.now, started_at) {
                    let Some(handler) = probe_of(spec, w.kind).and_then(|p| p.handler()) else {
                        continue;
                    };
                    let run = cx.runs.launch(RunOwner {
                        pod_uid: uid.clone(),
                        container: name.clone(),
                        attempt,
                        purpose: Purpose::Probe(w.kind),
                    });
                    w.launched(run, cx.now);
                    cx.actions.push_back(Action::RunHandler {
                        run,
                        pod: pod.clone(),
                        instance: InstanceRef {
                            pod_uid: uid.clone(),
                            container: name.clone(),
                            attempt,
                        },
                        handler,
                    });
                }
            }
            for (kind, success) in outcomes {
                self.probe_outcome(i, kind, success, cx);
            }
            if self.containers[i]
                .running()
                .is_some_and(|r| r.stopping.is_some())
            {
                self.advance_stop(i, cx);
            }
        }
    }

    /// A probe attempt ended: count it, and act on a flipped result
    ///.
    fn probe_outcome(&mut self, i: usize, kind: ProbeKind, success: bool, cx: &mut Cx) {
        let name = self.containers[i].name().to_string();
        let probe_grace = self
            .spec(&name)
            .and_then(|c| probe_of(c, kind))
            .and_then(|p| p.termination_grace_period_seconds);
        let Some(r) = self.containers[i].running_mut() else {
            return;
        };
        let Some(w) = r.probe_mut(kind) else { return };
        let flipped = w.record(success);
        let kill = match (kind, flipped) {
            (ProbeKind::Startup, Some(result)) => {
                w.finished = true;
                !result
            }
            (ProbeKind::Liveness, Some(false)) => {
                w.finished = true;
                true
            }
            _ => false,
        };
        if kill {
            log::info!(
                "pod {}: container {name} failed its {} probe, will be restarted",
                self.display_name(),
                kind.name()
            );
            let grace = probe_grace.unwrap_or_else(|| self.pod.grace_period_seconds());
            self.stop_container(i, secs(grace), cx);
        }
    }

    /// A restart is due: start now, or wait in CrashLoopBackOff.
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
                    c.name(),
                    self.display_name()
                );
                let name = c.name().to_string();
                let uid = self.uid().to_string();
                let waiting = Waiting {
                    reason: Some("CrashLoopBackOff".into()),
                    message: Some(message),
                    retry_at: Some(until),
                };
                if self.containers[i].back_off(waiting) {
                    let text = format!(
                        "Back-off restarting failed container {name} in pod {}",
                        self.pod.metadata.name
                    );
                    cx.event(&uid, Some(&name), EventType::Warning, "BackOff", text);
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
            container: c.name().to_string(),
            image: c.image().to_string(),
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
            container: self.containers[i].name().to_string(),
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
        if !self
            .container_mut(name)
            .is_some_and(|c| c.is_starting(attempt))
        {
            return;
        }
        cx.start_backoff.advance(key.clone(), cx.now, cx.now);
        let retry_at = cx
            .start_backoff
            .in_backoff(&key, cx.now, cx.now)
            .map(|(until, _)| until);
        let uid = key.pod_uid.clone();
        let text = format!("Error: {reason}: {message}");
        cx.event(&uid, Some(name), EventType::Warning, "Failed", text);
        let Some(c) = self.container_mut(name) else {
            return;
        };
        c.start_failed(
            attempt,
            Waiting {
                reason: Some(reason),
                message: Some(message),
                retry_at,
            },
        );
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
        let Some(spec) = self.spec(name).cloned() else {
            return;
        };
        let uid = self.uid().to_string();
        let pod = self.pod.clone();
        let Some(c) = self.container_mut(name) else {
            return;
        };
        if !c.is_starting(attempt) {
            return;
        }
        let probes = [
            ProbeKind::Startup,
            ProbeKind::Liveness,
            ProbeKind::Readiness,
        ]
        .into_iter()
        .filter_map(|kind| Some(ProbeWorker::new(kind, probe_of(&spec, kind)?)))
        .collect();
        let post_start = spec.lifecycle.as_ref().and_then(|l| l.post_start.as_ref());
        let instance = InstanceRef {
            pod_uid: uid.clone(),
            container: name.to_string(),
            attempt,
        };
        let post_start = launch_hook(
            post_start,
            &pod,
            instance,
            Purpose::PostStart,
            at.max(cx.now),
            cx,
        );
        c.started(Running {
            attempt,
            container_id,
            image_id,
            started_at: at,
            post_start,
            probes,
            stopping: None,
        });
        let image = &spec.image;
        for (reason, message) in [
            (
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            ),
            ("Created", format!("Created container: {name}")),
            ("Started", format!("Started container {name}")),
        ] {
            cx.event(&uid, Some(name), EventType::Normal, reason, message);
        }
        self.sync(cx);
    }

    /// A handler the runtime ran has finished.
    pub fn handler_done(
        &mut self,
        owner: RunOwner,
        run: u64,
        result: Result<(), String>,
        cx: &mut Cx,
    ) {
        let Some(i) = self
            .containers
            .iter()
            .position(|c| c.name() == owner.container)
        else {
            return;
        };
        let Some(r) = self.containers[i].running_mut() else {
            return;
        };
        if r.attempt != owner.attempt {
            return;
        }
        match owner.purpose {
            Purpose::Probe(kind) => {
                if r.probe(kind)
                    .and_then(|w| w.in_flight)
                    .is_some_and(|(id, _)| id == run)
                {
                    if let Err(e) = &result {
                        let mut kind_name = kind.name().to_string();
                        kind_name[..1].make_ascii_uppercase();
                        let text = format!("{kind_name} probe failed: {e}");
                        let uid = owner.pod_uid.clone();
                        cx.event(
                            &uid,
                            Some(&owner.container),
                            EventType::Warning,
                            "Unhealthy",
                            text,
                        );
                    }
                    self.probe_outcome(i, kind, result.is_ok(), cx);
                }
            }
            Purpose::PostStart if r.post_start == (Hook::Running { run }) => {
                r.post_start = Hook::Done;
                if let Err(e) = result {
                    // A failed postStart kills the container; the
                    // restart policy decides what follows.
                    let text = format!("PostStartHook failed: {e}");
                    let uid = owner.pod_uid.clone();
                    cx.event(
                        &uid,
                        Some(&owner.container),
                        EventType::Warning,
                        "FailedPostStartHook",
                        text,
                    );
                    let grace = secs(self.pod.grace_period_seconds());
                    self.stop_container(i, grace, cx);
                }
            }
            Purpose::PreStop => {
                if let Some(s) = r
                    .stopping
                    .as_mut()
                    .filter(|s| s.stage == StopStage::PreStop(Hook::Running { run }))
                {
                    s.stage = StopStage::PreStop(Hook::Done);
                    if let Err(e) = result {
                        let text = format!("PreStopHook failed: {e}");
                        let uid = owner.pod_uid.clone();
                        cx.event(
                            &uid,
                            Some(&owner.container),
                            EventType::Warning,
                            "FailedPreStopHook",
                            text,
                        );
                    }
                }
            }
            Purpose::PostStart => {}
        }
        self.sync(cx);
    }

    /// Instance `attempt` of container `name` ended.
    pub fn exited(
        &mut self,
        name: &str,
        attempt: u32,
        started_at: Option<Time>,
        exit: Exit,
        cx: &mut Cx,
    ) {
        let Some(c) = self.container_mut(name) else {
            return;
        };
        if c.exited(attempt, started_at, exit) {
            self.sync(cx);
        }
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

    /// Begin stopping one running container with `grace`: its preStop hook
    /// first (when grace > 0), then, for a sidecar in a stopping pod, its
    /// turn, then SIGTERM and SIGKILL.
    fn stop_container(&mut self, i: usize, grace: Duration, cx: &mut Cx) {
        let name = self.containers[i].name().to_string();
        let pre_stop = self
            .spec(&name)
            .and_then(|c| c.lifecycle.clone())
            .and_then(|l| l.pre_stop)
            .filter(|_| !grace.is_zero());
        let uid = self.uid().to_string();
        let pod = self.pod.clone();
        let Some(r) = self.containers[i].running_mut() else {
            return;
        };
        if r.stopping.is_some() {
            return;
        }
        let text = format!("Stopping container {name}");
        cx.event(&uid, Some(&name), EventType::Normal, "Killing", text);
        let Some(r) = self.containers[i].running_mut() else {
            return;
        };
        let instance = InstanceRef {
            pod_uid: uid,
            container: name,
            attempt: r.attempt,
        };
        let hook = launch_hook(
            pre_stop.as_ref(),
            &pod,
            instance,
            Purpose::PreStop,
            cx.now,
            cx,
        );
        r.stopping = Some(Stopping {
            deadline: cx.now + grace,
            stage: StopStage::PreStop(hook),
        });
        self.advance_stop(i, cx);
    }

    /// Move one container's stop forward as far as it can go now.
    fn advance_stop(&mut self, i: usize, cx: &mut Cx) {
        let in_pod_stop = matches!(self.lifecycle, Lifecycle::Stopping { .. });
        let my_turn = self.sidecar_turn(i);
        let waits_turn = in_pod_stop && self.containers[i].role() == Role::Sidecar;
        let name = self.containers[i].name().to_string();
        let uid = self.uid().to_string();
        let Some(r) = self.containers[i].running_mut() else {
            return;
        };
        let attempt = r.attempt;
        let Some(stop) = r.stopping.as_mut() else {
            return;
        };
        let instance = InstanceRef {
            pod_uid: uid,
            container: name,
            attempt,
        };
        loop {
            let expired = cx.now >= stop.deadline;
            stop.stage = match stop.stage {
                StopStage::PreStop(Hook::Running { run }) if expired => {
                    cx.runs.take(run);
                    cx.actions.push_back(Action::CancelHandler { run });
                    StopStage::PreStop(Hook::Done)
                }
                StopStage::PreStop(Hook::Running { .. }) => return,
                StopStage::PreStop(Hook::Sleeping { until }) if cx.now < until && !expired => {
                    return
                }
                StopStage::PreStop(_) if waits_turn => StopStage::AwaitTurn,
                StopStage::AwaitTurn if !my_turn && !expired => return,
                StopStage::PreStop(_) | StopStage::AwaitTurn => {
                    cx.actions.push_back(Action::Signal {
                        instance: instance.clone(),
                        signal: StopSignal::Term,
                    });
                    let remaining = stop.deadline.saturating_sub(cx.now);
                    StopStage::Signalled {
                        kill_at: cx.now + remaining.max(MIN_STOP_GRACE),
                    }
                }
                StopStage::Signalled { kill_at } if cx.now >= kill_at => {
                    cx.actions.push_back(Action::Signal {
                        instance: instance.clone(),
                        signal: StopSignal::Kill,
                    });
                    StopStage::Killed
                }
                StopStage::Signalled { .. } | StopStage::Killed => return,
            };
        }
    }

    /// A sidecar's SIGTERM waits until every regular container and
    /// every sidecar declared after it has exited.
    fn sidecar_turn(&self, i: usize) -> bool {
        self.containers.iter().enumerate().all(|(j, c)| {
            let must_outlive = c.role() == Role::Regular || (c.role() == Role::Sidecar && j > i);
            !(must_outlive && c.is_live())
        })
    }

    /// Stop every live instance together, then finish once
    /// none is live. `deadline` is the end of the pod's grace period.
    fn drive_stop(&mut self, cause: StopCause, deadline: Time, cx: &mut Cx) {
        for c in &mut self.containers {
            c.cancel_restart();
        }
        self.drive_running(cx);
        for i in 0..self.containers.len() {
            if self.containers[i]
                .running()
                .is_some_and(|r| r.stopping.is_none())
            {
                let grace = deadline.saturating_sub(cx.now);
                self.stop_container(i, grace, cx);
            }
        }
        // A sidecar's turn may have come with another's exit; a shortened
        // grace pulls every deadline in.
        for i in 0..self.containers.len() {
            let Some(stop) = self.containers[i]
                .running_mut()
                .and_then(|r| r.stopping.as_mut())
            else {
                continue;
            };
            stop.deadline = stop.deadline.min(deadline);
            if let StopStage::Signalled { kill_at } = &mut stop.stage {
                *kill_at = (*kill_at).min(deadline.max(cx.now + MIN_STOP_GRACE));
            }
            self.advance_stop(i, cx);
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

/// The probe of `kind` in a container's spec.
fn probe_of(c: &Container, kind: ProbeKind) -> Option<&crate::pod::Probe> {
    match kind {
        ProbeKind::Startup => c.startup_probe.as_ref(),
        ProbeKind::Liveness => c.liveness_probe.as_ref(),
        ProbeKind::Readiness => c.readiness_probe.as_ref(),
    }
}

fn secs(seconds: i64) -> Duration {
    Duration::from_secs(seconds.max(0) as u64)
}

/// Begin a lifecycle hook: a `sleep` is the engine's own timer, anything
/// else is handed to the runtime. No hook is at once `Done`.
fn launch_hook(
    hook: Option<&LifecycleHandler>,
    pod: &Arc<Pod>,
    instance: InstanceRef,
    purpose: Purpose,
    now: Time,
    cx: &mut Cx,
) -> Hook {
    match hook.and_then(LifecycleHandler::handler) {
        None => Hook::Done,
        Some(Handler::Sleep(seconds)) => Hook::Sleeping {
            until: now + secs(seconds),
        },
        Some(handler) => {
            let run = cx.runs.launch(RunOwner {
                pod_uid: instance.pod_uid.clone(),
                container: instance.container.clone(),
                attempt: instance.attempt,
                purpose,
            });
            cx.actions.push_back(Action::RunHandler {
                run,
                pod: pod.clone(),
                instance,
                handler,
            });
            Hook::Running { run }
        }
    }
}

/// Fresh probe workers for an adopted instance: after an agent restart the
/// kubelet's workers start over too, each after a spread delay.
fn adopted_probe_workers(
    pod: &Pod,
    container: &str,
    container_id: &str,
    now: Time,
) -> Vec<ProbeWorker> {
    let Some(c) = pod.container(container) else {
        return vec![];
    };
    [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ]
    .into_iter()
    .filter_map(|kind| {
        let mut w = ProbeWorker::new(kind, probe_of(c, kind)?);
        w.spread_first_attempt(now, container_id);
        Some(w)
    })
    .collect()
}

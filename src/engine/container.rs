//! One container of a pod across its instances: what it waits for, the
//! instance that runs, the one before it (`lastState`), and its status.

use super::probe::{ProbeKind, ProbeWorker};
use crate::pod::status::{
    ContainerState, ContainerStatus, StateRunning, StateTerminated, StateWaiting,
};
use crate::time::Time;

/// Which part of the spec a container comes from, which decides its
/// ordering and restart rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A plain init container: runs to completion, in order, before the rest.
    Init,
    /// A native sidecar (init container with `restartPolicy: Always`): starts
    /// in init order, keeps running, restarts on any exit.
    Sidecar,
    /// A container of `spec.containers`.
    Regular,
}

/// Why an instance ended, beyond its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// The process exited or was signalled.
    Normal,
    /// The kernel's OOM killer ended it (reason `OOMKilled`).
    OomKilled,
    /// The runtime created it but could not start its process (reason `StartError`).
    StartError,
    /// It vanished from the runtime without a recorded exit.
    Unknown,
}

/// How an instance ended, as the runtime observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit code (128 + the signal for a signalled process).
    pub code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub kind: ExitKind,
    pub finished_at: Time,
    /// The runtime's message, shown as `terminated.message`.
    pub message: Option<String>,
}

/// A finished instance: `state.terminated` or `lastState.terminated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its attempt number: the restartCount it had.
    pub attempt: u32,
    /// `None` when it ended before the runtime reported it started.
    pub container_id: Option<String>,
    /// The image's manifest digest, reported as imageID.
    pub image_id: String,
    pub started_at: Option<Time>,
    pub exit: Exit,
}

impl Finished {
    /// Exit code 0 of a process that ended normally.
    pub fn succeeded(&self) -> bool {
        self.exit.code == 0 && self.exit.kind == ExitKind::Normal
    }

    fn reason(&self) -> &'static str {
        match self.exit.kind {
            ExitKind::OomKilled => "OOMKilled",
            ExitKind::StartError => "StartError",
            ExitKind::Unknown => "ContainerStatusUnknown",
            ExitKind::Normal if self.exit.code == 0 => "Completed",
            ExitKind::Normal => "Error",
        }
    }

    fn terminated(&self) -> StateTerminated {
        StateTerminated {
            exit_code: self.exit.code,
            signal: self.exit.signal,
            reason: self.reason().into(),
            message: self.exit.message.clone(),
            started_at: self.started_at.map(Time::rfc3339),
            finished_at: self.exit.finished_at.rfc3339(),
            container_id: self.container_id.clone(),
        }
    }
}

/// A container with no live instance that is due to get one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// A kubelet waiting reason; `None` means the default (`ContainerCreating`
    /// or `PodInitializing`).
    pub reason: Option<String>,
    /// The message that goes with `reason`.
    pub message: Option<String>,
    /// Not to be started before this time (back-off).
    pub retry_at: Option<Time>,
}

impl Waiting {
    /// Due at once, with the default reason.
    pub fn fresh() -> Waiting {
        Waiting {
            reason: None,
            message: None,
            retry_at: None,
        }
    }

    /// May an instance start now?
    pub fn due(&self, now: Time) -> bool {
        self.retry_at.is_none_or(|t| now >= t)
    }
}

/// A lifecycle hook being carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// The runtime runs it (exec, httpGet); `run` identifies its answer.
    Running {
        run: u64,
    },
    /// A `sleep` action: a timer of the engine's own.
    Sleeping {
        until: Time,
    },
    Done,
}

/// Where a container's stop stands, named for what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopStage {
    /// Waiting for the preStop hook, at most until the grace deadline.
    PreStop(Hook),
    /// A sidecar waiting for the containers it must outlive.
    AwaitTurn,
    /// SIGTERM sent; SIGKILL at `kill_at`.
    Signalled { kill_at: Time },
    /// SIGKILL sent; waiting for the exit.
    Killed,
}

/// A stop in progress for one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopping {
    /// The end of this container's grace period.
    pub deadline: Time,
    /// What the stop waits for now.
    pub stage: StopStage,
}

/// A live instance: what the runtime said of it, its postStart hook, its
/// probes, and its stop once one began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Its attempt number: its restartCount.
    pub attempt: u32,
    pub container_id: String,
    /// The image's manifest digest, reported as imageID.
    pub image_id: String,
    pub started_at: Time,
    /// Its postStart hook; the instance is not started until it is `Done`.
    pub post_start: Hook,
    /// One worker per probe the container has.
    pub probes: Vec<ProbeWorker>,
    /// Its stop, once one began.
    pub stopping: Option<Stopping>,
}

impl Running {
    /// Its probe of `kind`, if the spec has one.
    pub fn probe(&self, kind: ProbeKind) -> Option<&ProbeWorker> {
        self.probes.iter().find(|w| w.kind == kind)
    }

    /// Its probe of `kind`, to record a result.
    pub fn probe_mut(&mut self, kind: ProbeKind) -> Option<&mut ProbeWorker> {
        self.probes.iter_mut().find(|w| w.kind == kind)
    }

    /// Started: running and the startup probe, if any, succeeded.
    pub fn started(&self) -> bool {
        self.probe(ProbeKind::Startup)
            .is_none_or(|w| w.result == Some(true))
    }

    /// Started and its postStart hook returned: what a sidecar needs before
    /// the next init container starts, and a regular container before
    /// the next one.
    pub fn start_complete(&self) -> bool {
        self.started() && self.post_start == Hook::Done
    }

    /// Ready: started, and the readiness probe, if any, succeeded.
    pub fn ready(&self) -> bool {
        self.started()
            && self
                .probe(ProbeKind::Readiness)
                .is_none_or(|w| w.result == Some(true))
    }

    fn deadline(&self, pod_stopping: bool) -> Option<Time> {
        let started = self.started();
        let hook = |h: &Hook| match h {
            Hook::Sleeping { until } => Some(*until),
            _ => None,
        };
        let stop = self.stopping.and_then(|s| match s.stage {
            StopStage::PreStop(h) => Some(hook(&h).map_or(s.deadline, |t| t.min(s.deadline))),
            StopStage::AwaitTurn => Some(s.deadline),
            StopStage::Signalled { kill_at } => Some(kill_at),
            StopStage::Killed => None,
        });
        self.probes
            .iter()
            .filter(|w| w.kind.active(started, pod_stopping))
            .filter_map(ProbeWorker::deadline)
            .chain(hook(&self.post_start))
            .chain(stop)
            .min()
    }
}

/// The newest instance of a container, named for what the engine waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No live instance; one is due (now or after `retry_at`).
    Waiting(Waiting),
    /// A start was requested; waiting for the runtime's `Started` or failure.
    Starting { attempt: u32 },
    /// The instance runs; waiting for its exit.
    Running(Running),
    /// The instance exited. `restart` is the pending restart shown while in
    /// back-off, `None` when no restart is pending.
    Exited {
        finished: Finished,
        restart: Option<Waiting>,
    },
}

/// One container's instances. Its state changes only through the methods
/// below, each of which checks that the instance it is told about is the live
/// one, so a late or repeated observation cannot move it back.
#[derive(Debug, Clone)]
pub struct ContainerMachine {
    name: String,
    image: String,
    role: Role,
    state: State,
    /// The instance before the newest one: `lastState`.
    previous: Option<Finished>,
    /// The attempt number (restartCount) the next instance gets.
    next_attempt: u32,
}

impl ContainerMachine {
    /// A container that never ran, whose first instance gets attempt
    /// `first_attempt` (the restart count found in the log directory).
    pub fn new(name: &str, image: &str, role: Role, first_attempt: u32) -> Self {
        ContainerMachine {
            name: name.into(),
            image: image.into(),
            role,
            state: State::Waiting(Waiting::fresh()),
            previous: None,
            next_attempt: first_attempt,
        }
    }

    /// The container's name in the pod spec.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The image of its spec, which keys its back-off.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Plain init container, sidecar or regular container.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The newest instance.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Adopt a running instance a previous run of the agent left.
    /// Instances are adopted oldest first.
    pub fn adopt_running(&mut self, running: Running) {
        self.adopt(running.attempt, State::Running(running));
    }

    /// Adopt a finished instance a previous run of the agent recorded.
    /// Instances are adopted oldest first.
    pub fn adopt_exited(&mut self, finished: Finished) {
        let attempt = finished.attempt;
        let state = State::Exited {
            finished,
            restart: None,
        };
        self.adopt(attempt, state);
    }

    /// The adopted instance becomes the newest; a finished one before it
    /// becomes `lastState`, and the next instance counts on from it.
    fn adopt(&mut self, attempt: u32, state: State) {
        self.replace_newest(state);
        self.next_attempt = self.next_attempt.max(attempt + 1);
    }

    /// The sandbox was lost (a reboot): the container starts over, waiting,
    /// and its last instance becomes `lastState`.
    pub fn start_over(&mut self) {
        self.replace_newest(State::Waiting(Waiting::fresh()));
    }

    /// `state` becomes the newest instance; the one it replaces, if it had
    /// finished, becomes `lastState`.
    fn replace_newest(&mut self, state: State) {
        if let State::Exited { finished, .. } = std::mem::replace(&mut self.state, state) {
            self.previous = Some(finished);
        }
    }

    /// Is instance `attempt` requested and not yet answered?
    pub fn is_starting(&self, attempt: u32) -> bool {
        self.state == (State::Starting { attempt })
    }

    /// The runtime started the instance being started.
    pub fn started(&mut self, running: Running) {
        if self.is_starting(running.attempt) {
            self.state = State::Running(running);
        }
    }

    /// The runtime could not create instance `attempt`: wait as `waiting`
    /// says, and give the next try the same attempt number.
    pub fn start_failed(&mut self, attempt: u32, waiting: Waiting) {
        if self.is_starting(attempt) {
            self.next_attempt = attempt;
            self.state = State::Waiting(waiting);
        }
    }

    /// A container with no live instance waits as `waiting` says instead.
    pub fn wait(&mut self, waiting: Waiting) {
        if let State::Waiting(w) = &mut self.state {
            *w = waiting;
        }
    }

    /// Its start or restart is due but waits for another container's start
    /// to be answered: its timer goes (it stays due), the answer syncs the
    /// pod again.
    pub fn park(&mut self, now: Time) {
        let w = match &mut self.state {
            State::Waiting(w) => w,
            State::Exited {
                restart: Some(w), ..
            } => w,
            _ => return,
        };
        if w.due(now) {
            w.retry_at = None;
        }
    }

    /// Instance `attempt` ended. Returns false, changing nothing, when it is
    /// not the live instance (a late or repeated observation).
    pub fn exited(&mut self, attempt: u32, started_at: Option<Time>, exit: Exit) -> bool {
        let finished = match &self.state {
            State::Starting { attempt: live } if *live == attempt => Finished {
                attempt,
                container_id: None,
                image_id: String::new(),
                started_at,
                exit,
            },
            State::Running(r) if r.attempt == attempt => Finished {
                attempt,
                container_id: Some(r.container_id.clone()),
                image_id: r.image_id.clone(),
                started_at: started_at.or(Some(r.started_at)),
                exit,
            },
            _ => return false,
        };
        self.state = State::Exited {
            finished,
            restart: None,
        };
        true
    }

    /// Hold the exited instance's restart in back-off as `waiting` says.
    /// Returns true when the wait begins now, false when it was already
    /// waiting (or nothing exited).
    pub fn back_off(&mut self, waiting: Waiting) -> bool {
        match &mut self.state {
            State::Exited { restart, .. } => restart.replace(waiting).is_none(),
            _ => false,
        }
    }

    /// Has any instance of this container ever been created?
    pub fn ever_ran(&self) -> bool {
        !matches!(self.state, State::Waiting(_)) || self.previous.is_some()
    }

    /// Is an instance being started or running?
    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Starting { .. } | State::Running(_))
    }

    /// The running instance, if one runs.
    pub fn running(&self) -> Option<&Running> {
        match &self.state {
            State::Running(r) => Some(r),
            _ => None,
        }
    }

    /// The newest instance if it exited.
    pub fn finished(&self) -> Option<&Finished> {
        match &self.state {
            State::Exited { finished, .. } => Some(finished),
            _ => None,
        }
    }

    /// Begin a new instance; the old finished one becomes `lastState`.
    pub fn begin_start(&mut self) -> u32 {
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        self.replace_newest(State::Starting { attempt });
        attempt
    }

    /// No restart will happen any more (pod completing or being deleted).
    pub fn cancel_restart(&mut self) {
        match &mut self.state {
            State::Exited { restart, .. } => *restart = None,
            State::Waiting(w) => w.retry_at = None,
            _ => {}
        }
    }

    /// The image digest of the newest instance that ran, if any.
    fn image_id(&self) -> &str {
        match &self.state {
            State::Running(r) => &r.image_id,
            State::Exited { finished, .. } => &finished.image_id,
            _ => self.previous.as_ref().map_or("", |p| &p.image_id),
        }
    }

    /// The restartCount to report: the attempt of the newest instance.
    pub fn restart_count(&self) -> u32 {
        match &self.state {
            State::Starting { attempt } => *attempt,
            State::Running(r) => r.attempt,
            State::Exited { finished, .. } => finished.attempt,
            State::Waiting(_) => self
                .previous
                .as_ref()
                .map_or(self.next_attempt, |p| p.attempt),
        }
    }

    /// The next time this container needs the engine's attention, if any.
    pub fn deadline(&self, pod_stopping: bool) -> Option<Time> {
        match &self.state {
            State::Waiting(w) => w.retry_at,
            State::Exited {
                restart: Some(w), ..
            } => w.retry_at,
            State::Running(r) => r.deadline(pod_stopping),
            _ => None,
        }
    }

    /// The running instance, to drive its hooks, probes and stop.
    pub fn running_mut(&mut self) -> Option<&mut Running> {
        match &mut self.state {
            State::Running(r) => Some(r),
            _ => None,
        }
    }

    /// Ready: a running, started container whose readiness probe
    /// (if any) succeeded; a plain init container once it exited 0.
    pub fn ready(&self) -> bool {
        match self.role {
            Role::Init => self.finished().is_some_and(Finished::succeeded),
            Role::Sidecar | Role::Regular => self.running().is_some_and(Running::ready),
        }
    }

    /// Its status as the kubelet reports it; a waiting container without
    /// a reason of its own shows `default_reason`.
    pub fn status(&self, default_reason: &str) -> ContainerStatus {
        let waiting = |w: &Waiting| ContainerState {
            waiting: Some(StateWaiting {
                reason: w.reason.clone().unwrap_or_else(|| default_reason.into()),
                message: w.message.clone(),
            }),
            ..ContainerState::default()
        };
        let terminated = |f: &Finished| ContainerState {
            terminated: Some(f.terminated()),
            ..ContainerState::default()
        };
        let (state, last, container_id) = match &self.state {
            State::Waiting(w) => (waiting(w), self.previous.as_ref(), None),
            State::Starting { .. } => (waiting(&Waiting::fresh()), self.previous.as_ref(), None),
            State::Running(r) => (
                ContainerState {
                    running: Some(StateRunning {
                        started_at: r.started_at.rfc3339(),
                    }),
                    ..ContainerState::default()
                },
                self.previous.as_ref(),
                Some(r.container_id.clone()),
            ),
            State::Exited {
                finished,
                restart: Some(w),
            } => (waiting(w), Some(finished), None),
            State::Exited {
                finished,
                restart: None,
            } => (
                terminated(finished),
                self.previous.as_ref(),
                finished.container_id.clone(),
            ),
        };
        ContainerStatus {
            name: self.name.clone(),
            state,
            last_state: last.map(terminated).unwrap_or_default(),
            ready: self.ready(),
            restart_count: self.restart_count(),
            image: self.image.clone(),
            image_id: self.image_id().to_string(),
            container_id,
            started: Some(self.running().is_some_and(Running::started)),
        }
    }
}

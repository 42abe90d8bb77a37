//! The sans-IO lifecycle engine: given pods, observations and the time, it
//! decides which container to start, signal or restart, and when.
//!
//! # Contract
//!
//! The engine performs no I/O, reads no clock and spawns nothing. The caller
//! (the agent loop) drives it:
//!
//! - inputs: [`Engine::restore`] once at start-up with what the runtime found,
//!   [`Engine::set_desired`] whenever the sources' set of pods changes,
//!   [`Engine::handle`] for every [`Observation`] of the runtime, and
//!   [`Engine::handle_timeout`] when the time of [`Engine::poll_timeout`] has
//!   come (extra calls are harmless);
//! - outputs: after any input, call [`Engine::poll_action`] until it returns
//!   `None` and carry each [`Action`] out; then read [`Engine::poll_timeout`]
//!   and sleep no longer than that.
//!
//! Every `Action` says which observations it leads to. Reporters read the
//! pods and their statuses at any time through [`Engine::snapshot`].
//!
//! # Layout
//!
//! This file owns the engine's API (its inputs, outputs and the reporters'
//! [`Snapshot`]) and the node-wide decisions: admission, replacements
//! waiting for their predecessor, which pod a timer or observation is for.
//! One pod's lifecycle is `pod/` (a `PodMachine` per pod), one container's
//! instances `container.rs`, probe timing `probe.rs`, back-offs
//! `backoff.rs`, image pulls' notices and back-off `image.rs`. `scenarios/`
//! runs kubelet scenarios on a simulated node.

mod backoff;
mod container;
mod image;
mod pod;
mod probe;

#[cfg(test)]
mod scenarios;

use crate::pod::status::PodStatus;
use crate::pod::{Handler, Pod};
use crate::time::Time;
pub use backoff::BackoffPolicy;
use backoff::CrashLoopBackoff;
pub use container::{Exit, ExitKind};
pub use image::ImageNotice;
use image::PullBackoff;
use pod::{Cx, HandlerError, PodMachine, Runs, StopCause};
pub use pod::{EventType, PodEvent};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// One instance of one container: attempt N is the instance whose
/// restartCount is N.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InstanceRef {
    pub pod_uid: String,
    /// The container's name in the pod spec.
    pub container: String,
    pub attempt: u32,
}

/// The signal a stop sends: SIGTERM first, SIGKILL when the grace ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Term,
    Kill,
}

/// What the shell must do. Results come back as [`Observation`]s.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Action {
    /// Create the pod's namespaces and volumes. Answer with
    /// `SandboxReady` or `SandboxFailed`.
    /// `created_at` is the pod's startTime, to record with it.
    CreateSandbox { pod: Arc<Pod>, created_at: Time },
    /// Create and start instance `attempt` of `container`, pulling its image
    /// if the pull policy says so. Answer with `Image` notices (`Present`, or
    /// `Pulling` then `Pulled` on success), then `Started` or `StartFailed`
    /// (`ErrImagePull` with the registry's words when the pull failed); its
    /// end arrives later as `Exited`.
    StartContainer {
        pod: Arc<Pod>,
        container: String,
        attempt: u32,
    },
    /// Send a signal to a running instance. Its end arrives as `Exited`.
    Signal {
        instance: InstanceRef,
        signal: StopSignal,
    },
    /// The pod completed: tear down its namespaces, keep records, volumes and
    /// logs. No answer.
    StopSandbox { pod_uid: String },
    /// The pod is gone: remove everything of it but its logs. No answer.
    ForgetPod { pod_uid: String },
    /// Run a probe or hook handler against a running instance: `runtime
    /// exec` for exec, a connection in the pod's network namespace for
    /// httpGet and tcpSocket. Answer with `HandlerDone { run }`.
    RunHandler {
        run: u64,
        pod: Arc<Pod>,
        instance: InstanceRef,
        handler: Handler,
    },
    /// Abandon a run (a probe timed out, a preStop ran out of grace): kill
    /// its process or drop its connection. No answer.
    CancelHandler { run: u64 },
}

/// What the runtime observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The pod's sandbox was created.
    SandboxReady { pod_uid: String },
    /// The pod's sandbox could not be created; the engine retries later.
    SandboxFailed { pod_uid: String, message: String },
    /// An instance runs.
    Started {
        instance: InstanceRef,
        container_id: String,
        /// The image's manifest digest, reported as imageID.
        image_id: String,
        at: Time,
    },
    /// No instance could be created (`ErrImagePull`, `ErrImageNeverPull`,
    /// `CreateContainerError`, ...); nothing runs. `ErrImagePull` waits
    /// under the image's ImagePullBackOff, any other reason under the
    /// container's start back-off.
    StartFailed {
        instance: InstanceRef,
        reason: String,
        message: String,
    },
    /// What became of the image of an instance being started, before its
    /// `Started` or `StartFailed`: an event for users.
    Image {
        instance: InstanceRef,
        notice: ImageNotice,
    },
    /// An instance ended.
    Exited {
        instance: InstanceRef,
        started_at: Option<Time>,
        exit: Exit,
    },
    /// A handler of `RunHandler` finished: `Ok` is success (exit 0, HTTP
    /// 200-399, a connection made), `Err` carries the runtime's account of
    /// the failure, which the engine makes a typed error of its purpose.
    HandlerDone {
        run: u64,
        result: Result<(), String>,
    },
}

/// A pod the sources want, with the restart count each of its containers
/// starts from (from the log directory).
#[derive(Debug, Clone)]
pub struct Desired {
    pub pod: Arc<Pod>,
    /// The restart count each container starts from, by container name.
    pub first_attempts: BTreeMap<String, u32>,
    /// A refusal decided outside the engine (a node policy), as (reason,
    /// message): the pod is admitted as rejected, like a failed admission.
    pub refused: Option<(String, String)>,
}

/// A pod the runtime found on disk at start-up.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub pod: Arc<Pod>,
    /// Its startTime, as recorded with its sandbox.
    pub created_at: Time,
    pub sandbox: RecoveredSandbox,
    /// Every instance recorded, in any order.
    pub instances: Vec<RecoveredInstance>,
    /// The restart count each container continues from when no recorded
    /// instance says more (the log directory).
    pub first_attempts: BTreeMap<String, u32>,
}

/// What became of a recovered pod's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveredSandbox {
    /// Still there: the agent alone restarted.
    Ready,
    /// Torn down when the pod completed.
    Stopped,
    /// Gone with the run dir: the node rebooted.
    Lost,
}

/// One instance of a recovered pod, as the runtime recorded it.
#[derive(Debug, Clone)]
pub struct RecoveredInstance {
    /// The container's name in the pod spec.
    pub container: String,
    pub attempt: u32,
    pub container_id: String,
    /// The image's manifest digest.
    pub image_id: String,
    pub started_at: Option<Time>,
    /// `None`: still running.
    pub exit: Option<Exit>,
}

/// What the node decides about the engine's behaviour.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineConfig {
    /// The CrashLoopBackOff of restarts and of failed starts.
    pub backoff: BackoffPolicy,
    /// Node allocatable (millicores, bytes) for admission; `None` admits all.
    pub allocatable: Option<(u64, u64)>,
}

/// All pods of this node and their lifecycle. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    pods: BTreeMap<String, PodMachine>,
    /// Replacements waiting for the old pod of the same name to stop.
    waiting: Vec<Desired>,
    actions: VecDeque<Action>,
    events: VecDeque<PodEvent>,
    crash_backoff: CrashLoopBackoff,
    start_backoff: CrashLoopBackoff,
    pull_backoff: PullBackoff,
    runs: Runs,
    allocatable: Option<(u64, u64)>,
    /// Counts every input that may have changed a status.
    generation: u64,
}

impl Engine {
    /// An engine that holds no pod yet.
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            pods: BTreeMap::new(),
            waiting: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            crash_backoff: CrashLoopBackoff::new(config.backoff),
            start_backoff: CrashLoopBackoff::new(config.backoff),
            pull_backoff: PullBackoff::default(),
            runs: Runs::default(),
            allocatable: config.allocatable,
            generation: 0,
        }
    }

    /// Adopt what a previous run left running: nothing is restarted, restart
    /// counts are kept, completed init containers are not re-run.
    pub fn restore(&mut self, recovered: Vec<Recovered>, now: Time) {
        for r in recovered {
            let machine = PodMachine::restored(r, now);
            self.pods.insert(machine.uid().to_string(), machine);
        }
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            self.with_pod(&uid, now, PodMachine::sync);
        }
    }

    /// The full set of pods the sources want now. Pods not in it are stopped
    /// gracefully; a pod replacing one of the same name starts once the old
    /// one fully stopped.
    pub fn set_desired(&mut self, desired: Vec<Desired>, now: Time) {
        let wanted: BTreeMap<String, Desired> = desired
            .into_iter()
            .map(|d| (d.pod.metadata.uid.clone(), d))
            .collect();
        let unwanted: Vec<String> = self
            .pods
            .keys()
            .filter(|uid| !wanted.contains_key(*uid))
            .cloned()
            .collect();
        for uid in unwanted {
            self.with_pod(&uid, now, |p, cx| p.begin_stop(StopCause::Deleted, cx));
        }
        // A server deletes a pod gracefully by marking it: the pod stays
        // wanted until it stopped, and is never started once marked.
        let marked: Vec<(String, Duration)> = wanted
            .values()
            .filter(|d| d.pod.metadata.deletion_timestamp.is_some())
            .map(|d| {
                let grace = d.pod.grace_period_seconds().max(0) as u64;
                (d.pod.metadata.uid.clone(), Duration::from_secs(grace))
            })
            .collect();
        for (uid, grace) in marked {
            self.with_pod(&uid, now, |p, cx| {
                p.stop_within(StopCause::Deleted, grace, cx)
            });
        }
        self.waiting = wanted
            .into_values()
            .filter(|d| {
                !self.pods.contains_key(&d.pod.metadata.uid)
                    && d.pod.metadata.deletion_timestamp.is_none()
            })
            .collect();
        self.admit_waiting(now);
    }

    fn admit_waiting(&mut self, now: Time) {
        let waiting = std::mem::take(&mut self.waiting);
        for d in waiting {
            let name = d.pod.full_name();
            if self.pods.values().any(|p| p.pod().full_name() == name) {
                self.waiting.push(d);
                continue;
            }
            let uid = d.pod.metadata.uid.clone();
            let rejection = d.refused.or_else(|| self.admission(&d.pod));
            let mut machine = PodMachine::new(d.pod, &d.first_attempts, now);
            if let Some(rejection) = rejection {
                log::warn!(
                    "pod {}: {}: {}",
                    machine.display_name(),
                    rejection.0,
                    rejection.1
                );
                machine.reject(rejection);
            }
            self.pods.insert(uid.clone(), machine);
            self.with_pod(&uid, now, PodMachine::sync);
        }
    }

    /// The kubelet's resource admission: a pod whose effective requests do
    /// not fit next to the pods already admitted is rejected (`OutOfcpu`,
    /// `OutOfmemory`).
    fn admission(&self, pod: &Pod) -> Option<(String, String)> {
        use crate::pod::resources::{pod_cpu_request, pod_memory_request};
        let (cpu_capacity, memory_capacity) = self.allocatable?;
        let admitted = self.pods.values().filter(|p| p.holds_resources());
        let (used_cpu, used_memory) = admitted.fold((0, 0), |(c, m), p| {
            (
                pod_cpu_request(p.pod()).saturating_add(c),
                pod_memory_request(p.pod()).saturating_add(m),
            )
        });
        let checks = [
            ("cpu", pod_cpu_request(pod), used_cpu, cpu_capacity),
            (
                "memory",
                pod_memory_request(pod),
                used_memory,
                memory_capacity,
            ),
        ];
        checks.into_iter().find(|(_, want, used, cap)| *want > 0 && used.saturating_add(*want) > *cap).map(|(name, want, used, cap)| {
            (
                format!("OutOf{name}"),
                format!("Pod was rejected: Node didn't have enough resource: {name}, requested: {want}, used: {used}, capacity: {cap}"),
            )
        })
    }

    /// Take in what the runtime observed.
    pub fn handle(&mut self, observation: Observation, now: Time) {
        match observation {
            Observation::SandboxReady { pod_uid } => {
                self.with_pod(&pod_uid, now, PodMachine::sandbox_ready)
            }
            Observation::SandboxFailed { pod_uid, message } => {
                self.with_pod(&pod_uid, now, |p, cx| p.sandbox_failed(message, cx))
            }
            Observation::Started {
                instance,
                container_id,
                image_id,
                at,
            } => self.with_pod(&instance.pod_uid, now, |p, cx| {
                p.started(
                    &instance.container,
                    instance.attempt,
                    container_id,
                    image_id,
                    at,
                    cx,
                )
            }),
            Observation::StartFailed {
                instance,
                reason,
                message,
            } => self.with_pod(&instance.pod_uid, now, |p, cx| {
                p.start_failed(&instance.container, instance.attempt, reason, message, cx)
            }),
            Observation::Image { instance, notice } => {
                self.with_pod(&instance.pod_uid, now, |p, cx| {
                    p.image_notice(&instance.container, instance.attempt, notice, cx)
                })
            }
            Observation::Exited {
                instance,
                started_at,
                exit,
            } => self.with_pod(&instance.pod_uid, now, |p, cx| {
                p.exited(&instance.container, instance.attempt, started_at, exit, cx)
            }),
            Observation::HandlerDone { run, result } => {
                // A cancelled or stale run has no owner any more.
                if let Some(owner) = self.runs.take(run) {
                    let uid = owner.pod_uid.clone();
                    let result =
                        result.map_err(|message| HandlerError::new(owner.purpose, message));
                    self.with_pod(&uid, now, |p, cx| p.handler_done(owner, run, result, cx));
                }
            }
        }
    }

    /// Act on every deadline that has come: back-offs ending, grace periods
    /// running out, sandbox retries.
    pub fn handle_timeout(&mut self, now: Time) {
        let due: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p.deadline().is_some_and(|t| t <= now))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in due {
            self.with_pod(&uid, now, PodMachine::sync);
        }
    }

    /// The next action for the shell to carry out, in the order decided.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Events for users, in the order they happened.
    pub fn poll_event(&mut self) -> Option<PodEvent> {
        self.events.pop_front()
    }

    /// The earliest time `handle_timeout` has work to do.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.pods.values().filter_map(PodMachine::deadline).min()
    }

    /// The pod of this UID, if the engine holds it.
    pub fn pod(&self, uid: &str) -> Option<&Arc<Pod>> {
        self.pods.get(uid).map(PodMachine::pod)
    }

    /// Does the engine hold this pod (running, stopping or finished)?
    pub fn holds(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// When the deletion of a pod began, if it is being deleted.
    pub fn deleting_since(&self, uid: &str) -> Option<Time> {
        self.pods.get(uid)?.deleting_since()
    }

    /// A read-only view for the reporters (the status file, the API server):
    /// they read what the engine holds and never drive it.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot { engine: self }
    }

    /// Run `f` on one pod with a context, then drop the pod if it is gone and
    /// admit replacements that waited for it.
    fn with_pod(&mut self, uid: &str, now: Time, f: impl FnOnce(&mut PodMachine, &mut Cx)) {
        let Some(machine) = self.pods.get_mut(uid) else {
            return;
        };
        self.generation += 1;
        let mut cx = Cx {
            now,
            actions: &mut self.actions,
            events: &mut self.events,
            crash_backoff: &mut self.crash_backoff,
            start_backoff: &mut self.start_backoff,
            pull_backoff: &mut self.pull_backoff,
            runs: &mut self.runs,
        };
        f(machine, &mut cx);
        machine.refresh_conditions(now);
        if machine.is_gone() {
            self.pods.remove(uid);
            self.admit_waiting(now);
        }
    }
}

impl Exit {
    /// The exit of an instance that vanished without a recorded status:
    /// exit 137, reason `ContainerStatusUnknown`.
    pub fn unknown(finished_at: Time) -> Exit {
        Exit {
            code: 137,
            signal: None,
            kind: ExitKind::Unknown,
            finished_at,
            message: Some("The container could not be located when the pod was terminated".into()),
        }
    }
}

/// What a reporter sees of the engine: the pods it holds and their statuses.
#[derive(Clone, Copy)]
pub struct Snapshot<'a> {
    engine: &'a Engine,
}

/// One pod as a reporter sees it.
pub struct PodReport<'a> {
    /// The pod as the sources gave it.
    pub pod: &'a Arc<Pod>,
    /// The status now, computed when the report is made.
    pub status: PodStatus,
    /// When its deletion began, if it is being deleted.
    pub deleting_since: Option<Time>,
}

impl<'a> Snapshot<'a> {
    /// Changes whenever a status may have changed: a reporter can skip its
    /// work while it stays the same.
    pub fn generation(&self) -> u64 {
        self.engine.generation
    }

    /// Every pod the engine holds, with its status now.
    pub fn pods(&self) -> impl Iterator<Item = PodReport<'a>> + 'a {
        let engine = self.engine;
        engine.pods.values().map(|p| PodReport {
            pod: p.pod(),
            status: p.status(),
            deleting_since: p.deleting_since(),
        })
    }

    /// Does the engine hold this pod (running, stopping or finished)?
    pub fn holds(&self, uid: &str) -> bool {
        self.engine.holds(uid)
    }
}

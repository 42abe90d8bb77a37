//! One pod's lifecycle: sandbox, init containers in order, regular
//! containers under the restart policy, completion and termination.
//!
//! `sync` is the kubelet's SyncPod for one pod, as a pure function of the
//! machine's state and the time: it is called after every observation and
//! timer of the pod and queues the actions that move it forward.
//!
//! This file owns [`PodMachine`] (its fields are private to this module and
//! its children, which hold its other methods), its construction (admitted
//! or recovered), the queries on it and `sync`. The children: `ordering`
//! (which container starts next), `observe` (what the runtime reports),
//! `images` (image notices and the pull back-off),
//! `probing`, `termination`, `status` (the pod status), `events` (what users
//! are told) and `context` (what the methods work with: [`Cx`], handler
//! runs).

mod context;
mod events;
mod images;
mod observe;
mod ordering;
mod probing;
mod status;
mod termination;

pub use context::{Cx, HandlerError, Runs};
pub use events::{EventType, PodEvent};

use super::container::{ContainerMachine, Finished, Hook, Role, Running, State};
use super::{Action, Recovered, RecoveredSandbox};
use crate::pod::status::PodPhase;
use crate::pod::{Container, Pod, RestartPolicy};
use crate::time::Time;
use probing::adopted_probe_workers;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The pod's sandbox (namespaces, volumes) as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    /// Not created (yet, or again after a reboot).
    Absent,
    /// `CreateSandbox` asked; waiting for the answer.
    Creating,
    Ready,
    /// Its creation failed; it is retried at `retry_at`.
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

/// Where the pod as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Admitted and running its containers.
    Active,
    /// Terminating since `since`, all of it done within `grace`.
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
    /// A pod just admitted at `now`, none of its containers started; each
    /// container's first attempt comes from `first_attempts`, or is 0.
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

    /// The pod's UID, the engine's key for it.
    pub fn uid(&self) -> &str {
        &self.pod.metadata.uid
    }

    /// `name_namespace(uid)`, the kubelet's way of naming a pod in messages.
    pub fn display_name(&self) -> String {
        let m = &self.pod.metadata;
        format!("{}_{}({})", m.name, m.namespace, m.uid)
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

    /// Move the pod forward as far as it can go now: its sandbox, then its
    /// running instances, init containers, regular ones; or its termination.
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
}

fn secs(seconds: i64) -> Duration {
    Duration::from_secs(seconds.max(0) as u64)
}

//! Pod status exactly as the kubelet computes it: container statuses, phase
//! (`getPhase`, rules 48-53) and conditions (rules 54-58).

use super::container::Role;
use super::pod::{Lifecycle, PodMachine, Sandbox};
use crate::pod::status::{ContainerStatus, PodCondition, PodPhase, PodStatus};
use crate::pod::RestartPolicy;
use crate::time::Time;

impl PodMachine {
    /// The status of this pod now. Condition transition times come from
    /// `refresh_conditions`, which the engine calls after every change.
    pub fn status(&self) -> PodStatus {
        let default_reason = if self.pod.spec.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let of_role = |role| {
            self.containers
                .iter()
                .filter(|c| c.role == role)
                .map(|c| c.status(default_reason))
                .collect::<Vec<_>>()
        };
        let init = of_role(Role::Init);
        let regular = of_role(Role::Regular);
        let phase = match self.lifecycle {
            Lifecycle::Finished(phase) => phase,
            _ => phase(self.pod.spec.restart_policy, &init, &regular),
        };
        let conditions = self
            .conditions(phase)
            .into_iter()
            .map(|c| {
                let time = self.condition_times.get(c.kind).map(|(_, t)| t.rfc3339());
                PodCondition {
                    kind: c.kind.into(),
                    status: if c.status { "True" } else { "False" }.into(),
                    reason: c.reason,
                    message: c.message,
                    last_transition_time: time,
                }
            })
            .collect();
        let message = match &self.sandbox {
            Sandbox::Failed { message, .. } => Some(format!("pod sandbox: {message}")),
            _ => None,
        };
        PodStatus {
            phase,
            conditions,
            message,
            start_time: Some(self.created_at.rfc3339()),
            init_container_statuses: init,
            container_statuses: regular,
            ..PodStatus::default()
        }
    }

    /// Record the time of every condition whose status flipped.
    pub fn refresh_conditions(&mut self, now: Time) {
        let phase = self.status().phase;
        for c in self.conditions(phase) {
            let entry = self
                .condition_times
                .entry(c.kind)
                .or_insert((c.status, now));
            if entry.0 != c.status {
                *entry = (c.status, now);
            }
        }
    }

    fn conditions(&self, phase: PodPhase) -> Vec<Condition> {
        let terminal = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
        let completed_reason = || match phase {
            PodPhase::Succeeded => "PodCompleted",
            _ => "PodFailed",
        };

        let sandbox_ready = self.sandbox == Sandbox::Ready;
        let incomplete: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| c.role == Role::Init && !c.ready())
            .map(|c| c.name.as_str())
            .collect();
        let initialized = if self.initialized() {
            Condition::new("Initialized", true)
                .reason((phase == PodPhase::Succeeded).then_some("PodCompleted"))
        } else {
            Condition::new("Initialized", false)
                .reason(Some("ContainersNotInitialized"))
                .message(format!(
                    "containers with incomplete status: [{}]",
                    incomplete.join(" ")
                ))
        };

        let unready: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| c.role == Role::Regular && !c.ready())
            .map(|c| c.name.as_str())
            .collect();
        let containers_ready = if terminal {
            Condition::new("ContainersReady", false).reason(Some(completed_reason()))
        } else if unready.is_empty() {
            Condition::new("ContainersReady", true)
        } else {
            Condition::new("ContainersReady", false)
                .reason(Some("ContainersNotReady"))
                .message(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                ))
        };
        let ready = Condition {
            kind: "Ready",
            ..containers_ready.clone()
        };
        vec![
            Condition::new("PodReadyToStartContainers", sandbox_ready),
            initialized,
            ready,
            containers_ready,
            Condition::new("PodScheduled", true),
        ]
    }
}

#[derive(Clone)]
struct Condition {
    kind: &'static str,
    status: bool,
    reason: Option<String>,
    message: Option<String>,
}

impl Condition {
    fn new(kind: &'static str, status: bool) -> Self {
        Condition {
            kind,
            status,
            reason: None,
            message: None,
        }
    }

    fn reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.map(Into::into);
        self
    }

    fn message(mut self, message: String) -> Self {
        self.message = Some(message);
        self
    }
}

/// The kubelet's `getPhase` for a pod that is not yet terminal.
pub fn phase(
    policy: RestartPolicy,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
) -> PodPhase {
    let mut pending_init = 0;
    let mut failed_init = 0;
    for s in init {
        if s.state.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = &s.state.terminated {
            failed_init += usize::from(t.exit_code != 0);
        } else if let Some(t) = &s.last_state.terminated {
            failed_init += usize::from(t.exit_code != 0);
        } else {
            pending_init += 1;
        }
    }
    let (mut running, mut stopped, mut succeeded, mut waiting) = (0, 0, 0, 0);
    for s in regular {
        if s.state.running.is_some() {
            running += 1;
        } else if let Some(t) = &s.state.terminated {
            stopped += 1;
            succeeded += usize::from(t.exit_code == 0);
        } else if s.last_state.terminated.is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && policy == RestartPolicy::Never {
        return PodPhase::Failed;
    }
    if pending_init > 0 || waiting > 0 {
        return PodPhase::Pending;
    }
    if running > 0 {
        return PodPhase::Running;
    }
    if stopped > 0 {
        return match policy {
            RestartPolicy::Always => PodPhase::Running,
            RestartPolicy::OnFailure if stopped != succeeded => PodPhase::Running,
            RestartPolicy::Never if stopped != succeeded => PodPhase::Failed,
            _ => PodPhase::Succeeded,
        };
    }
    PodPhase::Pending
}

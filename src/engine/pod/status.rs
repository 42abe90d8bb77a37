//! Pod status exactly as the kubelet computes it: container statuses, phase
//! (`getPhase`) and conditions.

use super::{Lifecycle, PodMachine, Sandbox};
use crate::engine::container::{ContainerMachine, Role, Running};
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
        // initContainerStatuses lists plain init containers and sidecars
        // together, in spec order.
        let mut init = Vec::new();
        let mut sidecar = Vec::new();
        let mut regular = Vec::new();
        for c in &self.containers {
            let status = c.status(default_reason);
            match c.role() {
                Role::Regular => regular.push(status),
                role => {
                    sidecar.push(role == Role::Sidecar);
                    init.push(status);
                }
            }
        }
        let phase = match self.lifecycle {
            Lifecycle::Finished(phase) => phase,
            // After a lost sandbox the pod is Pending until initialized.
            _ if self.reinit => PodPhase::Pending,
            _ => phase(
                self.pod.spec.restart_policy,
                &init,
                &sidecar,
                &regular,
                self.initialized(),
            ),
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
        let (reason, message) = match (&self.rejection, &self.sandbox) {
            (Some((reason, message)), _) => (Some(reason.clone()), Some(message.clone())),
            (None, Sandbox::Failed { message, .. }) => {
                (None, Some(format!("pod sandbox: {message}")))
            }
            _ => (None, None),
        };
        PodStatus {
            phase,
            conditions,
            reason,
            message,
            qos_class: Some(crate::pod::resources::qos_class(&self.pod).name().into()),
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
        // Plain init containers not Ready, sidecars not Started.
        let incomplete: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| match c.role() {
                Role::Init => !c.ready(),
                Role::Sidecar => !c.running().is_some_and(Running::started),
                Role::Regular => false,
            })
            .map(ContainerMachine::name)
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

        // Sidecars and regular containers.
        let unready: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| c.role() != Role::Init && !c.ready())
            .map(ContainerMachine::name)
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

/// The kubelet's `getPhase` for a pod that is not yet terminal
/// (docs/lifecycle.md, "Pod phase"). `sidecar[i]` says whether `init[i]` is a sidecar.
pub fn phase(
    policy: RestartPolicy,
    init: &[ContainerStatus],
    sidecar: &[bool],
    regular: &[ContainerStatus],
    initialized: bool,
) -> PodPhase {
    let mut pending_init = 0;
    let mut pending_sidecars = 0;
    let mut failed_init = 0;
    let (mut running, mut stopped, mut succeeded, mut waiting) = (0, 0, 0, 0);
    for (s, is_sidecar) in init.iter().zip(sidecar) {
        if *is_sidecar {
            // Terminated sidecars are ignored; running ones count as running.
            if s.state.running.is_some() {
                running += 1;
                pending_sidecars += usize::from(s.started != Some(true));
            } else if s.state.terminated.is_none() && s.last_state.terminated.is_none() {
                pending_sidecars += 1;
            }
        } else if s.state.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = &s.state.terminated {
            failed_init += usize::from(t.exit_code != 0);
        } else if let Some(t) = &s.last_state.terminated {
            failed_init += usize::from(t.exit_code != 0);
        } else {
            pending_init += 1;
        }
    }
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
    // After initialization, restarting sidecars do not make the pod Pending.
    if pending_init > 0 || (pending_sidecars > 0 && !initialized) || waiting > 0 {
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

//! Probes of running instances: when each worker runs its probe, what a
//! result that flips means (a failed startup or liveness probe restarts the
//! container), and fresh workers for adopted instances.

use super::context::{Purpose, RunOwner};
use super::{secs, Cx, Lifecycle, PodMachine};
use crate::engine::container::Hook;
use crate::engine::probe::{ProbeKind, ProbeWorker};
use crate::engine::{Action, InstanceRef};
use crate::pod::{Container, Pod, Probe};
use crate::time::Time;

impl PodMachine {
    /// Hooks, probes and single-container stops of running instances.
    pub(super) fn drive_running(&mut self, cx: &mut Cx) {
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

    /// A probe attempt ended: count it, and act on a flipped result.
    pub(super) fn probe_outcome(&mut self, i: usize, kind: ProbeKind, success: bool, cx: &mut Cx) {
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
}

/// The probe of `kind` in a container's spec.
pub(super) fn probe_of(c: &Container, kind: ProbeKind) -> Option<&Probe> {
    match kind {
        ProbeKind::Startup => c.startup_probe.as_ref(),
        ProbeKind::Liveness => c.liveness_probe.as_ref(),
        ProbeKind::Readiness => c.readiness_probe.as_ref(),
    }
}

/// Fresh probe workers for an adopted instance: after an agent restart the
/// kubelet's workers start over too, each after a spread delay.
pub(super) fn adopted_probe_workers(
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

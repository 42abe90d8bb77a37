//! Termination: of one container (preStop hook, SIGTERM, SIGKILL after the
//! grace period) and of the whole pod (every container together, sidecars
//! last in reverse order), and what follows it: the pod is forgotten or kept
//! as finished.

use super::context::Purpose;
use super::events::Normal;
use super::observe::launch_hook;
use super::{secs, Cx, Lifecycle, PodMachine, Sandbox, StopCause};
use crate::engine::container::{ContainerMachine, Hook, Role, StopStage, Stopping};
use crate::engine::{Action, InstanceRef, StopSignal};
use crate::time::Time;
use std::time::Duration;

/// The kubelet's floor for the time between SIGTERM and SIGKILL.
const MIN_STOP_GRACE: Duration = Duration::from_secs(2);

impl PodMachine {
    /// Begin graceful termination of the whole pod with
    /// the pod's own grace period.
    pub fn begin_stop(&mut self, cause: StopCause, cx: &mut Cx) {
        let grace = secs(self.pod.grace_period_seconds());
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

    /// Begin stopping one running container with `grace`: its preStop hook
    /// first (when grace > 0), then, for a sidecar in a stopping pod, its
    /// turn, then SIGTERM and SIGKILL.
    pub(super) fn stop_container(&mut self, i: usize, grace: Duration, cx: &mut Cx) {
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
        cx.normal(&uid, &name, Normal::Killing);
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
    pub(super) fn advance_stop(&mut self, i: usize, cx: &mut Cx) {
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
    pub(super) fn sidecar_turn(&self, i: usize) -> bool {
        self.containers.iter().enumerate().all(|(j, c)| {
            let must_outlive = c.role() == Role::Regular || (c.role() == Role::Sidecar && j > i);
            !(must_outlive && c.is_live())
        })
    }

    /// Stop every live instance together, then finish once
    /// none is live. `deadline` is the end of the pod's grace period.
    pub(super) fn drive_stop(&mut self, cause: StopCause, deadline: Time, cx: &mut Cx) {
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

    /// Everything stopped: forget a deleted pod, keep a completed one with
    /// its sandbox torn down.
    pub(super) fn finish_stop(&mut self, cause: StopCause, cx: &mut Cx) {
        match cause {
            StopCause::Deleted => {
                cx.actions.push_back(Action::ForgetPod {
                    pod_uid: self.uid().to_string(),
                });
                cx.crash_backoff.forget_pod(self.uid());
                cx.start_backoff.forget_pod(self.uid());
                cx.pull_backoff.forget_pod(self.uid());
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

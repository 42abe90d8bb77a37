//! What the runtime reports of a pod (its sandbox, an instance started, failed
//! to start or exited, a handler done) and the lifecycle hooks it leads to.

use super::context::{HandlerError, Purpose, RunOwner};
use super::events::{Normal, Warning};
use super::probing::probe_of;
use super::{secs, Cx, PodMachine, Sandbox};
use crate::engine::backoff::BackoffKey;
use crate::engine::container::{Exit, Hook, Running, StopStage, Waiting};
use crate::engine::image::ERR_IMAGE_PULL;
use crate::engine::probe::{ProbeKind, ProbeWorker};
use crate::engine::{Action, InstanceRef};
use crate::pod::{Handler, LifecycleHandler, Pod};
use crate::time::Time;
use std::sync::Arc;

impl PodMachine {
    /// The sandbox being created is ready.
    pub fn sandbox_ready(&mut self, cx: &mut Cx) {
        if self.sandbox != Sandbox::Creating {
            return;
        }
        self.sandbox = Sandbox::Ready;
        self.sync(cx);
    }

    /// The sandbox could not be created: retry under the start back-off.
    pub fn sandbox_failed(&mut self, message: String, cx: &mut Cx) {
        if self.sandbox != Sandbox::Creating {
            return;
        }
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
        self.sandbox = Sandbox::Failed { message, retry_at };
        self.sync(cx);
    }

    /// The runtime could not create the instance: wait and retry under the
    /// start back-off (a failed pull: under the image's, see `images`),
    /// without spending an attempt number.
    pub fn start_failed(
        &mut self,
        name: &str,
        attempt: u32,
        reason: String,
        message: String,
        cx: &mut Cx,
    ) {
        if reason == ERR_IMAGE_PULL {
            return self.pull_failed(name, attempt, message, cx);
        }
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
        let warning = Warning::StartFailed {
            reason: &reason,
            message: &message,
        };
        cx.warn(&key.pod_uid, name, warning);
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

    /// The runtime started instance `attempt` of container `name`: it runs
    /// with fresh probe workers, and its postStart hook begins. Its image is
    /// there: a later failed pull of it starts a new back-off.
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
        cx.pull_backoff.succeeded(&uid, &spec.image);
        for event in [Normal::Created, Normal::Started] {
            cx.normal(&uid, name, event);
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

    /// A handler the runtime ran has finished.
    pub fn handler_done(
        &mut self,
        owner: RunOwner,
        run: u64,
        result: Result<(), HandlerError>,
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
                    if let Err(error) = &result {
                        cx.warn(
                            &owner.pod_uid,
                            &owner.container,
                            Warning::HandlerFailed(error),
                        );
                    }
                    self.probe_outcome(i, kind, result.is_ok(), cx);
                }
            }
            Purpose::PostStart if r.post_start == (Hook::Running { run }) => {
                r.post_start = Hook::Done;
                if let Err(error) = &result {
                    // A failed postStart kills the container; the
                    // restart policy decides what follows.
                    cx.warn(
                        &owner.pod_uid,
                        &owner.container,
                        Warning::HandlerFailed(error),
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
                    if let Err(error) = &result {
                        cx.warn(
                            &owner.pod_uid,
                            &owner.container,
                            Warning::HandlerFailed(error),
                        );
                    }
                }
            }
            Purpose::PostStart => {}
        }
        self.sync(cx);
    }
}

/// Begin a lifecycle hook: a `sleep` is the engine's own timer, anything
/// else is handed to the runtime. No hook is at once `Done`.
pub(super) fn launch_hook(
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

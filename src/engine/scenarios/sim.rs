//! A simulated node for engine tests: a runtime that answers actions at once
//! (or after a scripted pull), containers that follow scripts, and a clock
//! that jumps to the next event.

use super::fixtures::exit;
use crate::engine::backoff::BackoffPolicy;
use crate::engine::probe::ProbeKind;
use crate::engine::{
    Action, Desired, Engine, EngineConfig, ImageNotice, InstanceRef, Observation, StopSignal,
};
use crate::pod::status::{PodPhase, PodStatus};
use crate::pod::{Handler, Pod};
use crate::time::Time;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// How a simulated probe answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Success,
    Failure,
    /// Never answers: the engine's timeout decides.
    Hang,
}

/// A probe script: the answer for (instance attempt, seconds since its start).
pub type ProbeScript = Box<dyn Fn(u32, u64) -> Answer>;

/// What a handler the runtime is asked to run is.
enum Handled {
    Probe(ProbeKind),
    /// A lifecycle hook: `"postStart"` or `"preStop"`.
    Hook(&'static str),
}

/// What one instance of a container does once started.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// Exit with `code` after `secs` seconds.
    Exit { secs: u64, code: i32 },
    /// Run until signalled; exit on SIGTERM.
    Serve,
    /// Run until SIGKILL.
    IgnoreTerm,
    /// Run until signalled; exit `secs` after SIGTERM (upstream's
    /// `TerminationSeconds`).
    SlowTerm { secs: u64 },
}

/// How the simulated runtime gets a container's image for one start.
#[derive(Debug, Clone, Copy)]
pub enum Pull {
    /// In the store: `Present`, and the start goes on.
    Present,
    /// Pulled in `secs`: `Pulling`, then `Pulled` and the start.
    Pulls { secs: u64, bytes: u64 },
    /// Fails after `secs`: `Pulling`, then `StartFailed` with `ErrImagePull`
    /// and the registry's `message`.
    Fails { secs: u64, message: &'static str },
}

/// A pull in progress: for which instance, and how it ends: the image's
/// size, or the registry's words.
struct Pulling {
    ends_at: Time,
    instance: InstanceRef,
    took: Duration,
    result: Result<u64, &'static str>,
}

/// What the simulated runtime did, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Sandbox(String),
    Start(String, u32),
    /// A pull of the container's image began.
    Pull(String),
    Exit(String, u32, i32),
    Term(String),
    Kill(String),
    StopSandbox(String),
    Forget(String),
    Probe(String, ProbeKind),
    /// A hook handed to the runtime ("postStart" or "preStop").
    Hook(String, &'static str),
    Cancel(u64),
}

struct Live {
    instance: InstanceRef,
    started_at: Time,
    exits_at: Option<(Time, i32)>,
    /// How long after SIGTERM it exits; `None`: it ignores SIGTERM.
    term_delay: Option<Duration>,
}

pub struct Sim {
    pub engine: Engine,
    pub now: Time,
    scripts: BTreeMap<String, Vec<Script>>,
    /// Containers whose next start fails with this reason.
    pub failing_starts: BTreeMap<String, u32>,
    live: Vec<Live>,
    pub seen: Vec<(u64, Seen)>,
    start: Time,
    probes: BTreeMap<(String, ProbeKind), ProbeScript>,
    /// Hooks run by the runtime: how long they take and whether they fail.
    hooks: BTreeMap<(String, &'static str), (u64, bool)>,
    /// Handler answers (`HandlerDone`) due later, with their time.
    answers: Vec<(Time, Observation)>,
    /// How each container's next starts get its image; the last repeats.
    pull_scripts: BTreeMap<String, VecDeque<Pull>>,
    pulling: Vec<Pulling>,
    /// Wake-ups in a row at one time that changed nothing.
    spins: u32,
}

impl Sim {
    pub fn new(backoff: BackoffPolicy) -> Sim {
        let start = Time::from_secs(1_000_000);
        Sim {
            engine: Engine::new(EngineConfig {
                backoff,
                allocatable: None,
            }),
            now: start,
            scripts: BTreeMap::new(),
            failing_starts: BTreeMap::new(),
            live: Vec::new(),
            seen: Vec::new(),
            start,
            probes: BTreeMap::new(),
            hooks: BTreeMap::new(),
            answers: Vec::new(),
            pull_scripts: BTreeMap::new(),
            pulling: Vec::new(),
            spins: 0,
        }
    }

    /// Answers of `container`'s probe of `kind`.
    pub fn probe(
        &mut self,
        container: &str,
        kind: ProbeKind,
        script: impl Fn(u32, u64) -> Answer + 'static,
    ) {
        self.probes
            .insert((container.into(), kind), Box::new(script));
    }

    /// `container`'s exec/httpGet hook (`"postStart"` or `"preStop"`) takes
    /// `secs` and then succeeds or fails.
    pub fn hook(&mut self, container: &str, which: &'static str, secs: u64, ok: bool) {
        self.hooks.insert((container.into(), which), (secs, ok));
    }

    /// Which of the container's probes or hooks `handler` is.
    fn purpose_of(pod: &Pod, container: &str, handler: &Handler) -> Handled {
        let c = pod.container(container).expect("container in spec");
        let probes = [
            (ProbeKind::Startup, &c.startup_probe),
            (ProbeKind::Liveness, &c.liveness_probe),
            (ProbeKind::Readiness, &c.readiness_probe),
        ];
        for (kind, p) in probes {
            if p.as_ref().and_then(|p| p.handler()).as_ref() == Some(handler) {
                return Handled::Probe(kind);
            }
        }
        let l = c.lifecycle.as_ref().expect("a hook");
        if l.post_start.as_ref().and_then(|h| h.handler()).as_ref() == Some(handler) {
            Handled::Hook("postStart")
        } else {
            Handled::Hook("preStop")
        }
    }

    /// Starts of `container` get its image as `pulls` say, in turn (a failed
    /// start counts); the last repeats. Without: `Present`.
    pub fn pulls(&mut self, container: &str, pulls: &[Pull]) {
        self.pull_scripts
            .insert(container.into(), pulls.iter().copied().collect());
    }

    /// Instances of `container` follow `scripts` in turn; the last repeats.
    pub fn script(&mut self, container: &str, scripts: &[Script]) {
        self.scripts.insert(container.into(), scripts.to_vec());
    }

    fn secs(&self) -> u64 {
        (self.now.0 - self.start.0) / 1000
    }

    fn see(&mut self, s: Seen) {
        let t = self.secs();
        self.seen.push((t, s));
    }

    pub fn desire(&mut self, pods: &[&Arc<Pod>]) {
        let desired = pods
            .iter()
            .map(|p| Desired {
                pod: Arc::clone(p),
                first_attempts: BTreeMap::new(),
                refused: None,
            })
            .collect();
        self.engine.set_desired(desired, self.now);
        self.drain();
    }

    /// Carry out every queued action, answering as a runtime would.
    pub fn drain(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::CreateSandbox { pod, .. } => {
                    self.see(Seen::Sandbox(pod.metadata.name.clone()));
                    let obs = Observation::SandboxReady {
                        pod_uid: pod.metadata.uid.clone(),
                    };
                    self.engine.handle(obs, self.now);
                }
                Action::StartContainer {
                    pod,
                    container,
                    attempt,
                } => self.start(&pod, container, attempt),
                Action::Signal { instance, signal } => {
                    let name = instance.container.clone();
                    self.see(match signal {
                        StopSignal::Term => Seen::Term(name),
                        StopSignal::Kill => Seen::Kill(name),
                    });
                    let now = self.now;
                    if let Some(l) = self.live.iter_mut().find(|l| l.instance == instance) {
                        match (signal, l.term_delay) {
                            (StopSignal::Term, Some(d)) if l.exits_at.is_none() => {
                                l.exits_at = Some((now + d, 143))
                            }
                            (StopSignal::Term, _) => {}
                            (StopSignal::Kill, _) => l.exits_at = Some((now, 137)),
                        }
                    }
                    self.deliver_exits();
                }
                Action::StopSandbox { pod_uid } => self.see(Seen::StopSandbox(pod_uid)),
                Action::ForgetPod { pod_uid } => self.see(Seen::Forget(pod_uid)),
                Action::RunHandler {
                    run,
                    pod,
                    instance,
                    handler,
                } => {
                    self.run_handler(run, &pod, instance, &handler);
                    self.deliver_answers();
                }
                Action::CancelHandler { run } => {
                    self.see(Seen::Cancel(run));
                    self.answers.retain(|(_, answer)| {
                        !matches!(answer, Observation::HandlerDone { run: r, .. } if *r == run)
                    });
                }
            }
        }
    }

    /// Run a probe or hook as its script says: a probe answers at once (or
    /// never), a hook after its time.
    fn run_handler(&mut self, run: u64, pod: &Pod, instance: InstanceRef, handler: &Handler) {
        let name = instance.container.clone();
        let (at, failure) = match Self::purpose_of(pod, &name, handler) {
            Handled::Probe(kind) => {
                self.see(Seen::Probe(name.clone(), kind));
                let since = self
                    .live
                    .iter()
                    .find(|l| l.instance == instance)
                    .map_or(0, |l| self.now.saturating_sub(l.started_at).as_secs());
                let answer = self
                    .probes
                    .get(&(name, kind))
                    .map_or(Answer::Success, |f| f(instance.attempt, since));
                match answer {
                    Answer::Success => (self.now, None),
                    Answer::Failure => (self.now, Some("probe failed")),
                    Answer::Hang => return,
                }
            }
            Handled::Hook(which) => {
                self.see(Seen::Hook(name.clone(), which));
                let (secs, ok) = self.hooks.get(&(name, which)).copied().unwrap_or((0, true));
                let at = self.now + Duration::from_secs(secs);
                (at, (!ok).then_some("hook failed"))
            }
        };
        let result = failure.map_or(Ok(()), |message| Err(message.to_string()));
        let answer = Observation::HandlerDone { run, result };
        self.answers.push((at, answer));
    }

    /// Answer `StartContainer` as the runtime would: a scripted start failure,
    /// else the image as the container's pull script says (a pull that takes
    /// time answers later), then the instance runs.
    fn start(&mut self, pod: &Pod, container: String, attempt: u32) {
        let instance = InstanceRef {
            pod_uid: pod.metadata.uid.clone(),
            container: container.clone(),
            attempt,
        };
        if let Some(n) = self.failing_starts.get_mut(&container).filter(|n| **n > 0) {
            *n -= 1;
            let obs = Observation::StartFailed {
                instance,
                reason: "ErrImageNeverPull".into(),
                message: "image not present".into(),
            };
            return self.engine.handle(obs, self.now);
        }
        let pull = match self.pull_scripts.get_mut(&container) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().copied(),
            None => None,
        };
        let (secs, result) = match pull.unwrap_or(Pull::Present) {
            Pull::Present => {
                let notice = ImageNotice::Present;
                let obs = Observation::Image {
                    instance: instance.clone(),
                    notice,
                };
                self.engine.handle(obs, self.now);
                return self.run(instance);
            }
            Pull::Pulls { secs, bytes } => (secs, Ok(bytes)),
            Pull::Fails { secs, message } => (secs, Err(message)),
        };
        self.see(Seen::Pull(container));
        let notice = ImageNotice::Pulling;
        let obs = Observation::Image {
            instance: instance.clone(),
            notice,
        };
        self.engine.handle(obs, self.now);
        let took = Duration::from_secs(secs);
        self.pulling.push(Pulling {
            ends_at: self.now + took,
            instance,
            took,
            result,
        });
        self.deliver_pulls();
    }

    /// Pulls that ended: the start goes on, or fails with `ErrImagePull`.
    fn deliver_pulls(&mut self) {
        let now = self.now;
        let (due, rest): (Vec<Pulling>, Vec<Pulling>) = std::mem::take(&mut self.pulling)
            .into_iter()
            .partition(|p| p.ends_at <= now);
        self.pulling = rest;
        for Pulling {
            instance,
            took,
            result,
            ..
        } in due
        {
            match result {
                Ok(bytes) => {
                    let notice = ImageNotice::Pulled { bytes, took };
                    let obs = Observation::Image {
                        instance: instance.clone(),
                        notice,
                    };
                    self.engine.handle(obs, now);
                    self.run(instance);
                }
                Err(message) => {
                    let obs = Observation::StartFailed {
                        instance,
                        reason: "ErrImagePull".into(),
                        message: message.into(),
                    };
                    self.engine.handle(obs, now);
                }
            }
        }
    }

    /// The instance's image is there: it runs as its script says.
    fn run(&mut self, instance: InstanceRef) {
        let (container, attempt) = (instance.container.clone(), instance.attempt);
        self.see(Seen::Start(container.clone(), attempt));
        let scripts = self.scripts.get(&container).cloned().unwrap_or_default();
        let script = scripts
            .get(attempt as usize)
            .or(scripts.last())
            .copied()
            .unwrap_or(Script::Serve);
        let (exits_at, term_delay) = match script {
            Script::Exit { secs, code } => (
                Some((self.now + Duration::from_secs(secs), code)),
                Some(Duration::ZERO),
            ),
            Script::Serve => (None, Some(Duration::ZERO)),
            Script::IgnoreTerm => (None, None),
            Script::SlowTerm { secs } => (None, Some(Duration::from_secs(secs))),
        };
        self.live.push(Live {
            instance: instance.clone(),
            started_at: self.now,
            exits_at,
            term_delay,
        });
        let obs = Observation::Started {
            instance,
            container_id: format!("sim://{container}-{attempt}"),
            image_id: "sha256:sim".into(),
            at: self.now,
        };
        self.engine.handle(obs, self.now);
    }

    fn deliver_answers(&mut self) {
        let now = self.now;
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.answers)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.answers = rest;
        for (_, answer) in due {
            self.engine.handle(answer, now);
        }
    }

    fn deliver_exits(&mut self) {
        let now = self.now;
        let (due, rest): (Vec<Live>, Vec<Live>) = std::mem::take(&mut self.live)
            .into_iter()
            .partition(|l| l.exits_at.is_some_and(|(t, _)| t <= now));
        self.live = rest;
        for l in due {
            let code = l.exits_at.map_or(0, |(_, c)| c);
            self.see(Seen::Exit(
                l.instance.container.clone(),
                l.instance.attempt,
                code,
            ));
            let obs = Observation::Exited {
                instance: l.instance,
                started_at: Some(l.started_at),
                exit: exit(code, now),
            };
            self.engine.handle(obs, now);
        }
    }

    /// Advance the clock event by event until `secs` seconds after the start.
    pub fn run_until(&mut self, secs: u64) {
        let end = self.start + Duration::from_secs(secs);
        loop {
            self.drain();
            let next_exit = self
                .live
                .iter()
                .filter_map(|l| l.exits_at.map(|(t, _)| t))
                .min();
            let next_answer = self.answers.iter().map(|(t, _)| *t).min();
            let next_pull = self.pulling.iter().map(|p| p.ends_at).min();
            let next = [
                next_exit,
                next_answer,
                next_pull,
                self.engine.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    assert!(t >= self.now, "a deadline in the past would spin the loop");
                    let before = (self.now, self.seen.len());
                    self.now = t;
                    self.deliver_exits();
                    self.deliver_answers();
                    self.deliver_pulls();
                    self.engine.handle_timeout(self.now);
                    self.drain();
                    let idle = (self.now, self.seen.len()) == before && self.answers.is_empty();
                    self.spins = if idle { self.spins + 1 } else { 0 };
                    assert!(
                        self.spins < 1000,
                        "the engine keeps asking to be woken at {t:?} and does nothing"
                    );
                }
                _ => {
                    self.now = end;
                    self.drain();
                    return;
                }
            }
        }
    }

    /// When pulls of `container`'s image began, in seconds.
    pub fn pulls_of(&self, container: &str) -> Vec<u64> {
        self.seen
            .iter()
            .filter(|(_, s)| matches!(s, Seen::Pull(c) if c == container))
            .map(|(t, _)| *t)
            .collect()
    }

    pub fn starts_of(&self, container: &str) -> Vec<u64> {
        self.seen
            .iter()
            .filter(|(_, s)| matches!(s, Seen::Start(c, _) if c == container))
            .map(|(t, _)| *t)
            .collect()
    }

    pub fn status(&self, name: &str) -> PodStatus {
        self.engine
            .snapshot()
            .pods()
            .find(|r| r.pod.metadata.name == name)
            .map(|r| r.status)
            .expect("pod present")
    }

    pub fn phase(&self, name: &str) -> PodPhase {
        self.status(name).phase
    }
}

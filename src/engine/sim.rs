//! A simulated node for engine tests: a runtime that answers actions at once,
//! containers that follow scripts, and a clock that jumps to the next event.

use super::probe::ProbeKind;
use super::*;
use crate::pod::decode::decode_manifest;
use crate::pod::defaults;
use crate::pod::status::PodPhase;
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

/// What the simulated runtime did, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Sandbox(String),
    Start(String, u32),
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
    /// Handler answers due later: (time, run, result).
    answers: Vec<(Time, u64, Result<(), String>)>,
    /// Wake-ups in a row at one time that changed nothing.
    spins: u32,
}

/// What the runtime would report of a pod found at start-up.
pub fn recovered(
    pod: &Arc<Pod>,
    created_at: Time,
    sandbox: RecoveredSandbox,
    instances: Vec<RecoveredInstance>,
) -> Recovered {
    Recovered {
        pod: pod.clone(),
        created_at,
        sandbox,
        instances,
        first_attempts: BTreeMap::new(),
    }
}

pub fn pod(yaml: &str) -> Arc<Pod> {
    let mut pod = decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod;
    defaults::apply(&mut pod);
    if pod.metadata.uid.is_empty() {
        pod.metadata.uid = format!("uid-{}", pod.metadata.name);
    }
    let errors = crate::pod::validate::validate(&pod);
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(pod)
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
    fn purpose_of(
        pod: &Pod,
        container: &str,
        handler: &Handler,
    ) -> Result<ProbeKind, &'static str> {
        let c = pod.container(container).expect("container in spec");
        let probes = [
            (ProbeKind::Startup, &c.startup_probe),
            (ProbeKind::Liveness, &c.liveness_probe),
            (ProbeKind::Readiness, &c.readiness_probe),
        ];
        for (kind, p) in probes {
            if p.as_ref().and_then(|p| p.handler()).as_ref() == Some(handler) {
                return Ok(kind);
            }
        }
        let l = c.lifecycle.as_ref().expect("a hook");
        if l.post_start.as_ref().and_then(|h| h.handler()).as_ref() == Some(handler) {
            Err("postStart")
        } else {
            Err("preStop")
        }
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
                    let name = instance.container.clone();
                    match Self::purpose_of(&pod, &name, &handler) {
                        Ok(kind) => {
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
                                Answer::Success => self.answers.push((self.now, run, Ok(()))),
                                Answer::Failure => {
                                    self.answers
                                        .push((self.now, run, Err("probe failed".into())))
                                }
                                Answer::Hang => {}
                            }
                        }
                        Err(which) => {
                            self.see(Seen::Hook(name.clone(), which));
                            let (secs, ok) =
                                self.hooks.get(&(name, which)).copied().unwrap_or((0, true));
                            let result = if ok {
                                Ok(())
                            } else {
                                Err("hook failed".into())
                            };
                            self.answers
                                .push((self.now + Duration::from_secs(secs), run, result));
                        }
                    }
                    self.deliver_answers();
                }
                Action::CancelHandler { run } => {
                    self.see(Seen::Cancel(run));
                    self.answers.retain(|(_, r, _)| *r != run);
                }
            }
        }
    }

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
            .partition(|(t, _, _)| *t <= now);
        self.answers = rest;
        for (_, run, result) in due {
            self.engine
                .handle(Observation::HandlerDone { run, result }, now);
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
                exit: Exit {
                    code,
                    signal: None,
                    kind: container::ExitKind::Normal,
                    finished_at: now,
                    message: None,
                },
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
            let next_answer = self.answers.iter().map(|(t, _, _)| *t).min();
            let next = [next_exit, next_answer, self.engine.poll_timeout()]
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

    pub fn starts_of(&self, container: &str) -> Vec<u64> {
        self.seen
            .iter()
            .filter(|(_, s)| matches!(s, Seen::Start(c, _) if c == container))
            .map(|(t, _)| *t)
            .collect()
    }

    pub fn status(&self, name: &str) -> PodStatus {
        self.engine
            .statuses()
            .find(|(p, _)| p.metadata.name == name)
            .map(|(_, s)| s)
            .expect("pod present")
    }

    pub fn phase(&self, name: &str) -> PodPhase {
        self.status(name).phase
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::status::PodPhase;

    fn manifest(name: &str, policy: &str, containers: &[&str], inits: &[&str]) -> String {
        let list = |cs: &[&str]| {
            cs.iter()
                .map(|c| format!("  - name: {c}\n    image: busybox:1\n"))
                .collect::<String>()
        };
        let init = if inits.is_empty() {
            String::new()
        } else {
            format!("  initContainers:\n{}", list(inits))
        };
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 5\n{init}  containers:\n{}",
            list(containers)
        )
    }

    fn kubelet_backoff() -> BackoffPolicy {
        BackoffPolicy::default()
    }

    #[test]
    fn crash_loop_cadence_matches_the_kubelet() {
        // A container exiting instantly starts at 0, 0, 10, 30, 70, 150, 310 s.
        let mut sim = Sim::new(kubelet_backoff());
        sim.script("c", &[Script::Exit { secs: 0, code: 1 }]);
        let p = pod(&manifest("web", "Always", &["c"], &[]));
        sim.desire(&[&p]);
        sim.run_until(700);
        assert_eq!(sim.starts_of("c")[..8], [0, 0, 10, 30, 70, 150, 310, 610]);
        let status = sim.status("web");
        let c = &status.container_statuses[0];
        let waiting = c.state.waiting.as_ref().expect("waiting in back-off");
        assert_eq!(waiting.reason, "CrashLoopBackOff");
        assert_eq!(
            waiting.message.as_deref(),
            Some("back-off 5m0s restarting failed container=c pod=web_default(uid-web)")
        );
        assert_eq!(c.last_state.terminated.as_ref().unwrap().reason, "Error");
        assert_eq!(c.restart_count, 7);
        assert_eq!(
            status.phase,
            PodPhase::Running,
            "Always pod in back-off is Running"
        );
    }

    #[test]
    fn a_long_run_resets_the_back_off() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script(
            "c",
            &[
                Script::Exit { secs: 0, code: 1 },
                Script::Exit { secs: 0, code: 1 },
                Script::Exit { secs: 0, code: 1 },
                Script::Exit { secs: 700, code: 1 },
                Script::Exit { secs: 0, code: 1 },
            ],
        );
        let p = pod(&manifest("web", "Always", &["c"], &[]));
        sim.desire(&[&p]);
        sim.run_until(800);
        // 0, 0, 10; then 30 runs until 730: restarted at once, and the
        // sequence starts over at 10 s.
        assert_eq!(sim.starts_of("c"), [0, 0, 10, 30, 730, 740, 760, 800]);
    }

    #[test]
    fn restart_policies_decide_restarts_and_phase() {
        let cases = [
            ("Never", 0, 1, PodPhase::Succeeded, "Completed"),
            ("Never", 3, 1, PodPhase::Failed, "Error"),
            ("OnFailure", 0, 1, PodPhase::Succeeded, "Completed"),
            ("Always", 0, 3, PodPhase::Running, "Completed"),
        ];
        for (policy, code, starts, phase, reason) in cases {
            let mut sim = Sim::new(kubelet_backoff());
            sim.script("c", &[Script::Exit { secs: 1, code }]);
            let p = pod(&manifest("job", policy, &["c"], &[]));
            sim.desire(&[&p]);
            sim.run_until(25);
            assert_eq!(sim.starts_of("c").len(), starts, "{policy} exit {code}");
            let status = sim.status("job");
            assert_eq!(status.phase, phase, "{policy} exit {code}");
            let c = &status.container_statuses[0];
            let term = c
                .state
                .terminated
                .as_ref()
                .or(c.last_state.terminated.as_ref());
            assert_eq!(term.unwrap().reason, reason);
            if phase != PodPhase::Running {
                assert!(sim
                    .seen
                    .iter()
                    .any(|(_, s)| matches!(s, Seen::StopSandbox(_))));
                let ready = status
                    .conditions
                    .iter()
                    .find(|c| c.kind == "Ready")
                    .unwrap();
                let expect = if phase == PodPhase::Succeeded {
                    "PodCompleted"
                } else {
                    "PodFailed"
                };
                assert_eq!(ready.reason.as_deref(), Some(expect));
            }
        }
    }

    #[test]
    fn on_failure_restarts_until_success() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script(
            "c",
            &[
                Script::Exit { secs: 1, code: 2 },
                Script::Exit { secs: 1, code: 0 },
            ],
        );
        let p = pod(&manifest("job", "OnFailure", &["c"], &[]));
        sim.desire(&[&p]);
        sim.run_until(60);
        assert_eq!(sim.starts_of("c"), [0, 1]);
        let s = sim.status("job");
        assert_eq!(s.phase, PodPhase::Succeeded);
        assert_eq!(s.container_statuses[0].restart_count, 1);
    }

    #[test]
    fn init_containers_run_in_order_before_regular_ones() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script("i1", &[Script::Exit { secs: 2, code: 0 }]);
        sim.script("i2", &[Script::Exit { secs: 3, code: 0 }]);
        let p = pod(&manifest("app", "Always", &["a", "b"], &["i1", "i2"]));
        sim.desire(&[&p]);
        sim.run_until(1);
        let s = sim.status("app");
        assert_eq!(s.phase, PodPhase::Pending);
        assert_eq!(
            s.container_statuses[0]
                .state
                .waiting
                .as_ref()
                .unwrap()
                .reason,
            "PodInitializing"
        );
        let init = s
            .conditions
            .iter()
            .find(|c| c.kind == "Initialized")
            .unwrap();
        assert_eq!(init.status, "False");
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [i1 i2]")
        );
        sim.run_until(10);
        assert_eq!(sim.starts_of("i1"), [0]);
        assert_eq!(sim.starts_of("i2"), [2]);
        assert_eq!(sim.starts_of("a"), [5]);
        assert_eq!(sim.starts_of("b"), [5]);
        let s = sim.status("app");
        assert_eq!(s.phase, PodPhase::Running);
        assert!(
            s.conditions.iter().all(|c| c.status == "True"),
            "{:?}",
            s.conditions
        );
        assert_eq!(
            s.init_container_statuses[1]
                .state
                .terminated
                .as_ref()
                .unwrap()
                .reason,
            "Completed"
        );
        assert!(s.init_container_statuses[1].ready);
    }

    #[test]
    fn init_failure_under_never_fails_the_pod() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script("i1", &[Script::Exit { secs: 1, code: 1 }]);
        let p = pod(&manifest("app", "Never", &["a"], &["i1"]));
        sim.desire(&[&p]);
        sim.run_until(60);
        assert_eq!(sim.starts_of("i1"), [0]);
        assert!(sim.starts_of("a").is_empty());
        assert_eq!(sim.phase("app"), PodPhase::Failed);
    }

    #[test]
    fn init_failure_under_always_retries_in_back_off() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script(
            "i1",
            &[
                Script::Exit { secs: 0, code: 1 },
                Script::Exit { secs: 0, code: 1 },
                Script::Exit { secs: 0, code: 0 },
            ],
        );
        let p = pod(&manifest("app", "Always", &["a"], &["i1"]));
        sim.desire(&[&p]);
        sim.run_until(5);
        assert_eq!(sim.phase("app"), PodPhase::Pending);
        let s = sim.status("app");
        assert_eq!(
            s.init_container_statuses[0]
                .state
                .waiting
                .as_ref()
                .unwrap()
                .reason,
            "CrashLoopBackOff"
        );
        sim.run_until(60);
        assert_eq!(sim.starts_of("i1"), [0, 0, 10]);
        assert_eq!(sim.starts_of("a"), [10]);
    }

    #[test]
    fn completed_init_containers_never_rerun_after_regular_restarts() {
        let mut sim = Sim::new(BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(2),
        });
        sim.script("i1", &[Script::Exit { secs: 0, code: 0 }]);
        sim.script("a", &[Script::Exit { secs: 5, code: 1 }]);
        let p = pod(&manifest("app", "Always", &["a"], &["i1"]));
        sim.desire(&[&p]);
        sim.run_until(60);
        assert_eq!(sim.starts_of("i1"), [0]);
        assert!(sim.starts_of("a").len() > 5);
    }

    #[test]
    fn removal_terms_then_kills_after_grace() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script("polite", &[Script::Serve]);
        sim.script("stubborn", &[Script::IgnoreTerm]);
        let p = pod(&manifest("web", "Always", &["polite", "stubborn"], &[]));
        sim.desire(&[&p]);
        sim.run_until(10);
        sim.desire(&[]);
        sim.run_until(30);
        let after: Vec<_> = sim.seen.iter().filter(|(t, _)| *t >= 10).cloned().collect();
        assert_eq!(
            after,
            [
                (10, Seen::Term("polite".into())),
                (10, Seen::Exit("polite".into(), 0, 143)),
                (10, Seen::Term("stubborn".into())),
                (15, Seen::Kill("stubborn".into())),
                (15, Seen::Exit("stubborn".into(), 0, 137)),
                (15, Seen::Forget("uid-web".into())),
            ]
        );
        assert_eq!(sim.engine.statuses().count(), 0);
        assert_eq!(
            sim.engine.poll_timeout(),
            None,
            "idle: nothing left to wake for"
        );
    }

    #[test]
    fn zero_grace_still_waits_two_seconds_before_kill() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script("c", &[Script::IgnoreTerm]);
        let yaml = manifest("web", "Always", &["c"], &[]).replace(
            "terminationGracePeriodSeconds: 5",
            "terminationGracePeriodSeconds: 0",
        );
        let p = pod(&yaml);
        sim.desire(&[&p]);
        sim.desire(&[]);
        sim.run_until(10);
        assert!(
            sim.seen.contains(&(2, Seen::Kill("c".into()))),
            "{:?}",
            sim.seen
        );
    }

    #[test]
    fn a_replacement_starts_only_after_the_old_pod_stopped() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.script("c", &[Script::IgnoreTerm]);
        let old = pod(&manifest("web", "Always", &["c"], &[]));
        let mut new = (*pod(&manifest("web", "Always", &["c"], &[]))).clone();
        new.metadata.uid = "uid-web-2".into();
        let new = Arc::new(new);
        sim.desire(&[&old]);
        sim.run_until(3);
        sim.desire(&[&new]);
        sim.run_until(4);
        assert_eq!(
            sim.starts_of("c"),
            [0],
            "the new pod waits while the old one terminates"
        );
        sim.run_until(20);
        assert_eq!(sim.starts_of("c"), [0, 8]);
        let uids: Vec<_> = sim
            .engine
            .statuses()
            .map(|(p, _)| p.metadata.uid.clone())
            .collect();
        assert_eq!(uids, ["uid-web-2"]);
    }

    #[test]
    fn a_start_failure_waits_with_its_reason_and_retries() {
        let mut sim = Sim::new(kubelet_backoff());
        sim.failing_starts.insert("c".into(), 2);
        let p = pod(&manifest("web", "Always", &["c"], &[]));
        sim.desire(&[&p]);
        sim.run_until(1);
        let s = sim.status("web");
        let w = s.container_statuses[0].state.waiting.clone().unwrap();
        assert_eq!(w.reason, "ErrImageNeverPull");
        assert_eq!(s.phase, PodPhase::Pending);
        sim.run_until(60);
        assert_eq!(
            sim.starts_of("c"),
            [30],
            "retried after 10 s and 20 s, started the third time"
        );
        assert_eq!(sim.status("web").container_statuses[0].restart_count, 0);
    }

    #[test]
    fn adoption_restarts_nothing_and_keeps_counts() {
        let mut sim = Sim::new(kubelet_backoff());
        let p = pod(&manifest("app", "Always", &["a"], &["i1"]));
        let exit0 = Exit {
            code: 0,
            signal: None,
            kind: container::ExitKind::Normal,
            finished_at: sim.now,
            message: None,
        };
        let recovered = recovered(
            &p,
            sim.now,
            RecoveredSandbox::Ready,
            vec![
                RecoveredInstance {
                    container: "i1".into(),
                    attempt: 0,
                    container_id: "x://i1-0".into(),
                    image_id: String::new(),
                    started_at: Some(sim.now),
                    exit: Some(exit0.clone()),
                },
                RecoveredInstance {
                    container: "a".into(),
                    attempt: 2,
                    container_id: "x://a-2".into(),
                    image_id: String::new(),
                    started_at: Some(sim.now),
                    exit: Some(Exit { code: 1, ..exit0 }),
                },
                RecoveredInstance {
                    container: "a".into(),
                    attempt: 3,
                    container_id: "x://a-3".into(),
                    image_id: "sha256:a".into(),
                    started_at: Some(sim.now),
                    exit: None,
                },
            ],
        );
        sim.engine.restore(vec![recovered], sim.now);
        sim.desire(&[&p]);
        sim.run_until(100);
        assert!(
            sim.seen.is_empty(),
            "nothing started or stopped: {:?}",
            sim.seen
        );
        let s = sim.status("app");
        assert_eq!(s.phase, PodPhase::Running);
        assert_eq!(s.container_statuses[0].restart_count, 3);
        assert_eq!(
            s.container_statuses[0]
                .last_state
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
        assert_eq!(
            s.container_statuses[0].container_id.as_deref(),
            Some("x://a-3")
        );
        assert_eq!(s.container_statuses[0].image_id, "sha256:a");
    }

    #[test]
    fn a_pod_removed_while_the_agent_was_down_is_stopped() {
        let mut sim = Sim::new(kubelet_backoff());
        let p = pod(&manifest("app", "Always", &["a"], &[]));
        let recovered = recovered(
            &p,
            sim.now,
            RecoveredSandbox::Ready,
            vec![RecoveredInstance {
                container: "a".into(),
                attempt: 0,
                container_id: "x".into(),
                image_id: String::new(),
                started_at: Some(sim.now),
                exit: None,
            }],
        );
        sim.engine.restore(vec![recovered], sim.now);
        sim.desire(&[]);
        sim.run_until(10);
        assert_eq!(sim.seen[0], (0, Seen::Term("a".into())));
    }

    #[test]
    fn default_waiting_reason_and_container_creating() {
        let mut sim = Sim::new(kubelet_backoff());
        let p = pod(&manifest("web", "Always", &["c"], &[]));
        sim.engine.set_desired(
            vec![Desired {
                pod: p,
                first_attempts: BTreeMap::new(),
                refused: None,
            }],
            sim.now,
        );
        let s = sim.status("web");
        assert_eq!(
            s.container_statuses[0]
                .state
                .waiting
                .as_ref()
                .unwrap()
                .reason,
            "ContainerCreating"
        );
        assert_eq!(s.phase, PodPhase::Pending);
        let ready_to_start = s
            .conditions
            .iter()
            .find(|c| c.kind == "PodReadyToStartContainers")
            .unwrap();
        assert_eq!(ready_to_start.status, "False");
    }
}

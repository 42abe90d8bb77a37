//! Kubelet scenarios for sidecars, probes, hooks and termination order,
//! derived from the upstream e2e tests (test/e2e_node/container_lifecycle_test.go,
//! test/e2e/common/node/container_probe.go, lifecycle_hook.go), run on the
//! simulated node with its jumping clock.

use super::probe::ProbeKind;
use super::sim::{pod, recovered, Answer, Script, Seen, Sim};
use super::*;
use crate::pod::status::PodPhase;
use std::time::Duration;

fn sim() -> Sim {
    Sim::new(backoff::BackoffPolicy::default())
}

const HEAD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n";

/// A probe script: the container's first instance answers Failure from
/// `secs` seconds after it started, every later instance Success.
fn first_instance_fails_from(secs: u64) -> impl Fn(u32, u64) -> Answer {
    move |attempt, since| {
        if attempt == 0 && since >= secs {
            Answer::Failure
        } else {
            Answer::Success
        }
    }
}

fn container(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    image: busybox:1\n{extra}")
}

const SIDECAR: &str = "    restartPolicy: Always\n";

fn starts(sim: &Sim) -> Vec<(u64, String)> {
    sim.seen
        .iter()
        .filter_map(|(t, s)| match s {
            Seen::Start(c, _) => Some((*t, c.clone())),
            _ => None,
        })
        .collect()
}

fn condition(sim: &Sim, kind: &str) -> (String, Option<String>) {
    let s = sim.status("p");
    let c = s.conditions.iter().find(|c| c.kind == kind).unwrap();
    (c.status.clone(), c.message.clone())
}

fn startup_probe(period: u64, failure: u64) -> String {
    format!("    startupProbe:\n      exec:\n        command: [startup]\n      periodSeconds: {period}\n      failureThreshold: {failure}\n")
}

#[test]
fn init_containers_and_sidecars_start_in_spec_order() {
    // container_lifecycle_test.go "should launch init container serially
    // before a regular container", with restartable init containers mixed in.
    let mut sim = sim();
    sim.script("init-1", &[Script::Exit { secs: 2, code: 0 }]);
    sim.script("init-2", &[Script::Exit { secs: 3, code: 0 }]);
    let yaml = format!(
        "{HEAD}  initContainers:\n{}{}{}{}  containers:\n{}",
        container("init-1", ""),
        container("side-1", SIDECAR),
        container("init-2", ""),
        container("side-2", &format!("{SIDECAR}{}", startup_probe(1, 10))),
        container("main", "")
    );
    sim.probe("side-2", ProbeKind::Startup, |_, since| {
        if since >= 4 {
            Answer::Success
        } else {
            Answer::Failure
        }
    });
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(1);
    assert_eq!(sim.phase("p"), PodPhase::Pending);
    let (status, message) = condition(&sim, "Initialized");
    assert_eq!(status, "False");
    assert_eq!(
        message.as_deref(),
        Some("containers with incomplete status: [init-1 side-1 init-2 side-2]")
    );
    sim.run_until(20);
    // side-2 starts at 5 and is started when its startup probe succeeds at 9.
    let want = [
        (0, "init-1"),
        (2, "side-1"),
        (2, "init-2"),
        (5, "side-2"),
        (9, "main"),
    ];
    let all = starts(&sim);
    let got: Vec<(u64, &str)> = all.iter().map(|(t, c)| (*t, c.as_str())).collect();
    assert_eq!(got, want);
    let s = sim.status("p");
    assert_eq!(s.phase, PodPhase::Running);
    assert!(
        s.conditions.iter().all(|c| c.status == "True"),
        "{:?}",
        s.conditions
    );
    let side = s
        .init_container_statuses
        .iter()
        .find(|c| c.name == "side-1")
        .unwrap();
    assert!(side.state.running.is_some() && side.ready && side.started == Some(true));
}

#[test]
fn a_sidecar_restarts_whatever_the_pod_policy_and_never_blocks_completion() {
    // "should restart a restartable init container that exits, regardless
    // of the pod's restart policy" and "should not block the pod completion".
    let mut sim = sim();
    sim.script("side", &[Script::Exit { secs: 1, code: 0 }, Script::Serve]);
    sim.script("main", &[Script::Exit { secs: 5, code: 0 }]);
    let yaml = format!(
        "{HEAD}  restartPolicy: Never\n  initContainers:\n{}  containers:\n{}",
        container("side", SIDECAR),
        container("main", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(60);
    assert_eq!(
        sim.starts_of("side"),
        [0, 1],
        "restarted at once after its first exit"
    );
    assert_eq!(sim.starts_of("main"), [0]);
    // main ends at 5: the sidecar is terminated and the pod Succeeded.
    assert!(
        sim.seen.contains(&(5, Seen::Term("side".into()))),
        "{:?}",
        sim.seen
    );
    let s = sim.status("p");
    assert_eq!(
        s.phase,
        PodPhase::Succeeded,
        "a sidecar's exit code never counts"
    );
    let side = &s.init_container_statuses[0];
    assert_eq!(side.restart_count, 1);
    assert_eq!(side.state.terminated.as_ref().unwrap().exit_code, 143);
}

#[test]
fn termination_runs_pre_stop_hooks_together_then_signals_regular_then_sidecars_in_reverse() {
    // container_lifecycle_test.go "should terminate sidecars in reverse order"
    // with preStop hooks: all hooks start at termination; regular containers
    // get SIGTERM after their own hook; sidecars wait for everything after them.
    let mut sim = sim();
    let pre_stop = |secs: u64| {
        format!("    lifecycle:\n      preStop:\n        sleep:\n          seconds: {secs}\n")
    };
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 30\n  initContainers:\n{}{}  containers:\n{}{}",
        container("side-1", &format!("{SIDECAR}{}", pre_stop(1))),
        container("side-2", SIDECAR),
        container("main-1", &pre_stop(3)),
        container("main-2", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(10);
    sim.desire(&[]);
    sim.run_until(60);
    let stops: Vec<(u64, String)> = sim
        .seen
        .iter()
        .filter_map(|(t, s)| match s {
            Seen::Term(c) => Some((*t, c.clone())),
            _ => None,
        })
        .collect();
    let want = [
        (10, "main-2"),
        (13, "main-1"),
        (13, "side-2"),
        (13, "side-1"),
    ];
    let got: Vec<(u64, &str)> = stops.iter().map(|(t, c)| (*t, c.as_str())).collect();
    assert_eq!(got, want);
    assert!(
        sim.seen.iter().all(|(_, s)| !matches!(s, Seen::Kill(_))),
        "nobody needed SIGKILL"
    );
    assert_eq!(sim.engine.statuses().count(), 0);
}

/// Upstream's "should terminate sidecars in reverse order after all main
/// containers have exited": three sidecars that take 5 s to exit on
/// SIGTERM, a Never pod whose regular container exits after 5 s.
#[test]
fn upstream_terminate_sidecars_in_reverse_order_after_all_main_containers_have_exited() {
    let mut sim = sim();
    for s in [
        "restartable-init-1",
        "restartable-init-2",
        "restartable-init-3",
    ] {
        sim.script(s, &[Script::SlowTerm { secs: 5 }]);
    }
    sim.script("regular-1", &[Script::Exit { secs: 5, code: 0 }]);
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  restartPolicy: Never\n  initContainers:\n{}{}{}  containers:\n{}",
        container("restartable-init-1", SIDECAR),
        container("restartable-init-2", SIDECAR),
        container("restartable-init-3", SIDECAR),
        container("regular-1", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(120);
    let exits: Vec<(u64, String)> = sim
        .seen
        .iter()
        .filter_map(|(t, s)| match s {
            Seen::Exit(c, _, _) => Some((*t, c.clone())),
            _ => None,
        })
        .collect();
    let got: Vec<(u64, &str)> = exits.iter().map(|(t, c)| (*t, c.as_str())).collect();
    assert_eq!(
        got,
        [
            (5, "regular-1"),
            (10, "restartable-init-3"),
            (15, "restartable-init-2"),
            (20, "restartable-init-1")
        ]
    );
    assert_eq!(sim.phase("p"), PodPhase::Succeeded);
}

/// Upstream's "should terminate sidecars simultaneously if prestop doesn't
/// exit": preStop hooks that loop forever all start when the regular
/// container exits and all die ~32 s later (30 s grace + the 2 s minimum).
#[test]
fn upstream_terminate_sidecars_simultaneously_if_prestop_does_not_exit() {
    let mut sim = sim();
    let names = [
        "restartable-init-1",
        "restartable-init-2",
        "restartable-init-3",
    ];
    let pre_stop =
        "    lifecycle:\n      preStop:\n        exec:\n          command: [loop-forever]\n";
    for s in names {
        sim.script(s, &[Script::SlowTerm { secs: 5 }]);
        sim.hook(s, "preStop", 10_000, true);
    }
    sim.script("regular-1", &[Script::Exit { secs: 5, code: 0 }]);
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  restartPolicy: Never\n  initContainers:\n{}{}{}  containers:\n{}",
        container(names[0], &format!("{SIDECAR}{pre_stop}")),
        container(names[1], &format!("{SIDECAR}{pre_stop}")),
        container(names[2], &format!("{SIDECAR}{pre_stop}")),
        container("regular-1", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(120);
    for s in names {
        let hook_start = sim
            .seen
            .iter()
            .find(|(_, e)| *e == Seen::Hook(s.into(), "preStop"))
            .map(|(t, _)| *t);
        let killed = sim
            .seen
            .iter()
            .find(|(_, e)| matches!(e, Seen::Exit(c, _, 137) if c == s))
            .map(|(t, _)| *t);
        assert_eq!(
            hook_start,
            Some(5),
            "{s}: preStop starts with the completion"
        );
        assert_eq!(
            killed,
            Some(37),
            "{s}: its preStop (and it) live 32 s: grace 30 s + 2 s"
        );
    }
}

#[test]
fn a_waiting_sidecar_is_signalled_when_the_grace_runs_out() {
    // Grace 10 s; main ignores SIGTERM; the sidecar waiting for it
    // gets SIGTERM at 10 s with the 2 s minimum, then SIGKILL.
    let mut sim = sim();
    sim.script("main", &[Script::IgnoreTerm]);
    sim.script("side", &[Script::IgnoreTerm]);
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 10\n  initContainers:\n{}  containers:\n{}",
        container("side", SIDECAR),
        container("main", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.desire(&[]);
    sim.run_until(30);
    let signals: Vec<(u64, Seen)> = sim
        .seen
        .iter()
        .filter(|(_, s)| matches!(s, Seen::Term(_) | Seen::Kill(_)))
        .cloned()
        .collect();
    assert_eq!(
        signals,
        [
            (0, Seen::Term("main".into())),
            (10, Seen::Term("side".into())),
            (10, Seen::Kill("main".into())),
            (12, Seen::Kill("side".into())),
        ]
    );
}

#[test]
fn deleting_during_initialization_does_not_wait_for_unstarted_sidecars() {
    let mut sim = sim();
    sim.script("init", &[Script::IgnoreTerm]);
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 5\n  initContainers:\n{}{}  containers:\n{}",
        container("init", ""),
        container("side", SIDECAR),
        container("main", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(1);
    sim.desire(&[]);
    sim.run_until(20);
    assert!(sim.starts_of("side").is_empty());
    assert!(
        sim.seen.contains(&(6, Seen::Kill("init".into()))),
        "{:?}",
        sim.seen
    );
    assert!(sim
        .seen
        .iter()
        .any(|(t, s)| *t == 6 && matches!(s, Seen::Forget(_))));
}

#[test]
fn a_server_deletion_uses_its_grace_and_a_marked_pod_never_starts() {
    // The deletion grace wins over terminationGracePeriodSeconds,
    // and a second, shorter one shortens it.
    let mut sim = sim();
    sim.script("main", &[Script::IgnoreTerm]);
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 60\n  containers:\n{}",
        container("main", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(1);
    let marked = |grace: i64| {
        let mut m = Pod::clone(&p);
        m.metadata.deletion_timestamp = Some("2026-11-29T00:00:00Z".into());
        m.metadata.deletion_grace_period_seconds = Some(grace);
        Arc::new(m)
    };
    sim.desire(&[&marked(20)]);
    assert_eq!(sim.engine.deleting_since(&p.metadata.uid), Some(sim.now));
    sim.run_until(3);
    sim.desire(&[&marked(5)]);
    sim.run_until(30);
    assert!(
        sim.seen.contains(&(1, Seen::Term("main".into()))),
        "{:?}",
        sim.seen
    );
    assert!(
        sim.seen.contains(&(8, Seen::Kill("main".into()))),
        "{:?}",
        sim.seen
    );
    assert!(!sim.engine.holds(&p.metadata.uid));

    // The stopped pod is still in the server's list until it is deleted
    // there: it must not start again.
    sim.desire(&[&marked(5)]);
    sim.run_until(40);
    assert_eq!(sim.starts_of("main").len(), 1);
    assert!(!sim.engine.holds(&p.metadata.uid));
}

#[test]
fn liveness_failure_restarts_the_container_with_its_probe_grace() {
    // container_probe.go "should be restarted with a exec liveness probe":
    // failureThreshold 3, period 10: failures from 20 s flip it at 40 s.
    let mut sim = sim();
    sim.script("c", &[Script::IgnoreTerm, Script::Serve]);
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 60\n  containers:\n{}",
        container("c", "    livenessProbe:\n      exec:\n        command: [alive]\n      periodSeconds: 10\n      terminationGracePeriodSeconds: 5\n")
    );
    sim.probe("c", ProbeKind::Liveness, first_instance_fails_from(20));
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(100);
    assert!(
        sim.seen.contains(&(40, Seen::Term("c".into()))),
        "{:?}",
        sim.seen
    );
    assert!(
        sim.seen.contains(&(45, Seen::Kill("c".into()))),
        "the probe's grace, not the pod's 60 s"
    );
    assert_eq!(sim.starts_of("c"), [0, 45]);
    let probes_of_first = sim
        .seen
        .iter()
        .filter(|(t, s)| *t < 45 && matches!(s, Seen::Probe(_, ProbeKind::Liveness)))
        .count();
    assert_eq!(
        probes_of_first, 5,
        "0, 10, 20, 30, 40: then the worker waits for a new instance"
    );
    let s = sim.status("p");
    assert_eq!(s.container_statuses[0].restart_count, 1);
    assert_eq!(
        s.container_statuses[0]
            .last_state
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        137
    );
}

#[test]
fn liveness_failure_in_a_never_pod_kills_without_restart() {
    let mut sim = sim();
    let yaml = format!(
        "{HEAD}  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n{}",
        container("c", "    livenessProbe:\n      exec:\n        command: [alive]\n      failureThreshold: 1\n")
    );
    sim.probe("c", ProbeKind::Liveness, |_, _| Answer::Failure);
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(60);
    assert_eq!(sim.starts_of("c"), [0]);
    assert_eq!(sim.phase("p"), PodPhase::Failed);
}

#[test]
fn readiness_follows_its_thresholds_and_decides_the_ready_condition() {
    // container_probe.go "with readiness probe should not be ready before
    // initial delay and never restart".
    let mut sim = sim();
    let yaml = format!(
        "{HEAD}  containers:\n{}",
        container("c", "    readinessProbe:\n      exec:\n        command: [ready]\n      initialDelaySeconds: 15\n      periodSeconds: 5\n      failureThreshold: 2\n")
    );
    sim.probe("c", ProbeKind::Readiness, |_, since| {
        if since < 40 {
            Answer::Success
        } else {
            Answer::Failure
        }
    });
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(14);
    assert_eq!(
        condition(&sim, "Ready"),
        (
            "False".into(),
            Some("containers with unready status: [c]".into())
        )
    );
    assert!(!sim.status("p").container_statuses[0].ready);
    sim.run_until(15);
    assert_eq!(condition(&sim, "Ready").0, "True", "first probe at 15 s");
    sim.run_until(44);
    assert_eq!(
        condition(&sim, "ContainersReady").0,
        "True",
        "one failure at 40 s is not enough"
    );
    sim.run_until(45);
    assert_eq!(condition(&sim, "ContainersReady").0, "False");
    assert_eq!(sim.starts_of("c"), [0], "readiness never restarts");
    assert_eq!(sim.phase("p"), PodPhase::Running);
}

#[test]
fn a_hanging_probe_times_out_as_a_failure() {
    let mut sim = sim();
    let yaml = format!(
        "{HEAD}  containers:\n{}",
        container("c", "    livenessProbe:\n      exec:\n        command: [hang]\n      timeoutSeconds: 2\n      periodSeconds: 10\n      failureThreshold: 2\n")
    );
    sim.probe("c", ProbeKind::Liveness, |_, _| Answer::Hang);
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(13);
    let cancels = sim
        .seen
        .iter()
        .filter(|(t, s)| matches!(s, Seen::Cancel(_)) && [2, 12].contains(t))
        .count();
    assert_eq!(cancels, 2, "{:?}", sim.seen);
    assert!(
        sim.seen.contains(&(12, Seen::Term("c".into()))),
        "two timeouts make the liveness result Failure"
    );
}

#[test]
fn a_failing_sidecar_startup_probe_restarts_it_and_holds_initialization() {
    let mut sim = sim();
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 1\n  initContainers:\n{}  containers:\n{}",
        container("side", &format!("{SIDECAR}{}", startup_probe(1, 3))),
        container("main", "")
    );
    sim.probe("side", ProbeKind::Startup, |attempt, _| {
        if attempt >= 1 {
            Answer::Success
        } else {
            Answer::Failure
        }
    });
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(1);
    assert_eq!(
        sim.phase("p"),
        PodPhase::Pending,
        "a running sidecar not yet started"
    );
    sim.run_until(30);
    assert_eq!(sim.starts_of("side"), [0, 2]);
    assert_eq!(
        sim.starts_of("main"),
        [2],
        "main starts once the new sidecar instance is started"
    );
    assert!(sim.seen.contains(&(2, Seen::Term("side".into()))));
}

#[test]
fn post_start_blocks_the_next_container_and_a_failure_restarts() {
    // lifecycle_hook.go: postStart runs with the main process; the next
    // regular container starts after it returned; a failure kills
    // the container and the restart policy applies.
    let mut sim = sim();
    let hook = "    lifecycle:\n      postStart:\n        exec:\n          command: [hook]\n";
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 1\n  containers:\n{}{}",
        container("a", hook),
        container("b", "")
    );
    sim.hook("a", "postStart", 3, false);
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(2);
    assert_eq!(
        sim.starts_of("b"),
        Vec::<u64>::new(),
        "b waits for a's postStart"
    );
    sim.run_until(20);
    assert_eq!(sim.starts_of("b"), [3]);
    assert!(
        sim.seen.contains(&(3, Seen::Term("a".into()))),
        "a failed postStart kills a"
    );
    assert_eq!(
        sim.starts_of("a")[..2],
        [0, 3],
        "restarted at once: its first back-off"
    );
}

#[test]
fn pre_stop_that_outlasts_the_grace_is_cancelled() {
    let mut sim = sim();
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 4\n  containers:\n{}",
        container(
            "c",
            "    lifecycle:\n      preStop:\n        exec:\n          command: [slow]\n"
        )
    );
    sim.hook("c", "preStop", 100, true);
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.desire(&[]);
    sim.run_until(20);
    let after: Vec<Seen> = sim
        .seen
        .iter()
        .filter(|(t, _)| *t >= 4)
        .map(|(_, s)| s.clone())
        .collect();
    assert!(matches!(after[0], Seen::Cancel(_)), "{after:?}");
    assert_eq!(
        after[1],
        Seen::Term("c".into()),
        "SIGTERM at the grace's end"
    );
    assert!(sim
        .seen
        .iter()
        .any(|(t, s)| *t == 0 && *s == Seen::Hook("c".into(), "preStop")));
}

#[test]
fn readiness_keeps_running_during_termination_and_liveness_stops() {
    let mut sim = sim();
    sim.script("c", &[Script::IgnoreTerm]);
    let probes = "    livenessProbe:\n      exec:\n        command: [alive]\n      periodSeconds: 1\n    readinessProbe:\n      exec:\n        command: [ready]\n      periodSeconds: 1\n";
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 5\n  containers:\n{}",
        container("c", probes)
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(10);
    sim.desire(&[]);
    sim.run_until(20);
    let during = |kind| {
        sim.seen
            .iter()
            .filter(|(t, s)| (11..15).contains(t) && *s == Seen::Probe("c".into(), kind))
            .count()
    };
    assert_eq!(during(ProbeKind::Liveness), 0);
    assert_eq!(during(ProbeKind::Readiness), 4);
}

#[test]
fn init_failure_in_a_never_pod_stops_running_sidecars() {
    let mut sim = sim();
    sim.script("init", &[Script::Exit { secs: 2, code: 1 }]);
    let yaml = format!(
        "{HEAD}  restartPolicy: Never\n  initContainers:\n{}{}  containers:\n{}",
        container("side", SIDECAR),
        container("init", ""),
        container("main", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(60);
    assert!(sim.seen.contains(&(2, Seen::Term("side".into()))));
    assert!(sim.starts_of("main").is_empty());
    assert_eq!(sim.phase("p"), PodPhase::Failed);
}

/// A small deterministic generator for the property test.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn invariants_hold_for_random_pods() {
    // For random containers, scripts and probe answers: no container starts
    // before its predecessors allow; no two instances of one container at
    // once; the phase never leaves Succeeded/Failed; restart counts never drop.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let mut sim = Sim::new(backoff::BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
        });
        let policy = ["Always", "OnFailure", "Never"][rng.next(3) as usize];
        let mut inits = String::new();
        let mut names = Vec::new();
        for i in 0..rng.next(4) {
            let name = format!("i{i}");
            let sidecar = rng.next(2) == 0;
            let extra = if sidecar {
                format!("{SIDECAR}{}", startup_probe(1, 2))
            } else {
                String::new()
            };
            inits.push_str(&container(&name, &extra));
            names.push((name, sidecar));
        }
        let mut regular = String::new();
        for r in 0..1 + rng.next(3) {
            let name = format!("r{r}");
            let liveness = if rng.next(3) == 0 {
                "    livenessProbe:\n      exec:\n        command: [alive]\n      periodSeconds: 2\n"
            } else {
                ""
            };
            regular.push_str(&container(&name, liveness));
            names.push((name, false));
        }
        for (name, _) in &names {
            let scripts: Vec<Script> = (0..4)
                .map(|_| match rng.next(4) {
                    0 => Script::Serve,
                    1 => Script::IgnoreTerm,
                    _ => Script::Exit {
                        secs: rng.next(6),
                        code: rng.next(2) as i32,
                    },
                })
                .collect();
            sim.script(name, &scripts);
            let seed = rng.next(1000);
            sim.probe(name, ProbeKind::Startup, move |a, s| {
                if (seed + u64::from(a) + s) % 3 == 0 {
                    Answer::Failure
                } else {
                    Answer::Success
                }
            });
            sim.probe(name, ProbeKind::Liveness, move |a, s| {
                if (seed + u64::from(a) * 7 + s) % 5 == 0 {
                    Answer::Failure
                } else {
                    Answer::Success
                }
            });
        }
        let init_part = if inits.is_empty() {
            String::new()
        } else {
            format!("  initContainers:\n{inits}")
        };
        let yaml = format!("{HEAD}  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 3\n{init_part}  containers:\n{regular}");
        let p = pod(&yaml);
        sim.desire(&[&p]);
        let mut last_phase = PodPhase::Pending;
        let mut last_counts: BTreeMap<String, u32> = BTreeMap::new();
        let delete_at = 20 + rng.next(40);
        for t in 1..80 {
            if t == delete_at {
                sim.desire(&[]);
            }
            sim.run_until(t);
            let Some((_, s)) = sim.engine.statuses().next() else {
                break;
            };
            if matches!(last_phase, PodPhase::Succeeded | PodPhase::Failed) {
                assert_eq!(s.phase, last_phase, "case {case}: left a terminal phase");
            }
            last_phase = s.phase;
            for c in s
                .init_container_statuses
                .iter()
                .chain(&s.container_statuses)
            {
                let before = last_counts
                    .insert(c.name.clone(), c.restart_count)
                    .unwrap_or(0);
                assert!(
                    c.restart_count >= before,
                    "case {case}: {} restartCount went down",
                    c.name
                );
            }
        }
        // Replay what the runtime saw: instances never overlap, and nothing
        // starts before its predecessors allowed it.
        let mut live: BTreeMap<String, bool> = BTreeMap::new();
        let mut completed_inits: Vec<String> = Vec::new();
        for (_, seen) in &sim.seen {
            match seen {
                Seen::Start(c, _) => {
                    assert!(
                        !live.get(c).copied().unwrap_or(false),
                        "case {case}: two instances of {c}"
                    );
                    live.insert(c.clone(), true);
                    let position = names.iter().position(|(n, _)| n == c).unwrap();
                    let plain_inits_before = names[..position]
                        .iter()
                        .filter(|(n, sidecar)| n.starts_with('i') && !sidecar);
                    if !c.starts_with('i')
                        || names[..position].iter().any(|(n, _)| n.starts_with('i'))
                    {
                        for (n, _) in plain_inits_before {
                            assert!(
                                completed_inits.contains(n),
                                "case {case}: {c} started before init {n} completed"
                            );
                        }
                    }
                }
                Seen::Exit(c, _, code) => {
                    live.insert(c.clone(), false);
                    if *code == 0 && c.starts_with('i') {
                        completed_inits.push(c.clone());
                    }
                }
                _ => {}
            }
        }
    }
}

#[test]
fn adopted_probes_start_after_a_spread_delay() {
    // After an agent restart each worker waits within [0, period).
    let mut sim = sim();
    let probe =
        "    readinessProbe:\n      exec:\n        command: [ready]\n      periodSeconds: 10\n";
    let yaml = format!(
        "{HEAD}  containers:\n{}{}",
        container("a", probe),
        container("b", probe)
    );
    let p = pod(&yaml);
    let instance = |c: &str| RecoveredInstance {
        container: c.into(),
        attempt: 0,
        container_id: format!("runc://uid-{c}-0"),
        image_id: String::new(),
        started_at: Some(sim.now),
        exit: None,
    };
    let recovered = recovered(
        &p,
        sim.now,
        RecoveredSandbox::Ready,
        vec![instance("a"), instance("b")],
    );
    sim.engine.restore(vec![recovered], sim.now);
    sim.desire(&[&p]);
    sim.run_until(30);
    let first = |c: &str| {
        sim.seen
            .iter()
            .find(|(_, s)| *s == Seen::Probe(c.into(), ProbeKind::Readiness))
            .map(|(t, _)| *t)
            .unwrap()
    };
    let (a, b) = (first("a"), first("b"));
    assert!(a < 10 && b < 10, "within one period: {a} {b}");
    assert_ne!(a, b, "spread apart");
    assert_eq!(condition(&sim, "Ready").0, "True");
}

fn ended(container: &str, attempt: u32, code: i32, at: Time) -> RecoveredInstance {
    RecoveredInstance {
        container: container.into(),
        attempt,
        container_id: format!("runc://uid-{container}-{attempt}"),
        image_id: String::new(),
        started_at: Some(at),
        exit: Some(Exit {
            code,
            signal: None,
            kind: container::ExitKind::Normal,
            finished_at: at,
            message: None,
        }),
    }
}

#[test]
fn after_a_reboot_a_never_pod_that_ran_stays_terminal() {
    let mut sim = sim();
    let p = pod(&format!(
        "{HEAD}  restartPolicy: Never\n  containers:\n{}",
        container("c", "")
    ));
    let lost = recovered(
        &p,
        sim.now,
        RecoveredSandbox::Lost,
        vec![ended("c", 0, 0, sim.now)],
    );
    sim.engine.restore(vec![lost], sim.now);
    sim.desire(&[&p]);
    sim.run_until(60);
    assert!(
        sim.starts_of("c").is_empty(),
        "nothing runs again: {:?}",
        sim.seen
    );
    assert_eq!(sim.phase("p"), PodPhase::Succeeded);
}

#[test]
fn after_a_reboot_init_containers_run_again_and_restart_counts_grow() {
    // Pending until re-initialized; init from the first.
    let mut sim = sim();
    sim.script("init", &[Script::Exit { secs: 2, code: 0 }]);
    let p = pod(&format!(
        "{HEAD}  initContainers:\n{}{}  containers:\n{}",
        container("init", ""),
        container("side", SIDECAR),
        container("main", "")
    ));
    let at = sim.now;
    let lost = recovered(
        &p,
        at,
        RecoveredSandbox::Lost,
        vec![
            ended("init", 0, 0, at),
            ended("side", 2, 137, at),
            ended("main", 4, 137, at),
            ended("main", 5, 137, at),
        ],
    );
    sim.engine.restore(vec![lost], sim.now);
    sim.desire(&[&p]);
    sim.run_until(1);
    assert_eq!(sim.phase("p"), PodPhase::Pending);
    assert!(
        sim.seen
            .iter()
            .any(|s| *s == (0, Seen::Sandbox("p".into()))),
        "a new sandbox"
    );
    sim.run_until(10);
    let all = starts(&sim);
    let got: Vec<(u64, &str)> = all.iter().map(|(t, c)| (*t, c.as_str())).collect();
    assert_eq!(got, [(0, "init"), (2, "side"), (2, "main")]);
    let s = sim.status("p");
    assert_eq!(s.phase, PodPhase::Running);
    let count = |name: &str| {
        s.init_container_statuses
            .iter()
            .chain(&s.container_statuses)
            .find(|c| c.name == name)
            .unwrap()
            .restart_count
    };
    assert_eq!((count("init"), count("side"), count("main")), (1, 3, 6));
    assert_eq!(
        s.container_statuses[0]
            .last_state
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        137
    );
}

#[test]
fn a_pod_that_completed_before_an_agent_restart_stays_completed() {
    let mut sim = sim();
    let p = pod(&format!(
        "{HEAD}  restartPolicy: OnFailure\n  containers:\n{}",
        container("c", "")
    ));
    let done = recovered(
        &p,
        sim.now,
        RecoveredSandbox::Stopped,
        vec![ended("c", 1, 0, sim.now)],
    );
    sim.engine.restore(vec![done], sim.now);
    sim.desire(&[&p]);
    sim.run_until(30);
    assert!(sim.seen.is_empty(), "no sandbox, no start: {:?}", sim.seen);
    assert_eq!(sim.phase("p"), PodPhase::Succeeded);
}

#[test]
fn admission_rejects_what_does_not_fit_and_leaves_others_alone() {
    let mut sim = Sim::new(backoff::BackoffPolicy::default());
    sim.engine = Engine::new(EngineConfig {
        backoff: backoff::BackoffPolicy::default(),
        allocatable: Some((1000, 1 << 30)),
    });
    let with = |name: &str, cpu: &str| {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: i\n    resources: {{requests: {{cpu: {cpu}}}}}\n");
        pod(&yaml)
    };
    let (a, b, c) = (with("a", "600m"), with("b", "600m"), with("c", "300m"));
    sim.desire(&[&a, &b, &c]);
    sim.run_until(5);
    assert_eq!(sim.starts_of("c").len(), 2, "a and c run, b does not");
    let s = sim.status("b");
    assert_eq!(s.phase, PodPhase::Failed);
    assert_eq!(s.reason.as_deref(), Some("OutOfcpu"));
    assert_eq!(
        s.message.as_deref(),
        Some("Pod was rejected: Node didn't have enough resource: cpu, requested: 600, used: 600, capacity: 1000")
    );
    assert_eq!(sim.status("a").qos_class.as_deref(), Some("Burstable"));
}

#[test]
fn events_tell_what_a_describe_user_expects() {
    // A liveness failure (Unhealthy, then Killing), a crash loop (BackOff)
    // and a failing preStop on deletion (FailedPreStopHook).
    let mut sim = sim();
    sim.script("live", &[Script::IgnoreTerm, Script::Serve]);
    sim.script("crash", &[Script::Exit { secs: 1, code: 1 }]);
    sim.hook("live", "preStop", 1, false);
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: 5\n  containers:\n{}{}",
        container(
            "live",
            "    livenessProbe:\n      exec:\n        command: [alive]\n      periodSeconds: 10\n      failureThreshold: 1\n    lifecycle:\n      preStop:\n        exec:\n          command: [bye]\n"
        ),
        container("crash", "")
    );
    sim.probe("live", ProbeKind::Liveness, first_instance_fails_from(10));
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(60);
    sim.desire(&[]);
    sim.run_until(80);
    let mut events = Vec::new();
    while let Some(e) = sim.engine.poll_event() {
        events.push((e.container.unwrap_or_default(), e.reason, e.kind));
    }
    let has = |c: &str, reason: &str, kind: EventType| {
        events
            .iter()
            .any(|(ec, r, k)| ec == c && *r == reason && *k == kind)
    };
    for c in ["live", "crash"] {
        for reason in ["Pulled", "Created", "Started"] {
            assert!(
                has(c, reason, EventType::Normal),
                "{c} {reason}: {events:?}"
            );
        }
    }
    assert!(has("live", "Unhealthy", EventType::Warning), "{events:?}");
    assert!(has("live", "Killing", EventType::Normal), "{events:?}");
    assert!(has("crash", "BackOff", EventType::Warning), "{events:?}");
    assert!(
        has("live", "FailedPreStopHook", EventType::Warning),
        "{events:?}"
    );
    // A crash loop reports its back-off once per wait, not on every sync.
    let backoffs = events
        .iter()
        .filter(|(c, r, _)| c == "crash" && *r == "BackOff")
        .count();
    let restarts = sim.starts_of("crash").len() - 1;
    assert!(
        backoffs <= restarts + 1,
        "{backoffs} BackOff for {restarts} restarts"
    );
}

/// Seconds from a spec at their int64 limit end at the end of time: a debug
/// build panicked adding them to the clock (time.rs), a release build
/// wrapped the deadlines into the past.
#[test]
fn seconds_at_the_int64_limit_saturate() {
    let mut sim = sim();
    let max = i64::MAX;
    let probe = format!(
        "    livenessProbe:\n      exec:\n        command: [live]\n      periodSeconds: {}\n      timeoutSeconds: {max}\n    lifecycle:\n      preStop:\n        sleep:\n          seconds: {max}\n",
        1u64 << 61
    );
    let yaml = format!(
        "{HEAD}  terminationGracePeriodSeconds: {max}\n  containers:\n{}",
        container("c", &probe)
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(10);
    // The server marks it for deletion with the same grace, seen twice:
    // the second shortens a termination already under way.
    let mut marked = (*p).clone();
    marked.metadata.deletion_timestamp = Some("2026-12-07T18:00:00Z".into());
    marked.metadata.deletion_grace_period_seconds = Some(max);
    let marked = Arc::new(marked);
    sim.desire(&[&marked]);
    sim.run_until(20);
    sim.desire(&[&marked]);
    sim.run_until(30);
    // The preStop sleep and the grace period both last "forever".
    assert_eq!(sim.engine.statuses().count(), 1);
    assert!(sim.seen.iter().all(|(_, s)| !matches!(s, Seen::Kill(_))));
}

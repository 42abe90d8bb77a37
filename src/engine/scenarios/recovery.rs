//! Recovery: adopting what a previous run of the agent left (after an agent
//! restart) and starting over after a reboot.

use super::fixtures::*;
use super::sim::{Script, Seen};
use crate::engine::probe::ProbeKind;
use crate::engine::{RecoveredInstance, RecoveredSandbox};
use crate::pod::status::PodPhase;

#[test]
fn adoption_restarts_nothing_and_keeps_counts() {
    let mut sim = sim();
    let p = pod(&manifest("app", "Always", &["a"], &["i1"]));
    let recovered = recovered(
        &p,
        sim.now,
        RecoveredSandbox::Ready,
        vec![
            ended("i1", 0, 0, sim.now),
            ended("a", 2, 1, sim.now),
            RecoveredInstance {
                container_id: "x://a-3".into(),
                image_id: "sha256:a".into(),
                ..running("a", 3, sim.now)
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
    let mut sim = sim();
    let p = pod(&manifest("app", "Always", &["a"], &[]));
    let recovered = recovered(
        &p,
        sim.now,
        RecoveredSandbox::Ready,
        vec![running("a", 0, sim.now)],
    );
    sim.engine.restore(vec![recovered], sim.now);
    sim.desire(&[]);
    sim.run_until(10);
    assert_eq!(sim.seen[0], (0, Seen::Term("a".into())));
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
    let recovered = recovered(
        &p,
        sim.now,
        RecoveredSandbox::Ready,
        vec![running("a", 0, sim.now), running("b", 0, sim.now)],
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
    assert_eq!(
        starts(&sim),
        timed(&[(0, "init"), (2, "side"), (2, "main")])
    );
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

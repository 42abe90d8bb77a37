//! Probes (container_probe.go): liveness restarts, readiness decides Ready,
//! timeouts count as failures, and which probes run while a pod terminates;
//! postStart hooks (lifecycle_hook.go).

use super::fixtures::*;
use super::sim::{Answer, Script, Seen};
use crate::engine::probe::ProbeKind;
use crate::pod::status::PodPhase;

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

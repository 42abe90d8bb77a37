//! Init containers: in order before the regular ones, what a failure does
//! under each policy, and that completed ones never run again.

use super::fixtures::*;
use super::sim::{Script, Seen, Sim};
use crate::engine::backoff::BackoffPolicy;
use crate::pod::status::PodPhase;
use std::time::Duration;

#[test]
fn init_containers_run_in_order_before_regular_ones() {
    let mut sim = sim();
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
    let init = condition_in(&s, "Initialized");
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
    let mut sim = sim();
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
    let mut sim = sim();
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

//! Native sidecars (container_lifecycle_test.go): started in init order,
//! restarted whatever the policy, never blocking completion.

use super::fixtures::*;
use super::sim::{Answer, Script, Seen};
use crate::engine::probe::ProbeKind;
use crate::pod::status::PodPhase;

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
    assert_eq!(starts(&sim), timed(&want));
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

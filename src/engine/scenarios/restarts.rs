//! Restarts under the restart policy: the CrashLoopBackOff cadence and its
//! reset, the phase each policy ends in, and retries of failed starts.

use super::fixtures::*;
use super::sim::{Script, Seen};
use crate::pod::status::PodPhase;

#[test]
fn crash_loop_cadence_matches_the_kubelet() {
    // A container exiting instantly starts at 0, 0, 10, 30, 70, 150, 310 s.
    let mut sim = sim();
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
    let mut sim = sim();
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
        let mut sim = sim();
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
            let ready = condition_in(&status, "Ready");
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
    let mut sim = sim();
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
fn a_start_failure_waits_with_its_reason_and_retries() {
    let mut sim = sim();
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

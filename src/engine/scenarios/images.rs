//! Image pulls as the kubelet's image manager runs them
//! (kubernetes/kubernetes `pkg/kubelet/images/image_manager.go`,
//! `EnsureImageExists`; docs/lifecycle.md "Image pulls"): the events and
//! their texts, `ErrImagePull` then `ImagePullBackOff`, the back-off of each
//! (pod UID, image) apart from the CrashLoopBackOff, and `ContainerCreating`
//! while a pull runs.

use super::fixtures::*;
use super::sim::{Pull, Script, Sim};
use crate::engine::EventType::{self, Normal, Warning};
use crate::pod::status::PodPhase;

/// The registry's words, as the runtime reports them.
const UNKNOWN: &str = "registry.example/app:1: manifest unknown";

/// The events since the last call: (container, kind, reason, message).
fn events(sim: &mut Sim) -> Vec<(String, EventType, &'static str, String)> {
    std::iter::from_fn(|| sim.engine.poll_event())
        .map(|e| (e.container.unwrap_or_default(), e.kind, e.reason, e.message))
        .collect()
}

/// The events of one container, as (kind, reason, message).
fn of(
    events: &[(String, EventType, &'static str, String)],
    c: &str,
) -> Vec<(EventType, &'static str, String)> {
    events
        .iter()
        .filter(|e| e.0 == c)
        .map(|(_, kind, reason, message)| (*kind, *reason, message.clone()))
        .collect()
}

/// Container `i` of pod `pod`: its waiting (reason, message), if it waits.
fn waiting(sim: &Sim, pod: &str, i: usize) -> Option<(String, Option<String>)> {
    let status = sim.status(pod);
    let w = status.container_statuses[i].state.waiting.clone()?;
    Some((w.reason, w.message))
}

fn event(
    kind: EventType,
    reason: &'static str,
    message: &str,
) -> (EventType, &'static str, String) {
    (kind, reason, message.to_string())
}

/// What a failed pull tells: the image manager's `Failed to pull image`,
/// then kuberuntime's `Error: ErrImagePull`, after the `Pulling` event.
fn failed_pull() -> Vec<(EventType, &'static str, String)> {
    vec![
        event(Normal, "Pulling", "Pulling image \"busybox:1\""),
        event(
            Warning,
            "Failed",
            &format!("Failed to pull image \"busybox:1\": {UNKNOWN}"),
        ),
        event(Warning, "Failed", "Error: ErrImagePull"),
    ]
}

/// What a start held by the back-off tells (`events.BackOffPullImage`, a
/// Normal event, then `Error: ImagePullBackOff`).
fn held_pull() -> Vec<(EventType, &'static str, String)> {
    vec![
        event(Normal, "BackOff", "Back-off pulling image \"busybox:1\""),
        event(Warning, "Failed", "Error: ImagePullBackOff"),
    ]
}

/// The waiting message while held: the image manager's
/// `Back-off pulling image %q` and its `prevPullErrMsg`.
fn held_message() -> Option<String> {
    Some(format!(
        "Back-off pulling image \"busybox:1\": ErrImagePull: {UNKNOWN}"
    ))
}

#[test]
fn a_failed_pull_waits_err_image_pull_then_image_pull_back_off() {
    let mut sim = sim();
    sim.pulls(
        "c",
        &[Pull::Fails {
            secs: 0,
            message: UNKNOWN,
        }],
    );
    let p = pod(&manifest("web", "Always", &["c"], &[]));
    sim.desire(&[&p]);
    // t0: the pull fails; the pod worker tries again 10 s later.
    assert_eq!(of(&events(&mut sim), "c"), failed_pull());
    let err_image_pull = Some(("ErrImagePull".to_string(), Some(UNKNOWN.to_string())));
    assert_eq!(waiting(&sim, "web", 0), err_image_pull);
    // t0+10: the first back-off (10 s) has just run out
    // (`IsInBackOffSinceUpdate` compares with <): a second pull, which
    // fails too and doubles the back-off to 20 s.
    sim.run_until(10);
    assert_eq!(of(&events(&mut sim), "c"), failed_pull());
    assert_eq!(waiting(&sim, "web", 0), err_image_pull);
    // t0+20: the retry comes within the 20 s: no pull, ImagePullBackOff
    // until t0+30.
    sim.run_until(20);
    assert_eq!(of(&events(&mut sim), "c"), held_pull());
    let back_off = Some(("ImagePullBackOff".to_string(), held_message()));
    assert_eq!(waiting(&sim, "web", 0), back_off);
    sim.run_until(29);
    assert!(events(&mut sim).is_empty(), "one BackOff per wait");
    assert_eq!(waiting(&sim, "web", 0), back_off);
    sim.run_until(30);
    assert_eq!(of(&events(&mut sim), "c"), failed_pull());
    // Doubling to the 300 s cap: pulls 10, 20, 40, 80, 160, 300, 300 s
    // after each failure.
    sim.run_until(1000);
    assert_eq!(sim.pulls_of("c"), [0, 10, 30, 70, 150, 310, 610, 910]);
    assert!(sim.starts_of("c").is_empty());
    let status = sim.status("web");
    assert_eq!(status.phase, PodPhase::Pending);
    assert_eq!(status.container_statuses[0].restart_count, 0);
}

#[test]
fn while_its_image_is_pulled_a_container_is_creating() {
    let mut sim = sim();
    let bytes = 4_194_304;
    sim.pulls("c", &[Pull::Pulls { secs: 30, bytes }]);
    let p = pod(&manifest("web", "Always", &["c"], &[]));
    sim.desire(&[&p]);
    let pulling = event(Normal, "Pulling", "Pulling image \"busybox:1\"");
    assert_eq!(of(&events(&mut sim), "c"), [pulling]);
    let creating = Some(("ContainerCreating".to_string(), None));
    assert_eq!(waiting(&sim, "web", 0), creating);
    sim.run_until(29);
    assert_eq!(waiting(&sim, "web", 0), creating);
    assert_eq!(sim.phase("web"), PodPhase::Pending);
    sim.run_until(30);
    let pulled = "Successfully pulled image \"busybox:1\" in 30s (30s including waiting). Image size: 4194304 bytes.";
    assert_eq!(
        of(&events(&mut sim), "c"),
        [
            event(Normal, "Pulled", pulled),
            event(Normal, "Created", "Created container: c"),
            event(Normal, "Started", "Started container c"),
        ]
    );
    assert!(sim.status("web").container_statuses[0]
        .state
        .running
        .is_some());
}

#[test]
fn an_image_in_the_store_is_already_present() {
    let mut sim = sim();
    let p = pod(&manifest("web", "Always", &["c"], &[]));
    sim.desire(&[&p]);
    let present = "Container image \"busybox:1\" already present on machine";
    assert_eq!(
        of(&events(&mut sim), "c"),
        [
            event(Normal, "Pulled", present),
            event(Normal, "Created", "Created container: c"),
            event(Normal, "Started", "Started container c"),
        ]
    );
}

#[test]
fn failed_pulls_leave_the_crash_back_off_alone() {
    // Two failed pulls, then the image is there and the container crashes
    // at once: its CrashLoopBackOff starts from nothing (immediate, 10 s,
    // 20 s, 40 s), as the kubelet keeps the two back-offs apart.
    let mut sim = sim();
    let fails = Pull::Fails {
        secs: 0,
        message: UNKNOWN,
    };
    sim.pulls("c", &[fails, fails, Pull::Present]);
    sim.script("c", &[Script::Exit { secs: 0, code: 1 }]);
    let p = pod(&manifest("web", "Always", &["c"], &[]));
    sim.desire(&[&p]);
    sim.run_until(35);
    assert_eq!(sim.pulls_of("c"), [0, 10]);
    assert_eq!(sim.starts_of("c"), [30, 30]);
    let (reason, message) = waiting(&sim, "web", 0).expect("in back-off");
    assert_eq!(reason, "CrashLoopBackOff");
    assert_eq!(
        message.as_deref(),
        Some("back-off 10s restarting failed container=c pod=web_default(uid-web)")
    );
    sim.run_until(100);
    assert_eq!(sim.starts_of("c"), [30, 30, 40, 60, 100]);
}

#[test]
fn a_start_resets_the_image_back_off() {
    // Pulls fail at 0 and 10 (the back-off is 20 s by then); the image is
    // there at 30 and the container runs until 35. Its restart's pull
    // fails: the back-off starts over at 10 s, so the pod worker's retry at
    // 45 pulls again (without the reset it would wait until 75).
    let mut sim = sim();
    let fails = Pull::Fails {
        secs: 0,
        message: UNKNOWN,
    };
    sim.pulls("c", &[fails, fails, Pull::Present, fails]);
    sim.script("c", &[Script::Exit { secs: 5, code: 1 }]);
    let p = pod(&manifest("web", "Always", &["c"], &[]));
    sim.desire(&[&p]);
    sim.run_until(44);
    assert_eq!(sim.pulls_of("c"), [0, 10, 35]);
    assert_eq!(sim.starts_of("c"), [30]);
    let err_image_pull = Some(("ErrImagePull".to_string(), Some(UNKNOWN.to_string())));
    assert_eq!(waiting(&sim, "web", 0), err_image_pull);
    sim.run_until(46);
    assert_eq!(sim.pulls_of("c"), [0, 10, 35, 45]);
    let status = sim.status("web");
    let c = &status.container_statuses[0];
    assert_eq!(
        c.last_state.terminated.as_ref().map(|t| t.exit_code),
        Some(1)
    );
    assert_eq!(c.restart_count, 0, "a failed start spends no attempt");
}

#[test]
fn two_containers_of_a_pod_share_their_images_back_off() {
    // The image manager's key is the pod's UID and the image: once `a`'s
    // pull failed, `b` (same image) waits in ImagePullBackOff with `a`'s
    // error, and is not pulled until `a`'s pull succeeded.
    let mut sim = sim();
    let fails = Pull::Fails {
        secs: 0,
        message: UNKNOWN,
    };
    let pulls = Pull::Pulls { secs: 2, bytes: 1 };
    sim.pulls("a", &[fails, fails, fails, pulls]);
    let p = pod(&manifest("web", "Always", &["a", "b"], &[]));
    sim.desire(&[&p]);
    let now = events(&mut sim);
    assert_eq!(of(&now, "a"), failed_pull());
    assert_eq!(of(&now, "b"), held_pull());
    let back_off = Some(("ImagePullBackOff".to_string(), held_message()));
    assert_eq!(waiting(&sim, "web", 1), back_off);
    sim.run_until(71);
    assert_eq!(sim.pulls_of("a"), [0, 10, 30, 70]);
    assert!(sim.pulls_of("b").is_empty());
    assert_eq!(waiting(&sim, "web", 1), back_off);
    sim.run_until(80);
    assert_eq!(starts(&sim), timed(&[(72, "a"), (72, "b")]));
    assert!(sim.pulls_of("b").is_empty(), "b's image is present by then");
    assert_eq!(sim.phase("web"), PodPhase::Running);
}

#[test]
fn two_pods_pulling_one_image_back_off_each_on_its_own() {
    // The image manager's key includes the pod's UID: a second pod's pull
    // of the same image is not held by the first pod's failures.
    let mut sim = sim();
    let fails = Pull::Fails {
        secs: 0,
        message: UNKNOWN,
    };
    sim.pulls("a", &[fails]);
    sim.pulls("b", &[fails]);
    let one = pod(&manifest("one", "Always", &["a"], &[]));
    let two = pod(&manifest("two", "Always", &["b"], &[]));
    sim.desire(&[&one]);
    sim.run_until(5);
    sim.desire(&[&one, &two]);
    sim.run_until(80);
    assert_eq!(sim.pulls_of("a"), [0, 10, 30, 70]);
    assert_eq!(sim.pulls_of("b"), [5, 15, 35, 75]);
}

#[test]
fn a_long_pull_holds_the_next_containers_restart_without_a_busy_wake() {
    // `a`'s restart pulls from 15 to 45 s; `b`'s CrashLoopBackOff ends at
    // 30 s meanwhile. Regular containers start one at a time, so `b`
    // restarts once `a` started, and the engine asks for no wake-up at a
    // past time while it waits (the simulator fails on a busy wake).
    let mut sim = sim();
    sim.pulls("a", &[Pull::Present, Pull::Pulls { secs: 30, bytes: 1 }]);
    sim.script("a", &[Script::Exit { secs: 15, code: 1 }, Script::Serve]);
    sim.script("b", &[Script::Exit { secs: 0, code: 1 }]);
    let p = pod(&manifest("web", "Always", &["a", "b"], &[]));
    sim.desire(&[&p]);
    sim.run_until(44);
    assert_eq!(sim.pulls_of("a"), [15]);
    assert_eq!(sim.starts_of("b"), [0, 0, 10]);
    let (reason, _) = waiting(&sim, "web", 1).expect("b waits");
    assert_eq!(reason, "CrashLoopBackOff");
    sim.run_until(46);
    assert_eq!(sim.starts_of("a"), [0, 45]);
    assert_eq!(sim.starts_of("b"), [0, 0, 10, 45]);
}

#[test]
fn an_init_containers_pull_keeps_the_pod_initializing() {
    let mut sim = sim();
    sim.pulls("init", &[Pull::Pulls { secs: 5, bytes: 1 }]);
    sim.script("init", &[Script::Exit { secs: 1, code: 0 }]);
    let p = pod(&manifest("web", "Always", &["c"], &["init"]));
    sim.desire(&[&p]);
    sim.run_until(4);
    let status = sim.status("web");
    let init = status.init_container_statuses[0].state.waiting.clone();
    assert_eq!(init.map(|w| w.reason).as_deref(), Some("PodInitializing"));
    assert_eq!(
        waiting(&sim, "web", 0).map(|w| w.0).as_deref(),
        Some("PodInitializing")
    );
    sim.run_until(10);
    assert_eq!(starts(&sim), timed(&[(5, "init"), (6, "c")]));
}

#[test]
fn a_pod_deleted_while_its_pull_backs_off_goes_at_once() {
    let mut sim = sim();
    sim.pulls(
        "c",
        &[Pull::Fails {
            secs: 0,
            message: UNKNOWN,
        }],
    );
    let p = pod(&manifest("web", "Always", &["c"], &[]));
    sim.desire(&[&p]);
    sim.run_until(25);
    assert_eq!(
        waiting(&sim, "web", 0).map(|w| w.0).as_deref(),
        Some("ImagePullBackOff")
    );
    sim.desire(&[]);
    assert!(!sim.engine.holds("uid-web"), "nothing runs: gone at once");
    sim.run_until(100);
    assert_eq!(sim.pulls_of("c"), [0, 10]);
}

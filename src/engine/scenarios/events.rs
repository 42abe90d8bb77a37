//! The events a `kubectl describe pod` user sees.

use super::fixtures::*;
use super::sim::Script;
use crate::engine::probe::ProbeKind;
use crate::engine::EventType;

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

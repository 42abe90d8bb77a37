//! Termination: SIGTERM, the grace period and SIGKILL, preStop hooks,
//! sidecars last in reverse order, server deletions and replacements.

use super::fixtures::*;
use super::sim::{Script, Seen};
use crate::pod::status::PodPhase;
use crate::pod::Pod;
use std::sync::Arc;

#[test]
fn removal_terms_then_kills_after_grace() {
    let mut sim = sim();
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
    assert_eq!(sim.engine.snapshot().pods().count(), 0);
    assert_eq!(
        sim.engine.poll_timeout(),
        None,
        "idle: nothing left to wake for"
    );
}

#[test]
fn zero_grace_still_waits_two_seconds_before_kill() {
    let mut sim = sim();
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
    let mut sim = sim();
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
        .snapshot()
        .pods()
        .map(|r| r.pod.metadata.uid.clone())
        .collect();
    assert_eq!(uids, ["uid-web-2"]);
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
    let want = [
        (10, "main-2"),
        (13, "main-1"),
        (13, "side-2"),
        (13, "side-1"),
    ];
    assert_eq!(terms(&sim), timed(&want));
    assert!(
        sim.seen.iter().all(|(_, s)| !matches!(s, Seen::Kill(_))),
        "nobody needed SIGKILL"
    );
    assert_eq!(sim.engine.snapshot().pods().count(), 0);
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
        "{HEAD}  restartPolicy: Never\n  initContainers:\n{}{}{}  containers:\n{}",
        container("restartable-init-1", SIDECAR),
        container("restartable-init-2", SIDECAR),
        container("restartable-init-3", SIDECAR),
        container("regular-1", "")
    );
    let p = pod(&yaml);
    sim.desire(&[&p]);
    sim.run_until(120);
    assert_eq!(
        exits(&sim),
        timed(&[
            (5, "regular-1"),
            (10, "restartable-init-3"),
            (15, "restartable-init-2"),
            (20, "restartable-init-1")
        ])
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
        "{HEAD}  restartPolicy: Never\n  initContainers:\n{}{}{}  containers:\n{}",
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
    assert_eq!(sim.engine.snapshot().pods().count(), 1);
    assert!(sim.seen.iter().all(|(_, s)| !matches!(s, Seen::Kill(_))));
}

//! What the scenarios share: pod manifests and their parts, what the runtime
//! reports of recovered pods, probe scripts, and ways to read what the
//! simulated node saw.

use super::sim::{Answer, Seen, Sim};
use crate::engine::backoff::BackoffPolicy;
use crate::engine::container::ExitKind;
use crate::engine::{Exit, Recovered, RecoveredInstance, RecoveredSandbox};
use crate::pod::decode::decode_manifest;
use crate::pod::defaults;
use crate::pod::status::{PodCondition, PodStatus};
use crate::pod::Pod;
use crate::time::Time;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A simulated node with the kubelet's back-off (10 s doubling to 300 s).
pub fn sim() -> Sim {
    Sim::new(BackoffPolicy::default())
}

/// The start of the manifest of the pod `p`; its spec's fields follow.
pub const HEAD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n";

/// The line that makes an init container a sidecar.
pub const SIDECAR: &str = "    restartPolicy: Always\n";

/// One entry of a container list, with `extra` lines of its spec.
pub fn container(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    image: busybox:1\n{extra}")
}

/// A pod `name` with plain containers and init containers, a restart
/// policy and a grace period of 5 s.
pub fn manifest(name: &str, policy: &str, containers: &[&str], inits: &[&str]) -> String {
    let list = |cs: &[&str]| cs.iter().map(|c| container(c, "")).collect::<String>();
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

/// A startup probe's lines for a container's spec.
pub fn startup_probe(period: u64, failure: u64) -> String {
    format!("    startupProbe:\n      exec:\n        command: [startup]\n      periodSeconds: {period}\n      failureThreshold: {failure}\n")
}

/// The pod of a manifest, decoded, defaulted and valid, with the UID
/// `uid-<name>` unless it has one.
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

/// A probe script: the container's first instance answers Failure from
/// `secs` seconds after it started, every later instance Success.
pub fn first_instance_fails_from(secs: u64) -> impl Fn(u32, u64) -> Answer {
    move |attempt, since| {
        if attempt == 0 && since >= secs {
            Answer::Failure
        } else {
            Answer::Success
        }
    }
}

/// A process that exited with `code` at `at`.
pub fn exit(code: i32, at: Time) -> Exit {
    Exit {
        code,
        signal: None,
        kind: ExitKind::Normal,
        finished_at: at,
        message: None,
    }
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

/// A recorded instance still running, started at `at`.
pub fn running(container: &str, attempt: u32, at: Time) -> RecoveredInstance {
    RecoveredInstance {
        container: container.into(),
        attempt,
        container_id: format!("runc://uid-{container}-{attempt}"),
        image_id: String::new(),
        started_at: Some(at),
        exit: None,
    }
}

/// A recorded instance that started and exited with `code` at `at`.
pub fn ended(container: &str, attempt: u32, code: i32, at: Time) -> RecoveredInstance {
    RecoveredInstance {
        exit: Some(exit(code, at)),
        ..running(container, attempt, at)
    }
}

/// The condition `kind` of a status.
pub fn condition_in<'a>(status: &'a PodStatus, kind: &str) -> &'a PodCondition {
    status.conditions.iter().find(|c| c.kind == kind).unwrap()
}

/// The status and message of the condition `kind` of the pod `p`.
pub fn condition(sim: &Sim, kind: &str) -> (String, Option<String>) {
    let s = sim.status("p");
    let c = condition_in(&s, kind);
    (c.status.clone(), c.message.clone())
}

/// When the simulated runtime saw what `pick` picks: (seconds, container).
fn timeline(sim: &Sim, pick: impl Fn(&Seen) -> Option<&String>) -> Vec<(u64, String)> {
    let picked = sim
        .seen
        .iter()
        .filter_map(|(t, s)| Some((*t, pick(s)?.clone())));
    picked.collect()
}

/// Every start, of any container.
pub fn starts(sim: &Sim) -> Vec<(u64, String)> {
    timeline(sim, |s| match s {
        Seen::Start(c, _) => Some(c),
        _ => None,
    })
}

/// Every SIGTERM.
pub fn terms(sim: &Sim) -> Vec<(u64, String)> {
    timeline(sim, |s| match s {
        Seen::Term(c) => Some(c),
        _ => None,
    })
}

/// Every exit, whatever its code.
pub fn exits(sim: &Sim) -> Vec<(u64, String)> {
    timeline(sim, |s| match s {
        Seen::Exit(c, _, _) => Some(c),
        _ => None,
    })
}

/// (seconds, container) pairs as a test writes them.
pub fn timed(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
    pairs.iter().map(|(t, c)| (*t, c.to_string())).collect()
}

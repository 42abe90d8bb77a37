//! Admission and a new pod's first status: resources that do not fit are
//! rejected, an admitted pod waits in ContainerCreating.

use super::fixtures::*;
use crate::engine::backoff::BackoffPolicy;
use crate::engine::{Desired, Engine, EngineConfig};
use crate::pod::status::PodPhase;
use std::collections::BTreeMap;

#[test]
fn admission_rejects_what_does_not_fit_and_leaves_others_alone() {
    let mut sim = sim();
    sim.engine = Engine::new(EngineConfig {
        backoff: BackoffPolicy::default(),
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
fn default_waiting_reason_and_container_creating() {
    let mut sim = sim();
    let p = pod(&manifest("web", "Always", &["c"], &[]));
    sim.engine.set_desired(
        vec![Desired {
            pod: p,
            first_attempts: BTreeMap::new(),
            refused: None,
        }],
        sim.now,
    );
    let s = sim.status("web");
    assert_eq!(
        s.container_statuses[0]
            .state
            .waiting
            .as_ref()
            .unwrap()
            .reason,
        "ContainerCreating"
    );
    assert_eq!(s.phase, PodPhase::Pending);
    let ready_to_start = condition_in(&s, "PodReadyToStartContainers");
    assert_eq!(ready_to_start.status, "False");
}

//! Resource arithmetic as the kubelet does it: QoS class, effective pod
//! requests and limits (KEP-753's formula with sidecars), and the cgroup
//! values derived from them. Pure functions of the pod; `cgroup.rs` writes
//! the results.

use super::quantity::{bytes_of, millicores_of};
use super::{Container, Pod};

/// The QoS classes of core/v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// Every container has cpu and memory limits, and requests equal to them.
    Guaranteed,
    /// Some container has a request or a limit, but the pod is not Guaranteed.
    Burstable,
    /// No container has any request or limit.
    BestEffort,
}

impl QosClass {
    /// The class as `status.qosClass` writes it.
    pub fn name(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// One container's cpu (millicores) and memory (bytes) requests and limits;
/// a request defaults to its limit, as the API server defaults it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    /// Millicores.
    pub cpu_request: Option<u64>,
    /// Millicores.
    pub cpu_limit: Option<u64>,
    /// Bytes.
    pub memory_request: Option<u64>,
    /// Bytes.
    pub memory_limit: Option<u64>,
}

/// Container `c`'s amounts; a quantity that does not parse counts as unset
/// (validation has refused such a pod).
pub fn amounts(c: &Container) -> Amounts {
    let Some(r) = &c.resources else {
        return Amounts::default();
    };
    let cpu = |m: &std::collections::BTreeMap<String, serde_json::Value>| {
        m.get("cpu").and_then(|v| millicores_of(v).ok())
    };
    let mem = |m: &std::collections::BTreeMap<String, serde_json::Value>| {
        m.get("memory").and_then(|v| bytes_of(v).ok())
    };
    let cpu_limit = cpu(&r.limits);
    let memory_limit = mem(&r.limits);
    Amounts {
        cpu_request: cpu(&r.requests).or(cpu_limit),
        cpu_limit,
        memory_request: mem(&r.requests).or(memory_limit),
        memory_limit,
    }
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec.init_containers.iter().chain(&pod.spec.containers)
}

/// The QoS class (`pkg/apis/core/v1/helper/qos`): Guaranteed when every
/// container has cpu and memory limits equal to its requests; BestEffort when
/// none has any request or limit; Burstable otherwise.
pub fn qos_class(pod: &Pod) -> QosClass {
    let mut any = false;
    let mut guaranteed = true;
    for c in all_containers(pod) {
        let a = amounts(c);
        any |= a.cpu_request.is_some()
            || a.cpu_limit.is_some()
            || a.memory_request.is_some()
            || a.memory_limit.is_some();
        let cpu_ok = a.cpu_limit.is_some() && a.cpu_request == a.cpu_limit;
        let mem_ok = a.memory_limit.is_some() && a.memory_request == a.memory_limit;
        guaranteed &= cpu_ok && mem_ok;
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

/// The pod's effective value of one resource (KEP-753): the larger of the
/// largest plain init container plus the sidecars started before it, and the
/// sum of regular containers plus all sidecars. `None` if any container that
/// counts lacks the value (for limits: no pod-level limit).
fn effective(
    pod: &Pod,
    value: impl Fn(&Amounts) -> Option<u64>,
    all_required: bool,
) -> Option<u64> {
    let mut sidecars = 0u64;
    let mut init_peak = 0u64;
    let mut missing = false;
    for c in &pod.spec.init_containers {
        let v = value(&amounts(c));
        missing |= v.is_none();
        let v = v.unwrap_or(0);
        // Saturating: quantities are below 2^63 each (quantity.rs), not
        // their sums.
        if c.is_sidecar() {
            sidecars = sidecars.saturating_add(v);
        } else {
            init_peak = init_peak.max(v.saturating_add(sidecars));
        }
    }
    let mut regular = 0u64;
    for c in &pod.spec.containers {
        let v = value(&amounts(c));
        missing |= v.is_none();
        regular = regular.saturating_add(v.unwrap_or(0));
    }
    if all_required && missing {
        return None;
    }
    Some(init_peak.max(regular.saturating_add(sidecars)))
}

/// The pod's effective cpu request in millicores (0 if none).
pub fn pod_cpu_request(pod: &Pod) -> u64 {
    effective(pod, |a| a.cpu_request, false).unwrap_or(0)
}

/// The pod's effective memory request in bytes (0 if none).
pub fn pod_memory_request(pod: &Pod) -> u64 {
    effective(pod, |a| a.memory_request, false).unwrap_or(0)
}

/// The pod-level cpu limit, only if every container has one.
pub fn pod_cpu_limit(pod: &Pod) -> Option<u64> {
    effective(pod, |a| a.cpu_limit, true)
}

/// The pod-level memory limit, only if every container has one.
pub fn pod_memory_limit(pod: &Pod) -> Option<u64> {
    effective(pod, |a| a.memory_limit, true)
}

/// The kubelet's cpu shares for a request in millicores (minimum 2).
pub fn cpu_shares(millicores: u64) -> u64 {
    (millicores.saturating_mul(1024) / 1000).max(2)
}

/// cgroup v2 cpu.weight from cpu shares, as runc and the kubelet convert it.
pub fn cpu_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// The cfs period the kubelet uses, in microseconds.
pub const CPU_PERIOD: u64 = 100_000;

/// cpu.max's quota for a limit in millicores (at least 1 ms per period;
/// saturating, so at most u64::MAX / 1000, which the OCI spec's int64 holds).
pub fn cpu_quota(millicores: u64) -> u64 {
    (millicores.saturating_mul(CPU_PERIOD) / 1000).max(1000)
}

/// oom_score_adj of a container: Guaranteed -997, BestEffort 1000,
/// Burstable 1000 - 1000 * request / capacity clamped to [3, 999]; a sidecar
/// gets no more than the smallest regular container's.
pub fn oom_score_adj(pod: &Pod, c: &Container, memory_capacity: u64) -> i64 {
    let burstable = |c: &Container| {
        let request = amounts(c).memory_request.unwrap_or(0);
        let adj = 1000 - (1000 * u128::from(request) / u128::from(memory_capacity.max(1))) as i64;
        adj.clamp(3, 999)
    };
    match qos_class(pod) {
        QosClass::Guaranteed => -997,
        QosClass::BestEffort => 1000,
        QosClass::Burstable if c.is_sidecar() => {
            let smallest_regular = pod
                .spec
                .containers
                .iter()
                .min_by_key(|r| amounts(r).memory_request.unwrap_or(0))
                .map(burstable)
                .unwrap_or(999);
            burstable(c).min(smallest_regular)
        }
        QosClass::Burstable => burstable(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::decode::decode_manifest;

    fn pod(containers: &str) -> Pod {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{containers}");
        decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod
    }

    fn c(name: &str, resources: &str) -> String {
        format!("  - name: {name}\n    image: i\n    resources: {resources}\n")
    }

    #[test]
    fn qos_classes() {
        let g = pod(&format!(
            "  containers:\n{}",
            c("a", "{limits: {cpu: 500m, memory: 64Mi}}")
        ));
        assert_eq!(
            qos_class(&g),
            QosClass::Guaranteed,
            "requests default to limits"
        );
        let b = pod(&format!(
            "  containers:\n{}{}",
            c("a", "{limits: {cpu: 500m, memory: 64Mi}}"),
            c("b", "{requests: {cpu: 100m}}")
        ));
        assert_eq!(qos_class(&b), QosClass::Burstable);
        let e = pod(&format!("  containers:\n{}", c("a", "{}")));
        assert_eq!(qos_class(&e), QosClass::BestEffort);
    }

    #[test]
    fn effective_requests_follow_kep_753() {
        // init-1 (plain, 500m) after side-1 (100m); regulars 200m + 100m; side-2 50m.
        let p = pod(&format!(
            "  initContainers:\n{}{}{}  containers:\n{}{}",
            c("side-1", "{requests: {cpu: 100m, memory: 10Mi}}")
                .replace("    resources", "    restartPolicy: Always\n    resources"),
            c("init-1", "{requests: {cpu: 500m, memory: 100Mi}}"),
            c("side-2", "{requests: {cpu: 50m, memory: 5Mi}}")
                .replace("    resources", "    restartPolicy: Always\n    resources"),
            c("r1", "{requests: {cpu: 200m, memory: 20Mi}}"),
            c("r2", "{requests: {cpu: 100m, memory: 30Mi}}"),
        ));
        // max(500 + 100, 200 + 100 + 100 + 50) = 600; max(110Mi, 65Mi) = 110Mi.
        assert_eq!(pod_cpu_request(&p), 600);
        assert_eq!(pod_memory_request(&p), 110 << 20);
        assert_eq!(pod_cpu_limit(&p), None, "not every container has a limit");
    }

    #[test]
    fn cgroup_values_are_the_kubelets() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(100), 102);
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_quota(500), 50_000);
        assert_eq!(cpu_quota(1), 1000, "at least 1 ms");
    }

    #[test]
    fn oom_score_adj_by_qos() {
        let cap = 1000 << 20;
        let g = pod(&format!(
            "  containers:\n{}",
            c("a", "{limits: {cpu: 1, memory: 100Mi}}")
        ));
        assert_eq!(oom_score_adj(&g, &g.spec.containers[0], cap), -997);
        let e = pod(&format!("  containers:\n{}", c("a", "{}")));
        assert_eq!(oom_score_adj(&e, &e.spec.containers[0], cap), 1000);
        let b = pod(&format!(
            "  initContainers:\n{}  containers:\n{}{}",
            c("side", "{requests: {memory: 10Mi}}")
                .replace("    resources", "    restartPolicy: Always\n    resources"),
            c("big", "{requests: {memory: 500Mi}}"),
            c("small", "{requests: {memory: 100Mi}}"),
        ));
        assert_eq!(oom_score_adj(&b, &b.spec.containers[0], cap), 500);
        assert_eq!(oom_score_adj(&b, &b.spec.containers[1], cap), 900);
        assert_eq!(
            oom_score_adj(&b, &b.spec.init_containers[0], cap),
            900,
            "a sidecar no higher than the smallest regular container"
        );
    }

    #[test]
    fn sums_and_products_of_the_largest_quantities_saturate() {
        let p = pod(&format!(
            "  containers:\n{}{}{}",
            c("a", "{limits: {cpu: 9e15, memory: 7Ei}}"),
            c("b", "{limits: {cpu: 9e15, memory: 7Ei}}"),
            c("c", "{limits: {cpu: 9e15, memory: 7Ei}}")
        ));
        assert_eq!(pod_memory_request(&p), u64::MAX);
        assert_eq!(pod_cpu_limit(&p), Some(u64::MAX));
        assert_eq!(cpu_quota(u64::MAX), u64::MAX / 1000);
        assert_eq!(cpu_shares(u64::MAX), u64::MAX / 1000);
    }
}

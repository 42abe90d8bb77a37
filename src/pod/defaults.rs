//! API defaults (docs/lifecycle.md, "Defaults and validation"), applied once
//! after decoding so that everything downstream reads plain values.

use super::{Pod, PullPolicy};

/// Fill in what the API server would: grace period, pull policy, termination
/// message fields. The namespace is the source's to default.
pub fn apply(pod: &mut Pod) {
    if pod.metadata.namespace.is_empty() {
        pod.metadata.namespace = "default".into();
    }
    pod.spec.termination_grace_period_seconds.get_or_insert(30);
    for c in pod
        .spec
        .init_containers
        .iter_mut()
        .chain(pod.spec.containers.iter_mut())
    {
        if c.image_pull_policy.is_none() {
            c.image_pull_policy = Some(default_pull_policy(&c.image));
        }
        for probe in [
            &mut c.liveness_probe,
            &mut c.readiness_probe,
            &mut c.startup_probe,
        ]
        .into_iter()
        .flatten()
        {
            probe.initial_delay_seconds.get_or_insert(0);
            probe.timeout_seconds.get_or_insert(1);
            probe.period_seconds.get_or_insert(10);
            probe.success_threshold.get_or_insert(1);
            probe.failure_threshold.get_or_insert(3);
        }
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy
            .get_or_insert_with(|| "File".into());
    }
}

/// `Always` for `:latest` or an untagged image, `IfNotPresent` otherwise, as the
/// API server defaults it. A digest counts as a tag.
pub fn default_pull_policy(image: &str) -> PullPolicy {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        _ if image.contains('@') => PullPolicy::IfNotPresent,
        Some((_, "latest")) | None => PullPolicy::Always,
        Some(_) => PullPolicy::IfNotPresent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults_like_the_api_server() {
        assert_eq!(default_pull_policy("busybox"), PullPolicy::Always);
        assert_eq!(default_pull_policy("busybox:latest"), PullPolicy::Always);
        assert_eq!(
            default_pull_policy("busybox:1.36"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            default_pull_policy("localhost:5000/busybox"),
            PullPolicy::Always
        );
        assert_eq!(
            default_pull_policy("busybox@sha256:0123"),
            PullPolicy::IfNotPresent
        );
    }

    #[test]
    fn probe_defaults_are_the_api_servers() {
        let mut pod = Pod::default();
        pod.spec.containers.push(crate::pod::Container {
            readiness_probe: Some(crate::pod::Probe::default()),
            ..Default::default()
        });
        apply(&mut pod);
        let p = pod.spec.containers[0].readiness_probe.clone().unwrap();
        let got = (
            p.initial_delay_seconds,
            p.timeout_seconds,
            p.period_seconds,
            p.success_threshold,
            p.failure_threshold,
        );
        assert_eq!(got, (Some(0), Some(1), Some(10), Some(1), Some(3)));
    }

    #[test]
    fn grace_and_namespace_defaults() {
        let mut pod = Pod::default();
        apply(&mut pod);
        assert_eq!(pod.spec.termination_grace_period_seconds, Some(30));
        assert_eq!(pod.metadata.namespace, "default");
    }
}

//! The node policy for pods from an API server: what the operator allows a
//! control plane to run here. By default a server may not run privileged
//! containers, mount host paths or use the host's network, so that a
//! compromised control plane cannot take the device over through settings
//! the operator never chose. Static pods are the operator's own and are not
//! subject to it.

use crate::pod::Pod;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePolicy {
    #[serde(default)]
    pub allow_privileged: bool,
    #[serde(default)]
    pub allow_host_path: bool,
    #[serde(default)]
    pub allow_host_network: bool,
}

/// The kubelet's word for a pod its admission refused.
pub const REASON: &str = "NodePolicy";

impl NodePolicy {
    /// (reason, message) if the policy refuses `pod`.
    pub fn refusal(&self, pod: &Pod) -> Option<(String, String)> {
        let privileged = pod
            .spec
            .init_containers
            .iter()
            .chain(&pod.spec.containers)
            .find(|c| {
                c.security_context
                    .as_ref()
                    .is_some_and(|s| s.privileged == Some(true))
            });
        let host_path = pod.spec.volumes.iter().find(|v| v.host_path.is_some());
        let what = if let (Some(c), false) = (privileged, self.allow_privileged) {
            format!(
                "privileged container {:?} (nodePolicy.allowPrivileged)",
                c.name
            )
        } else if let (Some(v), false) = (host_path, self.allow_host_path) {
            format!("hostPath volume {:?} (nodePolicy.allowHostPath)", v.name)
        } else if pod.spec.host_network && !self.allow_host_network {
            "hostNetwork (nodePolicy.allowHostNetwork)".to_string()
        } else {
            return None;
        };
        Some((
            REASON.into(),
            format!(
                "Pod was rejected: this node's policy forbids {what} for pods from the API server"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::decode::decode_manifest;

    fn pod(extra_spec: &str, container_extra: &str) -> Pod {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{extra_spec}  containers:\n  - name: c\n    image: busybox\n{container_extra}"
        );
        decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod
    }

    #[test]
    fn refuses_by_default_and_allows_what_the_operator_chose() {
        let strict = NodePolicy::default();
        let plain = pod("", "");
        assert_eq!(strict.refusal(&plain), None);

        let privileged = pod("", "    securityContext:\n      privileged: true\n");
        let (reason, message) = strict.refusal(&privileged).unwrap();
        assert_eq!(reason, "NodePolicy");
        assert!(message.contains("privileged container \"c\""), "{message}");

        let host_path = pod(
            "  volumes:\n  - name: root\n    hostPath:\n      path: /\n",
            "",
        );
        assert!(strict
            .refusal(&host_path)
            .unwrap()
            .1
            .contains("hostPath volume \"root\""));

        let host_network = pod("  hostNetwork: true\n", "");
        assert!(strict
            .refusal(&host_network)
            .unwrap()
            .1
            .contains("allowHostNetwork"));

        let open = NodePolicy {
            allow_privileged: true,
            allow_host_path: true,
            allow_host_network: true,
        };
        for p in [&privileged, &host_path, &host_network] {
            assert_eq!(open.refusal(p), None);
        }
    }
}

//! The node policy: what the operator lets pods from the manifest URL and
//! the API server do here. By default they may not run privileged
//! containers, add capabilities beyond the default set, mount host paths or
//! share the host's network, PID or IPC namespace, so that a compromised
//! fleet server or control plane cannot take the device over through
//! settings the operator never chose. Static pods from the local directory
//! are the operator's own and are not subject to it, as with the kubelet.

use crate::pod::validate::capability_name;
use crate::pod::{Container, Pod, DEFAULT_CAPS};
use serde::Deserialize;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The `nodePolicy` section of the configuration file: what pods the policy
/// applies to may ask for. Everything is refused by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePolicy {
    /// Containers may be privileged.
    #[serde(default)]
    pub allow_privileged: bool,
    /// Capabilities a container may add beyond the default set; `ALL`
    /// allows any.
    #[serde(default)]
    pub allowed_capabilities: Vec<String>,
    /// Host directories under which hostPath volumes may lie.
    #[serde(default)]
    pub allowed_host_paths: Vec<PathBuf>,
    /// Pods may share the host's network namespace.
    #[serde(default)]
    pub allow_host_network: bool,
    /// Pods may share the host's PID namespace.
    #[serde(default, rename = "allowHostPID")]
    pub allow_host_pid: bool,
    /// Pods may share the host's IPC namespace.
    #[serde(default, rename = "allowHostIPC")]
    pub allow_host_ipc: bool,
}

/// A fault in the `nodePolicy` configuration, named by key and index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// An `allowedCapabilities` entry that is no Linux capability.
    UnknownCapability {
        /// Its index in the list.
        index: usize,
        /// The entry as given.
        name: String,
    },
    /// An `allowedHostPaths` entry that is relative or climbs with `..`.
    HostPathPrefix {
        /// Its index in the list.
        index: usize,
        /// The entry as given.
        prefix: PathBuf,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::UnknownCapability { index, name } => write!(
                f,
                "nodePolicy.allowedCapabilities[{index}]: unknown capability {name:?}"
            ),
            PolicyError::HostPathPrefix { index, prefix } => write!(
                f,
                "nodePolicy.allowedHostPaths[{index}]: {prefix:?} must be an absolute path without `..`"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The kubelet's word for a pod its admission refused.
pub const REASON: &str = "NodePolicy";
/// Where a refused pod came from, for its message.
pub const FROM_API: &str = "the API server";
/// Where a refused pod came from when the manifest URL served it.
pub const FROM_URL: &str = "the manifest URL";

impl NodePolicy {
    /// The configuration's own faults, named by key.
    pub fn check(&self) -> Result<(), PolicyError> {
        for (index, name) in self.allowed_capabilities.iter().enumerate() {
            if capability_name(name).is_none() {
                return Err(PolicyError::UnknownCapability {
                    index,
                    name: name.clone(),
                });
            }
        }
        for (index, prefix) in self.allowed_host_paths.iter().enumerate() {
            if normal(prefix).is_none() {
                return Err(PolicyError::HostPathPrefix {
                    index,
                    prefix: prefix.clone(),
                });
            }
        }
        Ok(())
    }

    /// (reason, message) if the policy refuses `pod`, which came `from`.
    pub fn refusal(&self, pod: &Pod, from: &str) -> Option<(String, String)> {
        let what = self.forbidden(pod)?;
        Some((
            REASON.into(),
            format!("Pod was rejected: this node's policy forbids {what} for pods from {from}"),
        ))
    }

    /// The first thing `pod` asks for that the policy does not allow.
    fn forbidden(&self, pod: &Pod) -> Option<String> {
        let spec = &pod.spec;
        let containers = || spec.init_containers.iter().chain(&spec.containers);
        if !self.allow_privileged {
            if let Some(c) = containers().find(|c| is_privileged(c)) {
                let name = &c.name;
                return Some(format!(
                    "privileged container {name:?} (nodePolicy.allowPrivileged)"
                ));
            }
        }
        for c in containers() {
            if let Some(cap) = self.added_capability_refused(c) {
                let name = &c.name;
                return Some(format!(
                    "capability {cap} added by container {name:?} (nodePolicy.allowedCapabilities)"
                ));
            }
        }
        for v in &spec.volumes {
            let Some(h) = &v.host_path else { continue };
            if !self.host_path_allowed(Path::new(&h.path)) {
                let (name, path) = (&v.name, &h.path);
                return Some(format!(
                    "hostPath volume {name:?} at {path:?} (nodePolicy.allowedHostPaths)"
                ));
            }
        }
        let namespaces = [
            (spec.host_network, self.allow_host_network, "hostNetwork"),
            (spec.host_pid == Some(true), self.allow_host_pid, "hostPID"),
            (spec.host_ipc == Some(true), self.allow_host_ipc, "hostIPC"),
        ];
        let (_, _, key) = namespaces
            .into_iter()
            .find(|(asked, ok, _)| *asked && !ok)?;
        let allow = format!("allow{}", &key[..1].to_uppercase()) + &key[1..];
        Some(format!("{key} (nodePolicy.{allow})"))
    }

    /// The first capability `c` adds that is neither a default one nor
    /// allowed, as `CAP_X`.
    fn added_capability_refused(&self, c: &Container) -> Option<String> {
        let allowed: Vec<String> = self
            .allowed_capabilities
            .iter()
            .filter_map(|n| capability_name(n))
            .collect();
        if allowed.iter().any(|a| a == "CAP_ALL") {
            return None;
        }
        let added = c.security_context.as_ref()?.capabilities.as_ref()?;
        added
            .add
            .iter()
            .map(|n| capability_name(n).unwrap_or_else(|| n.clone()))
            .find(|cap| !DEFAULT_CAPS.contains(&cap.as_str()) && !allowed.contains(cap))
    }

    /// `path` lies under an allowed prefix, as written and with the host's
    /// symbolic links resolved (a link under an allowed directory must not
    /// lead elsewhere). `..` is refused outright.
    fn host_path_allowed(&self, path: &Path) -> bool {
        let Some(path) = normal(path) else {
            return false;
        };
        let resolved = resolve(&path);
        self.allowed_host_paths
            .iter()
            .filter_map(|p| normal(p))
            .any(|prefix| path.starts_with(&prefix) && resolved.starts_with(resolve(&prefix)))
    }
}

/// Whether `pod` is a static pod from the local directory, which the
/// policy does not apply to. The source annotation is picolet's own: every
/// source sets it over whatever the pod said (src/source/static_pod.rs,
/// src/source/api/mod.rs), and a pod without one is not trusted.
pub fn trusted(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .get("kubernetes.io/config.source")
        .is_some_and(|s| s == "file")
}

/// The outermost allowed prefix `path` lies under, as written, and the rest
/// of the path below it: where a hostPath of a pod the policy applies to is
/// resolved from at each start. The outermost, because no admitted pod can
/// write above it, while a pod given an outer prefix could swap an inner
/// one for a link.
pub fn host_path_root(allowed: &[PathBuf], path: &Path) -> Option<(PathBuf, PathBuf)> {
    let path = normal(path)?;
    let prefix = allowed
        .iter()
        .filter_map(|p| normal(p))
        .filter(|p| path.starts_with(p))
        .min_by_key(|p| p.components().count())?;
    let rest = path.strip_prefix(&prefix).ok()?.to_path_buf();
    Some((prefix, rest))
}

fn is_privileged(c: &Container) -> bool {
    c.security_context
        .as_ref()
        .is_some_and(|s| s.privileged == Some(true))
}

/// An absolute path without `.`, `..` or repeated slashes; `None` if it is
/// relative or climbs with `..`.
fn normal(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return None;
    }
    for c in components {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `path` (normal) with the links of its longest existing ancestor resolved
/// by the host; what does not exist yet is appended as written, as a mkdir
/// of a `DirectoryOrCreate` volume would follow the same links.
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut missing = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
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

    fn host_path(path: &str) -> Pod {
        pod(
            &format!("  volumes:\n  - name: h\n    hostPath:\n      path: {path:?}\n"),
            "",
        )
    }

    fn message(policy: &NodePolicy, pod: &Pod) -> String {
        let (reason, message) = policy.refusal(pod, FROM_URL).expect("refused");
        assert_eq!(reason, "NodePolicy");
        assert!(
            message.ends_with("for pods from the manifest URL"),
            "{message}"
        );
        message
    }

    #[test]
    fn refuses_by_default_and_allows_what_the_operator_chose() {
        let strict = NodePolicy::default();
        assert_eq!(strict.refusal(&pod("", ""), FROM_API), None);

        let privileged = pod("", "    securityContext:\n      privileged: true\n");
        let m = message(&strict, &privileged);
        assert!(
            m.contains("privileged container \"c\" (nodePolicy.allowPrivileged)"),
            "{m}"
        );
        let root = host_path("/");
        let m = message(&strict, &root);
        assert!(
            m.contains("hostPath volume \"h\" at \"/\" (nodePolicy.allowedHostPaths)"),
            "{m}"
        );
        let cases = [
            (
                "  hostNetwork: true\n",
                "hostNetwork (nodePolicy.allowHostNetwork)",
            ),
            ("  hostPID: true\n", "hostPID (nodePolicy.allowHostPID)"),
            ("  hostIPC: true\n", "hostIPC (nodePolicy.allowHostIPC)"),
        ];
        for (spec, want) in cases {
            let m = message(&strict, &pod(spec, ""));
            assert!(m.contains(want), "{m}");
        }

        let open = NodePolicy {
            allow_privileged: true,
            allowed_capabilities: vec!["ALL".into()],
            allowed_host_paths: vec!["/".into()],
            allow_host_network: true,
            allow_host_pid: true,
            allow_host_ipc: true,
        };
        for spec in [
            "  hostNetwork: true\n",
            "  hostPID: true\n",
            "  hostIPC: true\n",
        ] {
            assert_eq!(open.refusal(&pod(spec, ""), FROM_URL), None);
        }
        assert_eq!(open.refusal(&privileged, FROM_URL), None);
        assert_eq!(open.refusal(&root, FROM_URL), None);
    }

    #[test]
    fn capabilities_beyond_the_default_set_need_the_operator() {
        let add = |caps: &str| {
            pod(
                "",
                &format!("    securityContext:\n      capabilities:\n        add: {caps}\n"),
            )
        };
        let strict = NodePolicy::default();
        // The default set (containerd's) may be named again.
        assert_eq!(strict.refusal(&add("[NET_RAW, CAP_CHOWN]"), FROM_URL), None);
        let m = message(&strict, &add("[CHOWN, net_admin]"));
        assert!(
            m.contains("capability CAP_NET_ADMIN added by container \"c\" (nodePolicy.allowedCapabilities)"),
            "{m}"
        );
        assert!(message(&strict, &add("[ALL]")).contains("capability CAP_ALL"));

        let some = NodePolicy {
            allowed_capabilities: vec!["CAP_NET_ADMIN".into()],
            ..NodePolicy::default()
        };
        assert_eq!(some.refusal(&add("[NET_ADMIN]"), FROM_URL), None);
        assert!(message(&some, &add("[NET_ADMIN, SYS_ADMIN]")).contains("CAP_SYS_ADMIN"));
        assert!(message(&some, &add("[ALL]")).contains("CAP_ALL"));
        // An init container is checked too.
        let init = decode_manifest(
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  initContainers:\n  - name: i\n    image: busybox\n    securityContext:\n      capabilities:\n        add: [SYS_MODULE]\n  containers:\n  - name: c\n    image: busybox\n",
        )
        .unwrap()
        .remove(0)
        .pod;
        assert!(message(&strict, &init).contains("CAP_SYS_MODULE added by container \"i\""));
    }

    #[test]
    fn host_paths_must_lie_under_an_allowed_prefix_after_normalising() {
        let dir = std::env::temp_dir().join(format!("picolet-policy-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let policy = NodePolicy {
            allowed_host_paths: vec![data.clone()],
            ..NodePolicy::default()
        };
        let d = data.display();
        for ok in [format!("{d}"), format!("{d}/logs"), format!("{d}//./x/")] {
            assert_eq!(policy.refusal(&host_path(&ok), FROM_URL), None, "{ok}");
        }
        let escapes = [
            format!("{d}/../etc"),
            format!("{d}/x/../../etc"),
            format!("{d}sibling"),
            "/etc".to_string(),
        ];
        for bad in escapes {
            assert!(
                message(&policy, &host_path(&bad)).contains("allowedHostPaths"),
                "{bad}"
            );
        }
        // A link under the allowed directory that leads outside it.
        std::os::unix::fs::symlink("/etc", data.join("escape")).unwrap();
        for bad in [format!("{d}/escape"), format!("{d}/escape/new/dir")] {
            assert!(
                message(&policy, &host_path(&bad)).contains("allowedHostPaths"),
                "{bad}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_host_path_is_resolved_from_the_outermost_allowed_prefix() {
        let allowed: Vec<PathBuf> = vec!["/srv/data/inner".into(), "/srv/data".into()];
        let root = |p: &str| host_path_root(&allowed, Path::new(p));
        // A pod given /srv/data could make /srv/data/inner a link: the
        // inner prefix is no safe place to start from.
        assert_eq!(
            root("/srv/data/inner/x"),
            Some(("/srv/data".into(), "inner/x".into()))
        );
        assert_eq!(root("/srv/data"), Some(("/srv/data".into(), "".into())));
        assert_eq!(
            root("/srv//data/./y/"),
            Some(("/srv/data".into(), "y".into()))
        );
        assert_eq!(root("/srv/database"), None);
        assert_eq!(root("/srv/data/../etc"), None);
        assert_eq!(root("/etc"), None);
    }

    #[test]
    fn only_static_pods_from_the_directory_are_trusted() {
        let mut pod = host_path("/etc");
        assert!(!trusted(&pod), "no source: not trusted");
        let source = "kubernetes.io/config.source";
        for (from, expected) in [("file", true), ("http", false), ("api", false)] {
            pod.metadata.annotations.insert(source.into(), from.into());
            assert_eq!(trusted(&pod), expected, "{from}");
        }
    }

    #[test]
    fn the_configuration_is_checked() {
        let bad_cap = NodePolicy {
            allowed_capabilities: vec!["NET_ADMIN".into(), "NOPE".into()],
            ..NodePolicy::default()
        };
        let err = bad_cap.check().unwrap_err();
        assert_eq!(
            err,
            PolicyError::UnknownCapability {
                index: 1,
                name: "NOPE".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "nodePolicy.allowedCapabilities[1]: unknown capability \"NOPE\""
        );
        for path in ["data", "/data/../etc"] {
            let bad_path = NodePolicy {
                allowed_host_paths: vec!["/ok".into(), path.into()],
                ..NodePolicy::default()
            };
            let err = bad_path.check().unwrap_err();
            assert_eq!(
                err,
                PolicyError::HostPathPrefix {
                    index: 1,
                    prefix: path.into()
                }
            );
            assert!(
                err.to_string()
                    .starts_with("nodePolicy.allowedHostPaths[1]: "),
                "{err}"
            );
        }
        assert_eq!(NodePolicy::default().check(), Ok(()));
    }
}

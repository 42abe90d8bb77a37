//! This node as the API sees it: the Node object (labels, capacity and
//! allocatable, nodeInfo, addresses, conditions) and its Lease heartbeat in
//! `kube-node-lease`, as the kubelet registers and renews them.

use super::NodeInputs;
use crate::time::Time;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The kubelet's lease: renewed every 10 s, valid for 40 s.
pub const LEASE_RENEW: Duration = Duration::from_secs(10);
/// The lease's validity, in the Lease object's unit.
pub const LEASE_DURATION_SECONDS: u64 = 40;
/// A Node status is sent on change, and at least this often.
pub const STATUS_REPORT: Duration = Duration::from_secs(300);

/// What does not change while the agent runs.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// The Node's name.
    pub name: String,
    /// Millicores and bytes, before and after the reservations.
    pub cpu: (u64, u64),
    pub memory: (u64, u64),
    /// How many pods the node takes (the kubelet's default, 110).
    pub max_pods: u32,
    /// The size of the state directory's filesystem, in bytes.
    pub ephemeral_storage: u64,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// `PRETTY_NAME` of /etc/os-release.
    pub os_image: String,
    /// The architecture in Go's words (`arm64`, `amd64`).
    pub arch: &'static str,
    /// The OCI runtime's version line.
    pub runtime_version: String,
    /// /etc/machine-id.
    pub machine_id: String,
    /// The kernel's boot id.
    pub boot_id: String,
    /// The address this node reaches the API server from.
    pub internal_ip: Option<String>,
}

impl NodeFacts {
    /// Read the facts of this machine; `root` is the state directory whose
    /// filesystem is the node's ephemeral storage.
    pub fn gather(inputs: &NodeInputs<'_>, server: &str) -> NodeFacts {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let uname = rustix::system::uname();
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        NodeFacts {
            name: inputs.node_name.to_string(),
            cpu: inputs.cpu,
            memory: inputs.memory,
            max_pods: 110,
            ephemeral_storage: rustix::fs::statvfs(inputs.root)
                .map(|s| s.f_blocks * s.f_frsize)
                .unwrap_or(0),
            kernel: uname.release().to_string_lossy().into_owned(),
            os_image,
            arch: go_arch(),
            runtime_version: runtime_version(inputs.runtime),
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            internal_ip: crate::host::local_ip_towards(server),
        }
    }

    /// The Node to register.
    pub fn node(&self, conditions: &[Condition], now: Time) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": self.arch,
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": self.arch,
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {},
            "status": self.status(conditions, now),
        })
    }

    /// The Node's status: capacity, allocatable, conditions, addresses and
    /// nodeInfo.
    pub fn status(&self, conditions: &[Condition], now: Time) -> Value {
        let resources = |cpu: u64, memory: u64| {
            json!({
                "cpu": format!("{cpu}m"),
                "memory": format!("{}Ki", memory / 1024),
                "pods": self.max_pods.to_string(),
                "ephemeral-storage": format!("{}Ki", self.ephemeral_storage / 1024),
            })
        };
        let mut addresses = vec![json!({"type": "Hostname", "address": self.name})];
        if let Some(ip) = &self.internal_ip {
            addresses.insert(0, json!({"type": "InternalIP", "address": ip}));
        }
        json!({
            "capacity": resources(self.cpu.0, self.memory.0),
            "allocatable": resources(self.cpu.1, self.memory.1),
            "conditions": conditions.iter().map(|c| c.to_json(now)).collect::<Vec<_>>(),
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": self.machine_id,
                "systemUUID": self.machine_id,
                "bootID": self.boot_id,
                "kernelVersion": self.kernel,
                "osImage": self.os_image,
                "containerRuntimeVersion": self.runtime_version,
                // Semver with a pre-release tag that says picolet: tools that
                // parse the version keep working.
                "kubeletVersion": format!("v1.32.0-picolet.{}", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": self.arch,
            },
        })
    }
}

/// One node condition with the kubelet's reasons and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The condition's type (`Ready`, `MemoryPressure`, ...).
    pub kind: &'static str,
    /// True or False.
    pub status: bool,
    /// Why, in one CamelCase word.
    pub reason: &'static str,
    /// Why, in words.
    pub message: &'static str,
    /// When the status last changed.
    pub since: Time,
}

impl Condition {
    fn to_json(&self, now: Time) -> Value {
        json!({
            "type": self.kind,
            "status": if self.status { "True" } else { "False" },
            "reason": self.reason,
            "message": self.message,
            "lastHeartbeatTime": now.rfc3339(),
            "lastTransitionTime": self.since.rfc3339(),
        })
    }
}

/// The kubelet's default hard eviction thresholds decide the pressures:
/// memory.available < 100Mi, nodefs.available < 10%; PIDs: fewer than 5%
/// of pid_max left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pressures {
    /// memory.available below 100Mi.
    pub memory: bool,
    /// nodefs.available below 10%.
    pub disk: bool,
    /// Fewer than 5% of pid_max left.
    pub pids: bool,
}

impl Pressures {
    /// Read memory, disk (`root`'s filesystem) and PID pressure now.
    pub fn read(root: &Path) -> Pressures {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let available_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        let disk = rustix::fs::statvfs(root)
            .ok()
            .is_some_and(|s| s.f_blocks > 0 && s.f_bavail * 10 < s.f_blocks);
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let threads = std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| {
            s.split_whitespace()
                .nth(3)
                .and_then(|f| f.split('/').nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        });
        Pressures {
            memory: available_kib.is_some_and(|kib| kib < 100 * 1024),
            disk,
            pids: matches!((threads, pid_max), (Some(t), Some(m)) if t * 20 > m * 19),
        }
    }

    /// The four conditions, keeping each one's transition time from `before`.
    pub fn conditions(self, before: &[Condition], now: Time) -> Vec<Condition> {
        let make =
            |kind: &'static str, status: bool, reason: &'static str, message: &'static str| {
                let since = before
                    .iter()
                    .find(|c| c.kind == kind && c.status == status)
                    .map_or(now, |c| c.since);
                Condition {
                    kind,
                    status,
                    reason,
                    message,
                    since,
                }
            };
        vec![
            if self.memory {
                make(
                    "MemoryPressure",
                    true,
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                )
            } else {
                make(
                    "MemoryPressure",
                    false,
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                )
            },
            if self.disk {
                make(
                    "DiskPressure",
                    true,
                    "KubeletHasDiskPressure",
                    "kubelet has disk pressure",
                )
            } else {
                make(
                    "DiskPressure",
                    false,
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                )
            },
            if self.pids {
                make(
                    "PIDPressure",
                    true,
                    "KubeletHasInsufficientPID",
                    "kubelet has insufficient PID available",
                )
            } else {
                make(
                    "PIDPressure",
                    false,
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                )
            },
            make(
                "Ready",
                true,
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]
    }
}

/// The Lease that says this node is alive.
pub fn lease(node: &str, node_uid: Option<&str>, now: Time) -> Value {
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": now.rfc3339_micros(),
        },
    });
    if let Some(uid) = node_uid {
        lease["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]);
    }
    lease
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `runc://1.1.12` from `runc --version`'s first line.
fn runtime_version(runtime: &Path) -> String {
    let name = runtime
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("oci");
    let version = std::process::Command::new(runtime)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().last())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{name}://{version}")
}

//! core/v1 PodStatus and friends, as the kubelet reports them. The engine
//! computes these; `get pods` and the API sync print them unchanged.
//!
//! Fields are Kubernetes' own and mean what the API reference says; times
//! are RFC 3339 strings.

use super::{ObjectMeta, PodSpec};
use serde::{Deserialize, Serialize};

/// A core/v1 Pod with its status, as `get pods -o json` prints it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodObject {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

/// A core/v1 PodList.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodList {
    pub api_version: String,
    pub kind: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub items: Vec<PodObject>,
}

impl PodList {
    /// A `v1` `PodList` of `items`, with empty list metadata.
    pub fn new(items: Vec<PodObject>) -> PodList {
        PodList {
            api_version: "v1".into(),
            kind: "PodList".into(),
            metadata: serde_json::Map::new(),
            items,
        }
    }
}

/// A pod's `status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: PodPhase,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hostIP")]
    pub host_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
}

/// Where a pod is in its life, as Kubernetes defines the phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum PodPhase {
    /// Accepted, not all containers started yet.
    #[default]
    Pending,
    /// Every container started, at least one still running or restarting.
    Running,
    /// Every container exited 0 and none will restart.
    Succeeded,
    /// Every container exited, at least one in failure, and none will restart.
    Failed,
    /// The state could not be obtained.
    Unknown,
}

/// One condition of a pod (`PodScheduled`, `Initialized`, `Ready`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    /// `type`: which condition.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// One container's status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    pub state: ContainerState,
    #[serde(default)]
    pub last_state: ContainerState,
    pub ready: bool,
    pub restart_count: u32,
    pub image: String,
    #[serde(default, rename = "imageID")]
    pub image_id: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "containerID"
    )]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

/// Exactly one of the three is set, or none for an empty `lastState`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct ContainerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<StateWaiting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<StateRunning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<StateTerminated>,
}

/// A container not running yet, and why (`ContainerCreating`,
/// `CrashLoopBackOff`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StateWaiting {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A running container, since when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRunning {
    pub started_at: String,
}

/// A container that exited: its code or signal, and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateTerminated {
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub finished_at: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "containerID"
    )]
    pub container_id: Option<String>,
}

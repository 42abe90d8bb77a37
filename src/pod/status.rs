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
    /// `v1`.
    pub api_version: String,
    /// `Pod`.
    pub kind: String,
    /// The pod's metadata.
    pub metadata: ObjectMeta,
    /// The pod as run, defaults applied.
    pub spec: PodSpec,
    /// As the engine computed it.
    pub status: PodStatus,
}

/// A core/v1 PodList.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodList {
    /// `v1`.
    pub api_version: String,
    /// `PodList`.
    pub kind: String,
    /// Empty.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The pods.
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
    /// Where the pod is in its life.
    pub phase: PodPhase,
    /// `PodScheduled`, `Initialized`, `ContainersReady`, `Ready` and the like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    /// Why the pod is in this phase, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why, in one CamelCase word (`NodePolicy`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The node's IP.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hostIP")]
    pub host_ip: Option<String>,
    /// The pod's IP once its sandbox is up.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "podIP")]
    pub pod_ip: Option<String>,
    /// When the node accepted the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// One per init container, in spec order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    /// One per regular container, in spec order.
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatus>,
    /// `Guaranteed`, `Burstable` or `BestEffort`.
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
    /// Why, in one CamelCase word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// One container's status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// What it is doing now.
    pub state: ContainerState,
    /// How its previous run ended, if it had one.
    #[serde(default)]
    pub last_state: ContainerState,
    /// Started and its readiness probe (if any) passed.
    pub ready: bool,
    /// Restarts since the pod started.
    pub restart_count: u32,
    /// The image as the spec names it.
    pub image: String,
    /// The image the runtime resolved it to.
    #[serde(default, rename = "imageID")]
    pub image_id: String,
    /// The runtime's id of the current run, once created.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "containerID"
    )]
    pub container_id: Option<String>,
    /// Started and its startup probe (if any) passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

/// Exactly one of the three is set, or none for an empty `lastState`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct ContainerState {
    /// Not running yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<StateWaiting>,
    /// Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<StateRunning>,
    /// Exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<StateTerminated>,
}

/// A container not running yet, and why (`ContainerCreating`,
/// `CrashLoopBackOff`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StateWaiting {
    /// Why, in one CamelCase word.
    pub reason: String,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A running container, since when.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRunning {
    /// When the process started.
    pub started_at: String,
}

/// A container that exited: its code or signal, and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateTerminated {
    /// The process's exit code (128 + the signal when killed).
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled` and the like.
    pub reason: String,
    /// The termination message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the process started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it exited.
    pub finished_at: String,
    /// The runtime's id of the run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "containerID"
    )]
    pub container_id: Option<String>,
}

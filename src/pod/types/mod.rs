//! Serde types of the Pod subset. Unknown keys are reported by the decoder
//! (`serde_ignored`), not here.
//!
//! Fields are Kubernetes' own (core/v1), snake_case here and camelCase on
//! the wire, and mean what the Kubernetes API reference says; a field's doc
//! comment says only what picolet does differently (kept but ignored,
//! rejected by validation, a different default).
//!
//! This file holds the pod and its spec; each part of a container or pod
//! has its own file: `container.rs`, `handler.rs` (probes and hooks),
//! `env.rs`, `security.rs` (security contexts), `volume.rs`.

mod container;
mod env;
mod handler;
mod security;
mod volume;

pub use container::*;
pub use env::*;
pub use handler::*;
pub use security::*;
pub use volume::*;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A core/v1 Pod as picolet reads it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    /// `v1`, checked by the decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `Pod`, checked by the decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name, namespace, UID, labels and annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to run.
    #[serde(default)]
    pub spec: PodSpec,
}

/// A pod's `metadata`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// A DNS-1123 subdomain (src/pod/validate/names.rs).
    #[serde(default)]
    pub name: String,
    /// Empty until `defaults::apply` makes it `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Names the pod's directories, so it is checked as one path component;
    /// a static pod without one gets one from its content.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Kept and published; picolet selects nothing by them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Kept and published; `kubernetes.io/config.*` ones are set by the sources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Accepted so that manifests exported from a cluster decode; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Value>,
    /// Set by an API server when it deletes a pod gracefully, and in status
    /// output while a pod is being deleted; a static pod's is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// The grace period of a graceful deletion, which wins over the pod's
    /// own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// A static pod needs a fixed name; `generateName` is rejected by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
}

/// `spec.restartPolicy`: which exits of a regular container restart it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum RestartPolicy {
    /// Every exit.
    #[default]
    Always,
    /// Exits with a non-zero code.
    OnFailure,
    /// None.
    Never,
}

/// A pod's `spec`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// The regular containers, started once the init containers are done.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Run in order before the regular containers; sidecars among them keep running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// Which exits of a regular container restart it.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// From SIGTERM to SIGKILL when the pod stops; 30 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// The volumes containers may mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// The host's network namespace instead of the pod's own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// The pod's hostname instead of its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Set by the API server's scheduler, or by picolet to its node's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Defaults for every container's security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Scheduling hints: meaningless on a single node, accepted and kept
    /// (this and the fields down to `serviceAccountName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Value>>,
    /// Kept; a scheduling hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Kept; a scheduling hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Kept; a scheduling hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Kept, not acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// Kept; picolet has no services to link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<bool>,
    /// Kept; a scheduling hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// Kept; readable through the downward API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Known fields that would change behaviour and are not implemented
    /// (this and the rest of the struct): decoded so validation can name
    /// them, never honoured.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_aliases: Option<Value>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<Value>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_containers: Option<Value>,
    /// Rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_gates: Option<Value>,
    /// Secrets of type `kubernetes.io/dockerconfigjson` whose credentials
    /// pull the pod's images (node mode; docs/images.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

/// A reference to an object in the pod's namespace, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct LocalObjectReference {
    /// The object's name.
    #[serde(default)]
    pub name: String,
}

impl Pod {
    /// `namespace/name`, the key under which two manifests conflict.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    /// The deletion grace if set, else `terminationGracePeriodSeconds`.
    pub fn grace_period_seconds(&self) -> i64 {
        self.metadata
            .deletion_grace_period_seconds
            .or(self.spec.termination_grace_period_seconds)
            .unwrap_or(30)
    }

    /// The init or regular container of this name.
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.spec
            .init_containers
            .iter()
            .chain(&self.spec.containers)
            .find(|c| c.name == name)
    }
}

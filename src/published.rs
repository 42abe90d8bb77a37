//! The run directory's published files and their schema: what the agent
//! writes for the client commands (`get`, `logs`, `top`) to read. The agent,
//! the sources and the CLI import this module, and the CLI imports nothing of
//! the agent.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `<run>/agent.json`: how the running agent was started ([`AgentInfo`]).
pub const AGENT_FILE: &str = "agent.json";

/// `<run>/manifest-errors.json`: the manifests that failed ([`ManifestError`]).
pub const ERRORS_FILE: &str = "manifest-errors.json";

/// `<run>/pods.json`: the PodList of every pod the agent holds.
pub const STATUS_FILE: &str = "pods.json";

/// `<run>/images-used.json`: when a container last used each image, for
/// `picolet images` and the image collector (src/image/gc.rs). A JSON
/// object from the manifest digest (the imageID) to an RFC 3339 time:
/// `{"sha256:<hex>": "2026-12-08T01:02:03Z"}`. The agent writes it; an
/// image missing from it was not used since it arrived.
pub const IMAGES_USED_FILE: &str = "images-used.json";

/// Where the cgroup v2 hierarchy is mounted.
pub const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// How the running agent was started, for the client commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfo {
    /// The node name the agent runs as.
    pub node_name: String,
    /// The agent's process.
    pub pid: u32,
    /// picolet's version.
    pub version: String,
    /// The OCI runtime binary (runc, crun).
    pub runtime: PathBuf,
    /// `off` when running without resource limits.
    pub cgroups: String,
    /// Where the containers' logs are.
    pub log_dir: PathBuf,
}

/// A manifest problem to show: the file, and the pods it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestError {
    /// The manifest file (or the URL).
    pub file: PathBuf,
    /// API names (`namespace/name`) of the last good pods still running.
    pub pods: Vec<String>,
    /// What is wrong with it.
    pub message: String,
}

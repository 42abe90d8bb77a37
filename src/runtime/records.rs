//! The small files that let a restarted agent find its containers again
//! (docs/design.md, decision 2). Each is written atomically by one party.

use serde::{Deserialize, Serialize};

/// `<run>/pods/<uid>/sandbox.json`, by the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// Milliseconds since the epoch: the pod's startTime.
    pub created_at: u64,
    /// False once the pod completed and its namespaces were torn down.
    pub ready: bool,
}

/// `<run>/containers/<id>/instance.json`, by the agent when it starts a monitor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The pod the instance belongs to.
    pub pod_uid: String,
    /// The container's name in the pod.
    pub container: String,
    /// The restart count of this instance.
    pub attempt: u32,
    /// The image's manifest digest (imageID).
    pub image_id: String,
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// The monitor's start time in clock ticks (/proc/PID/stat field 22):
    /// tells the monitor from a later process with a reused PID.
    pub monitor_start: u64,
}

/// `<run>/containers/<id>/started.json`, by the monitor once the container runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartedRecord {
    /// The container's main process, as the runtime reported it.
    pub pid: i32,
    /// Milliseconds since the epoch: startedAt.
    pub started_at: u64,
}

/// `<run>/containers/<id>/exit.json`, by the monitor when the container is gone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit code; 128 + the signal when killed.
    pub code: i32,
    /// The signal that killed the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Set when the runtime could not start the process (exit 128, `StartError`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
    /// The container's cgroup recorded an OOM kill (`memory.events`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// Milliseconds since the epoch: finishedAt.
    pub finished_at: u64,
}

/// `<root>/pods/<uid>/history.json`, by the agent: what must survive a
/// reboot to keep the kubelet's semantics: when the pod
/// was created and how each container's last instances ended. Written only
/// when an instance ends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodHistory {
    /// Milliseconds since the epoch: the pod's startTime.
    pub created_at: u64,
    /// The last instances that ended, per container.
    #[serde(default)]
    pub ended: Vec<EndedInstance>,
}

/// One instance that ended, in the history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndedInstance {
    /// The container's name in the pod.
    pub container: String,
    /// The restart count of this instance.
    pub attempt: u32,
    /// The containerID status showed (`runc://<id>`).
    pub container_id: String,
    /// The image's manifest digest (imageID).
    pub image_id: String,
    /// Milliseconds since the epoch; `None` if it never ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// How it ended.
    pub exit: ExitRecord,
    /// It vanished without a recorded exit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

/// Start time of a process in clock ticks since boot, if it exists.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

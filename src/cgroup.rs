//! The cgroup v2 manager (docs/design.md, decision 4): detection, picolet's
//! subtree laid out like the kubelet's cgroupfs driver, pod cgroups and their
//! values, stats, and cleanup.
//!
//! ```text
//! <mount>/<root>/                 cgroupRoot, e.g. /sys/fs/cgroup/picolet
//!   pod<uid>/<container id>       Guaranteed pods
//!   burstable/pod<uid>/<id>       Burstable pods
//!   besteffort/pod<uid>/<id>      BestEffort pods
//! ```
//!
//! Containers' cgroups are made by the OCI runtime from `cgroupsPath`; the
//! pod and QoS levels are picolet's.

use crate::pod::resources::{self, QosClass};
use crate::pod::Pod;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The controllers picolet needs delegated.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// What went wrong with the cgroup hierarchy.
#[derive(Debug)]
pub enum CgroupError {
    /// The hierarchy at `mount` cannot host picolet: the agent refuses to
    /// start, and the text says how to fix the host.
    Refused { mount: PathBuf, detail: String },
    /// Reading, writing or creating a file of the hierarchy failed.
    Io {
        /// What picolet was doing, e.g. `writing "1" to`.
        action: String,
        path: PathBuf,
        source: io::Error,
    },
    /// `rmdir` of a cgroup failed, most often because the kernel has not
    /// yet emptied a killed cgroup: worth another attempt a little later.
    Busy { path: PathBuf, source: io::Error },
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupError::Refused { mount, detail } => f.write_str(&refusal(mount, detail)),
            CgroupError::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            CgroupError::Busy { path, source } => {
                write!(f, "removing {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for CgroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CgroupError::Refused { .. } => None,
            CgroupError::Io { source, .. } | CgroupError::Busy { source, .. } => Some(source),
        }
    }
}

/// picolet's cgroup v2 subtree: where pod cgroups go and how they are made
/// and removed.
#[derive(Debug, Clone)]
pub struct Cgroups {
    /// The cgroup2 mount, normally /sys/fs/cgroup.
    mount: PathBuf,
    /// picolet's subtree below the mount, `/picolet`.
    root: String,
}

fn io_error(path: &Path, action: &str, source: io::Error) -> CgroupError {
    CgroupError::Io {
        action: action.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

fn write(path: &Path, data: &str) -> Result<(), CgroupError> {
    fs::write(path, data).map_err(|e| io_error(path, &format!("writing {data:?} to"), e))
}

/// Why picolet cannot use cgroups here, with the fix.
fn refusal(mount: &Path, detail: &str) -> String {
    format!(
        "refusing to start: {} {detail}; boot with systemd.unified_cgroup_hierarchy=1 or cgroup_no_v1=all, \
         delegate cpu, memory and pids to picolet, or run with --cgroups off to run pods WITHOUT resource limits",
        mount.display()
    )
}

/// Is `path` a cgroup2 mount? (statfs magic)
pub fn is_cgroup2(path: &Path) -> bool {
    // f_type's integer type differs between targets: compare as u64.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as u64 == libc::CGROUP2_SUPER_MAGIC as u64)
}

impl Cgroups {
    /// Check the hierarchy and prepare picolet's subtree with its QoS tiers.
    pub fn open(mount: &Path, root: &str) -> Result<Cgroups, CgroupError> {
        let refused = |detail: String| CgroupError::Refused {
            mount: mount.to_path_buf(),
            detail,
        };
        if !is_cgroup2(mount) {
            return Err(refused(
                "is not a cgroup v2 (unified) hierarchy: this host uses cgroup v1 or hybrid mode"
                    .into(),
            ));
        }
        let available = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
        let missing: Vec<&str> = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| !available.split_whitespace().any(|a| a == *c))
            .collect();
        if !missing.is_empty() {
            return Err(refused(format!(
                "does not offer the {} controller(s)",
                missing.join(", ")
            )));
        }
        let cgroups = Cgroups {
            mount: mount.to_path_buf(),
            root: format!("/{}", root.trim_matches('/')),
        };
        let prepared = cgroups
            .make(&cgroups.root)
            .and_then(|()| cgroups.make(&format!("{}/burstable", cgroups.root)))
            .and_then(|()| cgroups.make(&format!("{}/besteffort", cgroups.root)))
            // BestEffort gets the least cpu, as with the kubelet (shares 2).
            .and_then(|()| {
                write(
                    &cgroups
                        .dir(&format!("{}/besteffort", cgroups.root))
                        .join("cpu.weight"),
                    "1",
                )
            });
        prepared.map_err(|e| refused(format!("cannot host picolet's cgroups: {e}")))?;
        Ok(cgroups)
    }

    fn dir(&self, path: &str) -> PathBuf {
        self.mount.join(path.trim_start_matches('/'))
    }

    /// Create `path` (absolute within the hierarchy) and every missing
    /// ancestor, enabling the controllers on the way down.
    fn make(&self, path: &str) -> Result<(), CgroupError> {
        let mut current = self.mount.clone();
        let wanted: String = CONTROLLERS.iter().map(|c| format!("+{c} ")).collect();
        for part in path.trim_matches('/').split('/') {
            let control = current.join("cgroup.subtree_control");
            let enabled = fs::read_to_string(&control).unwrap_or_default();
            if CONTROLLERS
                .iter()
                .any(|c| !enabled.split_whitespace().any(|e| e == *c))
            {
                write(&control, wanted.trim_end())?;
            }
            current = current.join(part);
            if !current.is_dir() {
                fs::create_dir(&current).map_err(|e| io_error(&current, "creating", e))?;
            }
        }
        Ok(())
    }

    /// The pod's cgroup within the hierarchy (`/picolet/burstable/pod<uid>`).
    pub fn pod_path(&self, pod: &Pod) -> String {
        match resources::qos_class(pod) {
            QosClass::Guaranteed => format!("{}/pod{}", self.root, pod.metadata.uid),
            QosClass::Burstable => format!("{}/burstable/pod{}", self.root, pod.metadata.uid),
            QosClass::BestEffort => format!("{}/besteffort/pod{}", self.root, pod.metadata.uid),
        }
    }

    /// A container's `cgroupsPath` for the OCI runtime.
    pub fn container_path(&self, pod: &Pod, id: &str) -> String {
        format!("{}/{id}", self.pod_path(pod))
    }

    /// The directory of a path within the hierarchy.
    pub fn host_dir(&self, path: &str) -> PathBuf {
        self.dir(path)
    }

    /// Create the pod's cgroup with the kubelet's pod-level values: cpu.weight
    /// from the effective request, cpu.max and memory.max when every
    /// container has a limit, pids.max from podPidsLimit.
    pub fn create_pod(&self, pod: &Pod, pids_limit: i64) -> Result<(), CgroupError> {
        let path = self.pod_path(pod);
        self.make(&path)?;
        let dir = self.dir(&path);
        let weight = resources::cpu_weight(resources::cpu_shares(resources::pod_cpu_request(pod)));
        write(&dir.join("cpu.weight"), &weight.to_string())?;
        let cpu_max = resources::pod_cpu_limit(pod)
            .filter(|l| *l > 0)
            .map_or("max".to_string(), |l| {
                format!("{} {}", resources::cpu_quota(l), resources::CPU_PERIOD)
            });
        write(&dir.join("cpu.max"), &cpu_max)?;
        let memory_max = resources::pod_memory_limit(pod)
            .filter(|l| *l > 0)
            .map_or("max".into(), |l| l.to_string());
        write(&dir.join("memory.max"), &memory_max)?;
        let pids = if pids_limit > 0 {
            pids_limit.to_string()
        } else {
            "max".into()
        };
        write(&dir.join("pids.max"), &pids)
    }

    /// The Burstable tier's weight: the sum of its pods' cpu requests.
    pub fn set_burstable_requests(&self, millicores: u64) -> Result<(), CgroupError> {
        let weight = resources::cpu_weight(resources::cpu_shares(millicores));
        write(
            &self
                .dir(&format!("{}/burstable", self.root))
                .join("cpu.weight"),
            &weight.to_string(),
        )
    }

    /// One attempt at removing a pod's cgroup and whatever is left below it;
    /// a missing one is success. Processes still inside are killed first.
    /// The kernel empties a killed cgroup asynchronously, so a first attempt
    /// often ends in [`CgroupError::Busy`]: the caller tries again later
    /// (`runtime/cgroup_removal.rs`), never by sleeping here.
    pub fn remove_pod(&self, uid: &str) -> Result<(), CgroupError> {
        let mut busy = None;
        for tier in ["", "/burstable", "/besteffort"] {
            let dir = self.dir(&format!("{}{tier}/pod{uid}", self.root));
            if dir.is_dir() {
                match remove_tree(&dir) {
                    Err(e @ CgroupError::Busy { .. }) => busy = busy.or(Some(e)),
                    other => other?,
                }
            }
        }
        busy.map_or(Ok(()), Err)
    }

    /// Pod uids that have a cgroup.
    pub fn pod_uids(&self) -> Vec<String> {
        ["", "/burstable", "/besteffort"]
            .iter()
            .flat_map(|tier| {
                fs::read_dir(self.dir(&format!("{}{tier}", self.root)))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("pod")
                    .map(str::to_string)
            })
            .collect()
    }
}

/// Kill what remains and remove a cgroup bottom-up, once: a cgroup whose
/// `rmdir` fails (still emptying, or a child still there) is `Busy`.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let mut busy = None;
    for entry in fs::read_dir(dir)
        .map_err(|e| io_error(dir, "reading", e))?
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            match remove_tree(&entry.path()) {
                // The siblings still get their kill in this attempt.
                Err(e @ CgroupError::Busy { .. }) => busy = busy.or(Some(e)),
                other => other?,
            }
        }
    }
    let kill = dir.join("cgroup.kill");
    if kill.exists()
        && fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
    {
        write(&kill, "1")?;
    }
    if let Some(busy) = busy {
        return Err(busy);
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CgroupError::Busy {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Did the kernel's OOM killer act in this cgroup? (`memory.events`)
pub fn oom_killed(dir: &Path) -> bool {
    fs::read_to_string(dir.join("memory.events"))
        .unwrap_or_default()
        .lines()
        .any(|l| {
            l.strip_prefix("oom_kill ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
}

/// Cumulative cpu time (µs) and current memory (bytes) of a cgroup.
pub fn usage(dir: &Path) -> Option<(u64, u64)> {
    let cpu = fs::read_to_string(dir.join("cpu.stat"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())?;
    let memory = fs::read_to_string(dir.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((cpu, memory))
}

/// The node's capacity: millicores of the CPUs this process may use, and
/// bytes of memory.
pub fn capacity() -> (u64, u64) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let memory = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0)
        * 1024;
    (cpus * 1000, memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_are_read_from_memory_events() {
        let dir = std::env::temp_dir().join(format!("picolet-cg-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n",
        )
        .unwrap();
        assert!(!oom_killed(&dir));
        fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(oom_killed(&dir));
        fs::write(dir.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        fs::write(dir.join("memory.current"), "4096\n").unwrap();
        assert_eq!(usage(&dir), Some((1500, 4096)));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn one_removal_attempt_reports_a_busy_cgroup_and_never_waits() {
        let dir = std::env::temp_dir().join(format!("picolet-cg-rm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("pod/c1")).unwrap();
        fs::create_dir_all(dir.join("pod/c2")).unwrap();
        // A file stands for what the kernel has not emptied yet: rmdir fails.
        fs::write(dir.join("pod/c2/left"), "").unwrap();
        let err = remove_tree(&dir.join("pod")).unwrap_err();
        assert!(
            matches!(&err, CgroupError::Busy { path, .. } if *path == dir.join("pod/c2")),
            "{err}"
        );
        assert!(!dir.join("pod/c1").exists(), "the empty sibling went");
        fs::remove_file(dir.join("pod/c2/left")).unwrap();
        remove_tree(&dir.join("pod")).unwrap();
        assert!(!dir.join("pod").exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_hybrid_or_missing_hierarchy_is_refused_with_the_fix() {
        let err = Cgroups::open(Path::new("/proc"), "picolet").unwrap_err();
        assert!(matches!(&err, CgroupError::Refused { mount, .. } if mount == Path::new("/proc")));
        let err = err.to_string();
        assert!(err.contains("is not a cgroup v2"), "{err}");
        assert!(
            err.contains("systemd.unified_cgroup_hierarchy=1") && err.contains("--cgroups off"),
            "{err}"
        );
    }
}

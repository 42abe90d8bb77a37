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
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The controllers picolet needs delegated.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

#[derive(Debug, Clone)]
pub struct Cgroups {
    /// The cgroup2 mount, normally /sys/fs/cgroup.
    mount: PathBuf,
    /// picolet's subtree below the mount, `/picolet`.
    root: String,
}

fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what} {}: {e}", path.display()))
}

fn write(path: &Path, data: &str) -> io::Result<()> {
    fs::write(path, data).map_err(|e| io_error(path, &format!("writing {data:?} to"), e))
}

/// Why picolet cannot use cgroups here, with the fix.
pub fn refusal(mount: &Path, detail: &str) -> String {
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
    pub fn open(mount: &Path, root: &str) -> Result<Cgroups, String> {
        if !is_cgroup2(mount) {
            return Err(refusal(
                mount,
                "is not a cgroup v2 (unified) hierarchy: this host uses cgroup v1 or hybrid mode",
            ));
        }
        let available = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
        let missing: Vec<&str> = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| !available.split_whitespace().any(|a| a == *c))
            .collect();
        if !missing.is_empty() {
            return Err(refusal(
                mount,
                &format!("does not offer the {} controller(s)", missing.join(", ")),
            ));
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
        prepared.map_err(|e| refusal(mount, &format!("cannot host picolet's cgroups: {e}")))?;
        Ok(cgroups)
    }

    fn dir(&self, path: &str) -> PathBuf {
        self.mount.join(path.trim_start_matches('/'))
    }

    /// Create `path` (absolute within the hierarchy) and every missing
    /// ancestor, enabling the controllers on the way down.
    fn make(&self, path: &str) -> io::Result<()> {
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
    pub fn create_pod(&self, pod: &Pod, pids_limit: i64) -> io::Result<()> {
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
    pub fn set_burstable_requests(&self, millicores: u64) -> io::Result<()> {
        let weight = resources::cpu_weight(resources::cpu_shares(millicores));
        write(
            &self
                .dir(&format!("{}/burstable", self.root))
                .join("cpu.weight"),
            &weight.to_string(),
        )
    }

    /// Remove a pod's cgroup and whatever is left below it; a missing one is
    /// success. Processes still inside are killed first.
    pub fn remove_pod(&self, uid: &str) -> io::Result<()> {
        for tier in ["", "/burstable", "/besteffort"] {
            let dir = self.dir(&format!("{}{tier}/pod{uid}", self.root));
            if dir.is_dir() {
                remove_tree(&dir)?;
            }
        }
        Ok(())
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

/// Kill what remains and remove a cgroup bottom-up.
fn remove_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)
        .map_err(|e| io_error(dir, "reading", e))?
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    let kill = dir.join("cgroup.kill");
    if kill.exists()
        && fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
    {
        write(&kill, "1")?;
    }
    // The kernel empties a killed cgroup asynchronously: retry briefly.
    let mut last = None;
    for _ in 0..100 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(io_error(
        dir,
        "removing",
        last.map_or("busy".into(), |e| e.to_string()),
    ))
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
    fn a_hybrid_or_missing_hierarchy_is_refused_with_the_fix() {
        let err = Cgroups::open(Path::new("/proc"), "picolet").unwrap_err();
        assert!(err.contains("is not a cgroup v2"), "{err}");
        assert!(
            err.contains("systemd.unified_cgroup_hierarchy=1") && err.contains("--cgroups off"),
            "{err}"
        );
    }
}

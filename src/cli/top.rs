//! `picolet top pods [--containers]`: CPU and memory per pod (and container)
//! from their cgroups, as `kubectl top` shows them. CPU is a rate: two
//! samples of cpu.stat half a second apart.

use super::args::{parse, ArgsError};
use super::{client_paths, read_pods, ClientError};
use crate::cgroup::usage;
use crate::pod::status::PodObject;
use crate::published::CGROUP_MOUNT;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The time between the two samples of each cgroup's CPU use.
const SAMPLE: Duration = Duration::from_millis(500);

/// The cgroup directory of a pod (from its QoS class) or of one container.
fn cgroup_dir(mount: &str, root: &str, pod: &PodObject, container_id: Option<&str>) -> PathBuf {
    let tier = match pod.status.qos_class.as_deref() {
        Some("Guaranteed") => "",
        Some("BestEffort") => "besteffort/",
        _ => "burstable/",
    };
    let mut dir = PathBuf::from(mount)
        .join(root.trim_matches('/'))
        .join(format!("{tier}pod{}", pod.metadata.uid));
    if let Some(id) = container_id {
        dir = dir.join(id.rsplit("://").next().unwrap_or(id));
    }
    dir
}

/// `picolet top ARGS`: sample the pods' cgroups and print the table.
pub fn run(args: &[String]) -> Result<(), TopError> {
    let p = parse(args, &["run-dir", "cgroup-root"], &["containers"], &[])?;
    if !matches!(
        p.positional.first().map(String::as_str),
        Some("pods" | "pod" | "po")
    ) {
        return Err(TopError::Usage);
    }
    let (paths, info) = client_paths(p.value("run-dir"))?;
    if info.cgroups != "v2" {
        return Err(TopError::NoCgroups);
    }
    let root = p.value("cgroup-root").unwrap_or("/picolet");
    let list = read_pods(&paths)?;
    let mut targets: Vec<(String, Option<String>, PathBuf)> = Vec::new();
    for pod in &list.items {
        targets.push((
            pod.metadata.name.clone(),
            None,
            cgroup_dir(CGROUP_MOUNT, root, pod, None),
        ));
        if p.switch("containers") {
            for c in pod
                .status
                .init_container_statuses
                .iter()
                .chain(&pod.status.container_statuses)
            {
                if let (Some(id), Some(_)) = (&c.container_id, &c.state.running) {
                    let dir = cgroup_dir(CGROUP_MOUNT, root, pod, Some(id));
                    targets.push((pod.metadata.name.clone(), Some(c.name.clone()), dir));
                }
            }
        }
    }
    let first: Vec<Option<(u64, u64)>> = targets.iter().map(|(_, _, d)| usage(d)).collect();
    let start = Instant::now();
    std::thread::sleep(SAMPLE);
    let elapsed = start.elapsed().as_micros().max(1) as u64;
    let mut out = if p.switch("containers") {
        format!(
            "{:<30} {:<20} {:<10} {}\n",
            "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"
        )
    } else {
        format!("{:<30} {:<10} {}\n", "NAME", "CPU(cores)", "MEMORY(bytes)")
    };
    for ((pod, container, dir), before) in targets.iter().zip(first) {
        let (Some((cpu0, _)), Some((cpu1, memory))) = (before, usage(dir)) else {
            continue;
        };
        let millicores = cpu1.saturating_sub(cpu0) * 1000 / elapsed;
        let cpu = format!("{millicores}m");
        let mem = format!("{}Mi", memory >> 20);
        out.push_str(&match container {
            Some(c) => format!("{pod:<30} {c:<20} {cpu:<10} {mem}\n"),
            None if p.switch("containers") => continue,
            None => format!("{pod:<30} {cpu:<10} {mem}\n"),
        });
    }
    print!("{out}");
    Ok(())
}

/// Why `picolet top` printed no table.
#[derive(Debug)]
pub enum TopError {
    /// The flags do not parse.
    Args(ArgsError),
    /// No resource type, or one other than pods.
    Usage,
    /// The agent's published files.
    Client(ClientError),
    /// The agent runs with `--cgroups off`: there is nothing to sample.
    NoCgroups,
}

impl From<ArgsError> for TopError {
    fn from(e: ArgsError) -> TopError {
        TopError::Args(e)
    }
}

impl From<ClientError> for TopError {
    fn from(e: ClientError) -> TopError {
        TopError::Client(e)
    }
}

impl fmt::Display for TopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopError::Args(e) => write!(f, "{e}"),
            TopError::Usage => {
                f.write_str("usage: picolet top pods [--containers] [--run-dir DIR]")
            }
            TopError::Client(e) => write!(f, "{e}"),
            TopError::NoCgroups => {
                f.write_str("metrics not available: picolet runs with --cgroups off")
            }
        }
    }
}

impl std::error::Error for TopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TopError::Args(e) => Some(e),
            TopError::Client(e) => Some(e),
            TopError::Usage | TopError::NoCgroups => None,
        }
    }
}

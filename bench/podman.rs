//! The peer: the same pods through `podman kube play` (Debian's podman with
//! runc and cgroupfs, offline, the busybox image imported from the same OCI
//! layout), in a private storage root so that nothing else is touched.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PodmanResult {
    /// Milliseconds from `podman kube play` to the container's marker.
    pub latencies: Vec<f64>,
    /// PSS of the helper processes (conmon, the infra container's pause)
    /// per pod, KiB.
    pub helper_pss_per_pod: u64,
}

fn podman(work: &Path) -> Command {
    let mut c = Command::new("podman");
    // Podman's default rlimits (nofile and nproc of 1048576) exceed what a
    // sandboxed machine allows; the kernel's defaults do for these pods.
    c.env("CONTAINERS_CONF", work.join("containers.conf"));
    c.arg("--root")
        .arg(work.join("podman-root"))
        .arg("--runroot")
        .arg(work.join("podman-run"))
        .args([
            "--cgroup-manager",
            "cgroupfs",
            "--runtime",
            "runc",
            "--events-backend",
            "file",
        ]);
    c
}

fn run(c: &mut Command) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{:?}: {}",
            c.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `n` pods, one at a time, each `pod_yaml(name)`; `marks` is where their
/// markers appear.
pub fn measure(
    layout: &Path,
    work: &Path,
    marks: &Path,
    n: usize,
    pod_yaml: impl Fn(&str) -> String,
) -> Result<PodmanResult, String> {
    run(Command::new("podman").arg("--version"))?;
    fs::write(
        work.join("containers.conf"),
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n",
    )
    .map_err(|e| e.to_string())?;
    let pulled = run(podman(work)
        .args(["pull", "-q"])
        .arg(format!("oci:{}:busybox:1.36", layout.display())))?;
    run(podman(work).args(["tag", pulled.trim(), "docker.io/library/busybox:1.36"]))?;
    let mut latencies = Vec::new();
    let result = (|| {
        for i in 0..n {
            let name = format!("podman{i}");
            let file = work.join(format!("{name}.yaml"));
            fs::write(
                &file,
                pod_yaml(&name).replace("busybox:1.36", "docker.io/library/busybox:1.36"),
            )
            .map_err(|e| e.to_string())?;
            let marker = marks.join(&name);
            let start = Instant::now();
            run(podman(work)
                .args(["kube", "play", "--network", "none"])
                .arg(&file))?;
            while !marker.exists() {
                if start.elapsed() > Duration::from_secs(60) {
                    return Err(format!("{name} never started"));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(())
    })();
    let helpers: u64 = ["conmon", "catatonit", "pause"]
        .iter()
        .flat_map(|name| pids_of(name))
        .map(|pid| super::rss_pss(pid).1)
        .sum();
    let _ = podman(work)
        .args(["pod", "rm", "--all", "--force", "--time", "0"])
        .output();
    result?;
    Ok(PodmanResult {
        latencies,
        helper_pss_per_pod: helpers / n.max(1) as u64,
    })
}

fn pids_of(name: &str) -> Vec<u32> {
    let out = Command::new("pgrep").args(["-x", name]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

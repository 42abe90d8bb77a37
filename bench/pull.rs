//! Pull figures (issue 15): a 100 MiB image (busybox and one layer of
//! random bytes) in a real docker-registry on loopback with TLS and
//! htpasswd (tests/common/registry.rs), pulled three ways on the same
//! machine: `skopeo copy` into an OCI layout (the reference), `picolet image
//! pull`, and the agent pulling it for a pod. For each: the wall time, and
//! the peak RSS (VmHWM: of the process for the commands; of the agent over
//! its start and the pull).

use crate::common::registry::images::layout_with_random_layer;
use crate::common::registry::{registries_yaml, Registry, PASSWORD, USER};
use crate::Row;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The image's extra layer, as the issue asks.
const LAYER: usize = 100 << 20;

/// The rows of the pull figures; the quick run pulls a 10 MiB layer.
pub fn pull_rows(bin: &Path, work: &Path, quick: bool, rows: &mut Vec<Row>) {
    let layer = if quick { LAYER / 10 } else { LAYER };
    let dir = work.join("pull");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let registry = Registry::secure(&dir, "registry");
    let layout = dir.join("layout");
    layout_with_random_layer(&layout, "big:1", layer);
    registry.push(&layout, "big:1", "bench/big:1");
    let image = registry.image("bench/big:1");
    let config = dir.join("registries.yaml");
    registries_yaml(
        &config,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    let what = format!("{} MiB image", layer >> 20);

    let skopeo = timed(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--quiet"])
            .arg(format!(
                "--src-cert-dir={}",
                registry.dir.join("certs.d").display()
            ))
            .arg(format!("--src-creds={USER}:{PASSWORD}"))
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:big", dir.join("skopeo-out").display())),
    );
    let cli = timed(
        Command::new(bin)
            .args(["image", "pull", "--root"])
            .arg(dir.join("cli-root"))
            .arg("--registry-config")
            .arg(&config)
            .arg(&image),
    );
    let (agent_secs, idle_kib, peak_kib) = agent_pull(bin, &dir, &config, &image);
    rows.push((
        format!("pull {what}: skopeo copy (s, peak RSS KiB)"),
        format!("{:.2}, {}", skopeo.0, skopeo.1),
    ));
    rows.push((
        format!("pull {what}: picolet image pull (s, peak RSS KiB)"),
        format!("{:.2} ({:.2}x skopeo), {}", cli.0, cli.0 / skopeo.0, cli.1),
    ));
    rows.push((
        format!("pull {what}: agent, manifest -> Running (s)"),
        format!("{agent_secs:.2} ({:.2}x skopeo)", agent_secs / skopeo.0),
    ));
    rows.push((
        format!("pull {what}: agent RSS before / peak with the pull (KiB)"),
        format!("{idle_kib} / {peak_kib}"),
    ));
    let _ = fs::remove_dir_all(&dir);
}

/// Run `cmd` to its end: seconds, and its peak RSS in KiB: the last
/// VmHWM read while it ran, polled every millisecond. (`wait4`'s
/// `ru_maxrss` would count the bench's own pages the child had between
/// fork and exec.)
fn timed(cmd: &mut Command) -> (f64, u64) {
    let began = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        peak = fs::read_to_string(&status)
            .ok()
            .and_then(|s| kib(&s, "VmHWM:"))
            .unwrap_or(peak);
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(exit.success(), "{cmd:?} failed");
    (began.elapsed().as_secs_f64(), peak)
}

/// A `kB` field of /proc/PID/status.
fn kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .trim()
            .strip_suffix(" kB")?
            .parse()
            .ok()
    })
}

/// The agent pulls `image` for a pod: seconds from the manifest to
/// Running, its RSS before, and its peak RSS meanwhile.
fn agent_pull(bin: &Path, dir: &Path, config: &Path, image: &str) -> (f64, u64, u64) {
    let agent = dir.join("agent");
    fs::create_dir_all(agent.join("manifests")).unwrap();
    let mut child = crate::agent_command(bin, &agent, &dir.join("agent.log"))
        .arg("--registry-config")
        .arg(config)
        .spawn()
        .unwrap();
    let status = agent.join("run/pods.json");
    crate::wait_file(&status, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let (idle, _) = crate::rss_pss(child.id());
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {image}\n    command: [sleep, '3600']\n"
    );
    let began = Instant::now();
    fs::write(agent.join("manifests/big.yaml"), manifest).unwrap();
    let mut peak = idle;
    while !fs::read_to_string(&status)
        .unwrap_or_default()
        .contains("\"Running\"")
    {
        assert!(
            began.elapsed() < Duration::from_secs(600),
            "the pod did not run: see {}",
            dir.join("agent.log").display()
        );
        peak = peak.max(crate::rss_pss(child.id()).0);
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = began.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    crate::common::cleanup(&agent);
    (secs, idle, peak)
}

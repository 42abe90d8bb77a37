//! picolet's benchmark: start latency against the bare OCI runtime, footprint
//! by number of pods, idle cost and flash writes, binary size.
//!
//!     cargo bench --bench picolet              # 50 pods, 60 s idle
//!     cargo bench --bench picolet -- --quick   # 10 pods, 10 s idle
//!
//! Run as root with runc, umoci and busybox-static installed (tests/run
//! installs them). Prints a table and writes target/bench/results.csv.
//! Start latency is manifest written -> the container's first command ran
//! (a file it creates in a hostPath volume, polled every 0.2 ms).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::BIN;

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_file(path: &Path, limit: Duration) -> Duration {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    start.elapsed()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Milliseconds from `runtime run --detach` to the container's marker, or
/// why the runtime cannot run here.
fn bare_runtime(runtime: &str, work: &Path, layout: &Path, n: usize) -> Result<Vec<f64>, String> {
    let bundle = work.join(format!("bundle-{runtime}"));
    let _ = fs::remove_dir_all(&bundle);
    sh(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:busybox:1.36", layout.display()))
        .arg(&bundle));
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["touch", "/tmp/started"]);
    fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
    let root = work.join(format!("state-{runtime}"));
    let marker = bundle.join("rootfs/tmp/started");
    let mut ms = Vec::new();
    for i in 0..n {
        let _ = fs::remove_file(&marker);
        let id = format!("bench-{i}");
        let start = Instant::now();
        let out = Command::new(runtime)
            .arg("--root")
            .arg(&root)
            .args(["run", "--detach", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        wait_file(&marker, Duration::from_secs(30));
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let _ = Command::new(runtime)
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &id])
            .output();
    }
    Ok(ms)
}

fn rss_pss(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let pss = rollup
        .lines()
        .find_map(|l| {
            l.strip_prefix("Pss:")?
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .ok()
        })
        .unwrap_or(0);
    (rss, pss)
}

fn monitors(run_dir: &Path) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-f", &format!("picolet monitor .*{}", run_dir.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn counters(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let switches = status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let written = io
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: ")?.parse().ok())
        .unwrap_or(0);
    (switches, written)
}

struct Agent {
    child: Child,
    dir: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        common::cleanup(&self.dir);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (pods, idle) = if quick { (10, 10) } else { (50, 60) };
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let layout = work.join("oci");
    sh(Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/images/build-busybox"
    ))
    .arg(&layout));
    let mut rows: Vec<(String, String)> = Vec::new();

    // The floor: the bare runtimes running the same image.
    let mut floors = Vec::new();
    for runtime in ["runc", "crun"] {
        if Command::new(runtime).arg("--version").output().is_err() {
            continue;
        }
        let mut ms = match bare_runtime(runtime, &work, &layout, pods) {
            Ok(ms) => ms,
            Err(why) => {
                rows.push((format!("{runtime} run"), format!("cannot run here: {why}")));
                continue;
            }
        };
        ms.sort_by(f64::total_cmp);
        rows.push((
            format!("{runtime} run, p50 / p99 (ms)"),
            format!("{:.1} / {:.1}", percentile(&ms, 0.5), percentile(&ms, 0.99)),
        ));
        floors.push((runtime, percentile(&ms, 0.5)));
    }

    // picolet, through runc.
    let dir = work.join("agent");
    let marks = work.join("marks");
    fs::create_dir_all(dir.join("manifests")).unwrap();
    fs::create_dir_all(&marks).unwrap();
    sh(Command::new("cp")
        .arg("-a")
        .arg(&layout)
        .arg(dir.join("images-src")));
    fs::create_dir_all(dir.join("root")).unwrap();
    fs::rename(dir.join("images-src"), dir.join("root/images")).unwrap();
    // The run dir is tmpfs on a device (/run): measure with one.
    fs::create_dir_all(dir.join("run")).unwrap();
    sh(Command::new("mount")
        .args(["-t", "tmpfs", "bench-run"])
        .arg(dir.join("run")));
    let child = Command::new(BIN)
        .args([
            "run",
            "--cgroups",
            "off",
            "--node-name",
            "bench",
            "--runtime",
            "/usr/sbin/runc",
            "--manifests",
        ])
        .arg(dir.join("manifests"))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(work.join("agent.log")).unwrap())
        .spawn()
        .unwrap();
    let agent = Agent {
        child,
        dir: dir.clone(),
    };
    let pid = agent.child.id();
    wait_file(&dir.join("run/pods.json"), Duration::from_secs(10));
    let (rss0, pss0) = rss_pss(pid);
    let mut latencies = Vec::new();
    let mut footprint = vec![(0usize, rss0, pss0, 0u64)];
    for i in 0..pods {
        let marker = marks.join(format!("p{i}"));
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\nspec:\n  volumes:\n  - name: m\n    hostPath: {{path: {}}}\n  containers:\n  - name: c\n    image: busybox:1.36\n    imagePullPolicy: IfNotPresent\n    command: [sh, -c, 'touch /m/p{i}; exec sleep 3600']\n    volumeMounts: [{{name: m, mountPath: /m}}]\n",
            marks.display()
        );
        let tmp = dir.join(format!("manifests/.p{i}"));
        fs::write(&tmp, yaml).unwrap();
        let start = Instant::now();
        fs::rename(&tmp, dir.join(format!("manifests/p{i}.yaml"))).unwrap();
        wait_file(&marker, Duration::from_secs(60));
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        let n = i + 1;
        if n == 1 || n == 10 || n == 50 {
            let (rss, pss) = rss_pss(pid);
            let helpers: Vec<u64> = monitors(&dir.join("run"))
                .iter()
                .map(|m| rss_pss(*m).1)
                .collect();
            let avg = helpers.iter().sum::<u64>() / helpers.len().max(1) as u64;
            footprint.push((n, rss, pss, avg));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies, 0.5);
    rows.push((
        "picolet (runc), p50 / p99 (ms)".into(),
        format!("{p50:.1} / {:.1}", percentile(&latencies, 0.99)),
    ));
    if let Some((_, floor)) = floors.iter().find(|(r, _)| *r == "runc") {
        rows.push((
            "picolet / bare runc at p50".into(),
            format!("{:.2}x, +{:.1} ms", p50 / floor, p50 - floor),
        ));
    }
    for (n, rss, pss, helper) in &footprint {
        rows.push((
            format!("agent RSS / PSS with {n} pods (KiB)"),
            format!("{rss} / {pss}"),
        ));
        if *n > 0 {
            rows.push((
                format!("monitor PSS, mean over {n} (KiB)"),
                helper.to_string(),
            ));
        }
    }
    // Idle: pods running, no probes, nothing changing.
    std::thread::sleep(Duration::from_secs(1));
    let (s0, w0) = counters(pid);
    std::thread::sleep(Duration::from_secs(idle));
    let (s1, w1) = counters(pid);
    rows.push((
        format!("agent wake-ups over {idle} s idle, {pods} pods"),
        (s1 - s0).to_string(),
    ));
    rows.push((
        format!("agent bytes written over {idle} s idle"),
        (w1 - w0).to_string(),
    ));
    rows.push((
        "binary size (bytes), this build".into(),
        fs::metadata(BIN).map(|m| m.len()).unwrap_or(0).to_string(),
    ));
    drop(agent);

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut csv = String::from("metric,value\n");
    println!(
        "\npicolet benchmark ({}), {}",
        if quick { "quick" } else { "full" },
        std::env::consts::ARCH
    );
    for (k, v) in &rows {
        println!("{k:<width$}  {v}");
        csv.push_str(&format!("\"{k}\",\"{v}\"\n"));
    }
    fs::write(work.join("results.csv"), csv).unwrap();
    println!("\nwritten to {}", work.join("results.csv").display());
}

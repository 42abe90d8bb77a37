//! picolet's benchmark (`--quick` for CI, `--pull` for the pull figures
//! alone): start latency against the bare OCI runtime and against podman,
//! footprint by number of pods, idle cost with and without probes, flash
//! writes, binary sizes, registry pulls against skopeo. `bench/run
//! [--quick|--pull]` installs what it needs, builds the musl binaries and
//! runs this; see bench/README.md.
//!
//! Prints a table and writes target/bench/results.csv and results.svg. Start
//! latency is manifest written -> the container's first command ran (a file
//! it creates in a hostPath volume, polled every 0.2 ms).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
mod plot;
mod podman;
mod pull;

/// The binary measured: `PICOLET_BENCH_BIN` (bench/run sets the static musl
/// build, as shipped), else the test build.
fn binary() -> PathBuf {
    std::env::var_os("PICOLET_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(common::BIN))
}

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

/// picolet against a floor, as a ratio and the milliseconds added
/// (negative when picolet was faster).
fn against(ratio: f64, added_ms: f64) -> String {
    format!("{ratio:.2}x, {added_ms:+.1} ms")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Milliseconds from `runtime run --detach` to the container's marker, or
/// why the runtime cannot run here.
/// `runtime run --detach` of `bundle` as `id`; the milliseconds until
/// `marker`, which the container's command creates, exists.
fn run_detached(
    runtime: &str,
    root: &Path,
    bundle: &Path,
    id: &str,
    marker: &Path,
) -> Result<f64, String> {
    let _ = fs::remove_file(marker);
    // The container keeps the runtime's stdio: files, not pipes, or waiting
    // for the runtime would wait for the container.
    let errors = root.with_extension(format!("{id}.stderr"));
    let stderr = fs::File::create(&errors).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["run", "--detach", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        let message = fs::read_to_string(&errors).unwrap_or_default();
        return Err(message.trim().to_string());
    }
    wait_file(marker, Duration::from_secs(30));
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

fn delete_all(runtime: &str, root: &Path, ids: impl Iterator<Item = String>) {
    for id in ids {
        let _ = Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", &id])
            .output();
    }
}

/// The image's own bundle (umoci's default config) through the bare runtime,
/// `n` times, before any pod exists.
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
    spec["process"]["args"] =
        serde_json::json!(["sh", "-c", "touch /tmp/started; exec sleep 3600"]);
    fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
    let root = work.join(format!("state-{runtime}"));
    let marker = bundle.join("rootfs/tmp/started");
    let ms = (0..n)
        .map(|i| run_detached(runtime, &root, &bundle, &format!("bench-{i}"), &marker))
        .collect();
    // The containers kept running until the last one started, as picolet's
    // pods do: both are timed with the same number of containers alive.
    delete_all(runtime, &root, (0..n).map(|i| format!("bench-{i}")));
    ms
}

/// The floor paired with pod `name`, run right after it: picolet's own
/// bundle for that pod (its config.json: the pod's namespaces, /dev/shm,
/// /etc files and volumes; an overlay root on the image, its upper layer on
/// the same disk) through bare runc, with the same pods alive and so the
/// same host mounts, which runc's start time grows with. Preparing the
/// bundle (the overlay mount) is not timed: in picolet it is.
fn same_bundle(work: &Path, agent_dir: &Path, marks: &Path, name: &str) -> Result<f64, String> {
    let command = format!("touch /m/{name};");
    let mut spec = fs::read_dir(agent_dir.join("run/containers"))
        .map_err(|e| e.to_string())?
        .filter_map(|entry| fs::read(entry.ok()?.path().join("config.json")).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .find(|spec| {
            spec["process"]["args"][2]
                .as_str()
                .is_some_and(|c| c.starts_with(&command))
        })
        .ok_or_else(|| format!("no bundle of pod {name}"))?;
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        format!("touch /m/floor-{name}; exec sleep 3600")
    ]);
    let image = fs::read_dir(agent_dir.join("root/rootfs"))
        .map_err(|e| e.to_string())?
        .find_map(|entry| Some(entry.ok()?.path()))
        .ok_or("no image root filesystem")?;
    let bundle = work.join("same").join(name);
    for sub in ["upper", "work", "rootfs"] {
        fs::create_dir_all(bundle.join(sub)).map_err(|e| e.to_string())?;
    }
    sh(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            image.display(),
            bundle.join("upper").display(),
            bundle.join("work").display()
        ))
        .arg(bundle.join("rootfs")));
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .map_err(|e| e.to_string())?;
    run_detached(
        "runc",
        &work.join("state-same"),
        &bundle,
        &format!("same-{name}"),
        &marks.join(format!("floor-{name}")),
    )
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

/// What a process has done so far: wake-ups (context switches of all its
/// threads), CPU time in clock ticks, bytes it wrote to storage.
#[derive(Clone, Copy)]
struct Counters {
    wakeups: u64,
    cpu_ticks: u64,
    written: u64,
}

fn counters(pid: u32) -> Counters {
    let mut wakeups = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        wakeups += status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name: utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let cpu_ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let written = io
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: ")?.parse().ok())
        .unwrap_or(0);
    Counters {
        wakeups,
        cpu_ticks,
        written,
    }
}

/// A pod that marks its start in `marks` and sleeps; with `probe`, an exec
/// readiness probe every 10 s.
fn bench_pod(name: &str, marks: &Path, probe: bool) -> String {
    let probe = if probe {
        "    readinessProbe:\n      exec: {command: [\"true\"]}\n      periodSeconds: 10\n"
    } else {
        ""
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  volumes:\n  - name: m\n    hostPath: {{path: {}}}\n  containers:\n  - name: c\n    image: busybox:1.36\n    imagePullPolicy: IfNotPresent\n    command: [sh, -c, 'touch /m/{name}; exec sleep 3600']\n    volumeMounts: [{{name: m, mountPath: /m}}]\n{probe}",
        marks.display()
    )
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

fn wait_gone(status: &Path, name: &str, limit: Duration) {
    let start = Instant::now();
    while fs::read_to_string(status)
        .unwrap_or_default()
        .contains(&format!("\"{name}\""))
    {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {name} to go"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Start pods one at a time; the milliseconds until each one's marker.
fn start_pods(dir: &Path, marks: &Path, names: &[String], probe: bool) -> Vec<f64> {
    names
        .iter()
        .map(|name| {
            let tmp = dir.join(format!("manifests/.{name}"));
            fs::write(&tmp, bench_pod(name, marks, probe)).unwrap();
            let start = Instant::now();
            fs::rename(&tmp, dir.join(format!("manifests/{name}.yaml"))).unwrap();
            wait_file(&marks.join(name), Duration::from_secs(60));
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// Clock ticks per second of /proc/PID/stat (USER_HZ).
const TICKS_PER_S: f64 = 100.0;

/// The rows of one idle window: the agent's wake-ups and CPU time.
fn idle_rows(rows: &mut Vec<Row>, window: &str, (a, b): (Counters, Counters)) {
    let cpu_ms = (b.cpu_ticks - a.cpu_ticks) as f64 * 1000.0 / TICKS_PER_S;
    rows.push((
        format!("agent wake-ups over {window}"),
        (b.wakeups - a.wakeups).to_string(),
    ));
    rows.push((
        format!("agent CPU over {window} (ms)"),
        format!("{cpu_ms:.0}"),
    ));
}

fn idle_cost(pid: u32, secs: u64) -> (Counters, Counters) {
    let before = counters(pid);
    std::thread::sleep(Duration::from_secs(secs));
    (before, counters(pid))
}

/// A table row: the metric and its value.
type Row = (String, String);

/// The agent's memory with a number of pods: the pods, its RSS and PSS,
/// and the mean PSS of the monitors (KiB).
type Footprint = (usize, u64, u64, u64);

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (pods, idle, podman_pods) = if quick { (10, 10, 3) } else { (50, 60, 10) };
    let bin = binary();
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    // `--pull`: the pull figures alone, at full size.
    if std::env::args().any(|a| a == "--pull") {
        let mut rows = Vec::new();
        pull::pull_rows(&bin, &work, false, &mut rows);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            println!("{k:<width$}  {v}");
        }
        return;
    }
    let layout = work.join("oci");
    sh(Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/images/build-busybox"
    ))
    .arg(&layout));
    let mut rows: Vec<Row> = Vec::new();
    let mut cdfs: Vec<plot::Series> = Vec::new();

    let floors = bare_runtime_floors(&work, &layout, pods, &mut rows, &mut cdfs);

    // picolet, through runc.
    let marks = work.join("marks");
    let agent = start_agent(&bin, &work, &layout, &marks);
    let dir = agent.dir.clone();
    let pid = agent.child.id();
    let status = dir.join("run/pods.json");
    wait_file(&status, Duration::from_secs(10));
    let pair = floors.iter().any(|(r, _)| *r == "runc");
    let mut starts = start_pods_with_their_floors(pid, &work, &dir, &marks, pods, pair);
    remove_same_bundles(&work, starts.paired.len());
    latency_rows(&mut starts, &floors, &mut rows, &mut cdfs);
    footprint_rows(&starts.footprint, &mut rows);

    // Idle: pods running, no probes, nothing changing.
    std::thread::sleep(Duration::from_secs(1));
    let (a, b) = idle_cost(pid, idle);
    idle_rows(
        &mut rows,
        &format!("{idle} s idle, {pods} pods, no probes"),
        (a, b),
    );
    rows.push((
        format!("agent bytes written over {idle} s idle"),
        (b.written - a.written).to_string(),
    ));
    flash_writes_row(pid, &dir, &marks, &status, &mut rows);
    probed_idle_rows(pid, &dir, &marks, idle, &mut rows);
    drop(agent);

    binary_rows(&bin, &mut rows);
    // cross/profile measures what a device does steadily, without pulls.
    if std::env::var_os("PICOLET_BENCH_NO_PULL").is_none() {
        pull::pull_rows(&bin, &work, quick, &mut rows);
    }
    podman_rows(&layout, &work, &marks, podman_pods, &mut rows, &mut cdfs);
    write_results(&work, quick, pods, &rows, &starts.footprint, cdfs);
}

/// The floor: the bare runtimes running the same image. Each runtime that
/// ran, with its p50 (ms).
fn bare_runtime_floors(
    work: &Path,
    layout: &Path,
    pods: usize,
    rows: &mut Vec<Row>,
    cdfs: &mut Vec<plot::Series>,
) -> Vec<(&'static str, f64)> {
    let mut floors = Vec::new();
    for runtime in ["runc", "crun"] {
        if Command::new(runtime).arg("--version").output().is_err() {
            continue;
        }
        let mut ms = match bare_runtime(runtime, work, layout, pods) {
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
        cdfs.push(plot::Series {
            label: format!("{runtime} run"),
            points: plot::cdf(&ms),
        });
    }
    floors
}

/// picolet with runc, in `work/agent`, on a copy of the image `layout`;
/// its pods mark their start in `marks`.
fn start_agent(bin: &Path, work: &Path, layout: &Path, marks: &Path) -> Agent {
    let dir = work.join("agent");
    fs::create_dir_all(dir.join("manifests")).unwrap();
    fs::create_dir_all(marks).unwrap();
    sh(Command::new("cp")
        .arg("-a")
        .arg(layout)
        .arg(dir.join("images-src")));
    fs::create_dir_all(dir.join("root")).unwrap();
    fs::rename(dir.join("images-src"), dir.join("root/images")).unwrap();
    // The run dir is tmpfs on a device (/run): measure with one.
    fs::create_dir_all(dir.join("run")).unwrap();
    sh(Command::new("mount")
        .args(["-t", "tmpfs", "bench-run"])
        .arg(dir.join("run")));
    let child = agent_command(bin, &dir, &work.join("agent.log"))
        .spawn()
        .unwrap();
    Agent { child, dir }
}

/// `picolet run` on `dir`'s manifests, root, run and log dirs, with runc
/// and no cgroups (this host's are hybrid), its log to `log`.
fn agent_command(bin: &Path, dir: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--cgroups", "off", "--node-name", "bench"])
        .args(["--runtime", "/usr/sbin/runc"])
        .arg("--manifests")
        .arg(dir.join("manifests"))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap());
    cmd
}

/// What starting the pods measured.
struct Starts {
    /// Each pod's start (ms), in the order started.
    latencies: Vec<f64>,
    /// Each pod's paired floor (ms), in the same order.
    paired: Vec<f64>,
    /// Why the paired floor could not run, if it could not.
    paired_error: Option<String>,
    /// The agent's memory with 0, 1, 10 and 50 pods.
    footprint: Vec<Footprint>,
}

/// Start `pods` pods one at a time on the agent `pid` in `dir`, each
/// followed by its paired floor when `pair` (runc ran), and the footprint
/// with 0, 1, 10 and 50 pods.
fn start_pods_with_their_floors(
    pid: u32,
    work: &Path,
    dir: &Path,
    marks: &Path,
    pods: usize,
    pair: bool,
) -> Starts {
    let (rss0, pss0) = rss_pss(pid);
    let mut latencies = Vec::new();
    let mut paired = Vec::new();
    let mut paired_error = None;
    let mut footprint = vec![(0usize, rss0, pss0, 0u64)];
    for i in 0..pods {
        let name = format!("p{i}");
        latencies.extend(start_pods(dir, marks, std::slice::from_ref(&name), false));
        if paired_error.is_none() && pair {
            match same_bundle(work, dir, marks, &name) {
                Ok(ms) => paired.push(ms),
                Err(why) => paired_error = Some(why),
            }
        }
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
    Starts {
        latencies,
        paired,
        paired_error,
        footprint,
    }
}

/// Delete the `count` paired floors' containers and unmount their roots.
fn remove_same_bundles(work: &Path, count: usize) {
    delete_all(
        "runc",
        &work.join("state-same"),
        (0..count).map(|i| format!("same-p{i}")),
    );
    for bundle in fs::read_dir(work.join("same"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = Command::new("umount")
            .arg(bundle.path().join("rootfs"))
            .output();
    }
}

/// picolet's start latency, against the image bundle's floor and against
/// the paired floors.
fn latency_rows(
    starts: &mut Starts,
    floors: &[(&str, f64)],
    rows: &mut Vec<Row>,
    cdfs: &mut Vec<plot::Series>,
) {
    let Starts {
        latencies,
        paired,
        paired_error,
        ..
    } = starts;
    // Each pod's start against its own paired floor, run right after it:
    // the machine's drift between pods cancels out of these.
    let mut differences: Vec<f64> = latencies.iter().zip(&*paired).map(|(p, f)| p - f).collect();
    let mut ratios: Vec<f64> = latencies.iter().zip(&*paired).map(|(p, f)| p / f).collect();
    latencies.sort_by(f64::total_cmp);
    let p50 = percentile(latencies, 0.5);
    rows.push((
        "picolet (runc), p50 / p99 (ms)".into(),
        format!("{p50:.1} / {:.1}", percentile(latencies, 0.99)),
    ));
    cdfs.insert(
        0,
        plot::Series {
            label: "picolet (runc)".into(),
            points: plot::cdf(latencies),
        },
    );
    if let Some((_, floor)) = floors.iter().find(|(r, _)| *r == "runc") {
        rows.push((
            "picolet / bare runc, image bundle, at p50".into(),
            against(p50 / floor, p50 - floor),
        ));
    }
    if let Some(why) = paired_error.take() {
        rows.push((
            "runc run, same bundle".into(),
            format!("cannot run here: {why}"),
        ));
    } else if !paired.is_empty() {
        paired.sort_by(f64::total_cmp);
        let floor = percentile(paired, 0.5);
        rows.push((
            "runc run, same bundle, same pods alive, p50 / p99 (ms)".into(),
            format!("{floor:.1} / {:.1}", percentile(paired, 0.99)),
        ));
        rows.push((
            "picolet / bare runc, same bundle, at p50".into(),
            against(p50 / floor, p50 - floor),
        ));
        differences.sort_by(f64::total_cmp);
        ratios.sort_by(f64::total_cmp);
        rows.push((
            "picolet / its paired runc run, median over pods".into(),
            against(percentile(&ratios, 0.5), percentile(&differences, 0.5)),
        ));
        cdfs.push(plot::Series {
            label: "runc run, same bundle".into(),
            points: plot::cdf(paired),
        });
    }
}

/// The agent's and the monitors' memory by pods.
fn footprint_rows(footprint: &[Footprint], rows: &mut Vec<Row>) {
    for (n, rss, pss, helper) in footprint {
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
    // RSS, not PSS: the monitors share the agent's binary pages, so the
    // agent's PSS falls as pods are added.
    if let [(_, first, _, _), .., (n, last, _, _)] = footprint[1..] {
        rows.push((
            "agent RSS per added pod (KiB)".into(),
            format!("{:.0}", (last as f64 - first as f64) / (n as f64 - 1.0)),
        ));
    }
}

/// Flash writes of one pod's life: created, running, deleted.
fn flash_writes_row(pid: u32, dir: &Path, marks: &Path, status: &Path, rows: &mut Vec<Row>) {
    let before = counters(pid);
    start_pods(dir, marks, &["flash".to_string()], false);
    fs::remove_file(dir.join("manifests/flash.yaml")).unwrap();
    wait_gone(status, "flash-bench", Duration::from_secs(60));
    rows.push((
        "agent bytes written per pod create + delete".into(),
        (counters(pid).written - before.written).to_string(),
    ));
}

/// Idle with probes: 10 more pods with an exec readiness probe every 10 s;
/// then the agent's threads.
fn probed_idle_rows(pid: u32, dir: &Path, marks: &Path, idle: u64, rows: &mut Vec<Row>) {
    let probed: Vec<String> = (0..10).map(|i| format!("q{i}")).collect();
    start_pods(dir, marks, &probed, true);
    std::thread::sleep(Duration::from_secs(11));
    idle_rows(
        rows,
        &format!("{idle} s, 10 more pods probed every 10 s"),
        idle_cost(pid, idle),
    );
    rows.push((
        "agent threads".into(),
        fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count())
            .unwrap_or(0)
            .to_string(),
    ));
}

/// Binary sizes, as cross/build leaves them, and the binary measured.
fn binary_rows(bin: &Path, rows: &mut Vec<Row>) {
    for triple in ["aarch64-unknown-linux-musl", "x86_64-unknown-linux-musl"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("target/{triple}/release/picolet"));
        if let Ok(m) = fs::metadata(&path) {
            rows.push((
                format!("binary size, {triple} (bytes)"),
                m.len().to_string(),
            ));
        }
    }
    rows.push(("binary measured".into(), bin.display().to_string()));
}

/// The peer: podman kube play's start latency and its helpers' memory.
fn podman_rows(
    layout: &Path,
    work: &Path,
    marks: &Path,
    podman_pods: usize,
    rows: &mut Vec<Row>,
    cdfs: &mut Vec<plot::Series>,
) {
    match podman::measure(layout, work, marks, podman_pods, |name| {
        bench_pod(name, marks, false)
    }) {
        Ok(mut r) => {
            r.latencies.sort_by(f64::total_cmp);
            let p = percentile(&r.latencies, 0.5);
            rows.push((
                format!("podman kube play, {podman_pods} pods, p50 / max (ms)"),
                format!("{p:.0} / {:.0}", r.latencies.last().copied().unwrap_or(0.0)),
            ));
            rows.push((
                "podman helpers' PSS per pod (KiB)".into(),
                r.helper_pss_per_pod.to_string(),
            ));
            cdfs.push(plot::Series {
                label: "podman kube play".into(),
                points: plot::cdf(&r.latencies),
            });
        }
        Err(why) => rows.push(("podman kube play".into(), format!("not measured: {why}"))),
    }
}

/// Print the table; write it as results.csv and the plots as results.svg.
fn write_results(
    work: &Path,
    quick: bool,
    pods: usize,
    rows: &[Row],
    footprint: &[Footprint],
    cdfs: Vec<plot::Series>,
) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut csv = String::from("metric,value\n");
    let title = format!(
        "picolet benchmark ({}), {}, {} pods",
        if quick { "quick" } else { "full" },
        std::env::consts::ARCH,
        pods
    );
    println!("\n{title}");
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
        csv.push_str(&format!("\"{k}\",\"{v}\"\n"));
    }
    fs::write(work.join("results.csv"), csv).unwrap();
    let memory = plot::Panel {
        title: "agent memory by pods".into(),
        x_label: "pods".into(),
        y_label: "KiB".into(),
        log_x: false,
        series: vec![
            plot::Series {
                label: "agent RSS".into(),
                points: footprint.iter().map(|f| (f.0 as f64, f.1 as f64)).collect(),
            },
            plot::Series {
                label: "agent PSS".into(),
                points: footprint.iter().map(|f| (f.0 as f64, f.2 as f64)).collect(),
            },
        ],
    };
    let latency = plot::Panel {
        title: "start latency (CDF)".into(),
        x_label: "ms (log scale)".into(),
        y_label: "fraction of pods".into(),
        log_x: true,
        series: cdfs,
    };
    fs::write(
        work.join("results.svg"),
        plot::svg(&title, &[latency, memory]),
    )
    .unwrap();
    println!(
        "\nwritten to {} and results.svg",
        work.join("results.csv").display()
    );
}

//! Harness for integration tests: a real `picolet run` with real runc, in
//! private directories, and a busybox OCI image built at test time by umoci
//! from Debian's busybox-static.
//!
//! Needs root, runc, umoci and busybox-static (the README's test command
//! installs them). Every wait polls with a deadline; nothing sleeps to
//! synchronise.

#![allow(dead_code)]

pub mod apiserver;
pub mod layers;
pub mod registry;
pub mod tls;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_picolet");
pub const NODE: &str = "node1";

/// Run `cmd`; panic with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The busybox image as an OCI layout, tagged `busybox:1.36` and
/// `docker.io/library/busybox:latest`; built once per test binary by the
/// same script the demo uses.
pub fn busybox_layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        // Inside the test VM the image comes prebuilt (no umoci there).
        if let Some(prebuilt) = std::env::var_os("PICOLET_TEST_IMAGE") {
            return PathBuf::from(prebuilt);
        }
        let layout = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("busybox-oci-{}", std::process::id()));
        let _ = fs::remove_dir_all(&layout);
        run(Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/images/build-busybox"
        ))
        .arg(&layout));
        layout
    })
}

/// One picolet agent with its own directories, stopped and cleaned on drop.
pub struct Agent {
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub extra_config: String,
    /// `cgroups:` of the config: "off" on hosts without cgroup v2, or
    /// `PICOLET_TEST_CGROUPS` (the VM sets "v2").
    pub cgroups: String,
}

impl Agent {
    /// Directories and the image, but no process yet.
    pub fn new(name: &str) -> Agent {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("it-{name}-{}", std::process::id()));
        cleanup(&dir);
        fs::create_dir_all(dir.join("manifests")).unwrap();
        fs::create_dir_all(dir.join("root")).unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(busybox_layout())
            .arg(dir.join("root/images")));
        Agent {
            dir,
            child: None,
            extra_config: String::new(),
            cgroups: std::env::var("PICOLET_TEST_CGROUPS").unwrap_or_else(|_| "off".into()),
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn manifests(&self) -> PathBuf {
        self.dir.join("manifests")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// Start `picolet run`; its log goes to `agent.log`.
    pub fn start(&mut self) {
        let config = self.dir.join("config.yaml");
        // Never the host's /etc/picolet/registries.yaml: a test's pulls go
        // only where the test says (a missing file is no configuration).
        let registries = if self.extra_config.contains("registryConfig:") {
            String::new()
        } else {
            format!(
                "registryConfig: {}\n",
                self.dir.join("no-registries.yaml").display()
            )
        };
        fs::write(
            &config,
            format!(
                "staticPodPath: {}\nnodeName: {NODE}\nrootDir: {}\nrunDir: {}\npodLogsDir: {}\ncgroups: \"{}\"\n{registries}{}{}",
                self.manifests().display(),
                self.dir.join("root").display(),
                self.run_dir().display(),
                self.log_dir().display(),
                self.cgroups,
                std::env::var("PICOLET_TEST_RUNTIME").map_or(String::new(), |r| format!("runtime: {r}\n")),
                self.extra_config
            ),
        )
        .unwrap();
        // The status of an earlier agent must not pass for this one's.
        let _ = fs::remove_file(self.run_dir().join("pods.json"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))
            .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let run_dir = self.run_dir();
        wait_for(
            "the agent to write its status",
            Duration::from_secs(10),
            || run_dir.join("pods.json").exists().then_some(()),
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    /// Stop the agent with a signal and reap it.
    pub fn stop(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            run(Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]));
            child.wait().unwrap();
        }
    }

    pub fn agent_log(&self) -> String {
        fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    pub fn write_manifest(&self, file: &str, yaml: &str) {
        // Write then rename, as a careful tool does: one inotify event, whole content.
        let tmp = self.manifests().join(format!(".{file}.tmp"));
        fs::write(&tmp, yaml).unwrap();
        fs::rename(tmp, self.manifests().join(file)).unwrap();
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--run-dir")
            .arg(self.run_dir())
            .output()
            .unwrap()
    }

    /// `get pods -o json` as a value.
    pub fn pods(&self) -> Value {
        let out = self.cli(&["get", "pods", "-o", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The pod named `name` (`<name>-node1`), if listed.
    pub fn pod(&self, name: &str) -> Option<Value> {
        let full = format!("{name}-{NODE}");
        self.pods()["items"]
            .as_array()?
            .iter()
            .find(|p| p["metadata"]["name"] == full.as_str())
            .cloned()
    }

    /// Poll `get pods` until `check` accepts the pod.
    pub fn wait_pod(
        &self,
        name: &str,
        what: &str,
        secs: u64,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(
            &format!("pod {name}: {what}\n{}", self.agent_log()),
            Duration::from_secs(secs),
            || self.pod(name).filter(|p| check(p)),
        )
    }

    pub fn logs(&self, pod: &str, args: &[&str]) -> String {
        let full = format!("{pod}-{NODE}");
        let mut all = vec!["logs", full.as_str()];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "logs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What a reboot does to the agent's world: the agent and every container
    /// die, the run dir (tmpfs) is emptied; the root and log dirs (disk) stay.
    pub fn simulate_reboot(&mut self) {
        self.stop("KILL");
        let root = self.run_dir().join("runc");
        for id in self.runc_ids() {
            run(Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", &id]));
        }
        let run_dir = self.run_dir().display().to_string();
        wait_for("the monitors to exit", Duration::from_secs(10), || {
            let out = Command::new("pgrep")
                .args(["-f", &format!("picolet monitor .*{run_dir}")])
                .output()
                .ok()?;
            out.stdout.is_empty().then_some(())
        });
        unmount_below(&self.run_dir());
        // The overlays' upper dirs on disk outlive a reboot, like the rest of root.
        fs::remove_dir_all(self.run_dir()).unwrap();
    }

    /// `runc list` under the agent's runtime root.
    pub fn runc_ids(&self) -> Vec<String> {
        let out = run(Command::new("runc")
            .arg("--root")
            .arg(self.run_dir().join("runc"))
            .args(["list", "-q"]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        cleanup(&self.dir);
    }
}

/// Kill every container under `dir`'s runtime root, detach every mount below
/// `dir`, and remove it.
pub fn cleanup(dir: &Path) {
    let root = dir.join("run/runc");
    if root.exists() {
        if let Ok(out) = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", id])
                    .output();
            }
        }
    }
    unmount_below(dir);
    let _ = fs::remove_dir_all(dir);
}

/// Detach every mount at or below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).output();
    }
}

/// Poll `f` every 50 ms until it returns `Some`, or panic after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// The status of container `name` (regular or init).
pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    let s = &pod["status"];
    s["containerStatuses"]
        .as_array()
        .into_iter()
        .chain(s["initContainerStatuses"].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or(&Value::Null)
}

pub fn running(pod: &Value, name: &str) -> bool {
    !container(pod, name)["state"]["running"].is_null()
}

pub fn restarts(pod: &Value, name: &str) -> u64 {
    container(pod, name)["restartCount"].as_u64().unwrap_or(0)
}

/// A pod manifest with `containers` given as (name, shell script) pairs.
pub fn pod_yaml(
    name: &str,
    policy: &str,
    grace: u32,
    extra_spec: &str,
    containers: &[(&str, &str)],
) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: {grace}\n{extra_spec}  containers:\n"
    );
    for (c, script) in containers {
        y.push_str(&format!(
            "  - name: {c}\n    image: busybox:1.36\n    command: [\"sh\", \"-c\", {}]\n",
            serde_json::to_string(script).unwrap()
        ));
    }
    y
}

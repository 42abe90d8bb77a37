//! A hostPath of a pod from the manifest URL is resolved below its allowed
//! prefix at every start, and the mount is made from what was found: a pod
//! that swaps an admitted directory for a link to the host's /etc gets a
//! container error, never the host's /etc.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `python3 -m http.server` on a free port, serving `dir`; killed on drop.
struct Server(Child, u16);

impl Server {
    fn start(dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the http server", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(drop)
        });
        Server(child, port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The content of every file below `dir`: the logs of every attempt.
fn every_log(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.push_str(&every_log(&path));
        } else {
            all.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    all
}

/// The reviewer's attack: `top` is the allowed directory, `v` a directory
/// below it; the container replaces `allowed/x` by a link to /etc and exits.
/// Without the fix the next start bind-mounts the host's /etc, read-write,
/// at /mnt (the path was canonicalized at admission only).
#[test]
fn an_allowed_host_path_swapped_for_a_link_after_admission_is_not_mounted() {
    let mut agent = Agent::new("hostpath-pin");
    let allowed = agent.dir.join("allowed");
    std::fs::create_dir_all(allowed.join("x")).unwrap();
    std::fs::write(allowed.join("x/inside"), "ok").unwrap();
    let www = agent.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let script =
        "ls /mnt; if [ ! -L /top/x ]; then rm -rf /top/x; ln -s /etc /top/x; fi; sleep 1; exit 1";
    std::fs::write(
        www.join("pods.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hp\nspec:\n  restartPolicy: Always\n  terminationGracePeriodSeconds: 1\n  volumes:\n  - name: top\n    hostPath: {{path: {}}}\n  - name: v\n    hostPath: {{path: {}}}\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, '{script}']\n    volumeMounts:\n    - {{name: top, mountPath: /top}}\n    - {{name: v, mountPath: /mnt}}\n",
            allowed.display(),
            allowed.join("x").display()
        ),
    )
    .unwrap();
    let server = Server::start(&www);
    agent.extra_config = format!(
        "staticPodURL: http://127.0.0.1:{}/pods.yaml\nstaticPodURLAllowHTTP: true\nhttpCheckFrequency: 1s\nnodePolicy:\n  allowedHostPaths: [{}]\n",
        server.1,
        allowed.display()
    );
    agent.start();
    agent.wait_pod("hp", "the first run to end", 30, |p| {
        !container(p, "c")["lastState"]["terminated"].is_null()
    });
    assert!(
        std::fs::symlink_metadata(allowed.join("x"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the container swapped allowed/x for a link"
    );
    // Either the start after the swap is refused, or (the escape) it runs
    // and ends, its `ls /mnt` in its log.
    let p = agent.wait_pod("hp", "the start after the swap", 60, |p| {
        container(p, "c")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
            || restarts(p, "c") >= 2
    });
    let logs = every_log(&agent.log_dir());
    assert!(
        !logs.contains("passwd"),
        "the container listed the host's /etc through an admitted hostPath:\n{logs}"
    );
    let waiting = &container(&p, "c")["state"]["waiting"];
    assert_eq!(waiting["reason"], "CreateContainerConfigError", "{p:#}");
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("hostPath volume \"v\" at ")
            && message.contains("leads outside the allowed prefix"),
        "{message}"
    );

    // When the pod goes, its pins go, and nothing below them is removed.
    let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    let pins = agent.run_dir().join("pods").join(&uid).join("host-paths");
    assert!(pins.join("top").exists(), "the allowed directory is pinned");
    std::fs::write(
        www.join("pods.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: other\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, '3600']\n",
    )
    .unwrap();
    wait_for("the pod to go", Duration::from_secs(30), || {
        agent.pod("hp").is_none().then_some(())
    });
    wait_for("the pins to go", Duration::from_secs(10), || {
        (!pins.exists()).then_some(())
    });
    assert!(std::fs::symlink_metadata(allowed.join("x")).is_ok());
    assert!(Path::new("/etc/passwd").exists());
    // The other pod's container is made before the agent and its runtime
    // root go: a `runc run` still under way at the end outlives the cleanup.
    agent.wait_pod("other", "running", 60, |p| {
        p["status"]["phase"] == "Running"
    });
}

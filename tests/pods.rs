//! Static pods as real containers through runc: volumes, restart policies,
//! CrashLoopBackOff, manifest edits, security context, image errors.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::Duration;

#[test]
fn a_multi_container_pod_shares_an_empty_dir_and_sees_a_host_path() {
    let mut agent = Agent::new("volumes");
    agent.start();
    let host = agent.dir.join("host-data");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("greeting"), "hello from the host\n").unwrap();
    agent.write_manifest("web.yaml", &web_with_shared_host_and_memory_volumes(&host));
    let pod = agent.wait_pod("web", "both containers running", 30, |p| {
        running(p, "writer") && running(p, "reader")
    });
    assert_eq!(phase(&pod), "Running");
    every_pod_condition_is_true(&pod);
    the_containers_see_the_volumes_and_the_pod_hostname(&agent, &host);
    the_cli_lists_the_pod_without_resource_limits(&agent);
}

/// Two containers sharing an emptyDir, the writer with the host directory
/// `host` and a 1 MiB memory-backed emptyDir.
fn web_with_shared_host_and_memory_volumes(host: &Path) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  volumes:
  - name: shared
    emptyDir: {{}}
  - name: data
    hostPath:
      path: {}
      type: Directory
  - name: scratch
    emptyDir:
      medium: Memory
      sizeLimit: 1Mi
  containers:
  - name: writer
    image: busybox:1.36
    command: ["sh", "-c", "cat /data/greeting > /shared/msg; echo $HOSTNAME > /data/hostname; df -k /scratch | tail -1 > /data/scratch; sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
    - {{name: data, mountPath: /data}}
    - {{name: scratch, mountPath: /scratch}}
  - name: reader
    image: busybox:1.36
    command: ["sh", "-c", "while [ ! -s /in/msg ]; do sleep 0.1; done; cat /in/msg; cat /etc/hostname; sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /in, readOnly: true}}
"#,
        host.display()
    )
}

/// The kubelet's pod conditions, all True.
fn every_pod_condition_is_true(pod: &Value) {
    let conditions: Vec<(String, String)> = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for kind in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert!(
            conditions.contains(&(kind.to_string(), "True".to_string())),
            "{kind}: {conditions:?}"
        );
    }
}

/// The reader sees what the writer copied from the host, both see the
/// pod's hostname, and the memory volume is a 1 MiB tmpfs.
fn the_containers_see_the_volumes_and_the_pod_hostname(agent: &Agent, host: &Path) {
    let logs = wait_for("the reader to print", Duration::from_secs(10), || {
        let l = agent.logs("web", &["-c", "reader"]);
        l.contains("web-node1").then_some(l)
    });
    // The kubelet names the host after the pod's API name, `<name>-<node>`.
    assert_eq!(logs, "hello from the host\nweb-node1\n");
    let hostname = wait_for("hostname file", Duration::from_secs(10), || {
        fs::read_to_string(host.join("hostname"))
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert_eq!(hostname, "web-node1\n", "HOSTNAME is the pod name");
    let scratch = wait_for("df of the memory volume", Duration::from_secs(10), || {
        fs::read_to_string(host.join("scratch"))
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert!(
        scratch.starts_with("tmpfs") && scratch.contains(" 1024 "),
        "a 1 MiB tmpfs: {scratch}"
    );
}

/// `picolet get pods` in its three formats, and the log's warning that
/// nothing is limited.
fn the_cli_lists_the_pod_without_resource_limits(agent: &Agent) {
    let table = String::from_utf8(agent.cli(&["get", "pods"]).stdout).unwrap();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("web-node1") && table.contains("2/2") && table.contains("Running"),
        "{table}"
    );
    let yaml = String::from_utf8(agent.cli(&["get", "pods", "-o", "yaml"]).stdout).unwrap();
    assert!(
        yaml.contains("kind: PodList") && yaml.contains("name: web-node1"),
        "{yaml}"
    );
    let wide = String::from_utf8(agent.cli(&["get", "pods", "-o", "wide"]).stdout).unwrap();
    assert!(wide.contains("OFF(--cgroups off)"), "{wide}");
    assert!(agent
        .agent_log()
        .contains("running WITHOUT resource limits"));
}

#[test]
fn restart_policies_decide_what_runs_again() {
    let mut agent = Agent::new("policies");
    agent.start();
    agent.write_manifest(
        "never.yaml",
        &pod_yaml("never", "Never", 1, "", &[("c", "echo bye; exit 3")]),
    );
    agent.write_manifest(
        "onfailure.yaml",
        &pod_yaml("onfailure", "OnFailure", 1, "", &[("c", "exit 0")]),
    );
    agent.write_manifest(
        "always.yaml",
        &pod_yaml("always", "Always", 1, "", &[("c", "exit 0")]),
    );
    let never = agent.wait_pod("never", "Failed", 30, |p| phase(p) == "Failed");
    let term = &container(&never, "c")["state"]["terminated"];
    assert_eq!(term["exitCode"], 3);
    assert_eq!(term["reason"], "Error");
    assert_eq!(restarts(&never, "c"), 0);
    assert_eq!(agent.logs("never", &[]), "bye\n");
    let onfailure = agent.wait_pod("onfailure", "Succeeded", 30, |p| phase(p) == "Succeeded");
    assert_eq!(
        container(&onfailure, "c")["state"]["terminated"]["reason"],
        "Completed"
    );
    let always = agent.wait_pod("always", "restarted twice", 30, |p| restarts(p, "c") >= 2);
    assert_eq!(
        phase(&always),
        "Running",
        "an Always pod between restarts is Running"
    );
    // Completed pods release their runtime containers.
    let never_uid = never["metadata"]["uid"].as_str().unwrap().to_string();
    wait_for(
        "the Never pod's container to be deleted",
        Duration::from_secs(10),
        || (!agent.runc_ids().iter().any(|id| id.starts_with(&never_uid))).then_some(()),
    );
}

#[test]
fn crash_loop_back_off_follows_the_configured_sequence() {
    let mut agent = Agent::new("backoff");
    agent.extra_config =
        "crashLoopBackOff:\n  initialContainerRestartPeriod: 1s\n  maxContainerRestartPeriod: 4s\n"
            .into();
    agent.start();
    agent.write_manifest(
        "crash.yaml",
        &pod_yaml(
            "crash",
            "Always",
            1,
            "",
            &[("c", "cut -d' ' -f1 /proc/uptime; exit 1")],
        ),
    );
    let pod = agent.wait_pod("crash", "five restarts", 60, |p| restarts(p, "c") >= 5);
    let c = container(&pod, "c");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    // Each instance logged its start (seconds since boot) into its own <n>.log.
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let dir = agent
        .log_dir()
        .join(format!("default_crash-{NODE}_{uid}/c"));
    wait_for("the sixth instance's log", Duration::from_secs(10), || {
        fs::read_to_string(dir.join("5.log"))
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    let starts: Vec<f64> = (0..=5)
        .map(|n| {
            let text = fs::read_to_string(dir.join(format!("{n}.log"))).unwrap();
            text.split_whitespace().nth(3).unwrap().parse().unwrap()
        })
        .collect();
    let gaps_ms: Vec<u128> = starts
        .windows(2)
        .map(|w| ((w[1] - w[0]) * 1000.0) as u128)
        .collect();
    // Back-off with 1 s / 4 s: 0, 1, 2, 4, 4 s after each exit (exits are instant).
    let expected_ms = [0, 1000, 2000, 4000, 4000];
    for (gap, want) in gaps_ms.iter().zip(expected_ms) {
        assert!(
            *gap + 50 >= want,
            "restart gaps {gaps_ms:?}, expected at least {expected_ms:?}"
        );
        assert!(
            *gap < want + 1500,
            "restart gaps {gaps_ms:?} much longer than {expected_ms:?}"
        );
    }
    let waiting = wait_for("a CrashLoopBackOff state", Duration::from_secs(10), || {
        let p = agent.pod("crash")?;
        let w = container(&p, "c")["state"]["waiting"].clone();
        (w["reason"] == "CrashLoopBackOff").then_some(w)
    });
    let message = waiting["message"].as_str().unwrap();
    assert!(
        message.starts_with("back-off 4s restarting failed container=c pod=crash-node1_default("),
        "{message}"
    );
    let table = String::from_utf8(agent.cli(&["get", "pods"]).stdout).unwrap();
    assert!(table.contains("CrashLoopBackOff"), "{table}");
}

#[test]
fn manifest_edits_replace_break_and_remove_pods() {
    let mut agent = Agent::new("edits");
    agent.start();
    let marks = agent.dir.join("marks");
    fs::create_dir_all(&marks).unwrap();
    let spec = |version: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  terminationGracePeriodSeconds: 10
  volumes:
  - name: marks
    hostPath:
      path: {marks}
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "trap 'echo {version}-stop >> /marks/log; exit 0' TERM; echo {version}-start >> /marks/log; while true; do sleep 0.1; done"]
    volumeMounts:
    - {{name: marks, mountPath: /marks}}
"#,
            marks = marks.display()
        )
    };
    agent.write_manifest("app.yaml", &spec("v1"));
    let v1 = agent.wait_pod("app", "v1 running", 30, |p| running(p, "c"));
    let uid1 = v1["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        v1["metadata"]["annotations"]["kubernetes.io/config.hash"],
        uid1.as_str()
    );
    assert_eq!(
        v1["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );

    // A broken edit: v1 keeps running and the error is shown.
    agent.write_manifest(
        "app.yaml",
        &spec("v1").replace("image: busybox:1.36", "image: ''"),
    );
    let broken = agent.wait_pod("app", "the manifest error shown", 10, |p| {
        p["status"]["message"].is_string()
    });
    let message = broken["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.containers[0].image: required") && message.contains("app.yaml"),
        "{message}"
    );
    assert_eq!(broken["metadata"]["uid"], uid1.as_str());
    assert!(running(&broken, "c"));
    let get = agent.cli(&["get", "pods"]);
    assert!(String::from_utf8_lossy(&get.stderr).contains("spec.containers[0].image: required"));

    // A good edit: the old pod stops fully before the new one starts.
    agent.write_manifest("app.yaml", &spec("v2"));
    let v2 = agent.wait_pod("app", "v2 running", 30, |p| {
        p["metadata"]["uid"] != uid1.as_str() && running(p, "c")
    });
    assert!(v2["status"]["message"].is_null(), "the error is gone");
    let log = fs::read_to_string(marks.join("log")).unwrap();
    assert_eq!(log, "v1-start\nv1-stop\nv2-start\n");

    // Removal: graceful, then nothing is left of the pod but its logs.
    fs::remove_file(agent.manifests().join("app.yaml")).unwrap();
    wait_for("the pod to disappear", Duration::from_secs(20), || {
        agent.pod("app").is_none().then_some(())
    });
    assert_eq!(
        fs::read_to_string(marks.join("log")).unwrap(),
        "v1-start\nv1-stop\nv2-start\nv2-stop\n"
    );
    assert!(agent.runc_ids().is_empty());
    assert_eq!(
        fs::read_dir(agent.run_dir().join("containers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        fs::read_dir(agent.run_dir().join("pods")).unwrap().count(),
        0
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&agent.dir.join("run").display().to_string()),
        "no mount left"
    );
}

#[test]
fn security_context_is_applied() {
    let mut agent = Agent::new("security");
    agent.start();
    agent.write_manifest(
        "sec.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: sec
spec:
  restartPolicy: Never
  securityContext:
    runAsUser: 65534
    runAsGroup: 65534
  containers:
  - name: c
    image: busybox:1.36
    command: ["sh", "-c", "id -u; id -g; grep CapEff /proc/self/status; touch /x 2>/dev/null && echo writable || echo read-only"]
    securityContext:
      readOnlyRootFilesystem: true
      capabilities:
        drop: [ALL]
  - name: root
    image: busybox:1.36
    command: ["sh", "-c", "id -u; grep CapBnd /proc/self/status"]
    securityContext:
      runAsUser: 0
      capabilities:
        add: [NET_ADMIN]
"#,
    );
    agent.wait_pod("sec", "completed", 30, |p| phase(p) == "Succeeded");
    assert_eq!(
        agent.logs("sec", &["-c", "c"]),
        "65534\n65534\nCapEff:\t0000000000000000\nread-only\n"
    );
    let root = agent.logs("sec", &["-c", "root"]);
    let bnd = u64::from_str_radix(
        root.lines().nth(1).unwrap().trim_start_matches("CapBnd:\t"),
        16,
    )
    .unwrap();
    assert_eq!(root.lines().next(), Some("0"));
    assert_ne!(bnd & (1 << 12), 0, "CAP_NET_ADMIN added");
    assert_eq!(bnd & (1 << 21), 0, "CAP_SYS_ADMIN not in the default set");
    assert_ne!(bnd & (1 << 0), 0, "CAP_CHOWN in the default set");
}

#[test]
fn missing_images_wait_with_kubelet_reasons() {
    let mut agent = Agent::new("images");
    agent.start();
    // A registry on a closed loopback port: the pull fails at once and no
    // test traffic leaves the machine.
    let yaml = |name: &str, policy: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: 127.0.0.1:9/absent:1\n    imagePullPolicy: {policy}\n")
    };
    agent.write_manifest("never.yaml", &yaml("never", "Never"));
    agent.write_manifest("ifnotpresent.yaml", &yaml("ifnp", "IfNotPresent"));
    let never = agent.wait_pod("never", "ErrImageNeverPull", 20, |p| {
        container(p, "c")["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    });
    let message = container(&never, "c")["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("127.0.0.1:9/absent:1") && message.contains("\"Never\""),
        "{message}"
    );
    agent.wait_pod("ifnp", "ErrImagePull", 20, |p| {
        container(p, "c")["state"]["waiting"]["reason"] == "ErrImagePull"
    });
    assert_eq!(phase(&never), "Pending");
    // The same image by its fully qualified name and by :latest runs
    // (IfNotPresent: `latest` alone would mean Always, a registry pull).
    agent.write_manifest(
        "full.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: full\nspec:\n  containers:\n  - name: a\n    image: docker.io/library/busybox:1.36\n    command: [sleep, '3600']\n  - name: b\n    image: busybox\n    imagePullPolicy: IfNotPresent\n    command: [sleep, '3600']\n",
    );
    let full = agent.wait_pod("full", "running", 30, |p| {
        running(p, "a") && running(p, "b")
    });
    let image_id = container(&full, "a")["imageID"].as_str().unwrap();
    assert!(
        image_id.starts_with("sha256:") && image_id.len() == 71,
        "{image_id}"
    );
    // And by digest, as `image@sha256:...`.
    agent.write_manifest(
        "digest.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: digest\nspec:\n  containers:\n  - name: c\n    image: busybox@{image_id}\n    command: [sleep, '3600']\n"),
    );
    let by_digest = agent.wait_pod("digest", "running", 30, |p| running(p, "c"));
    assert_eq!(container(&by_digest, "c")["imageID"], image_id);
}

#[test]
fn init_containers_run_in_order_first() {
    let mut agent = Agent::new("init");
    agent.start();
    let marks = agent.dir.join("marks");
    fs::create_dir_all(&marks).unwrap();
    agent.write_manifest(
        "init.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: init
spec:
  volumes:
  - name: marks
    hostPath: {{path: {}}}
  initContainers:
  - name: first
    image: busybox:1.36
    command: ["sh", "-c", "sleep 0.5; echo first >> /m/log"]
    volumeMounts: [{{name: marks, mountPath: /m}}]
  - name: second
    image: busybox:1.36
    command: ["sh", "-c", "echo second >> /m/log"]
    volumeMounts: [{{name: marks, mountPath: /m}}]
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "echo app >> /m/log; sleep 3600"]
    volumeMounts: [{{name: marks, mountPath: /m}}]
"#,
            marks.display()
        ),
    );
    let pod = agent.wait_pod("init", "app running", 30, |p| running(p, "app"));
    assert_eq!(
        fs::read_to_string(marks.join("log")).unwrap(),
        "first\nsecond\napp\n"
    );
    assert_eq!(
        container(&pod, "first")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(container(&pod, "second")["ready"], true);
}

#[test]
fn the_example_pods_run() {
    let mut agent = Agent::new("examples");
    agent.start();
    for entry in fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/manifests")).unwrap() {
        let path = entry.unwrap().path();
        agent.write_manifest(
            path.file_name().unwrap().to_str().unwrap(),
            &fs::read_to_string(&path).unwrap(),
        );
    }
    agent.wait_pod("web", "all three running", 30, |p| {
        ["server", "log-tailer", "client"]
            .iter()
            .all(|c| running(p, c))
    });
    wait_for(
        "the client to fetch the page over localhost",
        Duration::from_secs(20),
        || {
            agent
                .logs("web", &["-c", "client"])
                .contains("Hello from picolet")
                .then_some(())
        },
    );
    wait_for(
        "the tailer to see the access log",
        Duration::from_secs(20),
        || {
            agent
                .logs("web", &["-c", "log-tailer"])
                .contains("url:/")
                .then_some(())
        },
    );
    let batch = agent.wait_pod("batch", "Succeeded", 30, |p| phase(p) == "Succeeded");
    assert_eq!(restarts(&batch, "sum"), 0);
    assert_eq!(
        agent.logs("batch", &["-c", "fetch"]),
        "prepared 100 numbers\n"
    );
    assert_eq!(agent.logs("batch", &["-c", "sum"]), "sum: 5050\n");
}

/// From the second pod on, the network namespace and the writable layer's
/// directories are the ones the agent made ahead after the previous start
/// (runtime/spare.rs): still the pod's own, lo up, never shared.
#[test]
fn every_pod_has_a_network_and_a_writable_layer_of_its_own() {
    let mut agent = Agent::new("spares");
    agent.start();
    let host = fs::read_link("/proc/self/ns/net").unwrap();
    let mut seen = vec![host.to_string_lossy().into_owned()];
    for name in ["one", "two", "three"] {
        agent.write_manifest(
            &format!("{name}.yaml"),
            &format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [\"sh\", \"-c\", \"readlink /proc/self/ns/net; ip -o link | wc -l; ip -o link show lo | grep -c UP; ls /mark 2>&1; touch /mark; exec sleep 3600\"]\n"),
        );
        agent.wait_pod(name, "running", 20, |p| running(p, "c"));
        let logs = wait_for(
            &format!("pod {name} to print its network and root"),
            Duration::from_secs(20),
            || {
                let logs = agent.logs(name, &[]);
                (logs.lines().count() == 4).then_some(logs)
            },
        );
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines[1..3], ["1", "1"], "{name}: only lo, and up");
        assert!(
            !seen.iter().any(|s| s == lines[0]),
            "{name}: {} is the host's or another pod's",
            lines[0]
        );
        seen.push(lines[0].to_string());
        assert!(
            lines[3].contains("No such file"),
            "{name}: another container's file in its writable layer: {}",
            lines[3]
        );
    }
    wait_for(
        "the next start's writable layer, made ahead",
        Duration::from_secs(10),
        || {
            agent
                .dir
                .join("root/spare-layer/upper")
                .is_dir()
                .then_some(())
        },
    );
}

#[test]
fn pod_namespaces_are_shared_inside_and_isolated_outside() {
    let mut agent = Agent::new("namespaces");
    agent.start();
    agent.write_manifest(
        "ns.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: ns
spec:
  restartPolicy: Never
  containers:
  - name: a
    image: busybox:1.36
    workingDir: /tmp
    command: ["sh", "-c", "pwd; ip -o link | wc -l; ip -o link show lo | grep -c UP; echo served > index.html; httpd -p 127.0.0.1:9000 -h /tmp; echo hi > /dev/shm/x; while [ ! -e /dev/shm/done ]; do sleep 0.1; done"]
  - name: b
    image: busybox:1.36
    command: ["sh", "-c", "while [ ! -s /dev/shm/x ]; do sleep 0.1; done; cat /dev/shm/x; wget -q -O- http://127.0.0.1:9000/; touch /dev/shm/done"]
"#,
    );
    agent.write_manifest(
        "host.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: host\nspec:\n  hostNetwork: true\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [\"sh\", \"-c\", \"ip -o link | wc -l; hostname\"]\n",
    );
    agent.write_manifest(
        "nonroot.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nonroot\nspec:\n  securityContext:\n    runAsNonRoot: true\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, '3600']\n",
    );
    agent.wait_pod("ns", "completed", 30, |p| phase(p) == "Succeeded");
    assert_eq!(
        agent.logs("ns", &["-c", "a"]),
        "/tmp\n1\n1\n",
        "own network namespace: only lo, and up"
    );
    assert_eq!(
        agent.logs("ns", &["-c", "b"]),
        "hi\nserved\n",
        "/dev/shm and the network are the pod's"
    );
    agent.wait_pod("host", "completed", 30, |p| phase(p) == "Succeeded");
    let host_links = String::from_utf8(
        std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        agent.logs("host", &[]),
        format!("{}\n{}", host_links.lines().count(), host_name),
        "hostNetwork: the host's links and name"
    );
    let nonroot = agent.wait_pod("nonroot", "refused", 20, |p| {
        container(p, "c")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    });
    let message = container(&nonroot, "c")["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("runAsNonRoot and image will run as root"),
        "{message}"
    );
}

#[test]
fn a_manifest_re_added_unchanged_is_the_same_pod_and_counts_on() {
    // Same content, same UID; the restart count goes
    // on from the highest <n>.log in its log directory.
    let mut agent = Agent::new("readd");
    agent.start();
    let yaml = pod_yaml("again", "Always", 1, "", &[("c", "sleep 3600")]);
    agent.write_manifest("again.yaml", &yaml);
    let first = agent.wait_pod("again", "running", 30, |p| running(p, "c"));
    assert_eq!(restarts(&first, "c"), 0);
    fs::remove_file(agent.manifests().join("again.yaml")).unwrap();
    wait_for("the pod to go", Duration::from_secs(20), || {
        agent.pod("again").is_none().then_some(())
    });
    agent.write_manifest("again.yaml", &yaml);
    let second = agent.wait_pod("again", "running again", 30, |p| running(p, "c"));
    assert_eq!(second["metadata"]["uid"], first["metadata"]["uid"]);
    assert_eq!(restarts(&second, "c"), 1);
}

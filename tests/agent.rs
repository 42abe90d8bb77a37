//! The agent itself: surviving its own death, one thread, cleanup of what a
//! previous run left, the cgroup refusal, logs, and the dependency rules.

mod common;

use common::*;
use std::fs;
use std::process::Command;
use std::time::Duration;

fn runc_pid(agent: &Agent, id: &str) -> i64 {
    let out = Command::new("runc")
        .arg("--root")
        .arg(agent.run_dir().join("runc"))
        .args(["state", id])
        .output()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    state["pid"].as_i64().unwrap()
}

#[test]
fn kill_9_of_the_agent_leaves_containers_running_and_a_new_agent_adopts_them() {
    let mut agent = Agent::new("adopt");
    agent.start();
    agent.write_manifest(
        "tick.yaml",
        &pod_yaml(
            "tick",
            "Always",
            1,
            "",
            &[(
                "c",
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
            )],
        ),
    );
    let before = agent.wait_pod("tick", "running", 30, |p| running(p, "c"));
    let id = container(&before, "c")["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("runc://")
        .to_string();
    let pid = runc_pid(&agent, &id);

    agent.stop("KILL");
    // While no agent runs, the container keeps running and logging.
    let lines = |a: &Agent| a.logs("tick", &[]).lines().count();
    let seen = lines(&agent);
    wait_for(
        "logs to grow without an agent",
        Duration::from_secs(10),
        || (lines(&agent) > seen + 3).then_some(()),
    );

    agent.start();
    let after = agent.wait_pod("tick", "adopted", 30, |p| running(p, "c"));
    assert_eq!(runc_pid(&agent, &id), pid, "the same container process");
    assert_eq!(
        container(&after, "c")["containerID"],
        before["status"]["containerStatuses"][0]["containerID"]
    );
    assert_eq!(restarts(&after, "c"), 0);
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(after["status"]["startTime"], before["status"]["startTime"]);
    assert!(agent
        .agent_log()
        .contains(&format!("adopted container {id}")));
    // Logs are continuous across the gap: every number appears once, in order.
    let log = agent.logs("tick", &[]);
    let numbers: Vec<u64> = log
        .lines()
        .map(|l| l.trim_start_matches("tick ").parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");

    // And a container that dies while the agent is away is seen as exited.
    agent.stop("KILL");
    Command::new("runc")
        .arg("--root")
        .arg(agent.run_dir().join("runc"))
        .args(["kill", &id, "KILL"])
        .output()
        .unwrap();
    agent.start();
    let restarted = agent.wait_pod("tick", "restarted after the exit it missed", 30, |p| {
        restarts(p, "c") == 1 && running(p, "c")
    });
    assert_eq!(
        container(&restarted, "c")["lastState"]["terminated"]["exitCode"],
        137
    );
}

#[test]
fn sigterm_stops_the_agent_but_not_the_pods() {
    let mut agent = Agent::new("sigterm");
    agent.start();
    agent.write_manifest(
        "s.yaml",
        &pod_yaml("s", "Always", 1, "", &[("c", "sleep 3600")]),
    );
    agent.wait_pod("s", "running", 30, |p| running(p, "c"));
    agent.stop("TERM");
    assert!(agent
        .agent_log()
        .contains("exiting; containers keep running"));
    let ids = agent.runc_ids();
    assert_eq!(ids.len(), 1);
    let out = Command::new("runc")
        .arg("--root")
        .arg(agent.run_dir().join("runc"))
        .args(["state", &ids[0]])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"running\""));
}

#[test]
fn the_agent_runs_on_one_thread() {
    let mut agent = Agent::new("threads");
    agent.start();
    agent.write_manifest(
        "t.yaml",
        &pod_yaml("t", "Always", 1, "", &[("c", "sleep 3600")]),
    );
    agent.wait_pod("t", "running", 30, |p| running(p, "c"));
    let status = fs::read_to_string(format!("/proc/{}/status", agent.pid())).unwrap();
    let threads = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    assert_eq!(threads, "Threads:\t1");
}

#[test]
fn leftovers_no_pod_owns_are_cleaned_up_at_start() {
    let mut agent = Agent::new("leftovers");
    agent.start();
    agent.write_manifest(
        "gone.yaml",
        &pod_yaml("gone", "Always", 1, "", &[("c", "sleep 3600")]),
    );
    agent.wait_pod("gone", "running", 30, |p| running(p, "c"));
    agent.stop("KILL");
    // The pod's records vanish while its container and mounts remain, as
    // after a crash mid-teardown; and a stray runtime container appears.
    let pods_dir = agent.run_dir().join("pods");
    let uid = fs::read_dir(&pods_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let ns = pods_dir.join(&uid).join("ns");
    for f in ["net", "ipc", "uts"] {
        Command::new("umount").arg(ns.join(f)).output().unwrap();
    }
    Command::new("umount")
        .arg(pods_dir.join(&uid).join("shm"))
        .output()
        .unwrap();
    fs::remove_dir_all(pods_dir.join(&uid)).unwrap();
    let stray = agent.dir.join("stray");
    fs::create_dir_all(stray.join("rootfs")).unwrap();
    Command::new("runc")
        .arg("spec")
        .current_dir(&stray)
        .output()
        .unwrap();
    let spec = fs::read_to_string(stray.join("config.json")).unwrap();
    fs::write(
        stray.join("config.json"),
        spec.replace("\"terminal\": true", "\"terminal\": false"),
    )
    .unwrap();
    fs::create_dir_all(stray.join("rootfs/bin")).unwrap();
    fs::copy("/bin/busybox", stray.join("rootfs/bin/sh")).unwrap();
    // The created container keeps its stdio: give it nothing to hold open.
    let created = Command::new("runc")
        .arg("--root")
        .arg(agent.run_dir().join("runc"))
        .args(["create", "--bundle"])
        .arg(&stray)
        .arg("stray")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(created.success());
    assert_eq!(agent.runc_ids().len(), 2);

    // As after a reboot: durable leftovers of containers and pods long gone.
    let old_layer = agent.dir.join("root/containers/0123-c-0/upper");
    fs::create_dir_all(&old_layer).unwrap();
    fs::write(old_layer.join("file"), "x").unwrap();
    let old_volume = agent.dir.join("root/pods/0123/volumes/data");
    fs::create_dir_all(&old_volume).unwrap();

    fs::remove_file(agent.manifests().join("gone.yaml")).unwrap();
    agent.start();
    assert!(!agent.dir.join("root/containers/0123-c-0").exists());
    assert!(!agent.dir.join("root/pods/0123").exists());
    wait_for("leftovers removed", Duration::from_secs(10), || {
        agent.runc_ids().is_empty().then_some(())
    });
    assert_eq!(
        fs::read_dir(agent.run_dir().join("containers"))
            .unwrap()
            .count(),
        0
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&agent.run_dir().display().to_string()),
        "no mount left under the run dir"
    );
    assert!(agent
        .agent_log()
        .contains("removing leftover runtime container stray"));
}

#[test]
fn without_cgroups_off_the_agent_refuses_on_this_host() {
    let agent = Agent::new("refuse");
    let out = Command::new(BIN)
        .args(["run", "--manifests"])
        .arg(agent.manifests())
        .arg("--run-dir")
        .arg(agent.run_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to start"), "{err}");
    assert!(err.contains("--cgroups off"), "{err}");
    let hybrid = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - tmpfs "));
    if hybrid {
        assert!(err.contains("systemd.unified_cgroup_hierarchy=1"), "{err}");
    }
}

#[test]
fn logs_rotate_and_read_like_kubectl() {
    let mut agent = Agent::new("logs");
    agent.extra_config = "containerLogMaxSize: 2Ki\ncontainerLogMaxFiles: 3\ncrashLoopBackOff:\n  initialContainerRestartPeriod: 1s\n  maxContainerRestartPeriod: 2s\n".into();
    agent.start();
    agent.write_manifest(
        "chatty.yaml",
        &pod_yaml("chatty", "Always", 1, "", &[("c", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; echo err last >&2; sleep 1; exit 1")]),
    );
    let pod = agent.wait_pod("chatty", "restarted once", 30, |p| restarts(p, "c") >= 1);
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let dir = agent
        .log_dir()
        .join(format!("default_chatty-{NODE}_{uid}/c"));
    let files: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let of_first: Vec<&String> = files.iter().filter(|f| f.starts_with("0.log")).collect();
    assert_eq!(of_first.len(), 3, "0.log and two rotated files: {files:?}");
    for f in &of_first {
        assert!(
            fs::metadata(dir.join(f)).unwrap().len() <= 2048,
            "{f} within containerLogMaxSize"
        );
    }
    let raw = fs::read_to_string(dir.join("0.log")).unwrap();
    let first = raw.lines().next().unwrap();
    let fields: Vec<&str> = first.splitn(4, ' ').collect();
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('.'),
        "RFC3339Nano: {first}"
    );
    assert!(
        matches!(fields[1], "stdout" | "stderr") && fields[2] == "F",
        "{first}"
    );

    // -p shows the previous instance; it ends with the last lines written.
    let previous = agent.logs("chatty", &["-p"]);
    assert!(
        previous.contains("line 299\n") && previous.contains("err last\n"),
        "{previous}"
    );
    assert!(
        !previous.contains("line 0\n"),
        "the oldest rotated file was removed"
    );
    let stamped = agent.logs("chatty", &["-p", "--timestamps"]);
    assert!(stamped
        .lines()
        .all(|l| l.split(' ').next().is_some_and(|t| t.ends_with('Z'))));
}

#[test]
fn logs_follow_ends_when_the_container_ends() {
    let mut agent = Agent::new("follow");
    agent.start();
    agent.write_manifest(
        "f.yaml",
        &pod_yaml(
            "f",
            "Never",
            1,
            "",
            &[("c", "sleep 1; echo one; sleep 1; echo two")],
        ),
    );
    agent.wait_pod("f", "running", 30, |p| running(p, "c"));
    let out = Command::new(BIN)
        .args(["logs", &format!("f-{NODE}"), "-f", "--run-dir"])
        .arg(agent.run_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
}

#[test]
fn no_tokio_in_the_dependency_tree() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--prefix",
            "none",
            "-e",
            "normal",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("rustix ")),
        "the tree was read"
    );
    assert!(
        !tree.lines().any(|l| l.starts_with("tokio ")),
        "tokio is in the tree"
    );
}

#[test]
fn version_names_picolet_and_the_runtime() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("picolet version v{}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("runtime: runc version"), "{text}");
}

#[test]
fn after_a_reboot_never_pods_stay_done_and_others_initialize_again() {
    // A reboot, with the run dir wiped as a reboot wipes tmpfs.
    let mut agent = Agent::new("reboot");
    agent.start();
    let marks = agent.dir.join("marks");
    fs::create_dir_all(&marks).unwrap();
    agent.write_manifest(
        "job.yaml",
        &pod_yaml("job", "Never", 1, "", &[("c", "echo done")]),
    );
    agent.write_manifest(
        "app.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes:\n  - name: m\n    hostPath: {{path: {}}}\n  initContainers:\n  - name: init\n    image: busybox:1.36\n    command: [sh, -c, 'echo init >> /m/log']\n    volumeMounts: [{{name: m, mountPath: /m}}]\n  containers:\n  - name: main\n    image: busybox:1.36\n    command: [sleep, '3600']\n",
            marks.display()
        ),
    );
    let job = agent.wait_pod("job", "Succeeded", 30, |p| phase(p) == "Succeeded");
    let app = agent.wait_pod("app", "running", 30, |p| running(p, "main"));
    assert_eq!(fs::read_to_string(marks.join("log")).unwrap(), "init\n");

    agent.simulate_reboot();
    agent.start();
    let app2 = agent.wait_pod("app", "running again", 30, |p| running(p, "main"));
    assert_eq!(
        fs::read_to_string(marks.join("log")).unwrap(),
        "init\ninit\n",
        "init ran again, first"
    );
    assert_eq!(app2["metadata"]["uid"], app["metadata"]["uid"]);
    assert_eq!(restarts(&app2, "main"), 1, "restart counts keep growing");
    assert_eq!(restarts(&app2, "init"), 1);
    assert_eq!(app2["status"]["startTime"], app["status"]["startTime"]);
    let job2 = agent.pod("job").unwrap();
    assert_eq!(phase(&job2), "Succeeded", "a Never pod that ran stays done");
    assert_eq!(container(&job2, "c")["state"]["terminated"]["exitCode"], 0);
    let uid = job["metadata"]["uid"].as_str().unwrap();
    let logs: Vec<_> = fs::read_dir(agent.log_dir().join(format!("default_job-{NODE}_{uid}/c")))
        .unwrap()
        .collect();
    assert_eq!(logs.len(), 1, "it did not run again");
}

#[test]
fn an_adopted_pod_is_recorded_on_disk_when_the_agent_before_had_not() {
    // The record is written when the monitor reports the start; an agent
    // killed in between leaves a running pod that a reboot would forget.
    let mut agent = Agent::new("record");
    agent.start();
    agent.write_manifest(
        "long.yaml",
        &pod_yaml("long", "Never", 1, "", &[("c", "sleep 3600")]),
    );
    let pod = agent.wait_pod("long", "running", 30, |p| running(p, "c"));
    let record = agent
        .dir
        .join("root/pods")
        .join(pod["metadata"]["uid"].as_str().unwrap());
    assert!(record.join("history.json").exists());
    agent.stop("KILL");
    fs::remove_dir_all(&record).unwrap();
    agent.start();
    agent.wait_pod("long", "adopted", 30, |p| running(p, "c"));
    assert!(record.join("pod.json").exists());
    assert!(record.join("history.json").exists());
}

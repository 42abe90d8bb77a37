//! Init containers, native sidecars, probes and hooks with real containers.
//! Containers write timestamped markers into a shared volume (an emptyDir,
//! or a hostPath where the markers must outlive the pod).

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// A shell command writing a marker: seconds since boot, then what happened.
fn mark(what: &str) -> String {
    format!("echo $(cut -d' ' -f1 /proc/uptime) {what} >> /marks/log")
}

/// The events in a marker file, in time order.
fn events(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap_or_default();
    let mut lines: Vec<(f64, String)> = text
        .lines()
        .filter_map(|l| {
            let (t, what) = l.split_once(' ')?;
            Some((t.parse().ok()?, what.to_string()))
        })
        .collect();
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    lines.into_iter().map(|(_, w)| w).collect()
}

/// The marker file of a pod's `marks` emptyDir.
fn emptydir_marks(agent: &Agent, pod: &Value) -> std::path::PathBuf {
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    agent
        .dir
        .join("root/pods")
        .join(uid)
        .join("volumes/marks/log")
}

/// A container script: mark its start, mark its stop on SIGTERM.
fn serve(name: &str) -> String {
    // A function for the trap: the marker's own quotes cannot nest in trap '...'.
    format!(
        "stop() {{ {}; exit 0; }}; trap stop TERM; {}; while true; do sleep 0.1; done",
        mark(&format!("{name}-stop")),
        mark(&format!("{name}-start"))
    )
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn sidecars_start_in_order_survive_an_agent_restart_and_stop_in_reverse() {
    let mut agent = Agent::new("sidecars");
    agent.start();
    let host_marks = agent.dir.join("marks");
    fs::create_dir_all(&host_marks).unwrap();
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: chain
spec:
  terminationGracePeriodSeconds: 20
  volumes:
  - name: marks
    hostPath: {{path: {host}}}
  initContainers:
  - name: init-1
    image: busybox:1.36
    command: ["sh", "-c", {init}]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
  - name: side-1
    image: busybox:1.36
    restartPolicy: Always
    command: ["sh", "-c", {side1}]
    startupProbe:
      exec:
        command: ["test", "-e", "/tmp/warm"]
      periodSeconds: 1
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", {side1_pre}]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
  - name: side-2
    image: busybox:1.36
    restartPolicy: Always
    command: ["sh", "-c", {side2}]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", {main}]
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", {main_pre}]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
"#,
        host = host_marks.display(),
        init = q(&mark("init-1")),
        side1 = q(&format!(
            "(sleep 1.5; {}; touch /tmp/warm) & {}",
            mark("side-1-warm"),
            serve("side-1")
        )),
        side1_pre = q(&mark("side-1-prestop")),
        side2 = q(&serve("side-2")),
        main = q(&serve("main")),
        main_pre = q(&format!("{}; sleep 1", mark("main-prestop"))),
    );
    agent.write_manifest("chain.yaml", &yaml);
    let pod = agent.wait_pod("chain", "main running", 40, |p| running(p, "main"));
    let log = host_marks.join("log");
    // side-2 starts only once side-1's startup probe saw it warm.
    assert_eq!(
        events(&log),
        [
            "init-1",
            "side-1-start",
            "side-1-warm",
            "side-2-start",
            "main-start"
        ]
    );
    assert_eq!(container(&pod, "side-1")["started"], true);
    assert_eq!(container(&pod, "side-1")["ready"], true);
    assert_eq!(
        container(&pod, "init-1")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(phase(&pod), "Running");

    // The agent dies and comes back: nothing restarts, init-1 does not re-run.
    agent.stop("KILL");
    agent.start();
    let adopted = agent.wait_pod("chain", "adopted", 20, |p| {
        running(p, "main") && running(p, "side-2")
    });
    for c in ["side-1", "side-2", "main"] {
        assert_eq!(restarts(&adopted, c), 0, "{c}");
    }
    assert_eq!(events(&log).len(), 5, "nothing ran again");

    // Removal: both preStop hooks start together; main stops after its hook,
    // then side-2, then side-1 (reverse declaration order).
    fs::remove_file(agent.manifests().join("chain.yaml")).unwrap();
    wait_for("the pod to go", Duration::from_secs(40), || {
        agent.pod("chain").is_none().then_some(())
    });
    let stops: Vec<String> = events(&log).into_iter().skip(5).collect();
    assert_eq!(stops.len(), 5, "{stops:?}");
    let mut hooks = stops[..2].to_vec();
    hooks.sort();
    assert_eq!(hooks, ["main-prestop", "side-1-prestop"]);
    assert_eq!(stops[2..], ["main-stop", "side-2-stop", "side-1-stop"]);
}

#[test]
fn a_sidecar_restarts_in_a_never_pod_and_does_not_block_its_completion() {
    let mut agent = Agent::new("completion");
    agent.extra_config =
        "crashLoopBackOff:\n  initialContainerRestartPeriod: 1s\n  maxContainerRestartPeriod: 2s\n"
            .into();
    agent.start();
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: job
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  volumes:
  - name: marks
    emptyDir: {{}}
  initContainers:
  - name: logger
    image: busybox:1.36
    restartPolicy: Always
    command: ["sh", "-c", {logger}]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
  containers:
  - name: work
    image: busybox:1.36
    command: ["sh", "-c", {work}]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
"#,
        // The first instance exits with 1 once work has started (exiting at
        // once would race the agent seeing it running, which is what lets
        // work start); the next ones serve.
        logger = q(&format!("if [ ! -e /marks/once ]; then touch /marks/once; until grep -q work-start /marks/log 2>/dev/null; do sleep 0.1; done; {}; exit 1; fi; {}", mark("logger-crash"), serve("logger"))),
        work = q(&format!("{}; while [ $(grep -c logger-start /marks/log) -lt 1 ]; do sleep 0.1; done; sleep 1; {}", mark("work-start"), mark("work-done"))),
    );
    agent.write_manifest("job.yaml", &yaml);
    let pod = agent.wait_pod("job", "Succeeded", 40, |p| phase(p) == "Succeeded");
    let side = container(&pod, "logger");
    assert_eq!(
        side["restartCount"], 1,
        "restarted whatever the pod's policy"
    );
    assert_eq!(side["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(
        side["state"]["terminated"]["exitCode"], 0,
        "it was stopped, after work finished"
    );
    assert_eq!(
        container(&pod, "work")["state"]["terminated"]["reason"],
        "Completed"
    );
    let log = events(&emptydir_marks(&agent, &pod));
    assert_eq!(
        log,
        [
            "work-start",
            "logger-crash",
            "logger-start",
            "work-done",
            "logger-stop"
        ]
    );
}

#[test]
fn probes_gate_start_and_readiness_and_liveness_restarts() {
    let mut agent = Agent::new("probes");
    agent.start();
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: marks
    emptyDir: {{}}
  containers:
  - name: web
    image: busybox:1.36
    command: ["sh", "-c", {web}]
    ports:
    - name: http
      containerPort: 8080
    startupProbe:
      tcpSocket:
        port: http
      periodSeconds: 1
      failureThreshold: 30
    readinessProbe:
      httpGet:
        path: /ready.html
        port: 8080
        httpHeaders:
        - name: X-Probe
          value: picolet
      periodSeconds: 1
    livenessProbe:
      exec:
        command: ["sh", "-c", "test ! -e /tmp/broken"]
      periodSeconds: 1
      failureThreshold: 2
    volumeMounts: [{{name: marks, mountPath: /marks}}]
"#,
        // Listen after 1 s, become ready after 4 s; the first instance
        // breaks itself at 7 s so that liveness restarts it.
        web = q(&format!(
            "mkdir -p /www; n=$(ls /marks | wc -l); touch /marks/run-$n; {}; if [ $n = 0 ]; then (sleep 7; touch /tmp/broken) & fi; (sleep 4; echo ok > /www/ready.html) & sleep 1; exec httpd -f -vv -p 8080 -h /www",
            mark("start")
        )),
    );
    agent.write_manifest("web.yaml", &yaml);
    let not_ready = agent.wait_pod("web", "started but not ready", 20, |p| {
        let c = container(p, "web");
        c["started"] == true && c["ready"] == false
    });
    assert_eq!(phase(&not_ready), "Running");
    agent.wait_pod("web", "ready", 20, |p| container(p, "web")["ready"] == true);
    let restarted = agent.wait_pod("web", "restarted by liveness, ready again", 40, |p| {
        restarts(p, "web") == 1 && container(p, "web")["ready"] == true
    });
    let last = &container(&restarted, "web")["lastState"]["terminated"];
    assert_eq!(
        last["exitCode"], 137,
        "httpd as PID 1 ignores SIGTERM: killed after the grace"
    );
    let ready = restarted["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "True");
    let logs = agent.logs("web", &["-p"]);
    assert!(
        logs.contains("url:/ready.html"),
        "the readiness probe reached httpd: {logs}"
    );
}

#[test]
fn init_failure_follows_the_pod_restart_policy() {
    let mut agent = Agent::new("initfail");
    agent.extra_config =
        "crashLoopBackOff:\n  initialContainerRestartPeriod: 1s\n  maxContainerRestartPeriod: 2s\n"
            .into();
    agent.start();
    for policy in ["Never", "OnFailure", "Always"] {
        let name = policy.to_lowercase();
        agent.write_manifest(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  initContainers:\n  - name: init\n    image: busybox:1.36\n    command: [sh, -c, 'exit 2']\n  containers:\n  - name: main\n    image: busybox:1.36\n    command: [sleep, '3600']\n"
            ),
        );
    }
    let never = agent.wait_pod("never", "Failed", 30, |p| phase(p) == "Failed");
    assert_eq!(restarts(&never, "init"), 0);
    assert_eq!(
        container(&never, "init")["state"]["terminated"]["exitCode"],
        2
    );
    for name in ["onfailure", "always"] {
        let p = agent.wait_pod(name, "init retried", 30, |p| restarts(p, "init") >= 2);
        assert_eq!(phase(&p), "Pending");
        assert!(!running(&p, "main"), "{name}: main never starts");
        wait_for(
            "kubectl's Init:CrashLoopBackOff",
            Duration::from_secs(10),
            || {
                let table = String::from_utf8(
                    agent
                        .cli(&["get", "pods", &format!("{name}-{NODE}")])
                        .stdout,
                )
                .unwrap();
                table.contains("Init:CrashLoopBackOff").then_some(())
            },
        );
    }
    assert!(container(&never, "main")["state"]["waiting"]["reason"] == "PodInitializing");
}

/// Upstream's "should terminate sidecars in reverse order after all main
/// containers have exited" (test/e2e_node/container_lifecycle_test.go),
/// with its 5 s termination delays scaled to 1 s: the same starts-before
/// and exits-before assertions, and the pod Succeeded.
#[test]
fn upstream_pod_terminates_sidecars_in_reverse_order_after_the_main_container() {
    let mut agent = Agent::new("upstream");
    agent.start();
    // upstream's ExecCommand: log the start, and on SIGTERM wait
    // TerminationSeconds, log the exit and exit.
    let sidecar = |name: &str| {
        format!(
            "  - name: {name}\n    image: busybox:1.36\n    restartPolicy: Always\n    command: [\"sh\", \"-c\", {}]\n    volumeMounts: [{{name: marks, mountPath: /marks}}]\n",
            q(&format!(
                "stop() {{ sleep 1; {}; exit 0; }}; trap stop TERM; {}; while true; do sleep 0.1; done",
                mark(&format!("{name}-exit")),
                mark(&format!("{name}-start"))
            ))
        )
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: serialize-termination\nspec:\n  restartPolicy: Never\n  volumes:\n  - name: marks\n    emptyDir: {{}}\n  initContainers:\n{}{}{}  containers:\n  - name: regular-1\n    image: busybox:1.36\n    command: [\"sh\", \"-c\", {}]\n    volumeMounts: [{{name: marks, mountPath: /marks}}]\n",
        sidecar("restartable-init-1"),
        sidecar("restartable-init-2"),
        sidecar("restartable-init-3"),
        q(&format!("{}; sleep 2; {}", mark("regular-1-start"), mark("regular-1-exit")))
    );
    agent.write_manifest("upstream.yaml", &yaml);
    let pod = agent.wait_pod("serialize-termination", "no longer running", 60, |p| {
        phase(p) == "Succeeded"
    });
    assert_eq!(
        events(&emptydir_marks(&agent, &pod)),
        [
            "restartable-init-1-start",
            "restartable-init-2-start",
            "restartable-init-3-start",
            "regular-1-start",
            "regular-1-exit",
            "restartable-init-3-exit",
            "restartable-init-2-exit",
            "restartable-init-1-exit",
        ]
    );
    for s in [
        "restartable-init-1",
        "restartable-init-2",
        "restartable-init-3",
    ] {
        let c = container(&pod, s);
        assert_eq!(c["state"]["terminated"]["exitCode"], 0, "{s}");
        assert_eq!(c["restartCount"], 0, "{s}");
    }
    let conditions = pod["status"]["conditions"].as_array().unwrap();
    let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PodCompleted"))
    );
    let initialized = conditions
        .iter()
        .find(|c| c["type"] == "Initialized")
        .unwrap();
    assert_eq!(
        (
            initialized["status"].as_str(),
            initialized["reason"].as_str()
        ),
        (Some("True"), Some("PodCompleted"))
    );
}

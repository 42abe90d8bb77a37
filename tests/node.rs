//! Node mode against the project's API server (tests/apiserver) with the
//! real kubectl: registration, lease, pods created and deleted with kubectl,
//! mirror pods, events, the node policy; watches dropped and expired, an
//! outage, a reboot offline and the reconnect without restarts; a
//! black-holed server that must not disturb local supervision.

mod common;

use common::apiserver::{ApiServer, TOKEN};
use common::tls::TestCa;
use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A pod as `kubectl create -f` takes it: it says goodbye on SIGTERM.
fn api_pod(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  terminationGracePeriodSeconds: 20\n{extra_spec}  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, \"trap 'echo got TERM; exit 0' TERM; echo hello; while true; do sleep 0.2; done\"]\n"
    )
}

/// The pod named exactly `name` in picolet's own status.
fn local_pod(agent: &Agent, name: &str) -> Option<Value> {
    agent.pods()["items"]
        .as_array()?
        .iter()
        .find(|p| p["metadata"]["name"] == name)
        .cloned()
}

fn wait_local(agent: &Agent, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        &format!("local pod {name}: {what}\n{}", agent.agent_log()),
        Duration::from_secs(30),
        || local_pod(agent, name).filter(|p| check(p)),
    )
}

fn phase_is(p: &Value, want: &str) -> bool {
    p["status"]["phase"] == want
}

#[test]
fn kubectl_manages_pods_on_a_picolet_node() {
    let mut agent = Agent::new("node-kubectl");
    let server = ApiServer::start(&agent.dir);
    agent.extra_config = format!(
        "kubeconfig: {}\n{FAST_BACKOFF}",
        server.node_kubeconfig(NODE).display()
    );
    agent.write_manifest(
        "static.yaml",
        &pod_yaml("stat", "Always", 1, "", &[("c", "sleep 3600")]),
    );
    agent.start();

    the_node_is_ready_as_kubectl_shows_it(&server);
    the_lease_is_renewed_as_the_kubelet_does(&server);
    the_static_pods_mirror_comes_back_when_deleted(&agent, &server);
    let uid = a_kubectl_pod_runs_here_with_picolets_events(&agent, &server);
    probe_and_hook_failures_show_in_describe_counted_up(&server);
    a_deletions_own_grace_period_rules(&agent, &server);
    status_is_patched_on_change_only(&server);
    deleting_with_kubectl_terminates_then_the_node_deletes(&agent, &server, &uid);
}

/// The lease of the node, as kubectl names it.
const LEASE_ARGS: [&str; 4] = ["lease", NODE, "-n", "kube-node-lease"];

/// The Node, as kubectl shows it: Ready, labelled, with its capacity, its
/// versions and the kubelet's conditions.
fn the_node_is_ready_as_kubectl_shows_it(server: &ApiServer) {
    let node = server.wait(&["node", NODE], "Ready", 30, |n| {
        n["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    });
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], NODE);
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert!(labels["kubernetes.io/arch"].is_string());
    for r in ["cpu", "memory", "pods", "ephemeral-storage"] {
        assert!(node["status"]["capacity"][r].is_string(), "capacity {r}");
        assert!(
            node["status"]["allocatable"][r].is_string(),
            "allocatable {r}"
        );
    }
    let info = &node["status"]["nodeInfo"];
    assert!(info["kubeletVersion"].as_str().unwrap().contains("picolet"));
    assert!(info["containerRuntimeVersion"]
        .as_str()
        .unwrap()
        .starts_with("runc://"));
    assert!(!info["kernelVersion"].as_str().unwrap().is_empty());
    let kinds: Vec<&str> = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    let wide = server.kubectl_ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        wide.contains(NODE) && wide.contains("Ready") && wide.contains("runc://"),
        "{wide}"
    );
}

/// The Lease, renewed as the kubelet does (every 10 s, for 40 s).
fn the_lease_is_renewed_as_the_kubelet_does(server: &ApiServer) {
    let lease = server.wait(&LEASE_ARGS, "a lease", 30, |_| true);
    assert_eq!(lease["spec"]["holderIdentity"], NODE);
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    let first = lease["spec"]["renewTime"].clone();
    server.wait(&LEASE_ARGS, "a renewal", 25, |l| {
        l["spec"]["renewTime"] != first
    });
}

/// The static pod's mirror: on the server, not run twice. Deleted with
/// kubectl, it comes back; the static pod keeps running.
fn the_static_pods_mirror_comes_back_when_deleted(agent: &Agent, server: &ApiServer) {
    let mirror_name = format!("stat-{NODE}");
    let mirror = server.wait(&["pod", &mirror_name], "a running mirror", 30, |p| {
        phase_is(p, "Running")
    });
    let annotations = &mirror["metadata"]["annotations"];
    assert!(annotations["kubernetes.io/config.mirror"].is_string());
    assert_eq!(mirror["metadata"]["ownerReferences"][0]["kind"], "Node");
    let static_started =
        local_pod(agent, &mirror_name).unwrap()["status"]["containerStatuses"][0]["state"].clone();
    server.kubectl_ok(&["delete", "pod", &mirror_name, "--wait=false"]);
    server.wait(&["pod", &mirror_name], "the mirror recreated", 30, |p| {
        p["metadata"]["uid"] != mirror["metadata"]["uid"]
    });
    assert_eq!(
        local_pod(agent, &mirror_name).unwrap()["status"]["containerStatuses"][0]["state"],
        static_started
    );
}

/// A pod created with kubectl runs here and reaches Running in kubectl;
/// kubectl describe shows picolet's events. Returns the pod's UID.
fn a_kubectl_pod_runs_here_with_picolets_events(agent: &Agent, server: &ApiServer) -> String {
    server.create(&api_pod("web", ""));
    let web = server.wait(&["pod", "web"], "Running", 60, |p| {
        phase_is(p, "Running") && p["status"]["containerStatuses"][0]["ready"] == true
    });
    assert_eq!(web["spec"]["nodeName"], NODE);
    assert!(web["status"]["hostIP"].is_string());
    let table = server.kubectl_ok(&["get", "pods", "-o", "wide"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_default();
    assert!(
        row.contains("1/1") && row.contains("Running") && row.contains(NODE),
        "{table}"
    );
    let uid = web["metadata"]["uid"].as_str().unwrap().to_string();
    let local = wait_local(agent, "web", "running", |p| running(p, "c"));
    assert_eq!(local["metadata"]["uid"], uid.as_str());
    let described = wait_for("events in describe", Duration::from_secs(20), || {
        let d = server.kubectl_ok(&["describe", "pod", "web"]);
        d.contains("Started container c").then_some(d)
    });
    assert!(described.contains("Created container: c"), "{described}");
    assert!(
        described.contains(&format!("Node:         {NODE}/")),
        "{described}"
    );
    uid
}

/// A pod that fails its liveness probe and its preStop hook: what the
/// kubelet reports of it shows in describe, and a repeat counts up on
/// its event instead of posting another.
fn probe_and_hook_failures_show_in_describe_counted_up(server: &ApiServer) {
    server.create(&api_pod("flaky", "").replace(
        "    command:",
        "    livenessProbe: {exec: {command: [sh, -c, 'exit 1']}, periodSeconds: 1, failureThreshold: 1}\n    lifecycle: {preStop: {exec: {command: [sh, -c, 'exit 7']}}}\n    command:",
    ));
    let flaky_events = |server: &ApiServer| -> Vec<Value> {
        server
            .get(&["events", "--field-selector", "involvedObject.name=flaky"])
            .and_then(|e| e["items"].as_array().cloned())
            .unwrap_or_default()
    };
    let described = wait_for("flaky's events counted up", Duration::from_secs(60), || {
        let repeated = flaky_events(server)
            .iter()
            .any(|e| e["reason"] == "Unhealthy" && e["count"].as_u64() >= Some(2));
        let d = server.kubectl_ok(&["describe", "pod", "flaky"]);
        let all = ["Unhealthy", "Killing", "FailedPreStopHook", "BackOff"]
            .iter()
            .all(|r| d.contains(r));
        (repeated && all).then_some(d)
    });
    assert!(described.contains("Liveness probe failed"), "{described}");
    let unhealthy = flaky_events(server)
        .into_iter()
        .filter(|e| e["reason"] == "Unhealthy")
        .count();
    assert_eq!(unhealthy, 1, "a repeat posted as a new event");
    server.kubectl_ok(&["delete", "pod", "flaky", "--timeout=60s"]);
}

/// A deletion's own grace period rules: a pod that ignores SIGTERM and
/// whose spec gives it 60 s is killed after the 2 s that kubectl asked,
/// within kubectl's 20 s wait.
fn a_deletions_own_grace_period_rules(agent: &Agent, server: &ApiServer) {
    server.create(
        &api_pod("stubborn", "")
            .replace(
                "terminationGracePeriodSeconds: 20",
                "terminationGracePeriodSeconds: 60",
            )
            .replace("trap 'echo got TERM; exit 0' TERM", "trap '' TERM"),
    );
    server.wait(&["pod", "stubborn"], "Running", 60, |p| {
        phase_is(p, "Running")
    });
    server.kubectl_ok(&[
        "delete",
        "pod",
        "stubborn",
        "--grace-period=2",
        "--timeout=20s",
    ]);
    assert!(local_pod(agent, "stubborn").is_none_or(|p| !running(&p, "c")));
}

/// Status is patched on change only: nothing while nothing changes,
/// across a lease renewal.
fn status_is_patched_on_change_only(server: &ApiServer) {
    let patches = |server: &ApiServer| {
        server
            .requests()
            .iter()
            .filter(|r| {
                r["method"] == "PATCH" && r["path"] == "/api/v1/namespaces/default/pods/web/status"
            })
            .count()
    };
    let before = patches(server);
    assert!(before >= 1);
    let renewed = server.get(&LEASE_ARGS).unwrap()["spec"]["renewTime"].clone();
    server.wait(&LEASE_ARGS, "another renewal", 25, |l| {
        l["spec"]["renewTime"] != renewed
    });
    assert_eq!(patches(server), before, "status patched without a change");
}

/// Deleting with kubectl terminates gracefully, then the node deletes the
/// object with grace 0 and a UID precondition, and kubectl's wait ends.
fn deleting_with_kubectl_terminates_then_the_node_deletes(
    agent: &Agent,
    server: &ApiServer,
    uid: &str,
) {
    server.kubectl_ok(&["delete", "pod", "web", "--timeout=60s"]);
    assert!(server.get(&["pod", "web"]).is_none());
    wait_for("the local pod gone", Duration::from_secs(10), || {
        local_pod(agent, "web").is_none().then_some(())
    });
    let logs = wait_for("the pod's log", Duration::from_secs(5), || {
        let dir = agent.log_dir().join(format!("default_web_{uid}/c"));
        let text = std::fs::read_to_string(dir.join("0.log")).ok()?;
        text.contains("got TERM").then_some(text)
    });
    assert!(logs.contains("hello"));
    let delete = server
        .requests()
        .into_iter()
        .find(|r| {
            r["method"] == "DELETE"
                && r["path"] == "/api/v1/namespaces/default/pods/web"
                && r["user"] == format!("system:node:{NODE}").as_str()
        })
        .expect("the node's DELETE");
    assert_eq!(delete["body"]["gracePeriodSeconds"], 0);
    assert_eq!(delete["body"]["preconditions"]["uid"], uid);
    let events = server
        .get(&["events", "--field-selector", "involvedObject.name=web"])
        .unwrap();
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for reason in ["Pulled", "Created", "Started", "Killing"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
}

#[test]
fn a_server_with_an_unknown_certificate_is_refused() {
    let mut agent = Agent::new("node-tls");
    let server = ApiServer::start(&agent.dir);
    let kubeconfig = server.node_kubeconfig(NODE);
    // The same server, but trusted through another CA: TLS must fail.
    let other = TestCa::new(&agent.dir.join("other-ca"));
    let text = std::fs::read_to_string(&kubeconfig).unwrap().replace(
        &server.ca.cert().display().to_string(),
        &other.cert().display().to_string(),
    );
    std::fs::write(&kubeconfig, text).unwrap();
    // Readable by others, as a careless copy leaves it: picolet says so.
    std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644)).unwrap();
    agent.extra_config = format!("kubeconfig: {}\n", kubeconfig.display());
    agent.start();
    assert!(
        agent
            .agent_log()
            .contains("readable by group or others (mode 644)"),
        "{}",
        agent.agent_log()
    );
    wait_for(
        "a certificate error in the log",
        Duration::from_secs(20),
        || {
            agent
                .agent_log()
                .contains("invalid peer certificate")
                .then_some(())
        },
    );
    assert!(
        server.get(&["node", NODE]).is_none(),
        "registered through an unverified server"
    );
    // Failures are retried with back-off (0.8 s doubling), not in a loop:
    // when the third attempt shows, there are only a few.
    let attempts = |agent: &Agent| agent.agent_log().matches("registering node").count();
    let seen = wait_for(
        "a third registration attempt",
        Duration::from_secs(30),
        || {
            let n = attempts(&agent);
            (n >= 3).then_some(n)
        },
    );
    assert!(seen < 10, "{seen} registration attempts: no back-off");
}

#[test]
fn the_node_policy_refuses_what_the_operator_did_not_allow() {
    let mut agent = Agent::new("node-policy");
    let server = ApiServer::start(&agent.dir);
    agent.extra_config = format!(
        "kubeconfig: {}\nnodePolicy:\n  allowHostNetwork: true\n",
        server.node_kubeconfig(NODE).display()
    );
    agent.start();
    server.wait(&["node", NODE], "registered", 30, |_| true);

    server.create(&api_pod("priv", "").replace(
        "    image: busybox:1.36\n",
        "    image: busybox:1.36\n    securityContext: {privileged: true}\n",
    ));
    let refused = server.wait(&["pod", "priv"], "Failed", 30, |p| phase_is(p, "Failed"));
    assert_eq!(refused["status"]["reason"], "NodePolicy");
    assert!(refused["status"]["message"]
        .as_str()
        .unwrap()
        .contains("privileged"));

    server.create(&api_pod(
        "hostpath",
        "  volumes:\n  - name: etc\n    hostPath: {path: /etc}\n",
    ));
    let refused = server.wait(&["pod", "hostpath"], "Failed", 30, |p| {
        phase_is(p, "Failed")
    });
    assert_eq!(refused["status"]["reason"], "NodePolicy");

    // What picolet cannot run at all is refused with the field named.
    server.create(&api_pod("pid", "  hostPID: true\n"));
    let refused = server.wait(&["pod", "pid"], "Failed", 30, |p| phase_is(p, "Failed"));
    assert_eq!(refused["status"]["reason"], "UnsupportedPodSpec");
    assert!(refused["status"]["message"]
        .as_str()
        .unwrap()
        .contains("spec.hostPID"));

    // Allowed by the operator: hostNetwork runs.
    server.create(&api_pod("hostnet", "  hostNetwork: true\n"));
    server.wait(&["pod", "hostnet"], "Running", 60, |p| {
        phase_is(p, "Running")
    });
    assert!(agent.runc_ids().iter().all(|id| !id.contains("priv")));
}

/// The container IDs of the named pods in picolet's own status.
fn container_ids(agent: &Agent, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            local_pod(agent, n).expect("the pod")["status"]["containerStatuses"][0]["containerID"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn watches_dropped_or_expired_an_outage_and_a_reboot_offline_restart_nothing() {
    let mut agent = Agent::new("node-offline");
    let mut server = ApiServer::start(&agent.dir);
    agent.extra_config = format!("kubeconfig: {}\n", server.token_kubeconfig().display());
    agent.start();
    server.create(&api_pod("one", ""));
    server.create(&api_pod("gone", ""));
    for name in ["one", "gone"] {
        server.wait(&["pod", name], "Running", 60, |p| phase_is(p, "Running"));
    }
    dropped_and_expired_watches_resume(&server);
    let all = ["one", "two", "three", "gone"];
    an_outage_leaves_the_pods_running(&agent, &mut server, &all);

    // A reboot while the server is still down: the assigned pods, kept on
    // disk (root only), run again at once with no server at all.
    the_saved_pods_are_roots_alone(&agent);
    agent.simulate_reboot();
    the_pods_change_on_the_server_while_the_node_is_down(&mut server);
    agent.start();
    the_assigned_pods_run_again_offline(&agent, &all);
    let kept = ["one", "two"];
    let after_reboot = container_ids(&agent, &kept);
    let counts_after_reboot = containers_started_again_counted(&agent, &kept);
    let three_uid = local_pod(&agent, "three").unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();

    // Reconnect: the server's view is reconciled, and the pods that stay do
    // not restart.
    the_reconnect_reconciles_the_servers_view(&agent, &mut server, &three_uid, &after_reboot);
    assert_eq!(
        container_ids(&agent, &kept),
        after_reboot,
        "a pod restarted on reconnect"
    );
    assert_eq!(restart_counts(&agent, &kept), counts_after_reboot);
    // The token authenticated every request and never reached the log.
    assert!(server
        .requests()
        .iter()
        .all(|r| r["user"] == "token" || r["user"] == "admin"));
    assert!(!agent.agent_log().contains(TOKEN));
}

/// A dropped watch resumes; an expired resourceVersion (410) lists again.
fn dropped_and_expired_watches_resume(server: &ApiServer) {
    server.hook("drop-watches");
    server.create(&api_pod("two", ""));
    server.wait(&["pod", "two"], "Running after a dropped watch", 60, |p| {
        phase_is(p, "Running")
    });
    server.hook("compact");
    server.hook("drop-watches");
    server.create(&api_pod("three", ""));
    server.wait(&["pod", "three"], "Running after 410 Gone", 60, |p| {
        phase_is(p, "Running")
    });
}

/// The server answers 500s, then disappears: the pods keep running.
fn an_outage_leaves_the_pods_running(agent: &Agent, server: &mut ApiServer, all: &[&str]) {
    let before = container_ids(agent, all);
    server.hook("fail?code=500");
    server.hook("recover");
    server.stop();
    wait_for(
        "the agent to notice the outage",
        Duration::from_secs(40),
        || agent.agent_log().contains("API server:").then_some(()),
    );
    assert_eq!(container_ids(agent, all), before);
}

/// The assigned pods kept on disk are root's alone.
fn the_saved_pods_are_roots_alone(agent: &Agent) {
    let saved = agent.dir.join("root/api/pods.json");
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(agent.dir.join("root/api"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

/// While the node is down, its pods change on the server: one is deleted
/// at once (--force), one gracefully, and a new one is bound to it.
fn the_pods_change_on_the_server_while_the_node_is_down(server: &mut ApiServer) {
    server.restart();
    server.kubectl_ok(&["delete", "pod", "gone", "--force", "--grace-period=0"]);
    server.kubectl_ok(&["delete", "pod", "three", "--wait=false"]);
    server.create(&api_pod("four", ""));
    server.stop();
}

/// After the reboot, with no server, the pods the node last saw run again;
/// the one bound while it was down does not.
fn the_assigned_pods_run_again_offline(agent: &Agent, all: &[&str]) {
    for name in all {
        wait_local(agent, name, "running offline after the reboot", |p| {
            running(p, "c")
        });
    }
    assert!(
        local_pod(agent, "four").is_none(),
        "a pod the node never saw"
    );
}

/// The restart counts of container c of the named pods.
fn restart_counts(agent: &Agent, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|n| restarts(&local_pod(agent, n).unwrap(), "c"))
        .collect()
}

/// After a reboot the containers start again, counted: the counts.
fn containers_started_again_counted(agent: &Agent, names: &[&str]) -> Vec<u64> {
    let counts_after_reboot = restart_counts(agent, names);
    assert!(
        counts_after_reboot.iter().all(|&c| c == 1),
        "{counts_after_reboot:?}"
    );
    counts_after_reboot
}

/// Reconnect: the server's view is reconciled. The new pod runs, the
/// deleted ones stop (the graceful one with its TERM, then removed from
/// the server by the node), the status reaches the server and the lease is
/// renewed.
fn the_reconnect_reconciles_the_servers_view(
    agent: &Agent,
    server: &mut ApiServer,
    three_uid: &str,
    after_reboot: &[String],
) {
    server.restart();
    server.wait(&["pod", "four"], "Running after the reconnect", 60, |p| {
        phase_is(p, "Running")
    });
    for name in ["gone", "three"] {
        wait_for(
            &format!("{name} stopped after the reconnect"),
            Duration::from_secs(30),
            || local_pod(agent, name).is_none().then_some(()),
        );
    }
    wait_for("three removed by the node", Duration::from_secs(20), || {
        server.get(&["pod", "three"]).is_none().then_some(())
    });
    let three_log = agent
        .log_dir()
        .join(format!("default_three_{three_uid}/c/1.log"));
    assert!(std::fs::read_to_string(three_log)
        .unwrap()
        .contains("got TERM"));
    server.wait(&["pod", "one"], "the status after the reconnect", 60, |p| {
        p["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .is_some_and(|id| after_reboot.iter().any(|a| a == id))
    });
    let renewed = server.get(&LEASE_ARGS).unwrap()["spec"]["renewTime"].clone();
    server.wait(&LEASE_ARGS, "a renewal after the reconnect", 25, |l| {
        l["spec"]["renewTime"] != renewed
    });
}

/// Back-off short enough that restarts show the core's timing: 1 s, then 2 s.
const FAST_BACKOFF: &str =
    "crashLoopBackOff:\n  initialContainerRestartPeriod: 1s\n  maxContainerRestartPeriod: 2s\n";

/// Local supervision the server has no part in: a static pod that crashes,
/// and one whose liveness probe always fails.
fn write_supervised_pods(agent: &Agent) {
    agent.write_manifest(
        "crash.yaml",
        &pod_yaml("crash", "Always", 1, "", &[("c", "exit 3")]),
    );
    agent.write_manifest(
        "probed.yaml",
        &(pod_yaml(
            "probed",
            "Always",
            1,
            "",
            &[("c", "trap 'exit 0' TERM; while true; do sleep 0.2; done")],
        ) + "    livenessProbe: {exec: {command: [sh, -c, 'exit 1']}, periodSeconds: 1, failureThreshold: 1}\n"),
    );
}

/// Restarts after an exit and after a failed probe keep the back-off's
/// timing. Each restart changes the pod's status twice or more: a core that
/// waited on the server (10 s per request) could not make 3 in 25 s.
fn supervision_keeps_its_timing(agent: &Agent, while_: &str) {
    for pod in ["crash", "probed"] {
        let from = restarts(&agent.pod(pod).expect("the pod"), "c");
        agent.wait_pod(pod, &format!("3 more restarts {while_}"), 25, |p| {
            restarts(p, "c") >= from + 3
        });
    }
    // Termination keeps its timing too: removed, the pod is gone at once.
    std::fs::remove_file(agent.manifests().join("crash.yaml")).unwrap();
    wait_for(
        &format!("the crash pod removed {while_}"),
        Duration::from_secs(10),
        || agent.pod("crash").is_none().then_some(()),
    );
    write_supervised_pods(agent);
}

#[test]
fn a_black_holed_server_does_not_disturb_local_supervision() {
    // Accepts connections and never answers.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in hole.incoming().take(64) {
            conns.push(c);
        }
    });
    let mut agent = Agent::new("node-blackhole");
    let ca = TestCa::new(&agent.dir.join("ca"));
    let kubeconfig = agent.dir.join("hole.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: hole\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: u\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: c\n  context: {{cluster: hole, user: u}}\ncurrent-context: c\n",
            ca.cert().display()
        ),
    )
    .unwrap();
    agent.extra_config = format!("kubeconfig: {}\n{FAST_BACKOFF}", kubeconfig.display());
    write_supervised_pods(&agent);
    agent.start();
    agent.wait_pod("crash", "a first restart", 20, |p| restarts(p, "c") >= 1);
    supervision_keeps_its_timing(&agent, "under a black-holed server");
    drop(held);
}

#[test]
fn a_slow_or_failing_server_does_not_disturb_local_supervision() {
    let mut agent = Agent::new("node-slow");
    let server = ApiServer::start(&agent.dir);
    agent.extra_config = format!(
        "kubeconfig: {}\n{FAST_BACKOFF}",
        server.node_kubeconfig(NODE).display()
    );
    write_supervised_pods(&agent);
    agent.start();
    server.wait(&["pod", &format!("crash-{NODE}")], "the mirror", 30, |_| {
        true
    });
    agent.wait_pod("crash", "a first restart", 20, |p| restarts(p, "c") >= 1);
    server.hook("fail?code=500");
    supervision_keeps_its_timing(&agent, "while the server answers 500");
    server.hook("recover");
    server.hook("slow?seconds=15");
    supervision_keeps_its_timing(&agent, "while the server answers 15 s late");
    // The server was asked while slow: a request ran into its time limit.
    wait_for(
        "a timed-out request logged",
        Duration::from_secs(20),
        || agent.agent_log().contains("timeout").then_some(()),
    );
    server.hook("slow?seconds=0");
}

#[test]
fn config_maps_secrets_and_the_downward_api_reach_containers_and_work_offline() {
    let mut agent = Agent::new("node-objects");
    let mut server = ApiServer::start(&agent.dir);
    agent.extra_config = format!("kubeconfig: {}\n", server.node_kubeconfig(NODE).display());
    // A static pod uses the downward API too.
    agent.write_manifest(
        "static.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: info\n  labels: {tier: edge}\nspec:\n  volumes:\n  - name: meta\n    downwardAPI:\n      items:\n      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'echo name=$MY_NAME node=$MY_NODE; cat /meta/labels; echo; sleep 3600']\n    env:\n    - name: MY_NAME\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n    - name: MY_NODE\n      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}\n    volumeMounts:\n    - {name: meta, mountPath: /meta}\n",
    );
    agent.start();
    server.wait(&["node", NODE], "registered", 30, |_| true);
    // As a user writes them (kubectl's generators send protobuf, which this
    // test server does not speak).
    server.create("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {greeting: hello, color: blue}\n");
    server.create("apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ntype: Opaque\ndata: {password: czNjcjN0}\n");
    server.create(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: uses\nspec:\n  volumes:\n  - name: creds\n    secret: {secretName: creds}\n  - name: cfg\n    configMap:\n      name: app\n      items: [{key: color, path: conf/color}]\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'echo greeting=$GREETING pw=$(cat /creds/password) color=$(cat /cfg/conf/color) cm_color=$APP_color mem=$MEM_MI uid=$MY_UID; touch /creds/x || echo read-only; sleep 3600']\n    resources:\n      limits: {memory: 64Mi}\n    env:\n    - name: GREETING\n      valueFrom: {configMapKeyRef: {name: app, key: greeting}}\n    - name: MEM_MI\n      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}\n    - name: MY_UID\n      valueFrom: {fieldRef: {fieldPath: metadata.uid}}\n    - name: MISSING\n      valueFrom: {secretKeyRef: {name: nope, key: k, optional: true}}\n    envFrom:\n    - configMapRef: {name: app}\n      prefix: APP_\n    volumeMounts:\n    - {name: creds, mountPath: /creds}\n    - {name: cfg, mountPath: /cfg}\n",
    );
    let pod = server.wait(&["pod", "uses"], "Running", 60, |p| phase_is(p, "Running"));
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let log_of = |agent: &Agent, pod: &str, uid: &str, attempt: u32| {
        std::fs::read_to_string(
            agent
                .log_dir()
                .join(format!("default_{pod}_{uid}/c/{attempt}.log")),
        )
        .unwrap_or_default()
    };
    let want = format!("greeting=hello pw=s3cr3t color=blue cm_color=blue mem=64 uid={uid}");
    wait_for("the values in the log", Duration::from_secs(20), || {
        let l = log_of(&agent, "uses", &uid, 0);
        (l.contains(&want) && l.contains("read-only")).then_some(())
    });
    // A changed ConfigMap reaches the pods started after the change.
    server.kubectl_ok(&[
        "patch",
        "configmap",
        "app",
        "--type=merge",
        "-p",
        r#"{"data":{"greeting":"bonjour"}}"#,
    ]);
    server.create(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: later\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'echo greeting=$GREETING; sleep 3600']\n    env:\n    - name: GREETING\n      valueFrom: {configMapKeyRef: {name: app, key: greeting}}\n",
    );
    let later = server.wait(&["pod", "later"], "Running", 60, |p| phase_is(p, "Running"));
    let later_uid = later["metadata"]["uid"].as_str().unwrap().to_string();
    wait_for("the changed value", Duration::from_secs(20), || {
        log_of(&agent, "later", &later_uid, 0)
            .contains("greeting=bonjour")
            .then_some(())
    });
    server.kubectl_ok(&["delete", "pod", "later", "--timeout=60s"]);

    let info = local_pod(&agent, &format!("info-{NODE}")).unwrap();
    let info_uid = info["metadata"]["uid"].as_str().unwrap().to_string();
    wait_for(
        "the static pod's downward API",
        Duration::from_secs(20),
        || {
            let l = log_of(&agent, &format!("info-{NODE}"), &info_uid, 0);
            (l.contains(&format!("name=info-{NODE} node={NODE}")) && l.contains("tier=\"edge\""))
                .then_some(())
        },
    );
    // The copies are root's alone.
    let secret_copy = agent
        .dir
        .join("root/api/objects/secrets/default/creds.json");
    assert_eq!(
        std::fs::metadata(&secret_copy)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Offline and rebooted, the pod starts again with the values last
    // fetched, the changed greeting included.
    let want = want.replace("greeting=hello", "greeting=bonjour");
    server.stop();
    agent.simulate_reboot();
    agent.start();
    wait_for(
        "the values again after a reboot offline",
        Duration::from_secs(30),
        || {
            log_of(&agent, "uses", &uid, 1)
                .contains(&want)
                .then_some(())
        },
    );
    server.restart();

    // A static pod may not use API objects: the file and field are named.
    agent.write_manifest(
        "bad.yaml",
        &pod_yaml(
            "bad",
            "Always",
            1,
            "  volumes:\n  - name: s\n    secret: {secretName: creds}\n",
            &[("c", "sleep 1")],
        ),
    );
    wait_for("the manifest error", Duration::from_secs(10), || {
        let errors = std::fs::read_to_string(agent.run_dir().join("manifest-errors.json")).ok()?;
        errors
            .contains("spec.volumes[0].secret: a static pod cannot use a Secret")
            .then_some(())
    });
}

//! Least privilege with real runc: the RuntimeDefault seccomp profile
//! refuses what containerd's refuses, `seccompDefault` applies it to pods
//! without a profile, privileged and Unconfined containers run unfiltered,
//! `allowPrivilegeEscalation: false` sets no_new_privs, and the node policy
//! refuses a manifest URL's pods what a static file may do.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

/// Each pod prints its seccomp mode and no_new_privs flag, then tries
/// unshare(2), which the default profile refuses without CAP_SYS_ADMIN (a
/// user namespace needs no capability, so only the filter stands in the way).
const PROBE: &str = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; if unshare -U true; then echo unshare=allowed; else echo unshare=refused; fi";

fn probe_pod(name: &str, security: &str, pod_security: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n{pod_security}  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, {}]\n    securityContext: {security}\n",
        serde_json::to_string(PROBE).unwrap()
    )
}

/// The log of a pod whose container ran to the end.
fn finished_log(agent: &Agent, name: &str) -> String {
    let pod = agent.wait_pod(name, "to finish", 60, |p| {
        matches!(phase(p), "Succeeded" | "Failed")
    });
    assert_eq!(phase(&pod), "Succeeded", "{name}: {pod}");
    agent.logs(name, &[])
}

fn assert_confined(log: &str, name: &str) {
    assert!(log.contains("Seccomp:\t2"), "{name}: {log}");
    assert!(log.contains("unshare=refused"), "{name}: {log}");
    assert!(log.contains("Operation not permitted"), "{name}: {log}");
}

fn assert_unfiltered(log: &str, name: &str) {
    assert!(log.contains("Seccomp:\t0"), "{name}: {log}");
    assert!(log.contains("unshare=allowed"), "{name}: {log}");
}

#[test]
fn runtime_default_refuses_unshare_where_unconfined_and_privileged_do_not() {
    let mut agent = Agent::new("lp-seccomp");
    let pods = [
        ("confined", "{seccompProfile: {type: RuntimeDefault}}", ""),
        (
            "from-pod",
            "{}",
            "  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n",
        ),
        ("unconfined", "{seccompProfile: {type: Unconfined}}", ""),
        // No profile and no seccompDefault: the kubelet's Unconfined.
        ("plain", "{}", ""),
        (
            "privileged",
            "{privileged: true, seccompProfile: {type: RuntimeDefault}}",
            "",
        ),
        (
            "admin",
            "{seccompProfile: {type: RuntimeDefault}, capabilities: {add: [SYS_ADMIN]}}",
            "",
        ),
    ];
    for (name, security, pod_security) in pods {
        agent.write_manifest(
            &format!("{name}.yaml"),
            &probe_pod(name, security, pod_security),
        );
    }
    agent.start();
    for name in ["confined", "from-pod"] {
        assert_confined(&finished_log(&agent, name), name);
    }
    for name in ["unconfined", "plain", "privileged"] {
        assert_unfiltered(&finished_log(&agent, name), name);
    }
    // CAP_SYS_ADMIN opens unshare in the profile, as containerd's does.
    let admin = finished_log(&agent, "admin");
    assert!(admin.contains("Seccomp:\t2"), "{admin}");
    assert!(admin.contains("unshare=allowed"), "{admin}");
}

#[test]
fn seccomp_default_confines_pods_without_a_profile_and_no_new_privs_follows_escalation() {
    let mut agent = Agent::new("lp-default");
    agent.extra_config = "seccompDefault: true\n".into();
    let pods = [
        ("plain", "{}"),
        ("unconfined", "{seccompProfile: {type: Unconfined}}"),
        ("no-escalation", "{allowPrivilegeEscalation: false}"),
        // runc installs the filter before giving up root's capabilities.
        ("non-root", "{runAsUser: 1000}"),
    ];
    for (name, security) in pods {
        agent.write_manifest(&format!("{name}.yaml"), &probe_pod(name, security, ""));
    }
    agent.start();
    let plain = finished_log(&agent, "plain");
    assert_confined(&plain, "plain");
    // no_new_privs only when escalation is refused (kubelet
    // pkg/securitycontext/util.go AddNoNewPrivileges).
    assert!(plain.contains("NoNewPrivs:\t0"), "{plain}");
    assert_unfiltered(&finished_log(&agent, "unconfined"), "unconfined");
    let nnp = finished_log(&agent, "no-escalation");
    assert!(nnp.contains("NoNewPrivs:\t1"), "{nnp}");
    assert_confined(&nnp, "no-escalation");
    assert_confined(&finished_log(&agent, "non-root"), "non-root");
}

/// Serves `body` to every request on a loopback port, from a thread that
/// lives as long as the test process.
fn serve(body: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    port
}

/// A pod that prints "ran", with `extra` under its container and `volumes`
/// under its spec.
fn policy_pod(name: &str, extra: &str, volumes: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n{volumes}  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'echo ran']\n{extra}"
    )
}

fn host_path(dir: &Path) -> String {
    format!(
        "  volumes:\n  - name: h\n    hostPath:\n      path: {}\n      type: DirectoryOrCreate\n",
        dir.display()
    )
}

const NET_ADMIN: &str = "    securityContext:\n      capabilities:\n        add: [NET_ADMIN]\n";
const MOUNT: &str = "    volumeMounts:\n    - name: h\n      mountPath: /h\n";

fn refused<'a>(agent: &Agent, name: &str, pod: &'a mut Value) -> &'a Value {
    *pod = agent.wait_pod(name, "refused", 30, |p| phase(p) == "Failed");
    assert_eq!(pod["status"]["reason"], "NodePolicy", "{name}: {pod}");
    &pod["status"]["message"]
}

#[test]
fn the_node_policy_refuses_url_pods_what_static_pods_may_do() {
    let mut agent = Agent::new("lp-policy");
    let shared = agent.dir.join("shared");
    let secret = agent.dir.join("secret");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    // A climb through a directory that does not exist: the host cannot
    // resolve it, so only the refusal of `..` stops it.
    let climb = shared.join("missing/../../secret");
    let url_pods = [
        policy_pod("url-cap", NET_ADMIN, ""),
        policy_pod("url-host", MOUNT, &host_path(&secret)),
        policy_pod("url-climb", MOUNT, &host_path(&climb)),
        policy_pod("url-shared", MOUNT, &host_path(&shared.join("x"))),
        policy_pod("url-plain", "", ""),
    ];
    let mut list = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for pod in &url_pods {
        for (i, line) in pod.lines().enumerate() {
            list.push_str(if i == 0 { "- " } else { "  " });
            list.push_str(line);
            list.push('\n');
        }
    }
    let port = serve(list);
    // The same asks from the manifest directory: the operator's own.
    agent.write_manifest("cap.yaml", &policy_pod("static-cap", NET_ADMIN, ""));
    agent.write_manifest(
        "host.yaml",
        &policy_pod("static-host", MOUNT, &host_path(&secret)),
    );
    agent.extra_config = format!(
        "staticPodURL: http://127.0.0.1:{port}/pods.yaml\nstaticPodURLAllowHTTP: true\nhttpCheckFrequency: 1s\nnodePolicy:\n  allowedHostPaths: [{}]\n",
        shared.display()
    );
    agent.start();

    for name in ["url-plain", "url-shared", "static-cap", "static-host"] {
        agent.wait_pod(name, "Succeeded", 60, |p| phase(p) == "Succeeded");
    }
    let mut pod = Value::Null;
    let cases = [
        (
            "url-cap",
            "capability CAP_NET_ADMIN added by container \"c\" (nodePolicy.allowedCapabilities)",
        ),
        ("url-host", "secret\" (nodePolicy.allowedHostPaths)"),
        ("url-climb", "/../secret\" (nodePolicy.allowedHostPaths)"),
    ];
    for (name, want) in cases {
        let message = refused(&agent, name, &mut pod).as_str().unwrap_or("");
        assert!(message.contains(want), "{name}: {message}");
        assert!(
            message.ends_with("for pods from the manifest URL"),
            "{name}: {message}"
        );
    }
    assert!(agent.logs("static-cap", &[]).contains("ran"));
}

#[test]
fn the_demo_pods_run_under_runtime_default() {
    let mut agent = Agent::new("lp-demo");
    agent.extra_config = "seccompDefault: true\n".into();
    for file in ["web.yaml", "batch.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/manifests")
            .join(file);
        agent.write_manifest(file, &std::fs::read_to_string(path).unwrap());
    }
    agent.start();
    agent.wait_pod("batch", "Succeeded", 60, |p| phase(p) == "Succeeded");
    assert!(agent.logs("batch", &["-c", "sum"]).contains("sum: 5050"));
    agent.wait_pod("web", "all running", 60, |p| {
        ["server", "log-tailer", "client"]
            .iter()
            .all(|c| running(p, c))
    });
    // The client's requests reach the server and its log reaches the tailer.
    wait_for(
        "a request in the tailer's log",
        std::time::Duration::from_secs(30),
        || {
            agent
                .logs("web", &["-c", "log-tailer"])
                .contains("127.0.0.1")
                .then_some(())
        },
    );
    let web = agent.pod("web").unwrap();
    for c in ["server", "log-tailer", "client"] {
        assert_eq!(restarts(&web, c), 0, "{c}: {web}");
    }
}

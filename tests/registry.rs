//! Pulls from a real registry (issue 15 point 6): Debian's
//! `docker-registry` started by the tests on loopback with TLS (a CA made
//! by openssl now) and htpasswd auth, a plain one as a mirror, images pushed
//! with skopeo (tests/common/registry.rs). Each test starts its own
//! registries and agent. One file per concern under tests/registry/:
//! auth and TLS and the kubelet's reasons (`auth.rs`), transport: a
//! tampered blob, a multi-arch index, a mirror, a resumed pull
//! (`transport.rs`), the store: offline restart, air-gap import, GC, the
//! CLI (`store.rs`), node mode: imagePullSecrets and the pull events
//! (`node.rs`), a slow pull watched: ContainerCreating, other pods start,
//! one shared pull on a worker thread (`pulling.rs`); the harness checked
//! on its own (`harness.rs`).

mod common;

#[path = "registry/auth.rs"]
mod auth;
#[path = "registry/harness.rs"]
mod harness;
#[path = "registry/node.rs"]
mod node;
#[path = "registry/pulling.rs"]
mod pulling;
#[path = "registry/store.rs"]
mod store;
#[path = "registry/transport.rs"]
mod transport;

use common::layers::sha256;
use common::registry::{registries_yaml, Registry, BUSYBOX};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An agent whose store is empty, as on a device that never had an image.
fn fresh_agent(name: &str) -> Agent {
    let agent = Agent::new(name);
    fs::remove_dir_all(agent.dir.join("root/images")).unwrap();
    agent
}

/// The agent's OCI layout.
fn store(agent: &Agent) -> PathBuf {
    agent.dir.join("root/images")
}

/// Write registries.yaml into the agent's dir and name it in its config;
/// returns its path.
fn use_registries(
    agent: &mut Agent,
    mirrors: &[(String, Vec<String>)],
    configs: &[String],
) -> PathBuf {
    let file = agent.dir.join("registries.yaml");
    registries_yaml(&file, mirrors, configs);
    if !agent.extra_config.contains("registryConfig:") {
        agent
            .extra_config
            .push_str(&format!("registryConfig: {}\n", file.display()));
    }
    file
}

/// A secure registry under the agent's dir with busybox pushed as
/// [`BUSYBOX`].
fn registry_with_busybox(agent: &Agent) -> Registry {
    let registry = Registry::secure(&agent.dir, "registry");
    registry.push(busybox_layout(), "busybox:1.36", BUSYBOX);
    registry
}

/// A pod of one container `app` running `sleep` in `image`, with
/// `imagePullPolicy: policy` unless empty.
fn pod(name: &str, image: &str, policy: &str) -> String {
    let policy = if policy.is_empty() {
        String::new()
    } else {
        format!("    imagePullPolicy: {policy}\n")
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {image}\n{policy}    command: [sleep, \"3600\"]\n"
    )
}

/// The waiting reason and message of container `app`.
fn waiting(pod: &Value) -> (String, String) {
    let w = &container(pod, "app")["state"]["waiting"];
    (
        w["reason"].as_str().unwrap_or("").to_string(),
        w["message"].as_str().unwrap_or("").to_string(),
    )
}

/// Wait until container `app` waits with `reason`; its message.
fn wait_reason(agent: &Agent, name: &str, reason: &str, secs: u64) -> String {
    let p = agent.wait_pod(name, reason, secs, |p| waiting(p).0 == reason);
    waiting(&p).1
}

/// Every file under `dir`, recursively (empty if it does not exist).
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut all = BTreeSet::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return all;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            all.extend(files_under(&path));
        } else {
            all.insert(path);
        }
    }
    all
}

/// Every blob of the store holds what its name says: no partial or
/// unverified file passes for a blob.
fn assert_blobs_verified(agent: &Agent) {
    for path in files_under(&store(agent).join("blobs/sha256")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = fs::read(&path).unwrap();
        assert_eq!(
            sha256(&data),
            format!("sha256:{name}"),
            "{}",
            path.display()
        );
    }
}

/// No partial download is left in the store's `ingest/` (where the blob
/// writer keeps one until it is verified).
fn assert_no_partials(agent: &Agent) {
    let left = files_under(&store(agent).join("ingest"));
    assert!(left.is_empty(), "partial downloads left: {left:?}");
}

/// Whether the store holds blob `digest`.
fn has_blob(agent: &Agent, digest: &str) -> bool {
    let (alg, hex) = digest.split_once(':').unwrap();
    store(agent).join("blobs").join(alg).join(hex).exists()
}

/// `picolet <args>` (the CLI on a root dir, no --run-dir added).
fn picolet(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// `picolet <args>` that must succeed; its stdout.
fn picolet_ok(args: &[&str]) -> String {
    let out = picolet(args);
    assert!(
        out.status.success(),
        "picolet {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `picolet images --root <root> --run-dir <run>` of the agent.
fn images(agent: &Agent) -> String {
    let root = agent.dir.join("root").display().to_string();
    let run = agent.run_dir().display().to_string();
    picolet_ok(&["images", "--root", &root, "--run-dir", &run])
}

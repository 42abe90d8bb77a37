//! Fixes for the review of issue 13: each test is the reviewer's attack
//! (tests/review_attacks.rs in the review worktree), failing before its fix.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn pod_with_uid(name: &str, uid: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  uid: '{uid}'\nspec:\n  containers:\n  - name: {container}\n    image: busybox:1.36\n    command: [sleep, '3600']\n"
    )
}

/// `<uid>-<container>-<attempt>` is ambiguous: pod B (uid `aaaa-b`,
/// container `c`) gets the runtime id of pod A's container (uid `aaaa`,
/// container `b-c`), and its start's cleanup (`remove_instance_files`:
/// `runc delete --force`) kills A's running container.
#[test]
fn a_pod_whose_container_id_collides_does_not_kill_another_pods_container() {
    let mut agent = Agent::new("review-collide");
    agent.start();
    agent.write_manifest("a.yaml", &pod_with_uid("a", "aaaa", "b-c"));
    let a = agent.wait_pod("a", "running", 30, |p| running(p, "b-c"));
    let started = a["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
    agent.write_manifest("b.yaml", &pod_with_uid("b", "aaaa-b", "c"));
    agent.wait_pod("b", "running or failed", 30, |p| {
        running(p, "c") || !p["status"]["containerStatuses"][0]["state"]["waiting"].is_null()
    });
    // Give the agent a moment of wall time to notice A's death (polling).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let a = agent.pod("a").unwrap();
        assert_eq!(
            restarts(&a, "b-c"),
            0,
            "pod a's container was killed by pod b's start:\n{a:#}\n{}",
            agent.agent_log()
        );
        assert_eq!(
            a["status"]["containerStatuses"][0]["state"]["running"]["startedAt"], started,
            "{a:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A container makes a directory tree deeper than PATH_MAX in its writable
/// layer (`mkdir a; cd a` 3000 times); deleting the pod removes the layer
/// with fsutil::remove_tree, which recurses by path string: the paths grow
/// past 4096 bytes (ENAMETOOLONG) and the layer stays on disk.
#[test]
fn a_writable_layer_deeper_than_path_max_is_removed_with_its_pod() {
    let mut agent = Agent::new("review-deeplayer");
    agent.start();
    agent.write_manifest(
        "deep.yaml",
        &pod_yaml(
            "deep",
            "Always",
            1,
            "",
            &[(
                "c",
                "cd /tmp; i=0; while [ $i -lt 3000 ]; do mkdir a; cd a; i=$((i+1)); done; echo made; sleep 3600",
            )],
        ),
    );
    let p = agent.wait_pod("deep", "running", 60, |p| running(p, "c"));
    let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
    wait_for("the tree", Duration::from_secs(60), || {
        agent.logs("deep", &[]).contains("made").then_some(())
    });
    std::fs::remove_file(agent.manifests().join("deep.yaml")).unwrap();
    wait_for("the pod to go", Duration::from_secs(30), || {
        agent.pod("deep").is_none().then_some(())
    });
    let containers = agent.dir.join("root/containers");
    let left: Vec<_> = wait_for_or_none(Duration::from_secs(10), || {
        let left: Vec<_> = std::fs::read_dir(&containers)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with(&uid))
            .then_some(())
    })
    .map_or_else(
        || {
            std::fs::read_dir(&containers)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect()
        },
        |()| Vec::new(),
    );
    assert!(
        left.is_empty(),
        "left behind: {left:?}\n{}",
        agent.agent_log()
    );
}

/// `emptyDir: {medium: Memory, sizeLimit: 0}` (or `1e-400`, which parses
/// to 0) mounts tmpfs with `size=0`, which tmpfs takes as "no limit": the
/// pod may fill the node's RAM, where no sizeLimit at all gives the default
/// half. The kubelet adds `size=` only for a limit above zero
/// (pkg/volume/emptydir/empty_dir.go).
#[test]
fn a_zero_size_limit_does_not_make_an_unlimited_tmpfs() {
    let mut agent = Agent::new("review-sizelimit");
    agent.start();
    agent.write_manifest(
        "z.yaml",
        &pod_yaml(
            "z",
            "Never",
            1,
            "  volumes:\n  - name: m\n    emptyDir: {medium: Memory, sizeLimit: '1e-400'}\n",
            &[("c", "grep ' /m ' /proc/mounts")],
        )
        .replace(
            "command:",
            "volumeMounts: [{name: m, mountPath: /m}]\n    command:",
        ),
    );
    agent.wait_pod("z", "terminated", 30, |p| {
        !container(p, "c")["state"]["terminated"].is_null()
    });
    let out = agent.logs("z", &[]);
    assert!(out.contains(" /m tmpfs "), "no tmpfs at /m: {out}");
    assert!(!out.contains("size=0k"), "an unlimited tmpfs: {out}");
}

fn wait_for_or_none<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Containers started by an agent before the `_` ids keep running across the
/// upgrade: the new agent adopts them under their old `<uid>-<container>-<attempt>`
/// id and can still stop them. The old agent's state is made by renaming a
/// running container's id (runc's state directory and ours) while no agent runs.
#[test]
fn a_container_under_an_older_agents_id_is_adopted_and_stopped() {
    let mut agent = Agent::new("review-legacy-id");
    agent.start();
    // sleep as pid 1 ignores SIGTERM: the stop is the grace period's SIGKILL.
    let pod = pod_with_uid("old", "uold", "c")
        .replace("spec:\n", "spec:\n  terminationGracePeriodSeconds: 1\n");
    agent.write_manifest("old.yaml", &pod);
    agent.wait_pod("old", "running", 30, |p| running(p, "c"));
    agent.stop("KILL");
    let run = agent.run_dir();
    for dir in [
        run.join("runc"),
        run.join("containers"),
        agent.dir.join("root/containers"),
    ] {
        std::fs::rename(dir.join("uold_c_0"), dir.join("uold-c-0")).unwrap();
    }

    agent.start();
    let adopted = agent.wait_pod("old", "adopted", 30, |p| running(p, "c"));
    assert_eq!(container(&adopted, "c")["containerID"], "runc://uold-c-0");
    assert_eq!(restarts(&adopted, "c"), 0);
    assert!(agent.agent_log().contains("adopted container uold-c-0"));
    // `picolet logs` finds the attempt in an old id too (it prints nothing).
    assert_eq!(agent.logs("old", &[]), "");

    std::fs::remove_file(agent.manifests().join("old.yaml")).unwrap();
    wait_for_or_none(Duration::from_secs(30), || {
        agent.pod("old").is_none().then_some(())
    })
    .unwrap_or_else(|| panic!("the pod stays:\n{}", agent.agent_log()));
    let listed = std::process::Command::new("runc")
        .arg("--root")
        .arg(run.join("runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "",
        "{}",
        agent.agent_log()
    );
    let left: Vec<_> = std::fs::read_dir(run.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

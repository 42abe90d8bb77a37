//! Unpacking off the core loop (issue 13 point 2): while a big image
//! unpacks on the worker thread, other pods start and are probed, a pod
//! deleted meanwhile never starts, the worker thread exists only while there
//! is work, and an image over `imageUnpackLimit` fails with a clear message.
//!
//! The big image is busybox plus a layer of plain files, built at test time.

mod common;

use common::layers::{add_image_on_busybox, Layer};
use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The extra layer of the big image: this many files of `FILE_SIZE` bytes.
const BIG_FILES: usize = 64;
const FILE_SIZE: usize = 4 << 20;

/// An uncompressed tar of `files` files of `size` bytes each, written as a
/// blob of `layout`: its digest and size. Made by tar(1) and hashed by
/// sha256sum(1), quick where debug builds are not.
fn put_layer(layout: &Path, files: usize, size: usize) -> (String, u64) {
    let source = layout.join("layer-files");
    fs::create_dir_all(source.join("big")).unwrap();
    let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..files {
        fs::write(source.join(format!("big/file{i:04}")), &content).unwrap();
    }
    let path = layout.join("blobs/layer.tmp");
    let tar = Command::new("tar")
        .arg("-cf")
        .arg(&path)
        .arg("-C")
        .arg(&source)
        .arg("big")
        .status()
        .unwrap();
    assert!(tar.success());
    fs::remove_dir_all(&source).unwrap();
    let out = Command::new("sha256sum").arg(&path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.split_whitespace().next().unwrap().to_string();
    fs::rename(&path, layout.join("blobs/sha256").join(&hex)).unwrap();
    (
        format!("sha256:{hex}"),
        fs::metadata(layout.join("blobs/sha256").join(&hex))
            .unwrap()
            .len(),
    )
}

/// Tag `name` in `layout` as busybox:1.36 plus a layer of `files` files of
/// `size` bytes.
fn add_image(layout: &Path, name: &str, files: usize, size: usize) {
    let (digest, size) = put_layer(layout, files, size);
    let layer = Layer {
        diff_id: digest.clone(),
        digest,
        size,
        media_type: "application/vnd.oci.image.layer.v1.tar",
    };
    add_image_on_busybox(layout, name, layer);
}

/// A pod of one container `app` running `image`, with `probes` (YAML at
/// the container's indentation).
fn pod(name: &str, image: &str, probes: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {image}\n    command: [sleep, \"3600\"]\n{probes}"
    )
}

fn threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

fn waiting_reason(pod: &Value) -> &str {
    container(pod, "app")["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or("")
}

fn rootfs_entries(agent: &Agent) -> Vec<PathBuf> {
    match fs::read_dir(agent.dir.join("root/rootfs")) {
        Ok(dir) => dir.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn pods_start_and_are_probed_while_a_big_image_unpacks() {
    let mut agent = Agent::new("unpack-busy");
    add_image(
        &agent.dir.join("root/images"),
        "big:1",
        BIG_FILES,
        FILE_SIZE,
    );
    agent.start();
    let pid = agent.pid();
    // Unpack busybox first: the probed pod must not wait for an unpack.
    agent.write_manifest("warm.yaml", &pod("warm", "busybox:1.36", ""));
    agent.wait_pod("warm", "running", 60, |p| running(p, "app"));
    let idle = wait_for("the agent to be idle", Duration::from_secs(10), || {
        Some(threads(pid)).filter(|&n| n == 1)
    });

    // Two pods on the big image wait for one unpack.
    let began = Instant::now();
    agent.write_manifest("big.yaml", &pod("big", "big:1", ""));
    agent.write_manifest("twin.yaml", &pod("twin", "big:1", ""));
    let unpacking = wait_for("the unpack worker", Duration::from_secs(10), || {
        Some(threads(pid)).filter(|&n| n == 2)
    });
    let twin = agent.wait_pod("twin", "waiting for the unpack", 10, |p| {
        waiting_reason(p) == "ContainerCreating"
    });
    let twin_uid = twin["metadata"]["uid"].as_str().unwrap().to_string();

    // Meanwhile a pod on an unpacked image starts and its probes run.
    let probes = "    readinessProbe:\n      exec:\n        command: [\"true\"]\n      periodSeconds: 1\n    livenessProbe:\n      exec:\n        command: [\"true\"]\n      periodSeconds: 1\n";
    agent.write_manifest("probed.yaml", &pod("probed", "busybox:1.36", probes));
    let mut both = None;
    wait_for("probed to be ready", Duration::from_secs(30), || {
        let pods = agent.pods();
        let find = |name: &str| {
            let full = format!("{name}-{NODE}");
            pods["items"]
                .as_array()?
                .iter()
                .find(|p| p["metadata"]["name"] == full.as_str())
                .cloned()
        };
        let probed = find("probed")?;
        (container(&probed, "app")["ready"] == true).then_some(())?;
        both = Some((probed, find("big")?));
        Some(())
    });
    let (probed, big) = both.unwrap();
    assert!(running(&probed, "app"), "{probed}");
    assert_eq!(
        waiting_reason(&big),
        "ContainerCreating",
        "the big pod must still wait for its image when the other is ready: {big}"
    );

    // A pod deleted while its image unpacks goes at once and never starts.
    fs::remove_file(agent.manifests().join("twin.yaml")).unwrap();
    wait_for("twin to go", Duration::from_secs(10), || {
        agent.pod("twin").is_none().then_some(())
    });
    assert_eq!(
        threads(pid),
        2,
        "twin must be gone while the unpack still runs"
    );

    agent.wait_pod("big", "running", 600, |p| running(p, "app"));
    let took = began.elapsed();
    let after = wait_for("the worker to end", Duration::from_secs(10), || {
        Some(threads(pid)).filter(|&n| n == 1)
    });
    let log = agent.agent_log();
    assert_eq!(log.matches("unpacked in").count(), 2, "{log}");
    assert!(
        agent.runc_ids().iter().all(|id| !id.starts_with(&twin_uid)),
        "twin started after its deletion: {:?}",
        agent.runc_ids()
    );
    assert!(!log.contains("twin-node1: app: Started"), "{log}");
    let unpacks: Vec<&str> = log.lines().filter(|l| l.contains("unpacked in")).collect();
    eprintln!(
        "big image ({} MiB): pod running {took:.1?} after it was written; threads idle {idle}, unpacking {unpacking}, after {after}\n{}",
        (BIG_FILES * FILE_SIZE) >> 20,
        unpacks.join("\n")
    );
}

#[test]
fn an_image_over_the_unpack_limit_fails_and_leaves_nothing() {
    let mut agent = Agent::new("unpack-limit");
    add_image(&agent.dir.join("root/images"), "big:1", 8, 1 << 20);
    agent.extra_config = "imageUnpackLimit: 4Mi\n".into();
    agent.start();
    agent.write_manifest("big.yaml", &pod("big", "big:1", ""));
    let big = agent.wait_pod("big", "refused", 30, |p| {
        waiting_reason(p) == "CreateContainerError"
    });
    let message = container(&big, "app")["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.starts_with("image \"big:1\": "), "{message}");
    assert!(
        message.contains("4194304 bytes (imageUnpackLimit)"),
        "{message}"
    );
    assert_eq!(rootfs_entries(&agent), Vec::<PathBuf>::new());
    assert!(agent.runc_ids().is_empty());
}

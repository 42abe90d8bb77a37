//! Hostile pod specs against a real agent and runc (issue 13): a static
//! pod's `metadata.uid` that is a path, the subPath symlink escape
//! (CVE-2017-1002101), and the modes of what picolet keeps on disk.

mod common;

use common::apiserver::ApiServer;
use common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `get pods`' stderr: the manifest errors.
fn manifest_errors(agent: &Agent) -> String {
    String::from_utf8_lossy(&agent.cli(&["get", "pods"]).stderr).into_owned()
}

fn uid_of(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap().to_string()
}

/// Every mount point below `dir`.
fn mounts_below(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(String::from)
        .collect()
}

fn static_pod(name: &str, uid: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  uid: '{uid}'\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, '3600']\n"
    )
}

#[test]
fn a_static_pod_uid_that_is_a_path_is_refused_and_deleting_it_removes_nothing() {
    let mut agent = Agent::new("hostile-uid");
    agent.start();
    agent.write_manifest(
        "keep.yaml",
        &pod_yaml("keep", "Always", 1, "", &[("c", "sleep 3600")]),
    );
    let keep = agent.wait_pod("keep", "running", 30, |p| running(p, "c"));
    let keep_uid = uid_of(&keep);
    let keep_disk = agent.dir.join("root/pods").join(&keep_uid);
    wait_for("keep's durable record", Duration::from_secs(10), || {
        keep_disk.join("pod.json").exists().then_some(())
    });

    // A directory of the host's, outside picolet's, named by a UID that
    // climbs out of <root>/pods (and <run>/pods) to the file system's root.
    let victim = agent.dir.join("victim2");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("precious"), "mine").unwrap();
    let climb = "../".repeat(victim.components().count() + 4);
    let evil_uid = format!("{climb}{}", victim.strip_prefix("/").unwrap().display());
    agent.write_manifest("evil.yaml", &static_pod("evil", &evil_uid));
    agent.write_manifest("dotdot.yaml", &static_pod("dotdot", ".."));

    let errors = wait_for(
        &format!("both manifests refused\n{}", agent.agent_log()),
        Duration::from_secs(20),
        || {
            let e = manifest_errors(&agent);
            (e.contains("evil.yaml") && e.contains("dotdot.yaml")).then_some(e)
        },
    );
    assert!(
        errors.contains(&format!(
            "evil.yaml: metadata.uid: {evil_uid:?} is not a valid pod UID"
        )),
        "{errors}"
    );
    assert!(
        errors.contains("dotdot.yaml: metadata.uid: \"..\" is not a valid pod UID"),
        "{errors}"
    );
    for name in ["evil", "dotdot"] {
        assert!(agent.pod(name).is_none(), "{name} never becomes a pod");
    }

    // Deleting the manifests deletes nothing of the host's or of other pods.
    fs::remove_file(agent.manifests().join("evil.yaml")).unwrap();
    fs::remove_file(agent.manifests().join("dotdot.yaml")).unwrap();
    wait_for("the errors to go", Duration::from_secs(20), || {
        let e = manifest_errors(&agent);
        (!e.contains("evil.yaml") && !e.contains("dotdot.yaml")).then_some(())
    });
    assert_eq!(fs::read_to_string(victim.join("precious")).unwrap(), "mine");
    let keep = agent.pod("keep").expect("keep is still listed");
    assert!(running(&keep, "c"));
    assert_eq!(uid_of(&keep), keep_uid);
    assert!(
        keep_disk.join("pod.json").exists(),
        "the state dir keeps its pods"
    );
    assert!(agent
        .run_dir()
        .join("pods")
        .join(&keep_uid)
        .join("pod.json")
        .exists());
    assert!(agent.dir.join("root/images").exists());
}

#[test]
fn a_sub_path_link_to_the_host_root_is_a_container_error() {
    let mut agent = Agent::new("hostile-subpath");
    agent.start();
    // What the escaping container would print if it saw the host's root.
    let marker = agent.dir.join("host-marker");
    let secret = format!("host-secret-{}", std::process::id());
    fs::write(&marker, &secret).unwrap();
    agent.write_manifest(
        "sub.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: sub
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: shared
    emptyDir: {{}}
  initContainers:
  - name: maker
    image: busybox:1.36
    command: [sh, -c, "ln -s / /vol/x && mkdir /vol/real && echo inside > /vol/real/f && ln -s real /vol/inside"]
    volumeMounts:
    - {{name: shared, mountPath: /vol}}
  containers:
  - name: escapee
    image: busybox:1.36
    command: [sh, -c, "cat /hostroot{marker}; sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /hostroot, subPath: x}}
  - name: fine
    image: busybox:1.36
    command: [sh, -c, "cat /data/f; sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /data, subPath: inside}}
"#,
            marker = marker.display()
        ),
    );
    let pod = agent.wait_pod("sub", "escapee refused, fine running", 40, |p| {
        container(p, "escapee")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
            && running(p, "fine")
    });
    let message = container(&pod, "escapee")["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(
        message,
        "subPath \"x\" of volumeMount \"shared\": leads outside the volume"
    );
    // A link that stays inside the volume is followed, as by the kubelet.
    let fine = wait_for("fine's output", Duration::from_secs(10), || {
        let l = agent.logs("sub", &["-c", "fine"]);
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(fine, "inside\n");
    // The escapee never ran: no log of it holds the host's file.
    let uid = uid_of(&pod);
    let logs = agent
        .log_dir()
        .join(format!("default_sub-{NODE}_{uid}/escapee"));
    for entry in fs::read_dir(&logs).into_iter().flatten() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(!text.contains(&secret), "the host root was visible: {text}");
    }
    // The pod's pins go with it.
    let pins = agent
        .run_dir()
        .join("pods")
        .join(&uid)
        .join("volume-subpaths");
    assert!(!mounts_below(&pins).is_empty(), "fine's subPath is pinned");
    fs::remove_file(agent.manifests().join("sub.yaml")).unwrap();
    wait_for("the pod to go", Duration::from_secs(30), || {
        agent.pod("sub").is_none().then_some(())
    });
    wait_for("its pins unmounted", Duration::from_secs(10), || {
        mounts_below(&pins).is_empty().then_some(())
    });
    assert_eq!(fs::read_to_string(&marker).unwrap(), secret);
}

#[test]
fn state_run_and_log_files_are_private() {
    let mut agent = Agent::new("hostile-modes");
    // An older install's directories, open to everyone.
    for dir in [agent.dir.join("root"), agent.run_dir(), agent.log_dir()] {
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    agent.start();
    agent.write_manifest(
        "files.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: files\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'echo started; sleep 3600']\n    env:\n    - {name: API_KEY, value: hunter2}\n",
    );
    let pod = agent.wait_pod("files", "running", 30, |p| running(p, "c"));
    let uid = uid_of(&pod);
    assert_eq!(mode(&agent.dir.join("root")), 0o700);
    assert_eq!(mode(&agent.run_dir()), 0o700);
    assert_eq!(mode(&agent.log_dir()), 0o750);

    let run_pod = agent.run_dir().join("pods").join(&uid).join("pod.json");
    assert!(fs::read_to_string(&run_pod).unwrap().contains("hunter2"));
    assert_eq!(mode(&run_pod), 0o600);
    let disk_pod = agent.dir.join("root/pods").join(&uid).join("pod.json");
    wait_for("the durable record", Duration::from_secs(10), || {
        disk_pod.exists().then_some(())
    });
    assert_eq!(mode(&disk_pod), 0o600);
    let config = agent
        .run_dir()
        .join("containers")
        .join(format!("{uid}_c_0"))
        .join("config.json");
    assert!(fs::read_to_string(&config)
        .unwrap()
        .contains("API_KEY=hunter2"));
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(&agent.run_dir().join("pods.json")), 0o600);

    let pod_logs = agent.log_dir().join(format!("default_files-{NODE}_{uid}"));
    let log = pod_logs.join("c/0.log");
    wait_for("the log", Duration::from_secs(10), || {
        fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("started"))
    });
    assert_eq!(mode(&pod_logs), 0o750);
    assert_eq!(mode(&pod_logs.join("c")), 0o750);
    assert_eq!(mode(&log), 0o640);
}

#[test]
fn a_secret_volume_is_a_private_tmpfs_with_files_of_its_modes() {
    let mut agent = Agent::new("hostile-secret");
    let server = ApiServer::start(&agent.dir);
    agent.extra_config = format!("kubeconfig: {}\n", server.node_kubeconfig(NODE).display());
    agent.start();
    server.wait(&["node", NODE], "registered", 30, |_| true);
    server.create("apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ntype: Opaque\ndata: {password: czNjcjN0, token: dG9rZW4=}\n");
    // As the kubelet: files 0644 unless defaultMode or an item's mode says
    // otherwise; a container running as another user reads the 0644 ones.
    server.create(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sec\nspec:\n  securityContext: {runAsUser: 65534, runAsGroup: 65534}\n  volumes:\n  - name: plain\n    secret: {secretName: creds}\n  - name: tight\n    secret:\n      secretName: creds\n      defaultMode: 0400\n      items:\n      - {key: password, path: password}\n      - {key: token, path: group/token, mode: 0440}\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'echo pw=$(cat /plain/password); cat /tight/password || echo denied; sleep 3600']\n    volumeMounts:\n    - {name: plain, mountPath: /plain}\n    - {name: tight, mountPath: /tight}\n",
    );
    let pod = server.wait(&["pod", "sec"], "Running", 60, |p| {
        p["status"]["phase"] == "Running"
    });
    let uid = uid_of(&pod);
    let volumes: PathBuf = agent.dir.join("root/pods").join(&uid).join("volumes");
    assert_eq!(mode(&volumes.join("plain")), 0o711);
    assert_eq!(mode(&volumes.join("plain/password")), 0o644);
    assert_eq!(mode(&volumes.join("plain/token")), 0o644);
    assert_eq!(mode(&volumes.join("tight")), 0o711);
    assert_eq!(mode(&volumes.join("tight/password")), 0o400);
    assert_eq!(mode(&volumes.join("tight/group/token")), 0o440);
    let log = agent.log_dir().join(format!("default_sec_{uid}/c/0.log"));
    let text = wait_for("the container's output", Duration::from_secs(20), || {
        fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("denied"))
    });
    assert!(text.contains("pw=s3cr3t"), "{text}");
    assert_eq!(mode(&log), 0o640);
}

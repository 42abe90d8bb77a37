//! Real cgroup v2, in the project's own VM (this host's cgroups are hybrid).
//!
//! The host tests build a bootable image from Debian packages with
//! `tests/vm/build-image` (kernel, busybox-static, runc, crun, the overlay
//! module), add this very test binary, picolet and a busybox OCI image, boot
//! it with qemu under TCG, and run the `inside_vm` tests in it: once with runc,
//! once with crun. Results and the exit status come back on the console.
//! The `inside_vm` tests are `#[ignore]`d on the host, where they cannot run.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// One VM at a time: two TCG guests on two cores would starve each other.
static VM: Mutex<()> = Mutex::new(());

fn boot_and_run_inside(runtime: &str) {
    let _one_at_a_time = VM.lock().unwrap_or_else(|e| e.into_inner());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vm-{runtime}"));
    fs::create_dir_all(&out).unwrap();
    let me = std::env::current_exe().unwrap();
    let layout = busybox_layout();
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let command = out.join("command");
    fs::write(
        &command,
        format!(
            "#!/bin/sh\nmkdir -p {tmp}\ncd /\nexport PICOLET_TEST_IMAGE={layout} PICOLET_TEST_CGROUPS=v2 PICOLET_TEST_RUNTIME={runtime} PICOLET_VM_CHURNS={churns} RUST_BACKTRACE=1\n{me} --ignored --test-threads=1 inside_vm 2>&1\n",
            layout = layout.display(),
            runtime = if runtime == "runc" { "/usr/sbin/runc" } else { "/usr/bin/crun" },
            me = me.display(),
            // runc copies its own binary for every container under TCG
            // (~2 s): fewer churns keep its run within minutes.
            churns = if runtime == "runc" { 30 } else { 100 },
        ),
    )
    .unwrap();
    let build = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/build-image"))
        .arg(&out)
        .arg(&command)
        .args([me.as_path(), Path::new(BIN), layout])
        .env(
            "VM_CACHE",
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/vm-cache"),
        )
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "build-image: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let boot = Command::new("timeout")
        .args([
            "900",
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            "1536",
            "-smp",
            "2",
            "-nographic",
            "-no-reboot",
            "-kernel",
        ])
        .arg(out.join("vmlinuz"))
        .arg("-initrd")
        .arg(out.join("initrd.gz"))
        .args([
            "-append",
            "console=ttyS0 rdinit=/init tsc=reliable cryptomgr.notests quiet panic=-1",
        ])
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&boot.stdout).replace('\r', "");
    fs::write(out.join("console.log"), console.as_bytes()).unwrap();
    let report = console
        .split("PICOLET-VM-BEGIN")
        .nth(1)
        .unwrap_or_else(|| panic!("the VM did not run the tests: {console}"));
    println!("{report}");
    assert!(
        report.contains("PICOLET-VM-END rc=0"),
        "inside the VM with {runtime}: {report}"
    );
    let summary = report
        .lines()
        .find(|l| l.starts_with("test result:"))
        .expect("a test summary");
    let passed: usize = summary
        .split("ok. ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 6, "every inside_vm test ran: {summary}");
}

#[test]
fn cgroup_v2_in_a_vm_with_runc() {
    boot_and_run_inside("runc");
}

#[test]
fn cgroup_v2_in_a_vm_with_crun() {
    boot_and_run_inside("crun");
}

/// Tests that need a real cgroup v2 hierarchy: run inside the VM.
mod inside_vm {
    use super::*;

    const MOUNT: &str = "/sys/fs/cgroup/picolet";

    fn read(path: impl AsRef<Path>) -> String {
        fs::read_to_string(path.as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
            .trim()
            .to_string()
    }

    fn pod_dir(pod: &serde_json::Value) -> PathBuf {
        let tier = match pod["status"]["qosClass"].as_str() {
            Some("Guaranteed") => "",
            Some("BestEffort") => "besteffort/",
            _ => "burstable/",
        };
        PathBuf::from(MOUNT).join(format!(
            "{tier}pod{}",
            pod["metadata"]["uid"].as_str().unwrap()
        ))
    }

    fn container_dir(pod: &serde_json::Value, name: &str) -> PathBuf {
        let id = container(pod, name)["containerID"]
            .as_str()
            .unwrap()
            .rsplit("://")
            .next()
            .unwrap()
            .to_string();
        pod_dir(pod).join(id)
    }

    fn sleeper(name: &str, resources: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sleep, '3600']\n    resources: {resources}\n")
    }

    #[test]
    #[ignore = "needs cgroup v2: runs inside the VM (cgroup_v2_in_a_vm_*)"]
    fn qos_tree_and_values_are_the_kubelets() {
        let mut agent = Agent::new("qos");
        agent.start();
        agent.write_manifest(
            "g.yaml",
            &sleeper("g", "{limits: {cpu: 500m, memory: 64Mi}}"),
        );
        agent.write_manifest(
            "b.yaml",
            &sleeper(
                "b",
                "{requests: {cpu: 250m}, limits: {cpu: 500m, memory: 32Mi}}",
            ),
        );
        agent.write_manifest("e.yaml", &sleeper("e", "{}"));
        let g = agent.wait_pod("g", "running", 60, |p| running(p, "c"));
        let b = agent.wait_pod("b", "running", 60, |p| running(p, "c"));
        let e = agent.wait_pod("e", "running", 60, |p| running(p, "c"));
        assert_eq!(g["status"]["qosClass"], "Guaranteed");
        assert_eq!(b["status"]["qosClass"], "Burstable");
        assert_eq!(e["status"]["qosClass"], "BestEffort");
        assert!(
            pod_dir(&g).starts_with(MOUNT) && pod_dir(&g).parent().unwrap() == Path::new(MOUNT),
            "Guaranteed pods at the root"
        );
        // Burstable: weight from 250m (shares 256), cpu.max from 500m, memory.max 32Mi.
        assert_eq!(read(pod_dir(&b).join("cpu.weight")), "10");
        assert_eq!(read(pod_dir(&b).join("cpu.max")), "50000 100000");
        assert_eq!(
            read(pod_dir(&b).join("memory.max")),
            (32u64 << 20).to_string()
        );
        let c = container_dir(&b, "c");
        assert_eq!(read(c.join("cpu.max")), "50000 100000");
        assert_eq!(read(c.join("cpu.weight")), "10");
        assert_eq!(read(c.join("memory.max")), (32u64 << 20).to_string());
        assert_eq!(read(c.join("memory.oom.group")), "1");
        assert_eq!(
            read(container_dir(&g, "c").join("memory.max")),
            (64u64 << 20).to_string()
        );
        assert_eq!(read(container_dir(&e, "c").join("memory.max")), "max");
        assert_eq!(read(format!("{MOUNT}/besteffort/cpu.weight")), "1");
        assert_eq!(
            read(format!("{MOUNT}/burstable/cpu.weight")),
            "10",
            "the tier weighs its pods' requests"
        );
        let pid = read(container_dir(&g, "c").join("cgroup.procs"))
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(read(format!("/proc/{pid}/oom_score_adj")), "-997");
        let pid = read(container_dir(&e, "c").join("cgroup.procs"))
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(read(format!("/proc/{pid}/oom_score_adj")), "1000");
        let top = agent.cli(&["top", "pods"]);
        let top = String::from_utf8_lossy(&top.stdout);
        assert!(
            top.contains("NAME") && top.contains("g-node1") && top.contains("Mi"),
            "{top}"
        );
    }

    #[test]
    #[ignore = "needs cgroup v2: runs inside the VM (cgroup_v2_in_a_vm_*)"]
    fn a_memory_limit_is_enforced_and_reported_oom_killed() {
        let mut agent = Agent::new("oom");
        agent.start();
        agent.write_manifest(
            "hog.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hog\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'tail /dev/zero']\n    resources: {limits: {memory: 24Mi}}\n",
        );
        let pod = agent.wait_pod("hog", "Failed", 120, |p| phase(p) == "Failed");
        let t = &container(&pod, "c")["state"]["terminated"];
        assert_eq!(t["reason"], "OOMKilled");
        assert_eq!(t["exitCode"], 137);
    }

    #[test]
    #[ignore = "needs cgroup v2: runs inside the VM (cgroup_v2_in_a_vm_*)"]
    fn pids_max_stops_a_fork_bomb_without_hurting_other_pods() {
        let mut agent = Agent::new("pids");
        agent.extra_config = "podPidsLimit: 32\n".into();
        agent.start();
        agent.write_manifest(
            "calm.yaml",
            &pod_yaml(
                "calm",
                "Always",
                1,
                "",
                &[(
                    "c",
                    "i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done",
                )],
            ),
        );
        agent.wait_pod("calm", "running", 60, |p| running(p, "c"));
        agent.write_manifest(
            "bomb.yaml",
            &pod_yaml(
                "bomb",
                "Always",
                1,
                "",
                &[("c", "b() { b | b & }; b; sleep 3600")],
            ),
        );
        let bomb = agent.wait_pod("bomb", "running", 60, |p| running(p, "c"));
        assert_eq!(read(pod_dir(&bomb).join("pids.max")), "32");
        // Linux 6.1 counts the event in the forking task's cgroup: the container's.
        let bomb_container = container_dir(&bomb, "c");
        wait_for("the bomb to hit pids.max", Duration::from_secs(60), || {
            let events = read(bomb_container.join("pids.events"));
            events
                .lines()
                .any(|l| l.starts_with("max ") && l != "max 0")
                .then_some(())
        });
        assert!(
            read(pod_dir(&bomb).join("pids.current"))
                .parse::<u32>()
                .unwrap()
                <= 32
        );
        let before = agent.logs("calm", &[]).lines().count();
        wait_for(
            "the calm pod to go on logging",
            Duration::from_secs(30),
            || (agent.logs("calm", &[]).lines().count() > before + 3).then_some(()),
        );
    }

    #[test]
    #[ignore = "needs cgroup v2: runs inside the VM (cgroup_v2_in_a_vm_*)"]
    fn sidecars_with_resources_start_in_order_and_size_the_pod() {
        let mut agent = Agent::new("sidecar-resources");
        agent.start();
        agent.write_manifest(
            "s.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: s\nspec:\n  terminationGracePeriodSeconds: 2\n  initContainers:\n  - name: init\n    image: busybox:1.36\n    command: [sh, -c, 'sleep 1']\n    resources: {requests: {cpu: 800m}}\n  - name: side\n    image: busybox:1.36\n    restartPolicy: Always\n    command: [sleep, '3600']\n    resources: {requests: {cpu: 100m}, limits: {cpu: 200m}}\n  containers:\n  - name: main\n    image: busybox:1.36\n    command: [sleep, '3600']\n    resources: {requests: {cpu: 300m}}\n",
        );
        let pod = agent.wait_pod("s", "main running", 90, |p| {
            running(p, "main") && running(p, "side")
        });
        assert_eq!(
            container(&pod, "init")["state"]["terminated"]["reason"],
            "Completed"
        );
        // KEP-753: max(800m, 300m + 100m) = 800m -> shares 819 -> weight 32.
        assert_eq!(read(pod_dir(&pod).join("cpu.weight")), "32");
        assert_eq!(
            read(pod_dir(&pod).join("cpu.max")),
            "max 100000",
            "main has no cpu limit"
        );
        assert_eq!(
            read(container_dir(&pod, "side").join("cpu.max")),
            "20000 100000"
        );
    }

    #[test]
    #[ignore = "needs cgroup v2: runs inside the VM (cgroup_v2_in_a_vm_*)"]
    fn admission_rejects_a_pod_that_does_not_fit() {
        let mut agent = Agent::new("admission");
        agent.start();
        agent.write_manifest("big.yaml", &sleeper("big", "{requests: {memory: 100Gi}}"));
        agent.write_manifest(
            "small.yaml",
            &sleeper("small", "{requests: {memory: 16Mi}}"),
        );
        let big = agent.wait_pod("big", "rejected", 30, |p| phase(p) == "Failed");
        assert_eq!(big["status"]["reason"], "OutOfmemory");
        assert!(big["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Pod was rejected: Node didn't have enough resource: memory"));
        agent.wait_pod("small", "running", 60, |p| running(p, "c"));
    }

    #[test]
    #[ignore = "needs cgroup v2: runs inside the VM (cgroup_v2_in_a_vm_*)"]
    fn cgroups_go_with_their_pods_and_leftovers_go_at_start() {
        let mut agent = Agent::new("churn");
        let stale = PathBuf::from(MOUNT).join("burstable/podstale");
        fs::create_dir_all(&stale).unwrap();
        agent.start();
        assert!(!stale.exists(), "a leftover pod cgroup is removed at start");
        let churns: usize = std::env::var("PICOLET_VM_CHURNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100);
        for i in 0..churns {
            let name = format!("churn{}", i % 3);
            agent.write_manifest(
                "churn.yaml",
                &pod_yaml(&name, "Never", 0, "", &[("c", &format!("echo {i}"))]),
            );
            agent.wait_pod(&name, "done", 60, |p| {
                phase(p) == "Succeeded"
                    && p["metadata"]["annotations"]["kubernetes.io/config.hash"].is_string()
            });
            fs::remove_file(agent.manifests().join("churn.yaml")).unwrap();
            wait_for("the pod to go", Duration::from_secs(30), || {
                agent.pod(&name).is_none().then_some(())
            });
        }
        let pods: Vec<String> = ["", "burstable", "besteffort"]
            .iter()
            .flat_map(|t| fs::read_dir(PathBuf::from(MOUNT).join(t)).unwrap())
            .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_string()))
            .filter(|n| n.starts_with("pod"))
            .collect();
        assert!(pods.is_empty(), "after {churns} churns: {pods:?}");
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&agent.run_dir().display().to_string()),
            "no mount left"
        );
    }
}

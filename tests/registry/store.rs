//! The store across time: a device that pulled runs its pods from the
//! cache after a restart with the registry gone; an air-gapped device runs
//! docker-archive and oci-archive images imported by the CLI and from the
//! import directory with `Never`; the image
//! CLI (pull, images, rm refused while in use); GC on a small tmpfs root
//! collects an unused image and keeps one a static manifest names.

use super::*;
use common::registry::images::{docker_archive, layout_with_random_layer, oci_archive};
use common::registry::{PASSWORD, USER};
use common::run;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn an_offline_restart_runs_pods_from_the_cache() {
    let mut agent = fresh_agent("reg-offline");
    let mut registry = registry_with_busybox(&agent);
    use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    agent.start();
    let image = registry.image(BUSYBOX);
    agent.write_manifest("app.yaml", &pod("app", &image, "IfNotPresent"));
    agent.wait_pod("app", "running", 60, |p| running(p, "app"));

    // The registry goes away; the device reboots.
    registry.stop();
    agent.simulate_reboot();
    agent.start();
    agent.wait_pod("app", "running again from the cache", 60, |p| {
        running(p, "app")
    });
    // A new pod of the same image needs no registry either.
    agent.write_manifest("more.yaml", &pod("more", &image, "IfNotPresent"));
    agent.wait_pod("more", "running from the cache", 60, |p| running(p, "app"));
}

#[test]
fn an_air_gapped_device_runs_imported_archives_with_never() {
    let mut agent = fresh_agent("reg-airgap");
    let layout = agent.dir.join("layout");
    let oci_image = layout_with_random_layer(&layout, "for-oci:1", 64 << 10);
    let docker_tar = agent.dir.join("docker.tar");
    let oci_tar = agent.dir.join("oci.tar");
    docker_archive(
        busybox_layout(),
        "busybox:1.36",
        &docker_tar,
        "example.org/airgap/docker:1",
    );
    oci_archive(&layout, "for-oci:1", &oci_tar, "example.org/airgap/oci:1");
    let root = agent.dir.join("root").display().to_string();
    // The import directory (imageImportDir, by default <rootDir>/import),
    // read at start as k3s's agent/images.
    let import_dir = agent.dir.join("root/import");
    fs::create_dir_all(&import_dir).unwrap();
    docker_archive(
        &layout,
        "for-oci:1",
        &import_dir.join("dir.tar"),
        "example.org/airgap/dir:1",
    );

    // Factory flashing: imported before the agent ever ran.
    picolet_ok(&[
        "image",
        "import",
        "--root",
        &root,
        &docker_tar.display().to_string(),
    ]);
    agent.start();
    // And while it runs.
    picolet_ok(&[
        "image",
        "import",
        "--root",
        &root,
        &oci_tar.display().to_string(),
    ]);
    let refs = [
        "example.org/airgap/docker:1",
        "example.org/airgap/oci:1",
        "example.org/airgap/dir:1",
    ];
    // The import directory's archive may still be on its way at start.
    wait_for(
        &format!("the three imports listed\n{}", agent.agent_log()),
        Duration::from_secs(30),
        || {
            refs.iter()
                .all(|r| images(&agent).contains(r))
                .then_some(())
        },
    );
    assert!(has_blob(&agent, &oci_image.manifest));
    assert_blobs_verified(&agent);

    agent.write_manifest(
        "docker.yaml",
        &pod("docker", "example.org/airgap/docker:1", "Never"),
    );
    agent.write_manifest("oci.yaml", &pod("oci", "example.org/airgap/oci:1", "Never"));
    agent.write_manifest(
        "absent.yaml",
        &pod("absent", "example.org/airgap/absent:1", "Never"),
    );
    agent.wait_pod("docker", "running the docker-archive", 60, |p| {
        running(p, "app")
    });
    agent.wait_pod("oci", "running the oci-archive", 60, |p| running(p, "app"));
    agent.write_manifest("dir.yaml", &pod("dir", "example.org/airgap/dir:1", "Never"));
    agent.wait_pod("dir", "running the import directory's", 60, |p| {
        running(p, "app")
    });
    let message = wait_reason(&agent, "absent", "ErrImageNeverPull", 30);
    assert!(message.contains("example.org/airgap/absent:1"), "{message}");
}

#[test]
fn the_image_cli_pulls_lists_and_refuses_to_remove_an_image_in_use() {
    let mut agent = fresh_agent("reg-cli");
    let registry = registry_with_busybox(&agent);
    let layout = agent.dir.join("layout");
    layout_with_random_layer(&layout, "spare:1", 64 << 10);
    registry.push(&layout, "spare:1", "app/spare:1");
    let file = use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    agent.start();
    let image = registry.image(BUSYBOX);
    agent.write_manifest("app.yaml", &pod("app", &image, ""));
    agent.wait_pod("app", "running", 60, |p| running(p, "app"));

    let root = agent.dir.join("root").display().to_string();
    let run = agent.run_dir().display().to_string();
    let config = file.display().to_string();
    let spare = registry.image("app/spare:1");
    picolet_ok(&[
        "image",
        "pull",
        "--root",
        &root,
        "--registry-config",
        &config,
        &spare,
    ]);
    let listed = images(&agent);
    assert!(
        listed.contains(&spare) && listed.contains(&image),
        "{listed}"
    );

    let refused = picolet(&["image", "rm", "--root", &root, "--run-dir", &run, &image]);
    assert!(!refused.status.success(), "an image in use is not removed");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    picolet_ok(&["image", "rm", "--root", &root, "--run-dir", &run, &spare]);
    let listed = images(&agent);
    assert!(
        !listed.contains(&spare) && listed.contains(&image),
        "{listed}"
    );
    assert_blobs_verified(&agent);
    assert!(agent.pod("app").is_some_and(|p| running(&p, "app")));

    // A new device's root, before the agent ever ran: made by the pull.
    let factory = agent.dir.join("factory/root");
    let factory_root = factory.display().to_string();
    picolet_ok(&[
        "image",
        "pull",
        "--root",
        &factory_root,
        "--registry-config",
        &config,
        &spare,
    ]);
    let listed = picolet_ok(&["images", "--root", &factory_root, "--run-dir", &run]);
    assert!(listed.contains(&spare), "{listed}");
    let mode = std::fs::metadata(&factory).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the root is private");
}

/// The size of the tmpfs root of the GC test, and the images on it: the
/// three images fill about 30 % of it, the high threshold is 10 %.
const GC_TMPFS: &str = "size=64m";
const GC_IMAGE: usize = 8 << 20;

/// On a 64 MiB tmpfs root over 10 % full, GC collects `junk` (pulled,
/// named by nothing), keeps `named` (pulled, not running, but named by a
/// static manifest whose init container never finishes) and busybox (in
/// use by that init container).
#[test]
fn gc_collects_an_unused_image_and_keeps_what_a_static_manifest_names() {
    let mut agent = fresh_agent("reg-gc");
    let root = agent.dir.join("root");
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", GC_TMPFS, "tmpfs"])
        .arg(&root));
    let registry = registry_with_busybox(&agent);
    let layout = agent.dir.join("layout");
    let named = layout_with_random_layer(&layout, "named:1", GC_IMAGE);
    let junk = layout_with_random_layer(&layout, "junk:1", GC_IMAGE);
    registry.push(&layout, "named:1", "app/named:1");
    registry.push(&layout, "junk:1", "app/junk:1");
    let file = use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    let (root_s, config) = (root.display().to_string(), file.display().to_string());
    for tag in ["app/named:1", "app/junk:1"] {
        picolet_ok(&[
            "image",
            "pull",
            "--root",
            &root_s,
            "--registry-config",
            &config,
            &registry.image(tag),
        ]);
    }
    assert!(has_blob(&agent, &junk.layers[junk.layers.len() - 1]));
    agent.extra_config.push_str(
        "imageGCHighThresholdPercent: 10\nimageGCLowThresholdPercent: 5\nimageMinimumGCAge: 0s\n",
    );
    agent.write_manifest(
        "waits.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: waits\nspec:\n  terminationGracePeriodSeconds: 1\n  initContainers:\n  - name: gate\n    image: {}\n    command: [sleep, \"3600\"]\n  containers:\n  - name: app\n    image: {}\n    imagePullPolicy: IfNotPresent\n",
            registry.image(BUSYBOX),
            registry.image("app/named:1")
        ),
    );
    agent.start();
    agent.wait_pod("waits", "the init container running", 60, |p| {
        running(p, "gate")
    });
    let junk_ref = registry.image("app/junk:1");
    wait_for(
        &format!("GC to collect {junk_ref}\n{}", agent.agent_log()),
        Duration::from_secs(120),
        || (!images(&agent).contains(&junk_ref)).then_some(()),
    );
    let junk_layer = &junk.layers[junk.layers.len() - 1];
    assert!(
        !has_blob(&agent, junk_layer),
        "the collected image's blobs go"
    );
    assert!(!has_blob(&agent, &junk.manifest));
    let listed = images(&agent);
    assert!(listed.contains(&registry.image("app/named:1")), "{listed}");
    assert!(listed.contains(&registry.image(BUSYBOX)), "{listed}");
    for digest in named.layers.iter().chain([&named.config, &named.manifest]) {
        assert!(has_blob(&agent, digest), "{digest} of the named image kept");
    }
    assert_blobs_verified(&agent);
    assert!(agent.pod("waits").is_some_and(|p| running(&p, "gate")));
}

/// A tag that moves under a running container (a second pod pulls the new
/// image with `Always`) leaves the first container's tree alone: image GC,
/// which runs after that pull, keeps the trees of images containers run
/// (the review of issue 15 found the sweep removing it).
#[test]
fn gc_keeps_the_tree_of_a_running_container_whose_tag_moved() {
    let mut agent = fresh_agent("reg-moved");
    let registry = registry_with_busybox(&agent);
    use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    agent.extra_config.push_str("imageMinimumGCAge: 0s\n");
    agent.start();
    let image = registry.image(BUSYBOX);
    agent.write_manifest("first.yaml", &pod("first", &image, "Always"));
    agent.wait_pod("first", "running", 60, |p| running(p, "app"));
    let first_tree = unpacked_trees(&agent);
    assert_eq!(first_tree.len(), 1, "{first_tree:?}");

    // The tag moves: the same name now holds busybox plus a layer.
    let layout = agent.dir.join("layout");
    layout_with_random_layer(&layout, "moved:1", 64 << 10);
    registry.push(&layout, "moved:1", BUSYBOX);
    agent.write_manifest("second.yaml", &pod("second", &image, "Always"));
    agent.wait_pod("second", "running", 60, |p| running(p, "app"));
    // A collection has run after the second pod's pull moved the tag.
    wait_for("image GC after the pull", Duration::from_secs(60), || {
        let log = agent.agent_log();
        let pulled = log.find("second-node1: app: Pulled: Successfully pulled")?;
        log[pulled..].contains("image GC: ").then_some(())
    });
    let trees = unpacked_trees(&agent);
    assert!(
        first_tree.is_subset(&trees),
        "the first container's tree went: {first_tree:?} not in {trees:?}"
    );
    assert_eq!(trees.len(), 2, "{trees:?}");
    assert!(agent.pod("first").is_some_and(|p| running(&p, "app")));
}

/// The unpacked image trees of the agent's store.
fn unpacked_trees(agent: &Agent) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(agent.dir.join("root/rootfs"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// A pod whose image is in the import directory does not try to pull it
/// while the import at start runs: its start waits for the import
/// (src/runtime/upkeep.rs, the import gate). The image is named on a
/// closed loopback port, so a pull would fail at once with ErrImagePull.
#[test]
fn a_pod_waits_for_the_import_at_start_instead_of_pulling() {
    let mut agent = fresh_agent("reg-import-gate");
    let layout = agent.dir.join("layout");
    // Large enough that the import takes a while (hashing and copying).
    layout_with_random_layer(&layout, "big:1", 48 << 20);
    let import_dir = agent.dir.join("root/import");
    fs::create_dir_all(&import_dir).unwrap();
    let image = "127.0.0.1:9/airgap/big:1";
    docker_archive(&layout, "big:1", &import_dir.join("big.tar"), image);
    agent.write_manifest("big.yaml", &pod("big", image, "IfNotPresent"));
    agent.start();
    agent.wait_pod("big", "running from the imported image", 120, |p| {
        running(p, "app")
    });
    let log = agent.agent_log();
    assert!(log.contains("image import: "), "{log}");
    assert!(
        !log.contains("ErrImagePull") && !log.contains("Pulling image"),
        "a pull was tried while the import ran:\n{log}"
    );
}

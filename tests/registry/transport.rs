//! What travels between the registry and the store: a tampered blob is a
//! digest mismatch that leaves nothing behind, a multi-arch index gives the
//! host's platform, a listed mirror serves without the upstream being
//! contacted (and the upstream serves when the mirror is gone), and a blob
//! response cut in the middle resumes with `Range`.

use super::*;
use common::registry::images::{layout_with_random_layer, multi_arch, MultiArch};
use common::registry::proxy::CuttingProxy;
use common::registry::{free_port, Registry, PASSWORD, USER};

#[test]
fn a_tampered_blob_is_a_digest_mismatch_and_leaves_nothing_behind() {
    let mut agent = fresh_agent("reg-tamper");
    let registry = Registry::secure(&agent.dir, "registry");
    let layout = agent.dir.join("layout");
    let image = layout_with_random_layer(&layout, "tampered:1", 1 << 20);
    registry.push(&layout, "tampered:1", "app/tampered:1");
    let layer = image.biggest_layer(&layout);
    registry.tamper_blob(&layer);
    use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    agent.start();
    agent.write_manifest(
        "app.yaml",
        &pod("app", &registry.image("app/tampered:1"), ""),
    );
    let message = wait_reason(&agent, "app", "ErrImagePull", 60);
    assert!(message.to_lowercase().contains("digest"), "{message}");
    assert!(!has_blob(&agent, &layer), "the bad layer is not stored");
    let hex = &layer[7..];
    let leftovers: Vec<PathBuf> = files_under(&agent.dir.join("root"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(hex))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    assert_no_partials(&agent);
    assert_blobs_verified(&agent);
    assert!(
        !images(&agent).contains("app/tampered"),
        "no index entry for a failed pull"
    );
}

#[test]
fn a_multi_arch_index_gives_the_hosts_platform() {
    let multi: &MultiArch = multi_arch();
    let mut agent = fresh_agent("reg-multi");
    let registry = Registry::secure(&agent.dir, "registry");
    registry.push_all(&multi.layout, MultiArch::TAG, "app/multi:1");
    use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    agent.start();
    agent.write_manifest("app.yaml", &pod("app", &registry.image("app/multi:1"), ""));
    agent.wait_pod("app", "running the host's variant", 60, |p| {
        running(p, "app")
    });
    let rootfs = agent.dir.join("root/rootfs");
    assert!(rootfs.join(multi.host.config_hex()).is_dir());
    assert!(!rootfs.join(multi.other.config_hex()).exists());
    assert!(has_blob(&agent, &multi.host.config));
    assert!(
        !has_blob(&agent, &multi.other.config),
        "the other platform's config is not fetched"
    );
    assert!(
        !has_blob(&agent, &multi.other.manifest),
        "the other platform's manifest is not fetched"
    );
    // The registry served the index and the host's manifest only (the
    // log also holds skopeo's push, which names both).
    let log = registry
        .requests_for("app/multi")
        .into_iter()
        .filter(|l| !l.contains("skopeo/"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!log.contains(&multi.other.manifest), "{log}");
    assert_blobs_verified(&agent);
}

#[test]
fn a_listed_mirror_serves_and_the_upstream_serves_without_it() {
    let mut agent = fresh_agent("reg-mirror");
    let upstream = Registry::secure(&agent.dir, "upstream");
    let mut mirror = Registry::plain(&agent.dir, "mirror");
    for r in [&upstream, &mirror] {
        r.push(busybox_layout(), "busybox:1.36", BUSYBOX);
    }
    // Only the upstream has the second image.
    let layout = agent.dir.join("layout");
    layout_with_random_layer(&layout, "only-upstream:1", 64 << 10);
    upstream.push(&layout, "only-upstream:1", "app/only-upstream:1");
    let upstream_before = upstream.requests_for("library/busybox").len();
    use_registries(
        &mut agent,
        &[(upstream.host(), vec![mirror.url()])],
        &[upstream.config_entry(Some((USER, PASSWORD)), true)],
    );
    agent.start();
    agent.write_manifest("app.yaml", &pod("app", &upstream.image(BUSYBOX), ""));
    agent.wait_pod("app", "running through the mirror", 60, |p| {
        running(p, "app")
    });
    assert!(
        mirror
            .requests_for("library/busybox")
            .iter()
            .any(|l| l.contains("/blobs/sha256:")),
        "the mirror served the blobs"
    );
    assert_eq!(
        upstream.requests_for("library/busybox").len(),
        upstream_before,
        "the upstream was not contacted"
    );
    assert!(images(&agent).contains(&upstream.image(BUSYBOX)));

    // The mirror goes away: the upstream is tried after it.
    mirror.stop();
    agent.write_manifest(
        "second.yaml",
        &pod("second", &upstream.image("app/only-upstream:1"), ""),
    );
    agent.wait_pod("second", "running from the upstream", 60, |p| {
        running(p, "app")
    });
    assert!(!upstream.requests_for("app/only-upstream").is_empty());
}

/// The first blob response over 256 KiB is cut after 256 KiB by a proxy in
/// front of the mirror: the pull goes on with `Range: bytes=N-` (N > 0)
/// and the pod runs from a verified blob.
#[test]
fn a_cut_blob_download_resumes_with_range() {
    const CUT_AFTER: u64 = 256 << 10;
    let mut agent = fresh_agent("reg-resume");
    let mirror = Registry::plain(&agent.dir, "mirror");
    let layout = agent.dir.join("layout");
    let image = layout_with_random_layer(&layout, "big:1", 4 << 20);
    mirror.push(&layout, "big:1", "app/big:1");
    let proxy = CuttingProxy::start(mirror.port, CUT_AFTER);
    // The upstream named by the reference is a closed loopback port: only
    // the mirror (through the proxy) can serve.
    let upstream = format!("127.0.0.1:{}", free_port());
    use_registries(&mut agent, &[(upstream.clone(), vec![proxy.url()])], &[]);
    agent.start();
    agent.write_manifest(
        "app.yaml",
        &pod("app", &format!("{upstream}/app/big:1"), ""),
    );
    agent.wait_pod("app", "running after a resumed pull", 90, |p| {
        running(p, "app")
    });
    // busybox's layer (1 MiB) or the random one (4 MiB), whichever came first.
    let cut = proxy.cut_blob().expect("the proxy cut a blob response");
    assert!(image.layers.contains(&cut), "{cut}");
    let starts = proxy.range_starts(&cut);
    assert!(
        starts.iter().any(|&s| s > 0 && s <= CUT_AFTER),
        "a Range request resumed {cut}: {starts:?}\n{:#?}",
        proxy.requests()
    );
    for layer in &image.layers {
        assert!(has_blob(&agent, layer), "{layer}");
    }
    assert_no_partials(&agent);
    assert_blobs_verified(&agent);
}

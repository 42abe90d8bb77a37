//! A pull as the kubelet runs it, watched through a slow proxy: while the
//! image comes, the container waits with `ContainerCreating`, a pod whose
//! image is present starts meanwhile, the pull runs on a worker thread that
//! is gone once it is done, and two pods needing the image share one pull.

use super::*;
use common::registry::free_port;
use common::registry::images::layout_with_random_layer;
use common::registry::proxy::CuttingProxy;
use std::time::Duration;

/// Blob bodies through the proxy: 4 MiB at 512 KiB/s, about 8 s a pull.
const LAYER: usize = 4 << 20;
const RATE: u64 = 256 << 10;

fn threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

#[test]
fn pods_wait_in_container_creating_while_others_start_and_share_one_pull() {
    // The store has busybox:1.36 for the pod that must not wait.
    let mut agent = Agent::new("reg-slow");
    let mirror = Registry::plain(&agent.dir, "mirror");
    let layout = agent.dir.join("layout");
    let image = layout_with_random_layer(&layout, "big:1", LAYER);
    mirror.push(&layout, "big:1", "app/big:1");
    let proxy = CuttingProxy::slow(mirror.port, RATE);
    let upstream = format!("127.0.0.1:{}", free_port());
    use_registries(&mut agent, &[(upstream.clone(), vec![proxy.url()])], &[]);
    agent.start();
    let pid = agent.pid();
    let big = format!("{upstream}/app/big:1");
    agent.write_manifest("slow.yaml", &pod("slow", &big, ""));
    agent.write_manifest("twin.yaml", &pod("twin", &big, ""));
    let message = wait_reason(&agent, "slow", "ContainerCreating", 30);
    assert!(!message.contains("ErrImagePull"), "{message}");
    wait_for("a blob on its way", Duration::from_secs(30), || {
        proxy
            .requests()
            .iter()
            .any(|h| h.starts_with("GET ") && h.contains("/blobs/"))
            .then_some(())
    });
    assert!(threads(pid) > 1, "the pull runs on a worker thread");

    // Meanwhile a pod of a present image starts.
    agent.write_manifest("quick.yaml", &pod("quick", "busybox:1.36", ""));
    agent.wait_pod("quick", "running during the pull", 30, |p| {
        running(p, "app")
    });
    let slow = agent.pod("slow").unwrap();
    assert_eq!(
        waiting(&slow).0,
        "ContainerCreating",
        "the pull (about {} s) is still on",
        LAYER as u64 / RATE
    );

    for name in ["slow", "twin"] {
        agent.wait_pod(name, "running after the pull", 90, |p| running(p, "app"));
    }
    // One pull for both pods: each layer came at most once (busybox's
    // base layer is in the store already), the big one exactly once.
    let biggest = image.biggest_layer(&layout);
    for layer in &image.layers {
        let gets = proxy
            .requests()
            .iter()
            .filter(|h| {
                h.starts_with("GET ")
                    && h.lines().next().is_some_and(|l| l.contains(layer.as_str()))
            })
            .count();
        let expected = if *layer == biggest { 1 } else { gets.min(1) };
        assert_eq!(gets, expected, "{layer} fetched {gets} times");
    }
    wait_for("the pull worker to end", Duration::from_secs(10), || {
        (threads(pid) == 1).then_some(())
    });
    assert_blobs_verified(&agent);
    assert_no_partials(&agent);
}

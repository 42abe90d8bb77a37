//! Node mode: a pod's `imagePullSecrets` (kubernetes.io/dockerconfigjson)
//! authenticate its pull when registries.yaml has no credentials, as the
//! kubelet does; the pull events (Pulling, Pulled; Failed and BackOff for
//! an unknown tag) reach the API server.

use super::*;
use common::apiserver::ApiServer;
use common::registry::{PASSWORD, USER};
use std::time::Duration;

/// `base64 -w0` of `data`.
fn base64(data: &str) -> String {
    let out = common::run(
        Command::new("sh")
            .arg("-c")
            .arg("printf %s \"$0\" | base64 -w0")
            .arg(data),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The reasons of the events about pod `name`.
fn event_reasons(server: &ApiServer, name: &str) -> Vec<(String, String)> {
    let events = server
        .get(&[
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
        ])
        .unwrap_or_default();
    events["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    (
                        e["reason"].as_str().unwrap_or("").to_string(),
                        e["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn api_pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  imagePullSecrets:\n  - name: regcred\n  containers:\n  - name: app\n    image: {image}\n    command: [sleep, \"3600\"]\n"
    )
}

#[test]
fn image_pull_secrets_authenticate_and_the_pull_events_are_posted() {
    let mut agent = fresh_agent("reg-node");
    let registry = registry_with_busybox(&agent);
    let server = ApiServer::start(&agent.dir);
    // registries.yaml trusts the CA but holds no credentials.
    use_registries(&mut agent, &[], &[registry.config_entry(None, true)]);
    agent.extra_config.push_str(&format!(
        "kubeconfig: {}\n",
        server.node_kubeconfig(NODE).display()
    ));
    agent.start();
    let docker_config = serde_json::json!({"auths": {registry.host(): {
        "auth": base64(&format!("{USER}:{PASSWORD}"))}}})
    .to_string();
    server.create(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: regcred}}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
        base64(&docker_config)
    ));
    let image = registry.image(BUSYBOX);
    server.create(&api_pod("pulled", &image));
    server.wait(&["pod", "pulled"], "Running", 90, |p| {
        p["status"]["phase"] == "Running"
    });
    let reasons = wait_for("Pulling and Pulled events", Duration::from_secs(20), || {
        let r = event_reasons(&server, "pulled");
        (r.iter().any(|(x, _)| x == "Pulling") && r.iter().any(|(x, _)| x == "Pulled")).then_some(r)
    });
    let pulled = &reasons.iter().find(|(r, _)| r == "Pulled").unwrap().1;
    assert!(pulled.contains(&image), "{pulled}");

    // An unknown tag: Failed with the registry's words, then BackOff.
    server.create(&api_pod("unknown", &registry.image("library/busybox:nope")));
    let reasons = wait_for("Failed and BackOff events", Duration::from_secs(60), || {
        let r = event_reasons(&server, "unknown");
        (r.iter().any(|(x, _)| x == "Failed") && r.iter().any(|(x, _)| x == "BackOff")).then_some(r)
    });
    assert!(
        reasons
            .iter()
            .any(|(r, m)| r == "Failed" && m.to_lowercase().contains("manifest unknown")),
        "{reasons:?}"
    );
    assert!(!agent.agent_log().contains(PASSWORD));
}

//! Auth and TLS against the real registry: the right password over TLS
//! runs a pod on an empty store; a wrong password, no credentials, an
//! untrusted CA and an unknown tag give the kubelet's reasons
//! (ErrImagePull, then ImagePullBackOff) with the registry's words and
//! leave the store as it was; a token registry (`auth: token`) with the
//! test's token server.

use super::*;
use common::registry::{token, Registry, BUSYBOX, PASSWORD, USER};

#[test]
fn a_pod_runs_an_image_from_a_tls_password_registry_on_an_empty_store() {
    let mut agent = fresh_agent("reg-tls");
    let registry = registry_with_busybox(&agent);
    use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((USER, PASSWORD)), true)],
    );
    agent.start();
    let image = registry.image(BUSYBOX);
    agent.write_manifest("app.yaml", &pod("app", &image, ""));
    agent.wait_pod("app", "running from the registry", 60, |p| {
        running(p, "app")
    });
    let pushed = common::registry::images::image_in_layout(busybox_layout(), "busybox:1.36");
    for digest in pushed
        .layers
        .iter()
        .chain([&pushed.config, &pushed.manifest])
    {
        assert!(has_blob(&agent, digest), "{digest} in the store");
    }
    assert!(agent
        .dir
        .join("root/rootfs")
        .join(pushed.config_hex())
        .is_dir());
    assert_blobs_verified(&agent);
    let listed = images(&agent);
    assert!(listed.contains(&image), "{listed}");
    assert!(listed.contains(&pushed.manifest[7..19]), "{listed}");
    assert!(
        !agent.agent_log().contains(PASSWORD),
        "the password is never logged"
    );
}

/// A store with the busybox layout, a pod naming a registry image with
/// `creds` and `trust`: the reason after the first failure, its message;
/// the store's blobs are unchanged and no partial download is left.
fn failing_pull(
    name: &str,
    creds: Option<(&str, &str)>,
    trust: bool,
    repo_tag: &str,
) -> (Agent, Registry, String) {
    let mut agent = Agent::new(name);
    let registry = registry_with_busybox(&agent);
    use_registries(&mut agent, &[], &[registry.config_entry(creds, trust)]);
    let before = files_under(&store(&agent).join("blobs"));
    agent.start();
    agent.write_manifest("app.yaml", &pod("app", &registry.image(repo_tag), ""));
    let message = wait_reason(&agent, "app", "ErrImagePull", 60);
    let p = agent.pod("app").unwrap();
    assert_eq!(phase(&p), "Pending");
    assert_eq!(
        files_under(&store(&agent).join("blobs")),
        before,
        "a failed pull leaves the blobs as they were"
    );
    assert_no_partials(&agent);
    (agent, registry, message)
}

#[test]
fn a_wrong_password_is_unauthorized_then_backs_off_and_leaves_the_store_clean() {
    let (agent, _registry, message) =
        failing_pull("reg-wrong", Some((USER, "not-the-password")), true, BUSYBOX);
    assert!(message.to_lowercase().contains("unauthorized"), "{message}");
    // The kubelet shows ImagePullBackOff between attempts (10 s first).
    let backoff = wait_reason(&agent, "app", "ImagePullBackOff", 30);
    assert!(backoff.contains("Back-off pulling image"), "{backoff}");
    assert!(!agent.agent_log().contains("not-the-password"));
}

#[test]
fn anonymous_against_the_password_registry_is_unauthorized() {
    let (_agent, _registry, message) = failing_pull("reg-anon", None, true, BUSYBOX);
    assert!(message.to_lowercase().contains("unauthorized"), "{message}");
}

#[test]
fn an_untrusted_ca_is_a_certificate_error() {
    let (_agent, _registry, message) =
        failing_pull("reg-x509", Some((USER, PASSWORD)), false, BUSYBOX);
    let lower = message.to_lowercase();
    assert!(
        lower.contains("x509") || lower.contains("certificate"),
        "{message}"
    );
}

#[test]
fn an_unknown_tag_is_manifest_unknown() {
    let (_agent, _registry, message) = failing_pull(
        "reg-tag",
        Some((USER, PASSWORD)),
        true,
        "library/busybox:no-such-tag",
    );
    assert!(
        message.to_lowercase().contains("manifest unknown"),
        "{message}"
    );
}

/// `auth: token`: the agent follows the WWW-Authenticate challenge to the
/// realm, gets a token with its credentials, and pulls; the token server
/// saw basic credentials, and fewer token requests than registry requests
/// (tokens are cached for their scope). Without credentials the anonymous
/// token grants nothing: unauthorized.
#[test]
fn a_token_registry_gives_a_token_for_the_credentials_and_none_to_anonymous() {
    let mut agent = fresh_agent("reg-token");
    let (registry, tokens) = Registry::with_token_server(&agent.dir, "registry");
    registry.push(busybox_layout(), "busybox:1.36", BUSYBOX);
    let pushes = tokens.requests().len();
    let pushed = registry.requests_for("library/busybox").len();
    use_registries(
        &mut agent,
        &[],
        &[registry.config_entry(Some((token::USER, token::PASSWORD)), true)],
    );
    agent.start();
    agent.write_manifest("app.yaml", &pod("app", &registry.image(BUSYBOX), ""));
    agent.wait_pod("app", "running from the token registry", 60, |p| {
        running(p, "app")
    });
    let asked: Vec<Value> = tokens.requests().into_iter().skip(pushes).collect();
    let scoped: Vec<&Value> = asked
        .iter()
        .filter(|r| !r["query"]["scope"].is_null())
        .collect();
    assert!(
        !scoped.is_empty(),
        "the realm was asked for a token: {asked:?}"
    );
    assert!(
        asked
            .iter()
            .all(|r| r["credentials"] == "basic" && r["query"]["service"][0] == token::SERVICE),
        "{asked:?}"
    );
    assert!(
        scoped
            .iter()
            .all(|r| r["query"]["scope"][0] == "repository:library/busybox:pull"),
        "only pull is asked for: {scoped:?}"
    );
    let pulls = registry.requests_for("library/busybox").len() - pushed;
    assert!(
        asked.len() < pulls,
        "{} token requests for {pulls} registry requests: tokens are reused",
        asked.len()
    );
    assert!(!agent.agent_log().contains(token::PASSWORD));

    // The same registry without credentials.
    agent.stop("TERM");
    use_registries(&mut agent, &[], &[registry.config_entry(None, true)]);
    agent.write_manifest(
        "anon.yaml",
        &pod("anon", &registry.image("library/busybox:1.36"), "Always"),
    );
    agent.start();
    let message = wait_reason(&agent, "anon", "ErrImagePull", 60);
    assert!(
        message.to_lowercase().contains("unauthorized")
            || message.to_lowercase().contains("insufficient"),
        "{message}"
    );
    assert!(tokens
        .requests()
        .iter()
        .any(|r| r["credentials"] == "anonymous"));
}

//! The harness itself, without picolet (it passes before any pull code
//! exists): the registries answer as a client expects, skopeo's pushes are
//! listed, the token server's tokens are accepted, the proxy cuts a blob
//! and a `Range` request gets the rest, the multi-arch index is served as an
//! index, the archives hold what import needs.

use super::*;
use common::registry::images::{
    docker_archive, layout_with_random_layer, multi_arch, oci_archive, MultiArch,
};
use common::registry::proxy::CuttingProxy;
use common::registry::Registry;

/// A directory for a harness test, not an agent's; removed on drop
/// (declared first, it outlives the registries inside it).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        Scratch(base)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The harness itself, without picolet: the TLS registry refuses anonymous
/// clients, lists what skopeo pushed with the password, the mirror serves
/// without auth, and the token registry takes a token from the test's token
/// server. It passes before any pull code exists.
#[test]
fn the_harness_registries_serve_what_skopeo_pushed() {
    let scratch = Scratch::new("registry-harness");
    let base = &scratch.0;
    let secure = Registry::secure(base, "secure");
    secure.push(busybox_layout(), "busybox:1.36", BUSYBOX);
    assert_eq!(secure.curl_code("/v2/_catalog", false), "401");
    assert!(
        secure.catalog().contains("library/busybox"),
        "{}",
        secure.catalog()
    );
    // Registry 2.8 hides an OCI manifest from a client that does not accept it.
    let manifest = secure.curl(
        "/v2/library/busybox/manifests/1.36",
        true,
        &["-H", "Accept: application/vnd.oci.image.manifest.v1+json"],
    );
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(manifest["schemaVersion"], 2, "{manifest}");

    let mirror = Registry::plain(base, "mirror");
    mirror.push(busybox_layout(), "busybox:1.36", BUSYBOX);
    assert!(mirror.catalog().contains("library/busybox"));
    assert!(!mirror.requests_for("library/busybox").is_empty());

    let (tokened, tokens) = Registry::with_token_server(base, "tokened");
    tokened.push(busybox_layout(), "busybox:1.36", BUSYBOX);
    assert_eq!(tokened.curl_code("/v2/", false), "401");
    let manifest_with = |creds: bool| {
        let token = tokens.grant(&tokened, "repository:library/busybox:pull", creds);
        let out = tokened.curl(
            "/v2/library/busybox/manifests/1.36",
            false,
            &[
                "-w",
                "\n%{http_code}",
                "-H",
                &format!("Authorization: Bearer {token}"),
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(manifest_with(true).ends_with("\n200"));
    // The anonymous token grants nothing: 401, as for a private repository.
    let anonymous = manifest_with(false);
    assert!(anonymous.ends_with("\n401"), "{anonymous}");
    assert!(anonymous.contains("UNAUTHORIZED"), "{anonymous}");
    assert!(tokens
        .requests()
        .iter()
        .any(|r| r["credentials"] == "basic"));
    assert!(tokens
        .requests()
        .iter()
        .any(|r| r["credentials"] == "anonymous"));
}

/// The proxy cuts the first long blob response (curl sees a short body),
/// the rest comes with `Range` (206), and the two halves hash to the digest.
#[test]
fn the_harness_proxy_cuts_a_blob_and_range_gets_the_rest() {
    const CUT: u64 = 100_000;
    let scratch = Scratch::new("registry-harness-proxy");
    let base = &scratch.0;
    let mirror = Registry::plain(base, "mirror");
    let layout = base.join("layout");
    let image = layout_with_random_layer(&layout, "big:1", 1 << 20);
    mirror.push(&layout, "big:1", "app/big:1");
    let layer = image.biggest_layer(&layout);
    let proxy = CuttingProxy::start(mirror.port, CUT);
    let url = format!("{}/v2/app/big/blobs/{layer}", proxy.url());
    let first = base.join("first");
    let cut = Command::new("curl")
        .args(["-s", "--max-time", "10", "-o"])
        .arg(&first)
        .arg(&url)
        .status()
        .unwrap();
    assert!(!cut.success(), "curl sees the body cut short");
    assert_eq!(proxy.cut_blob(), Some(layer.clone()));
    let mut data = fs::read(&first).unwrap();
    assert_eq!(data.len() as u64, CUT);
    let rest = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}", "-r"])
        .arg(format!("{CUT}-"))
        .arg(&url)
        .output()
        .unwrap();
    let (body, code) = rest.stdout.split_at(rest.stdout.len() - 4);
    assert_eq!(code, b"\n206");
    data.extend_from_slice(body);
    assert_eq!(sha256(&data), layer);
    assert_eq!(proxy.range_starts(&layer), vec![CUT]);

    // The slow proxy takes its time over the 1 MiB layer (4 × 256 KiB).
    let slow = CuttingProxy::slow(mirror.port, 256 << 10);
    let began = std::time::Instant::now();
    let whole = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .arg(format!("{}/v2/app/big/blobs/{layer}", slow.url()))
        .output()
        .unwrap();
    assert_eq!(sha256(&whole.stdout), layer);
    assert!(
        began.elapsed() >= std::time::Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );

    // A tampered blob is served whole, its size kept, its digest broken.
    mirror.tamper_blob(&layer);
    let tampered = mirror.curl(&format!("/v2/app/big/blobs/{layer}"), false, &[]);
    assert_eq!(tampered.stdout.len(), data.len());
    assert_ne!(sha256(&tampered.stdout), layer);
}

/// `skopeo copy --all` of the multi-arch layout: the registry serves an
/// OCI index naming both platforms; the archives hold what import reads.
#[test]
fn the_harness_pushes_a_multi_arch_index_and_makes_archives() {
    let scratch = Scratch::new("registry-harness-images");
    let base = &scratch.0;
    let multi = multi_arch();
    let registry = Registry::plain(base, "registry");
    registry.push_all(&multi.layout, MultiArch::TAG, "app/multi:1");
    let index = registry.curl(
        "/v2/app/multi/manifests/1",
        false,
        &["-H", "Accept: application/vnd.oci.image.index.v1+json"],
    );
    let index: Value = serde_json::from_slice(&index.stdout).unwrap();
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(platforms.len(), 2, "{index}");
    assert!(platforms.contains(&(
        common::registry::images::host_arch().to_string(),
        multi.host.manifest.clone()
    )));
    assert_ne!(multi.host.config, multi.other.config);
    for digest in [&multi.host.config, &multi.other.config] {
        assert_eq!(
            registry.curl_code(&format!("/v2/app/multi/blobs/{digest}"), false),
            "200"
        );
    }

    let docker_tar = base.join("docker.tar");
    docker_archive(
        busybox_layout(),
        "busybox:1.36",
        &docker_tar,
        "example.org/airgap/docker:1",
    );
    let manifest = run_ok_tar(&docker_tar, "manifest.json");
    assert!(
        manifest.contains("example.org/airgap/docker:1"),
        "{manifest}"
    );
    let oci_tar = base.join("oci.tar");
    let image = layout_with_random_layer(&base.join("layout"), "for-oci:1", 4096);
    oci_archive(
        &base.join("layout"),
        "for-oci:1",
        &oci_tar,
        "example.org/airgap/oci:1",
    );
    let index = run_ok_tar(&oci_tar, "index.json");
    assert!(
        index.contains("example.org/airgap/oci:1") && index.contains(&image.manifest),
        "{index}"
    );
}

/// The member `name` of the tar `file`, as text.
fn run_ok_tar(file: &Path, name: &str) -> String {
    let out = common::run(Command::new("tar").arg("-xOf").arg(file).arg(name));
    String::from_utf8(out.stdout).unwrap()
}

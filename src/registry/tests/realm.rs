//! A Bearer realm on another host than the registry, over real TLS on
//! 127.0.0.1 (rustls servers in threads, certificates made by openssl at
//! test time as tests/common/tls.rs makes them): the realm is reached with
//! its own host's TLS settings, never the registry's.

use super::*;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A CA (`ca.pem`, trusted by nobody unless registries.yaml says so) and
/// a certificate it signed for 127.0.0.1 (`leaf.pem`, `leaf.key`).
fn certificates() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("picolet-realm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ca = [
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=picolet realm test CA",
        ];
        openssl(
            &[
                &["req", "-x509", "-nodes"][..],
                &ec,
                &["-keyout", "ca.key"],
                &ca,
            ]
            .concat(),
        );
        let leaf = [
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ];
        openssl(&[&["req", "-nodes"][..], &ec, &leaf].concat());
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
        dir
    })
}

/// An HTTPS server on 127.0.0.1 with `leaf.pem`: every request that came
/// through the handshake is recorded, then answered by `handler`.
fn tls_server(handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Server {
    let dir = certificates();
    let chain: Vec<_> = crate::tls::pem_certificates(&std::fs::read(dir.join("leaf.pem")).unwrap())
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
        .collect();
    let key = ureq::tls::parse_pem(&std::fs::read(dir.join("leaf.key")).unwrap())
        .find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k.der().to_vec()),
            _ => None,
        })
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, stream);
            // A refused handshake ends here: nothing was sent in clear.
            let Some(request) = read_request(&mut tls) else {
                continue;
            };
            record.lock().unwrap().push(request.clone());
            write_reply(&mut tls, &handler(&request));
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    Server { addr, seen }
}

/// A registry over HTTPS that wants a token from `realm` (a URL with
/// `{}` for the realm server's address, filled in once it is known).
fn registry_with_realm(realm: Arc<Mutex<String>>) -> Server {
    tls_server(move |req| {
        if req.header("authorization") == Some("Bearer realm-token") {
            return reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST);
        }
        let challenge = format!(r#"Bearer realm="{}",service="reg""#, realm.lock().unwrap());
        Reply {
            status: 401,
            headers: vec![("WWW-Authenticate", challenge)],
            body: Vec::new(),
        }
    })
}

fn token_server() -> Server {
    tls_server(|_| reply(200, &[], br#"{"token":"realm-token"}"#))
}

/// Registries over `config`, retrying at once; upstreams stay HTTPS.
fn registries(config: &str) -> Registries {
    let config = Arc::new(yaml(config));
    Registries {
        shared: Arc::new(Shared {
            agents: agents::Agents::new(config.clone()),
            config,
            tokens: auth::TokenCache::default(),
            retry_delay: Duration::from_millis(5),
            plain_upstream: false,
        }),
    }
}

#[test]
fn a_realm_on_another_host_does_not_get_the_registrys_insecure_skip_verify() {
    let realm_url = Arc::new(Mutex::new(String::new()));
    let registry = registry_with_realm(realm_url.clone());
    let realm = token_server();
    *realm_url.lock().unwrap() = format!("https://{}/token", realm.addr);
    // The registry's certificate is not verified, and it has credentials;
    // the realm's host has no configs entry: the system roots only.
    let insecure = format!(
        "configs:\n  '{}':\n    auth: {{username: alice, password: pw}}\n    tls: {{insecure_skip_verify: true}}\n",
        registry.addr
    );
    let mut session = registries(&insecure)
        .session(&registry.addr, "app", vec![])
        .unwrap();
    let e = session.manifest("v1").unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e:?}");
    let realm_shown = format!("token realm https://{}/token", realm.addr);
    assert!(e.to_string().contains(&realm_shown), "{e}");
    assert!(
        realm.seen().is_empty(),
        "the credentials reached an unverified realm: {:?}",
        realm.seen()
    );
    assert_eq!(registry.hits("/v2/app/manifests/v1"), 1);

    // The realm's host's own ca_file verifies it; the registry's
    // credentials go to it, as containerd sends them.
    let ca = certificates().join("ca.pem");
    let trusted = format!(
        "{insecure}  '{}':\n    tls: {{ca_file: '{}'}}\n",
        realm.addr,
        ca.display()
    );
    let mut session = registries(&trusted)
        .session(&registry.addr, "app", vec![])
        .unwrap();
    let manifest = session.manifest("v1").unwrap();
    assert_eq!(manifest.bytes, MANIFEST);
    let asked = realm.seen();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let alice = Credentials::new("alice".into(), "pw".into());
    assert_eq!(
        asked[0].header("authorization"),
        Some(alice.basic_authorization().as_str())
    );
}

#[test]
fn a_realm_gets_its_own_hosts_agent_and_the_registry_keeps_its_own() {
    let dir = certificates();
    let config = Arc::new(yaml(&format!(
        "configs:\n  'reg.example':\n    tls: {{insecure_skip_verify: true, cert_file: '{0}/leaf.pem', key_file: '{0}/leaf.key'}}\n  'auth.example':\n    tls: {{ca_file: '{0}/ca.pem'}}\n",
        dir.display()
    )));
    let agents = agents::Agents::new(config);
    let endpoint = endpoint::parse_endpoint("reg.example", false).unwrap();
    let chosen = |url: &str| {
        let origin = agents::Origin::of(url).unwrap();
        agents.chosen_for(&origin, &endpoint, None)
    };
    let registry = config_tls(&agents, "reg.example");
    assert!(registry.insecure_skip_verify && registry.cert_file.is_some());
    assert_eq!(
        chosen("https://reg.example/token"),
        ("reg.example".to_string(), registry)
    );
    let realm = chosen("https://auth.example/token");
    assert_eq!(realm.0, "auth.example");
    assert!(!realm.1.insecure_skip_verify && realm.1.cert_file.is_none());
    assert_eq!(realm.1.ca_file, Some(dir.join("ca.pem")));
    // Another port is another host without a configs entry: nothing of
    // the registry's but its ca_file (it has none here).
    assert_eq!(
        chosen("https://reg.example:8443/token"),
        (
            "ca_file of reg.example".to_string(),
            config::TlsFiles::default()
        )
    );
}

#[test]
fn an_upstreams_alias_settings_stay_on_its_own_origin() {
    let config = Arc::new(yaml(
        "configs:\n  'docker.io':\n    tls: {insecure_skip_verify: true}\n",
    ));
    let agents = agents::Agents::new(config);
    let hub = endpoint::endpoints(&RegistryConfig::default(), "docker.io").unwrap();
    let upstream = &hub[0];
    let chosen = |url: &str| {
        let origin = agents::Origin::of(url).unwrap();
        let (key, tls) = agents.chosen_for(&origin, upstream, Some("docker.io"));
        (key.to_string(), tls.insecure_skip_verify)
    };
    // A redirect on registry-1.docker.io itself: docker.io's settings.
    assert_eq!(
        chosen("https://registry-1.docker.io/v2/x/blobs/y"),
        ("docker.io".to_string(), true)
    );
    // Docker Hub's realm and its blob storage are other hosts.
    assert_eq!(
        chosen("https://auth.docker.io/token"),
        ("ca_file of docker.io".to_string(), false)
    );
    assert_eq!(
        chosen("https://production.cloudflare.docker.com/b"),
        ("ca_file of docker.io".to_string(), false)
    );
}

fn config_tls(agents: &agents::Agents, host: &str) -> config::TlsFiles {
    let origin = agents::Origin::of(&format!("https://{host}/")).unwrap();
    let endpoint = endpoint::parse_endpoint(host, false).unwrap();
    agents.chosen_for(&origin, &endpoint, None).1
}

#[test]
fn a_plain_http_realm_is_refused_from_an_https_registry() {
    let plain = Server::start(|_| reply(200, &[], br#"{"token":"realm-token"}"#));
    let realm_url = Arc::new(Mutex::new(format!("http://{}/token", plain.addr)));
    let registry = registry_with_realm(realm_url);
    let config = format!(
        "configs:\n  '{}':\n    auth: {{username: alice, password: pw}}\n    tls: {{insecure_skip_verify: true}}\n",
        registry.addr
    );
    let mut session = registries(&config)
        .session(&registry.addr, "app", vec![])
        .unwrap();
    let e = session.manifest("v1").unwrap_err();
    assert!(matches!(e, RegistryError::InsecureRefused { .. }), "{e:?}");
    assert!(plain.seen().is_empty(), "{:?}", plain.seen());
}

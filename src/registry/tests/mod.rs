//! The client against a tiny HTTP/1.1 server on 127.0.0.1 that plays the
//! distribution spec's contract (challenges, tokens, redirects, ranges,
//! errors bodies). The real registry is tests/registry.rs's.

mod realm;

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer to send.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn reply(status: u16, headers: &[(&'static str, &str)], body: &[u8]) -> Reply {
    Reply {
        status,
        headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
        body: body.to_vec(),
    }
}

/// A server in a thread: every request is recorded, then answered by
/// `handler` on a connection closed after it.
struct Server {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                record.lock().unwrap().push(request.clone());
                write_reply(&mut stream, &handler(&request));
            }
        });
        Server { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn hits(&self, prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .count()
    }
}

/// `r` as an HTTP/1.1 answer on a connection about to be closed.
fn write_reply(stream: &mut impl Write, r: &Reply) {
    let mut head = format!(
        "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        r.status,
        r.body.len()
    );
    for (name, value) in &r.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&r.body);
    let _ = stream.flush();
}

fn read_request(stream: impl Read) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(Seen { path, headers })
}

/// Registries whose upstreams are plain HTTP on loopback, retrying at
/// once.
fn loopback(config: RegistryConfig) -> Registries {
    let config = Arc::new(config);
    Registries {
        shared: Arc::new(Shared {
            agents: agents::Agents::new(config.clone()),
            config,
            tokens: auth::TokenCache::default(),
            retry_delay: Duration::from_millis(5),
            plain_upstream: true,
        }),
    }
}

/// [`loopback`]'s shared part, with no configuration.
pub(super) fn loopback_shared() -> Arc<Shared> {
    loopback(RegistryConfig::default()).shared
}

fn yaml(text: &str) -> RegistryConfig {
    RegistryConfig::parse(text, std::path::Path::new("registries.yaml")).unwrap()
}

const MANIFEST: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest() -> String {
    format!("sha256:{}", "ab".repeat(32))
}

fn read_all(mut blob: BlobBody) -> Vec<u8> {
    let mut bytes = Vec::new();
    blob.reader.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_bearer_challenge_gets_one_token_for_manifest_and_blob() {
    let token_url = Arc::new(Mutex::new(String::new()));
    let realm = token_url.clone();
    let server = Server::start(move |req| {
        if req.path.starts_with("/token") {
            return reply(200, &[], br#"{"access_token":"tok-1","expires_in":300}"#);
        }
        if req.header("authorization") != Some("Bearer tok-1") {
            let challenge = format!(
                r#"Bearer realm="{}",service="reg, test",scope="repository:library/busybox:pull""#,
                realm.lock().unwrap()
            );
            return Reply {
                status: 401,
                headers: vec![("WWW-Authenticate", challenge)],
                body:
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                        .to_vec(),
            };
        }
        if req.path.contains("/manifests/") {
            return reply(
                200,
                &[
                    ("Content-Type", OCI_MANIFEST),
                    ("Docker-Content-Digest", "sha256:00"),
                ],
                MANIFEST,
            );
        }
        reply(200, &[], b"layer bytes")
    });
    *token_url.lock().unwrap() = format!("http://{}/token", server.addr);
    let registries = loopback(RegistryConfig::default());
    let alice = Credentials::new("alice".into(), "pw".into());
    let mut session = registries
        .session(&server.addr, "library/busybox", vec![alice.clone()])
        .unwrap();
    let manifest = session.manifest("1.36").unwrap();
    assert_eq!(manifest.media_type, OCI_MANIFEST);
    assert_eq!(manifest.bytes, MANIFEST);
    assert_eq!(manifest.digest.as_deref(), Some("sha256:00"));
    let blob = session.blob(&digest(), 0).unwrap();
    assert!(!blob.resumed);
    assert_eq!(blob.length, Some(11));
    assert_eq!(read_all(blob), b"layer bytes");
    let tokens: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/token"))
        .collect();
    assert_eq!(tokens.len(), 1, "the token is cached: {:?}", server.seen());
    assert_eq!(
        tokens[0].path,
        "/token?service=reg%2C%20test&scope=repository%3Alibrary%2Fbusybox%3Apull"
    );
    assert_eq!(
        tokens[0].header("authorization"),
        Some(alice.basic_authorization().as_str())
    );
    // A second session shares the token.
    let mut again = registries
        .session(&server.addr, "library/busybox", vec![alice])
        .unwrap();
    again.manifest("1.36").unwrap();
    assert_eq!(server.hits("/token"), 1);
    let manifests = server.hits("/v2/library/busybox/manifests/1.36");
    // Each session learns the challenge from a 401 of its own.
    assert_eq!(manifests, 4);
}

#[test]
fn an_anonymous_token_is_fetched_without_credentials() {
    let server = Server::start(|req| {
        if req.path.starts_with("/token") {
            return reply(200, &[], br#"{"token":"anon"}"#);
        }
        if req.header("authorization") == Some("Bearer anon") {
            return reply(200, &[("Content-Type", "application/json")], MANIFEST);
        }
        reply(401, &[("WWW-Authenticate", "Bearer realm=\"/token\"")], b"")
    });
    // A relative realm is no URL: refused as the protocol's breach.
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "app", vec![])
        .unwrap();
    assert!(matches!(
        session.manifest("v1"),
        Err(RegistryError::Protocol { .. })
    ));
    let token_url = Arc::new(Mutex::new(String::new()));
    let realm = token_url.clone();
    let server = Server::start(move |req| {
        if req.path.starts_with("/token") {
            return reply(200, &[], br#"{"token":"anon"}"#);
        }
        if req.header("authorization") == Some("Bearer anon") {
            return reply(200, &[("Content-Type", "application/json")], MANIFEST);
        }
        let challenge = format!("Bearer realm=\"{}\"", realm.lock().unwrap());
        reply(401, &[("WWW-Authenticate", &challenge)], b"")
    });
    *token_url.lock().unwrap() = format!("http://{}/token", server.addr);
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "app", vec![])
        .unwrap();
    let manifest = session.manifest("v1").unwrap();
    // Content-Type application/json: the body's mediaType says.
    assert_eq!(manifest.media_type, OCI_MANIFEST);
    let tokens: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/token"))
        .collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].path, "/token?scope=repository%3Aapp%3Apull");
    assert_eq!(tokens[0].header("authorization"), None);
}

#[test]
fn basic_credentials_are_offered_in_turn_then_unauthorized_in_the_registrys_words() {
    let good = Credentials::new("bob".into(), "right".into());
    let wanted = good.basic_authorization();
    let server = Server::start(move |req| {
        if req.header("authorization") == Some(wanted.as_str()) {
            return reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST);
        }
        reply(401, &[("WWW-Authenticate", "Basic realm=\"Registry Realm\"")], br#"{"errors":[{"code":"UNAUTHORIZED","message":"access to the requested resource is not authorized"}]}"#)
    });
    let config = yaml(&format!(
        "configs:\n  '{}':\n    auth: {{username: bob, password: right}}\n",
        server.addr
    ));
    let wrong = Credentials::new("eve".into(), "wrong".into());
    let registries = loopback(config);
    // The pull secret's (wrong) first, then the configured (right) ones.
    let mut session = registries
        .session(&server.addr, "team/app", vec![wrong.clone()])
        .unwrap();
    session.manifest("1").unwrap();
    let auths: Vec<_> = server
        .seen()
        .iter()
        .map(|s| s.header("authorization").map(str::to_string))
        .collect();
    assert_eq!(
        auths,
        [
            None,
            Some(wrong.basic_authorization()),
            Some(good.basic_authorization())
        ]
    );
    // Only wrong ones: Unauthorized, with the registry's words, no secret.
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "team/app", vec![wrong])
        .unwrap();
    let e = session.manifest("1").unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    let shown = e.to_string();
    assert!(
        shown.contains("UNAUTHORIZED: access to the requested resource is not authorized"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{}/team/app:1", server.addr)),
        "{shown}"
    );
    assert!(
        !shown.contains("wrong") && !shown.contains("ZXZl"),
        "{shown}"
    );
    // No credentials at all: Unauthorized after the one challenge.
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "team/app", vec![])
        .unwrap();
    assert!(matches!(
        session.manifest("1"),
        Err(RegistryError::Unauthorized { .. })
    ));
}

#[test]
fn a_redirect_to_blob_storage_carries_no_authorization() {
    let storage = Server::start(|req| {
        if req.path.starts_with("/blob") {
            return reply(200, &[], b"from storage");
        }
        reply(404, &[], b"")
    });
    let location = format!("http://{}/blob?signature=x", storage.addr);
    let server = Server::start(move |req| {
        if req.header("authorization").is_none() {
            return reply(401, &[("WWW-Authenticate", "Basic realm=r")], b"");
        }
        reply(307, &[("Location", &location)], b"")
    });
    let creds = vec![Credentials::new("u".into(), "p".into())];
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "app", creds)
        .unwrap();
    let blob = session.blob(&digest(), 0).unwrap();
    assert_eq!(read_all(blob), b"from storage");
    let at_storage = storage.seen();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(
        at_storage[0].header("authorization"),
        None,
        "{at_storage:?}"
    );
    assert!(server
        .seen()
        .last()
        .unwrap()
        .header("authorization")
        .is_some());
}

#[test]
fn a_redirect_loop_is_refused() {
    let looping = Server::start(|req| reply(302, &[("Location", &format!("{}x", req.path))], b""));
    let mut session = loopback(RegistryConfig::default())
        .session(&looping.addr, "app", vec![])
        .unwrap();
    let e = session.blob(&digest(), 0).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Protocol { problem, .. } if problem.contains("redirects")),
        "{e:?}"
    );
    assert_eq!(looping.seen().len(), 6, "the request and 5 redirects");
}

#[test]
fn range_gives_206_or_the_whole_blob() {
    let blob: Vec<u8> = (0..200u8).collect();
    let body = blob.clone();
    let honours = Server::start(move |req| match req.header("range") {
        Some("bytes=100-") => reply(206, &[("Content-Range", "bytes 100-199/200")], &body[100..]),
        _ => reply(200, &[], &body),
    });
    let whole = blob.clone();
    let ignores = Server::start(move |_| reply(200, &[], &whole));
    let registries = loopback(RegistryConfig::default());
    let mut session = registries.session(&honours.addr, "app", vec![]).unwrap();
    let part = session.blob(&digest(), 100).unwrap();
    assert!(part.resumed);
    assert_eq!(part.length, Some(100));
    assert_eq!(read_all(part), &blob[100..]);
    assert_eq!(honours.seen()[0].header("range"), Some("bytes=100-"));
    let all = session.blob(&digest(), 0).unwrap();
    assert_eq!(honours.seen()[1].header("range"), None);
    assert_eq!(read_all(all), blob);
    let mut session = registries.session(&ignores.addr, "app", vec![]).unwrap();
    let all = session.blob(&digest(), 100).unwrap();
    assert!(!all.resumed);
    assert_eq!(all.length, Some(200));
    assert_eq!(read_all(all), blob);
    let wrong = Server::start(|_| reply(206, &[("Content-Range", "bytes 0-9/200")], &[0; 10]));
    let mut session = registries.session(&wrong.addr, "app", vec![]).unwrap();
    assert!(matches!(
        session.blob(&digest(), 100),
        Err(RegistryError::Protocol { .. })
    ));
}

#[test]
fn manifest_unknown_is_not_found_in_the_registrys_words() {
    let server = Server::start(|_| {
        reply(404, &[("Content-Type", "application/json")], br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#)
    });
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "library/busybox", vec![])
        .unwrap();
    let e = session.manifest("nope").unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
    let shown = e.to_string();
    assert!(
        shown.contains("MANIFEST_UNKNOWN: manifest unknown"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{}/library/busybox:nope", server.addr)),
        "{shown}"
    );
    assert_eq!(server.seen().len(), 1, "a 404 is not retried");
}

#[test]
fn a_failing_mirror_falls_through_to_the_upstream_which_serves_the_blobs_too() {
    let mirror = Server::start(|_| {
        reply(
            503,
            &[],
            br#"{"errors":[{"code":"UNAVAILABLE","message":"down"}]}"#,
        )
    });
    let upstream = Server::start(|req| {
        if req.path.contains("/manifests/") {
            return reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST);
        }
        reply(200, &[], b"blob")
    });
    let config = yaml(&format!(
        "mirrors:\n  '{}':\n    endpoint: ['http://127.0.0.1:1', 'http://{}']\n",
        upstream.addr, mirror.addr
    ));
    let registries = loopback(config);
    let mut session = registries.session(&upstream.addr, "app", vec![]).unwrap();
    assert_eq!(session.manifest("v1").unwrap().bytes, MANIFEST);
    assert_eq!(
        mirror.seen().len(),
        exchange::ATTEMPTS as usize,
        "503 is retried, then the next endpoint"
    );
    assert_eq!(read_all(session.blob(&digest(), 0).unwrap()), b"blob");
    assert_eq!(
        mirror.seen().len(),
        exchange::ATTEMPTS as usize,
        "blobs from the endpoint that answered"
    );
    assert_eq!(upstream.seen().len(), 2);
}

#[test]
fn the_last_endpoints_failure_is_reported() {
    let upstream = Server::start(|_| {
        reply(
            404,
            &[],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
    });
    // The mirror has another repository's manifests only.
    let mirror_404 = Server::start(|_| {
        reply(404, &[], br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#)
    });
    let config = yaml(&format!(
        "mirrors:\n  '{}':\n    endpoint: ['http://{}']\n",
        upstream.addr, mirror_404.addr
    ));
    let mut session = loopback(config)
        .session(&upstream.addr, "app", vec![])
        .unwrap();
    let e = session.manifest("v1").unwrap_err();
    assert!(
        matches!(&e, RegistryError::NotFound { says, .. } if says.contains("MANIFEST_UNKNOWN")),
        "{e:?}"
    );
    assert_eq!(mirror_404.seen().len(), 1);
    assert_eq!(upstream.seen().len(), 1);
}

#[test]
fn busy_and_failing_servers_are_retried_a_bounded_number_of_times() {
    let count = Arc::new(Mutex::new(0));
    let counter = count.clone();
    let busy_once = Server::start(move |_| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        if *n == 1 {
            return reply(429, &[("Retry-After", "0")], b"");
        }
        reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST)
    });
    let registries = loopback(RegistryConfig::default());
    let mut session = registries.session(&busy_once.addr, "app", vec![]).unwrap();
    session.manifest("v1").unwrap();
    assert_eq!(busy_once.seen().len(), 2);
    let broken = Server::start(|_| reply(500, &[], b"oops"));
    let mut session = registries.session(&broken.addr, "app", vec![]).unwrap();
    let e = session.manifest("v1").unwrap_err();
    assert!(
        matches!(e, RegistryError::Http { status: 500, .. }),
        "{e:?}"
    );
    assert_eq!(broken.seen().len(), exchange::ATTEMPTS as usize);
}

#[test]
fn a_manifest_over_the_cap_is_refused() {
    let server = Server::start(|_| {
        reply(
            200,
            &[("Content-Type", OCI_MANIFEST)],
            &vec![b' '; session::MAX_MANIFEST as usize + 1],
        )
    });
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "app", vec![])
        .unwrap();
    assert!(matches!(
        session.manifest("v1"),
        Err(RegistryError::TooLarge { .. })
    ));
}

#[test]
fn a_tls_failure_is_tls_and_names_it() {
    // Answers the ClientHello with plain HTTP; the upstream is HTTPS.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    // Verification off: the handshake itself fails, whatever the roots.
    let config = yaml(&format!(
        "configs:\n  '{addr}':\n    tls: {{insecure_skip_verify: true}}\n"
    ));
    let mut session = Registries::new(Arc::new(config))
        .session(&addr, "app", vec![])
        .unwrap();
    let e = session.manifest("v1").unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("tls: "), "{e}");
}

#[test]
fn hostile_names_never_reach_a_url() {
    let registries = loopback(RegistryConfig::default());
    assert!(matches!(
        registries.session("a/b", "app", vec![]),
        Err(RegistryError::Invalid {
            what: "registry",
            ..
        })
    ));
    assert!(matches!(
        registries.session("h", "../etc", vec![]),
        Err(RegistryError::Invalid {
            what: "repository",
            ..
        })
    ));
    let mut session = registries.session("127.0.0.1:1", "app", vec![]).unwrap();
    assert!(matches!(
        session.manifest("v1/../x"),
        Err(RegistryError::Invalid { .. })
    ));
    assert!(matches!(
        session.blob("sha256:../../x", 0),
        Err(RegistryError::Invalid { what: "digest", .. })
    ));
}

#[test]
fn registries_are_shared_by_threads_and_sessions_move_to_one() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Registries>();
    send::<Session>();
    send::<BlobBody>();
    send_sync::<RegistryError>();
}

#[test]
fn a_401_without_a_challenge_pings_v2_for_one() {
    let creds = Credentials::new("u".into(), "p".into());
    let wanted = creds.basic_authorization();
    let server = Server::start(move |req| {
        if req.path == "/v2/" {
            return reply(401, &[("WWW-Authenticate", "Basic realm=\"r\"")], b"");
        }
        if req.header("authorization") == Some(wanted.as_str()) {
            return reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST);
        }
        reply(401, &[], b"")
    });
    let mut session = loopback(RegistryConfig::default())
        .session(&server.addr, "app", vec![creds])
        .unwrap();
    session.manifest("v1").unwrap();
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        ["/v2/app/manifests/v1", "/v2/", "/v2/app/manifests/v1"]
    );
}

#[test]
fn pull_secrets_go_to_the_registry_not_to_its_mirrors() {
    let mirror = Server::start(|req| {
        if req.header("authorization").is_some() {
            return reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST);
        }
        reply(401, &[("WWW-Authenticate", "Basic realm=\"mirror\"")], b"")
    });
    let upstream = Server::start(|req| {
        if req.header("authorization").is_some() {
            return reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST);
        }
        reply(
            401,
            &[("WWW-Authenticate", "Basic realm=\"upstream\"")],
            b"",
        )
    });
    let config = yaml(&format!(
        "mirrors:\n  '{}':\n    endpoint: ['http://{}']\n",
        upstream.addr, mirror.addr
    ));
    let secret = vec![Credentials::new("u".into(), "from-a-pull-secret".into())];
    let mut session = loopback(config)
        .session(&upstream.addr, "app", secret)
        .unwrap();
    session.manifest("v1").unwrap();
    assert!(
        mirror
            .seen()
            .iter()
            .all(|s| s.header("authorization").is_none()),
        "{:?}",
        mirror.seen()
    );
    assert!(upstream.seen()[1].header("authorization").is_some());
}

#[test]
fn a_cached_token_the_registry_refuses_is_replaced_once() {
    let required = Arc::new(Mutex::new(1));
    let (issued, wanted) = (Arc::new(Mutex::new(0)), required.clone());
    let realm = Arc::new(Mutex::new(String::new()));
    let token_url = realm.clone();
    let server = Server::start(move |req| {
        if req.path.starts_with("/token") {
            let mut n = issued.lock().unwrap();
            *n += 1;
            return reply(200, &[], format!(r#"{{"token":"tok-{n}"}}"#).as_bytes());
        }
        let good = format!("Bearer tok-{}", wanted.lock().unwrap());
        if req.header("authorization") == Some(good.as_str()) {
            return reply(200, &[("Content-Type", OCI_MANIFEST)], MANIFEST);
        }
        let challenge = format!("Bearer realm=\"{}\"", token_url.lock().unwrap());
        reply(401, &[("WWW-Authenticate", &challenge)], b"")
    });
    *realm.lock().unwrap() = format!("http://{}/token", server.addr);
    let registries = loopback(RegistryConfig::default());
    let mut first = registries.session(&server.addr, "app", vec![]).unwrap();
    first.manifest("v1").unwrap();
    // The registry now refuses tok-1, which is still in the cache.
    *required.lock().unwrap() = 2;
    let mut second = registries.session(&server.addr, "app", vec![]).unwrap();
    second.manifest("v1").unwrap();
    assert_eq!(server.hits("/token"), 2);
}

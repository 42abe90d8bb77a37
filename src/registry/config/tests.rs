use super::*;

fn parse(text: &str) -> Result<RegistryConfig, RegistryConfigError> {
    RegistryConfig::parse(text, Path::new("/etc/picolet/registries.yaml"))
}

#[test]
fn a_k3s_file_with_mirrors_auth_and_tls() {
    let config = parse(
        r#"
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.local:5000"
      - "http://10.0.0.2:5000/v2"
  "Registry.Example:5000":
    endpoint: []
configs:
  "mirror.local:5000":
    auth:
      username: alice
      password: s3cret
    tls:
      ca_file: /etc/ssl/mirror-ca.pem
      cert_file: /etc/ssl/client.pem
      key_file: /etc/ssl/client-key.pem
  registry.example:5000:
    auth:
      auth: Ym9iOmh1bnRlcjI=
    tls:
      insecure_skip_verify: true
"#,
    )
    .unwrap();
    let hub: Vec<_> = config
        .mirrors_of("docker.io")
        .iter()
        .map(|e| (e.base.as_str(), e.plain_http))
        .collect();
    assert_eq!(
        hub,
        [
            ("https://mirror.local:5000", false),
            ("http://10.0.0.2:5000", true)
        ]
    );
    assert!(config.mirrors_of("registry.example:5000").is_empty());
    assert!(config.mirrors_of("quay.io").is_empty());
    let mirror = config.host("mirror.local:5000").unwrap();
    assert_eq!(
        mirror.auth,
        Some(Credentials::new("alice".into(), "s3cret".into()))
    );
    assert_eq!(
        mirror.tls.ca_file.as_deref(),
        Some(Path::new("/etc/ssl/mirror-ca.pem"))
    );
    assert!(mirror.tls.cert_file.is_some() && mirror.tls.key_file.is_some());
    assert!(!mirror.tls.insecure_skip_verify);
    let example = config.host("registry.example:5000").unwrap();
    assert_eq!(
        example.auth,
        Some(Credentials::new("bob".into(), "hunter2".into()))
    );
    assert!(example.tls.insecure_skip_verify);
    assert!(config.host("other").is_none());
    // Nothing of a password in Debug.
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn a_password_that_looks_like_a_number_is_kept_as_written() {
    let config = parse("configs:\n  h:\n    auth: {username: u, password: 007}\n").unwrap();
    let auth = config.host("h").and_then(|h| h.auth.clone());
    assert_eq!(auth, Some(Credentials::new("u".into(), "007".into())));
}

#[test]
fn empty_files_and_a_missing_file_are_no_configuration() {
    for text in ["", "# nothing\n", "{}", "mirrors: {}\nconfigs: {}\n"] {
        let config = parse(text).unwrap();
        assert!(
            config.mirrors.is_empty() && config.configs.is_empty(),
            "{text:?}"
        );
    }
    let config = RegistryConfig::load(Path::new("/nonexistent/registries.yaml")).unwrap();
    assert!(config.mirrors.is_empty());
}

#[test]
fn errors_name_the_key() {
    let key_of = |text: &str| match parse(text) {
        Err(RegistryConfigError::Decode { key, .. })
        | Err(RegistryConfigError::Invalid { key, .. })
        | Err(RegistryConfigError::Unsupported { key, .. }) => key,
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(
        key_of("mirrors:\n  docker.io:\n    endpoints: [x]\n"),
        "mirrors.docker.io.endpoints"
    );
    assert_eq!(key_of("mirror: {}\n"), "mirror");
    assert_eq!(
        key_of("configs:\n  h:\n    tls:\n      insecure_skip_verify: maybe\n"),
        "configs.h.tls.insecure_skip_verify"
    );
    assert_eq!(
        key_of("mirrors:\n  docker.io:\n    endpoint: ['ftp://x']\n"),
        "mirrors.docker.io.endpoint[0]"
    );
    assert_eq!(
        key_of("mirrors:\n  docker.io:\n    endpoint: ['https://u:p@x']\n"),
        "mirrors.docker.io.endpoint[0]"
    );
    assert_eq!(
        key_of("mirrors:\n  'a/b':\n    endpoint: []\n"),
        "mirrors.a/b"
    );
    assert_eq!(
        key_of("configs:\n  'https://h':\n    auth: {username: u}\n"),
        "configs.https://h"
    );
    assert_eq!(
        key_of("configs:\n  h:\n    tls: {cert_file: c.pem}\n"),
        "configs.h.tls"
    );
    assert_eq!(
        key_of("configs:\n  h:\n    auth: {auth: '!!!'}\n"),
        "configs.h.auth"
    );
    let e = parse("mirrors:\n  docker.io:\n    endpoint: [m]\n    rewrite:\n      '^rancher/(.*)': 'mirror/$1'\n").unwrap_err();
    assert!(
        matches!(&e, RegistryConfigError::Unsupported { key, .. } if key == "mirrors.docker.io.rewrite"),
        "{e:?}"
    );
    let shown = e.to_string();
    assert!(shown.contains("/etc/picolet/registries.yaml: mirrors.docker.io.rewrite: a k3s key picolet does not support"), "{shown}");
    for field in ["token", "identitytoken"] {
        let e = parse(&format!("configs:\n  h:\n    auth: {{{field}: abc}}\n")).unwrap_err();
        assert!(
            matches!(&e, RegistryConfigError::Unsupported { key, .. } if *key == format!("configs.h.auth.{field}")),
            "{e:?}"
        );
        assert!(!e.to_string().contains("abc"));
    }
}

#[test]
fn hostile_files_are_refused_without_a_secret_in_the_message() {
    let deep = "[".repeat(100) + &"]".repeat(100);
    assert!(matches!(
        parse(&deep),
        Err(RegistryConfigError::Yaml { .. })
    ));
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
    assert!(matches!(parse(bomb), Err(RegistryConfigError::Yaml { .. })));
    assert!(matches!(
        parse("[1, 2]"),
        Err(RegistryConfigError::Decode { .. })
    ));
    assert!(matches!(
        parse("mirrors: [x]"),
        Err(RegistryConfigError::Decode { .. })
    ));
    for text in [
        "configs:\n  h:\n    auth: {username: u, password: hunter2, extra: 1}\n",
        "configs:\n  h:\n    auth: hunter2\n",
        "configs:\n  h:\n    auth: {username: u, password: [hunter2]}\n",
    ] {
        let e = parse(text).unwrap_err();
        assert!(
            matches!(&e, RegistryConfigError::AuthShape { key, .. } if key.starts_with("configs.h.auth")),
            "{e:?}"
        );
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    let _ = parse("\u{0}\u{ff}:::");
}

#[test]
fn load_bounds_the_file_and_reads_it() {
    let dir = std::env::temp_dir().join(format!("picolet-regcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.yaml");
    std::fs::write(&big, vec![b'#'; MAX_REGISTRY_CONFIG as usize + 1]).unwrap();
    assert!(matches!(
        RegistryConfig::load(&big),
        Err(RegistryConfigError::TooLarge { .. })
    ));
    let good = dir.join("registries.yaml");
    std::fs::write(
        &good,
        "configs:\n  h:\n    auth: {username: u, password: p}\n",
    )
    .unwrap();
    let config = RegistryConfig::load(&good).unwrap();
    assert!(config.host("h").and_then(|h| h.auth.as_ref()).is_some());
    assert!(matches!(
        RegistryConfig::load(&dir),
        Err(RegistryConfigError::Read { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

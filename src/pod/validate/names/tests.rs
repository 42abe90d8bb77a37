use super::*;

/// The attack strings of issue 13 and their neighbours.
const HOSTILE: [&str; 6] = ["../../../tmp/x", "..", ".", "a/b", "a\0b", ""];

#[test]
fn a_pod_uid_is_one_safe_path_component() {
    for uid in
        HOSTILE
            .iter()
            .copied()
            .chain(["../../../../../../../../tmp/victim2", "/abs", "a_b", "a b"])
    {
        let e = pod_uid(uid).unwrap_err();
        assert_eq!(e, NameError::PodUid(uid.into()));
        assert!(
            e.to_string().contains("is not a valid pod UID"),
            "{uid:?}: {e}"
        );
    }
    let long = "a".repeat(64);
    assert_eq!(
        pod_uid(&long),
        Err(NameError::PodUid(long.clone())),
        "64 bytes is too long"
    );
    let longer = "a".repeat(300);
    assert_eq!(pod_uid(&longer), Err(NameError::PodUid(longer.clone())));
    for uid in [
        "0b0f4c5e-8d9a-4a56-9a4b-3f1a2c7d9e10",
        "9f86d081884c7d659a2feaa0c55ad015",
        "web-1",
        &"a".repeat(63),
    ] {
        assert_eq!(pod_uid(uid), Ok(()), "{uid:?}");
    }
}

#[test]
fn names_that_become_paths_are_labels_or_subdomains() {
    let long = "a".repeat(300);
    for name in HOSTILE.iter().copied().chain([long.as_str()]) {
        assert_eq!(
            dns1123_label(name),
            Err(NameError::Dns1123Label(name.into())),
            "{name:?}"
        );
        assert_eq!(
            dns1123_subdomain(name),
            Err(NameError::Dns1123Subdomain(name.into())),
            "{name:?}"
        );
    }
    let labels_too_long = "a".repeat(253);
    assert_eq!(
        dns1123_subdomain(&labels_too_long),
        Err(NameError::Dns1123Subdomain(labels_too_long.clone())),
        "253 a's: a label over 63"
    );
    assert_eq!(dns1123_subdomain("app.config-1"), Ok(()));
}

#[test]
fn keys_are_config_map_keys() {
    for key in HOSTILE.iter().copied().chain(["a b", "k=v"]) {
        let e = config_map_key(key).unwrap_err();
        assert_eq!(e, NameError::ConfigMapKey(key.into()));
        assert!(e.to_string().contains("is not a valid key"), "{key:?}: {e}");
    }
    let long = "k".repeat(254);
    assert_eq!(
        config_map_key(&long),
        Err(NameError::ConfigMapKey(long.clone()))
    );
    for key in ["app.properties", "..a", ".env", "K_1-x", &"k".repeat(253)] {
        assert_eq!(config_map_key(key), Ok(()), "{key:?}");
    }
}

#[test]
fn descending_paths_stay_below_their_directory() {
    for (p, want) in [
        ("../../../tmp/x", "must not contain '..'"),
        ("..", "must not contain '..'"),
        ("a/../../b", "must not contain '..'"),
        ("/etc/passwd", "must be a relative path"),
        ("a\0b", "must not contain NUL"),
    ] {
        let e = local_descending_path(p).unwrap_err().to_string();
        assert!(e.ends_with(want), "{p:?}: {e}");
    }
    let e = local_descending_path(&format!("a/{}", "b".repeat(300))).unwrap_err();
    assert_eq!(e, PathError::TooLong(302));
    assert!(e.to_string().starts_with("is 302 bytes"), "{e}");
    for p in ["x", "a/b", "./x", "..x", "a/..b"] {
        assert_eq!(local_descending_path(p), Ok(()), "{p:?}");
    }
    let e = local_non_reserved_path("..data/x").unwrap_err();
    assert_eq!(e, PathError::Reserved("..data/x".into()));
    assert_eq!(e.to_string(), "\"..data/x\" must not start with '..'");
}

#[test]
fn port_and_header_names() {
    assert_eq!(port_name("http"), Ok(()));
    assert_eq!(port_name("8080"), Err(NameError::PortName("8080".into())));
    assert_eq!(
        http_header_name("X-Probe"),
        Ok(()),
        "letters, digits and '-'"
    );
    assert_eq!(
        http_header_name("a b"),
        Err(NameError::HttpHeaderName("a b".into()))
    );
}

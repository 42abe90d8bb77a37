//! Following an HTTP redirect by hand: the origin a URL names (a
//! redirect's headers, credentials among them, go only to the origin the
//! first request went to) and a Location header resolved against the URL
//! that answered it. Shared by the manifest URL poller (`source/url.rs`)
//! and the registry client (`registry/exchange.rs`).

/// Scheme, host and port of an absolute http(s) URL: where its headers may go.
pub fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    Some((scheme, host, uri.port_u16().unwrap_or(default_port)))
}

/// A Location header resolved against the URL that answered it.
pub fn resolve(base: &str, location: &str) -> Option<String> {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(location.to_string());
    }
    let uri: ureq::http::Uri = base.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_redirect_targets() {
        let o = |u| origin(u).map(|(s, h, p)| format!("{s} {h} {p}"));
        assert_eq!(
            o("https://Fleet.Example/x").as_deref(),
            Some("https fleet.example 443")
        );
        assert_eq!(
            o("http://127.0.0.1:8080/x").as_deref(),
            Some("http 127.0.0.1 8080")
        );
        assert_eq!(o("ftp://h/x"), None);
        assert_eq!(o("/relative"), None);
        let base = "https://a.example:8443/dir/pods.yaml?x=1";
        let r = |l| resolve(base, l).unwrap();
        assert_eq!(r("https://b.example/p"), "https://b.example/p");
        assert_eq!(r("//b.example/p"), "https://b.example/p");
        assert_eq!(r("/p"), "https://a.example:8443/p");
        assert_eq!(r("other.yaml"), "https://a.example:8443/dir/other.yaml");
        assert_ne!(origin(&r("//b.example/p")), origin(base));
        assert_eq!(origin(&r("other.yaml")), origin(base));
    }
}

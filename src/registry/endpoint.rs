//! Endpoints: where a registry's requests go. A registry's mirrors from
//! registries.yaml come first, in the file's order, then its upstream
//! (`https://<registry>`, Docker Hub's at `https://registry-1.docker.io`),
//! as k3s's containerd tries them. An upstream is always HTTPS; plain HTTP
//! only for a mirror endpoint written with `http://` (k3s does the same);
//! `host:port` without a scheme means HTTPS.

use super::config::RegistryConfig;
use std::fmt;

/// Docker Hub's registry API host: `docker.io` names it in references.
pub const DOCKER_HUB_UPSTREAM: &str = "registry-1.docker.io";

/// One place to send a registry's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port][/prefix]`, no trailing slash; requests go to
    /// `<base>/v2/…`. Never holds credentials (refused when written).
    pub base: String,
    /// `host[:port]` in lower case, as written: the `configs` key.
    pub host: String,
    /// `http://`, written so in a mirror endpoint.
    pub plain_http: bool,
    /// The registry itself rather than a mirror.
    pub upstream: bool,
}

/// Why an endpoint URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointError {
    /// A scheme other than http(s), or http where it is not allowed.
    Scheme(String),
    /// `user:password@` in the URL: credentials go in `configs.<host>.auth`.
    Userinfo,
    /// A query or fragment, which a registry base URL cannot have.
    Query,
    /// Not a `host[:port]`.
    Host(String),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Scheme(s) => {
                write!(f, "scheme {s:?}: an endpoint is https:// or http://")
            }
            EndpointError::Userinfo => {
                f.write_str("credentials in the URL are refused: write them in configs.<host>.auth")
            }
            EndpointError::Query => f.write_str("a query or fragment has no place in an endpoint"),
            EndpointError::Host(h) => write!(f, "{h:?} is not a host[:port]"),
        }
    }
}

impl std::error::Error for EndpointError {}

/// An endpoint URL: `https://h[:p][/prefix]`, `http://…` when
/// `allow_http`, or `h[:p][/prefix]` meaning HTTPS. A trailing `/v2` is
/// dropped (it is added to every request).
pub fn parse_endpoint(url: &str, allow_http: bool) -> Result<Endpoint, EndpointError> {
    let url = url.trim();
    let (plain_http, rest) = match url.find("://") {
        None => (false, url),
        Some(i) => match url[..i].to_ascii_lowercase().as_str() {
            "https" => (false, &url[i + 3..]),
            "http" if allow_http => (true, &url[i + 3..]),
            scheme => return Err(EndpointError::Scheme(scheme.to_string())),
        },
    };
    if rest.contains(['?', '#']) {
        return Err(EndpointError::Query);
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(EndpointError::Userinfo);
    }
    let host = authority.to_ascii_lowercase();
    if !valid_host(&host) {
        return Err(EndpointError::Host(authority.to_string()));
    }
    let path = path.trim_end_matches('/');
    let prefix = path.strip_suffix("/v2").unwrap_or(path);
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'%' && b != b'\\')
    {
        return Err(EndpointError::Host(url.to_string()));
    }
    let scheme = if plain_http { "http" } else { "https" };
    Ok(Endpoint {
        base: format!("{scheme}://{host}{prefix}"),
        host,
        plain_http,
        upstream: false,
    })
}

/// `host[:port]`: a DNS name or IPv4 address of letters, digits, `.` and
/// `-`, or an IPv6 address in brackets; a port of 1 to 65535.
pub fn valid_host(host: &str) -> bool {
    let (name_ok, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let Some((addr, rest)) = v6.split_once(']') else {
                return false;
            };
            let ok = !addr.is_empty()
                && addr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            match rest {
                "" => (ok, None),
                _ => match rest.strip_prefix(':') {
                    Some(port) => (ok, Some(port)),
                    None => return false,
                },
            }
        }
        None => match host.split_once(':') {
            Some((name, port)) => (valid_name(name), Some(port)),
            None => (valid_name(host), None),
        },
    };
    let port_ok = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    };
    name_ok && port.is_none_or(port_ok)
}

/// A DNS name or IPv4 address: letters, digits, `.` and `-`, not starting
/// with either separator.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !name.starts_with(['.', '-'])
}

/// A registry's endpoints: its mirrors, then its upstream. Refuses a
/// registry name that is not a `host[:port]`.
pub fn endpoints(config: &RegistryConfig, registry: &str) -> Result<Vec<Endpoint>, EndpointError> {
    let mut registry = registry.to_ascii_lowercase();
    if !valid_host(&registry) {
        return Err(EndpointError::Host(registry));
    }
    // Docker Hub's other names are docker.io, whose mirrors k3s files use.
    if matches!(registry.as_str(), "index.docker.io" | DOCKER_HUB_UPSTREAM) {
        registry = "docker.io".to_string();
    }
    let upstream_host = match registry.as_str() {
        "docker.io" => DOCKER_HUB_UPSTREAM,
        other => other,
    };
    let mut list = config.mirrors_of(&registry).to_vec();
    list.push(Endpoint {
        base: format!("https://{upstream_host}"),
        host: upstream_host.to_string(),
        plain_http: false,
        upstream: true,
    });
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn bases(list: &[Endpoint]) -> Vec<&str> {
        list.iter().map(|e| e.base.as_str()).collect()
    }

    #[test]
    fn endpoint_urls_as_k3s_reads_them() {
        let e = parse_endpoint("mirror.local:5000", false).unwrap();
        assert_eq!(
            (e.base.as_str(), e.host.as_str(), e.plain_http),
            ("https://mirror.local:5000", "mirror.local:5000", false)
        );
        let e = parse_endpoint("HTTP://10.0.0.2:5000/v2/", true).unwrap();
        assert_eq!(
            (e.base.as_str(), e.plain_http),
            ("http://10.0.0.2:5000", true)
        );
        let e = parse_endpoint("https://Mirror.Example/cache/docker/", false).unwrap();
        assert_eq!(e.base, "https://mirror.example/cache/docker");
        let e = parse_endpoint("https://[::1]:5000", false).unwrap();
        assert_eq!(e.host, "[::1]:5000");
        assert_eq!(
            parse_endpoint("http://h", false),
            Err(EndpointError::Scheme("http".into()))
        );
        assert_eq!(
            parse_endpoint("ftp://h", true),
            Err(EndpointError::Scheme("ftp".into()))
        );
        assert_eq!(
            parse_endpoint("https://u:p@h", true),
            Err(EndpointError::Userinfo)
        );
        assert_eq!(
            parse_endpoint("https://h/?x", true),
            Err(EndpointError::Query)
        );
        for bad in [
            "", "https://", "h:", "h:0", "h:99999", "h:1x", "-h", "h_x", "[zz]", "[::1",
        ] {
            assert!(
                matches!(parse_endpoint(bad, true), Err(EndpointError::Host(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mirrors_in_order_then_the_upstream() {
        let config = RegistryConfig::parse(
            "mirrors:\n  docker.io:\n    endpoint: ['http://10.0.0.2:5000', 'mirror.local']\n  '*':\n    endpoint: ['https://any.local']\n",
            Path::new("registries.yaml"),
        )
        .unwrap();
        let hub = endpoints(&config, "docker.io").unwrap();
        assert_eq!(
            bases(&hub),
            [
                "http://10.0.0.2:5000",
                "https://mirror.local",
                "https://registry-1.docker.io"
            ]
        );
        assert_eq!(
            hub.iter().map(|e| e.upstream).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(endpoints(&config, "index.docker.io").unwrap(), hub);
        let other = endpoints(&config, "Quay.io").unwrap();
        assert_eq!(bases(&other), ["https://any.local", "https://quay.io"]);
        let none = endpoints(&RegistryConfig::default(), "reg.example:5000").unwrap();
        assert_eq!(bases(&none), ["https://reg.example:5000"]);
        assert!(endpoints(&config, "a/b").is_err());
        assert!(endpoints(&config, "http://a").is_err());
    }
}

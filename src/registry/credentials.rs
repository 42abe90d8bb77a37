//! Registry credentials: a username and password, from registries.yaml's
//! `configs.<host>.auth` or from a pod's `imagePullSecrets`
//! (kubernetes.io/dockerconfigjson). The password never reaches a log or
//! a message: `Debug` hides it, and the Authorization header is built here.

use std::fmt;

/// A username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// Credentials from their two parts.
    pub fn new(username: String, password: String) -> Credentials {
        Credentials { username, password }
    }

    /// The username, which may be shown.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The `Authorization` header value of HTTP Basic authentication.
    pub(super) fn basic_authorization(&self) -> String {
        let plain = format!("{}:{}", self.username, self.password);
        format!("Basic {}", crate::base64::encode(plain.as_bytes()))
    }

    /// Credentials from a base64 `user:password` (the `auth` field).
    pub(super) fn from_auth_field(auth: &str) -> Result<Credentials, AuthFieldError> {
        let bytes = crate::base64::decode(auth).map_err(|_| AuthFieldError::NotBase64)?;
        let text = String::from_utf8(bytes).map_err(|_| AuthFieldError::NotUtf8)?;
        let (username, password) = text.split_once(':').ok_or(AuthFieldError::NoColon)?;
        Ok(Credentials::new(username.to_string(), password.to_string()))
    }

    /// A stable identity of these credentials for the token cache: tokens
    /// got with one password are not used for another. A digest, so the
    /// cache holds no password.
    pub(super) fn fingerprint(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(self.username.as_bytes());
        hash.update([0]);
        hash.update(self.password.as_bytes());
        hash.finalize().into()
    }
}

/// Why an `auth` field (base64 of `user:password`) was refused; the
/// field's value is never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFieldError {
    NotBase64,
    NotUtf8,
    /// The decoded text has no `:` between user and password.
    NoColon,
}

impl fmt::Display for AuthFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFieldError::NotBase64 => "auth: not base64",
            AuthFieldError::NotUtf8 => "auth: not UTF-8 once decoded",
            AuthFieldError::NoColon => "auth: not user:password once decoded",
        })
    }
}

impl std::error::Error for AuthFieldError {}

/// The largest dockerconfigjson read: a Secret is at most 1 MiB.
pub const MAX_DOCKER_CONFIG: usize = 1 << 20;

/// Why a dockerconfigjson could not be read.
#[derive(Debug)]
pub enum DockerConfigError {
    /// Over [`MAX_DOCKER_CONFIG`] bytes.
    TooLarge,
    /// Not JSON of the expected shape, at this place; the parser's own
    /// words are not kept, since they may quote a credential.
    Shape { line: usize, column: usize },
    /// Over src/json.rs's bounds.
    Bounds(crate::json::JsonError),
    /// The entry for this key has a bad `auth` field.
    Auth {
        key: String,
        problem: AuthFieldError,
    },
}

impl fmt::Display for DockerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerConfigError::TooLarge => {
                write!(f, "dockerconfigjson: larger than {MAX_DOCKER_CONFIG} bytes")
            }
            DockerConfigError::Shape { line, column } => write!(
                f,
                "dockerconfigjson: line {line} column {column}: not {{\"auths\":{{host:{{username,password}} or {{auth}}}}}} (the value is not shown)"
            ),
            DockerConfigError::Bounds(e) => write!(f, "dockerconfigjson: {e}"),
            DockerConfigError::Auth { key, problem } => {
                write!(f, "dockerconfigjson: auths.{key}: {problem}")
            }
        }
    }
}

impl std::error::Error for DockerConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DockerConfigError::TooLarge => None,
            DockerConfigError::Shape { .. } => None,
            DockerConfigError::Bounds(e) => Some(e),
            DockerConfigError::Auth { problem, .. } => Some(problem),
        }
    }
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, DockerAuth>,
}

#[derive(serde::Deserialize)]
struct DockerAuth {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

/// The credentials a kubernetes.io/dockerconfigjson Secret holds for
/// `registry_host` (a reference's registry: `docker.io`,
/// `registry.example:5000`), if any.
///
/// Keys match as the kubelet's keyring does, kept to hosts: a scheme
/// (`https://`) and a path (`/v1/`, `/v2/`, or a namespace) are dropped,
/// as the docker CLI's `ConvertToHostname` does; hosts compare without
/// case, ports must be equal; a key's `*.` label matches one label
/// (`*.example.com`); `docker.io`, `index.docker.io` and
/// `registry-1.docker.io` (and the legacy `https://index.docker.io/v1/`)
/// are one registry. An exact key wins over a pattern. `username` and
/// `password` win over `auth`, as containerd reads them.
pub fn from_docker_config_json(
    bytes: &[u8],
    registry_host: &str,
) -> Result<Option<Credentials>, DockerConfigError> {
    if bytes.len() > MAX_DOCKER_CONFIG {
        return Err(DockerConfigError::TooLarge);
    }
    let config: DockerConfig = crate::json::from_slice(bytes).map_err(|e| match e {
        crate::json::JsonError::Invalid(e) => DockerConfigError::Shape {
            line: e.line(),
            column: e.column(),
        },
        bounds => DockerConfigError::Bounds(bounds),
    })?;
    let wanted = canonical_host(registry_host);
    let exact = config
        .auths
        .iter()
        .find(|(key, _)| canonical_host(&key_host(key)) == wanted);
    let found = exact.or_else(|| {
        config
            .auths
            .iter()
            .find(|(key, _)| pattern_matches(&key_host(key), &wanted))
    });
    let Some((key, entry)) = found else {
        return Ok(None);
    };
    if let Some(username) = entry.username.as_ref().filter(|u| !u.is_empty()) {
        let password = entry.password.clone().unwrap_or_default();
        return Ok(Some(Credentials::new(username.clone(), password)));
    }
    match entry.auth.as_deref().filter(|a| !a.is_empty()) {
        Some(auth) => Credentials::from_auth_field(auth)
            .map(Some)
            .map_err(|problem| DockerConfigError::Auth {
                key: key.clone(),
                problem,
            }),
        None => Ok(None),
    }
}

/// A key's host and port: no scheme, no path, lower case.
fn key_host(key: &str) -> String {
    let lower = key.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    rest.split('/').next().unwrap_or("").to_string()
}

/// Docker Hub's names as one.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

/// `*.example.com` against `a.example.com`: a `*` label matches one
/// label; ports must be equal.
fn pattern_matches(pattern: &str, host: &str) -> bool {
    if !pattern.contains('*') {
        return false;
    }
    let split = |h: &str| {
        let (name, port) = h.split_once(':').unwrap_or((h, ""));
        (name.to_string(), port.to_string())
    };
    let ((p_name, p_port), (h_name, h_port)) = (split(pattern), split(host));
    let (p_labels, h_labels): (Vec<_>, Vec<_>) =
        (p_name.split('.').collect(), h_name.split('.').collect());
    p_port == h_port
        && p_labels.len() == h_labels.len()
        && p_labels
            .iter()
            .zip(&h_labels)
            .all(|(p, h)| *p == "*" || p == h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str, host: &str) -> Option<(String, String)> {
        from_docker_config_json(json.as_bytes(), host)
            .unwrap()
            .map(|c| (c.username, c.password))
    }

    fn pair(u: &str, p: &str) -> Option<(String, String)> {
        Some((u.to_string(), p.to_string()))
    }

    #[test]
    fn docker_hub_keys_are_one_registry() {
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "HTTPS://Docker.IO/v2/",
        ] {
            let json = format!(r#"{{"auths":{{"{key}":{{"username":"u","password":"p"}}}}}}"#);
            assert_eq!(creds(&json, "docker.io"), pair("u", "p"), "{key}");
        }
    }

    #[test]
    fn hosts_ports_patterns_and_the_auth_field() {
        // "user:pa:ss" in base64: the password keeps its colon.
        let json = r#"{"auths":{
            "reg.example:5000/team":{"auth":"dXNlcjpwYTpzcw=="},
            "*.example.com":{"username":"wild","password":"w"},
            "a.example.com":{"username":"exact","password":"e"},
            "other.example":{"username":"u","password":"p","auth":"eDp5"}
        }}"#;
        assert_eq!(creds(json, "reg.example:5000"), pair("user", "pa:ss"));
        assert_eq!(creds(json, "reg.example"), None);
        assert_eq!(creds(json, "reg.example:5001"), None);
        assert_eq!(creds(json, "a.example.com"), pair("exact", "e"));
        assert_eq!(creds(json, "b.example.com"), pair("wild", "w"));
        assert_eq!(creds(json, "x.b.example.com"), None);
        assert_eq!(creds(json, "b.example.com:443"), None);
        assert_eq!(creds(json, "other.example"), pair("u", "p"));
        assert_eq!(creds(r#"{"auths":{}}"#, "docker.io"), None);
        assert_eq!(creds(r#"{}"#, "docker.io"), None);
    }

    #[test]
    fn bad_secrets_are_typed_errors_that_show_no_secret() {
        let bad = r#"{"auths":{"h":{"auth":"c2VjcmV0"}}}"#;
        match from_docker_config_json(bad.as_bytes(), "h") {
            Err(e @ DockerConfigError::Auth { .. }) => {
                assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
                assert!(e.to_string().contains("auths.h"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let e = from_docker_config_json(b"{\"auths\":{\"h\":{\"auth\":\"%%%\"}}}", "h");
        assert!(matches!(
            e,
            Err(DockerConfigError::Auth {
                problem: AuthFieldError::NotBase64,
                ..
            })
        ));
        assert!(matches!(
            from_docker_config_json(b"[", "h"),
            Err(DockerConfigError::Shape { .. })
        ));
        let leaky = br#"{"auths":{"h":"c2VjcmV0"}}"#;
        match from_docker_config_json(leaky, "h") {
            Err(e @ DockerConfigError::Shape { .. }) => {
                assert!(!format!("{e} {e:?}").contains("c2VjcmV0"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        let huge = vec![b' '; MAX_DOCKER_CONFIG + 1];
        assert!(matches!(
            from_docker_config_json(&huge, "h"),
            Err(DockerConfigError::TooLarge)
        ));
    }

    #[test]
    fn debug_hides_the_password_and_basic_is_rfc_7617() {
        let c = Credentials::new("alice".into(), "s3cret-pw".into());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert_eq!(
            Credentials::new("Aladdin".into(), "open sesame".into()).basic_authorization(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        for plain in ["", "a", "ab", "abc", "abcd"] {
            let encoded = crate::base64::encode(plain.as_bytes());
            assert_eq!(crate::base64::decode(&encoded).unwrap(), plain.as_bytes());
        }
    }
}

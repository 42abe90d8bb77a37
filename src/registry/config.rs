//! registries.yaml in k3s's format, the file edge users already write:
//!
//! ```yaml
//! mirrors:
//!   docker.io:                     # a registry, or "*" for every registry
//!     endpoint: ["https://mirror.local:5000", "http://10.0.0.2:5000"]
//! configs:
//!   mirror.local:5000:             # an endpoint's host[:port]
//!     auth: {username: u, password: p}     # or {auth: base64(u:p)}
//!     tls: {ca_file: /etc/ca.pem, cert_file: c.pem, key_file: k.pem, insecure_skip_verify: false}
//! ```
//!
//! Every key is known: a typo (`endpoints`) would otherwise send pulls
//! upstream without a word. k3s keys picolet does not implement are refused
//! by name rather than ignored, since ignoring them pulls something else
//! than the file asks for: `rewrite` (a mirror's repository rewrites) and
//! the `token` and `identitytoken` auth fields.

use super::credentials::{AuthFieldError, Credentials};
use super::endpoint::{parse_endpoint, valid_host, Endpoint, EndpointError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The largest registries.yaml read: a few hundred mirrors and hosts fit
/// in 64 KiB; a larger file is not a registry configuration.
pub const MAX_REGISTRY_CONFIG: u64 = 1 << 20;

/// The registries configuration: mirrors and per-host auth and TLS.
#[derive(Debug, Default, Clone)]
pub struct RegistryConfig {
    /// Mirror endpoints by registry (`docker.io`, `host:port`, `*`).
    pub(super) mirrors: BTreeMap<String, Vec<Endpoint>>,
    /// Auth and TLS by endpoint host (`host[:port]`).
    pub(super) configs: BTreeMap<String, HostConfig>,
}

/// `configs.<host>`: how to authenticate to and verify one host.
#[derive(Debug, Default, Clone)]
pub struct HostConfig {
    /// `auth`: username and password, or the `auth` field decoded.
    pub auth: Option<Credentials>,
    /// `tls`.
    pub tls: TlsFiles,
}

/// `configs.<host>.tls`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM roots trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate chain, with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's PEM private key.
    pub key_file: Option<PathBuf>,
    /// The host's certificate is not verified (only when written true).
    pub insecure_skip_verify: bool,
}

/// Why registries.yaml was refused; names the file and the key.
#[derive(Debug)]
pub enum RegistryConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Over [`MAX_REGISTRY_CONFIG`] bytes.
    TooLarge { path: PathBuf },
    /// Over src/yaml.rs's bounds.
    Yaml {
        path: PathBuf,
        source: crate::yaml::YamlError,
    },
    /// Not the expected shape: an unknown key, a wrong type.
    Decode {
        path: PathBuf,
        key: String,
        source: serde_yaml::Error,
    },
    /// Not the expected shape under an `auth` key: the parser's words are
    /// not shown, since they may quote a credential.
    AuthShape { path: PathBuf, key: String },
    /// A key picolet does not implement (see the module comment).
    Unsupported { path: PathBuf, key: String },
    /// A value that is not what its key needs.
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
}

impl fmt::Display for RegistryConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryConfigError::Read { path, source } => {
                write!(f, "{}: {source}", path.display())
            }
            RegistryConfigError::TooLarge { path } => write!(
                f,
                "{}: larger than {MAX_REGISTRY_CONFIG} bytes",
                path.display()
            ),
            RegistryConfigError::Yaml { path, source } => {
                write!(f, "{}: {source}", path.display())
            }
            RegistryConfigError::Decode { path, key, source } => {
                write!(f, "{}: {key}: {source}", path.display())
            }
            RegistryConfigError::AuthShape { path, key } => write!(
                f,
                "{}: {key}: expected username and password, or auth, as strings (quote a number); the value is not shown",
                path.display()
            ),
            RegistryConfigError::Unsupported { path, key } => write!(
                f,
                "{}: {key}: a k3s key picolet does not support: remove it (refused rather than ignored, so that nothing else than the file asks for is pulled)",
                path.display()
            ),
            RegistryConfigError::Invalid { path, key, problem } => {
                write!(f, "{}: {key}: {problem}", path.display())
            }
        }
    }
}

impl std::error::Error for RegistryConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryConfigError::Read { source, .. } => Some(source),
            RegistryConfigError::Yaml { source, .. } => Some(source),
            RegistryConfigError::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    mirrors: BTreeMap<String, MirrorEntry>,
    #[serde(default)]
    configs: BTreeMap<String, ConfigEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MirrorEntry {
    #[serde(default)]
    endpoint: Vec<String>,
    /// Refused when present; held only to name it.
    #[serde(default)]
    rewrite: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigEntry {
    #[serde(default)]
    auth: Option<AuthEntry>,
    #[serde(default)]
    tls: Option<TlsEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthEntry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    /// Refused when present; held only to name it.
    #[serde(default)]
    token: Option<serde::de::IgnoredAny>,
    /// Refused when present; held only to name it.
    #[serde(default)]
    identitytoken: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsEntry {
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

impl RegistryConfig {
    /// The file at `path`; a missing file is an empty configuration (no
    /// mirrors, anonymous pulls verified with the system roots). Warns when
    /// a file holding a password is readable by group or others.
    pub fn load(path: &Path) -> Result<RegistryConfig, RegistryConfigError> {
        use std::io::Read;
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryConfig::default())
            }
            Err(source) => {
                return Err(RegistryConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let mut text = String::new();
        file.take(MAX_REGISTRY_CONFIG + 1)
            .read_to_string(&mut text)
            .map_err(|source| RegistryConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if text.len() as u64 > MAX_REGISTRY_CONFIG {
            return Err(RegistryConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let config = RegistryConfig::parse(&text, path)?;
        if config.configs.values().any(|c| c.auth.is_some()) {
            crate::state::warn_if_readable_by_others(path, "registry passwords");
        }
        Ok(config)
    }

    /// The text of a registries.yaml; `path` only names it in errors. Pure:
    /// reads no file named in it (a fuzz entry).
    pub fn parse(text: &str, path: &Path) -> Result<RegistryConfig, RegistryConfigError> {
        let path_buf = || path.to_path_buf();
        crate::yaml::check(text.as_bytes()).map_err(|source| RegistryConfigError::Yaml {
            path: path_buf(),
            source,
        })?;
        // An empty file (or one of comments) is YAML null: no configuration.
        let file: Option<File> = serde_path_to_error::deserialize(
            serde_yaml::Deserializer::from_str(text),
        )
        .map_err(|e| {
            let key = e.path().to_string();
            if key.split('.').any(|segment| segment == "auth") {
                RegistryConfigError::AuthShape {
                    path: path_buf(),
                    key,
                }
            } else {
                RegistryConfigError::Decode {
                    path: path_buf(),
                    key,
                    source: e.into_inner(),
                }
            }
        })?;
        let file = file.unwrap_or_default();
        let mut config = RegistryConfig::default();
        for (registry, entry) in file.mirrors {
            let (key, endpoints) = mirror(&registry, entry).map_err(|e| e.at(path))?;
            config.mirrors.insert(key, endpoints);
        }
        for (host, entry) in file.configs {
            let (key, host_config) = host_config(&host, entry).map_err(|e| e.at(path))?;
            config.configs.insert(key, host_config);
        }
        Ok(config)
    }

    /// The mirror endpoints of `registry`, in the file's order: its own
    /// entry, else the `*` entry, else none.
    pub(super) fn mirrors_of(&self, registry: &str) -> &[Endpoint] {
        let registry = registry.to_ascii_lowercase();
        self.mirrors
            .get(&registry)
            .or_else(|| self.mirrors.get("*"))
            .map_or(&[], Vec::as_slice)
    }

    /// `configs.<host>` for an endpoint's host, else `configs."*"`.
    pub(super) fn host(&self, host: &str) -> Option<&HostConfig> {
        self.configs.get(host).or_else(|| self.configs.get("*"))
    }
}

/// A refusal before the file's path is known.
struct KeyError {
    key: String,
    kind: KeyProblem,
}

enum KeyProblem {
    Unsupported,
    Invalid(String),
}

impl KeyError {
    fn invalid(key: String, problem: impl fmt::Display) -> KeyError {
        KeyError {
            key,
            kind: KeyProblem::Invalid(problem.to_string()),
        }
    }

    fn at(self, path: &Path) -> RegistryConfigError {
        let path = path.to_path_buf();
        match self.kind {
            KeyProblem::Unsupported => RegistryConfigError::Unsupported {
                path,
                key: self.key,
            },
            KeyProblem::Invalid(problem) => RegistryConfigError::Invalid {
                path,
                key: self.key,
                problem,
            },
        }
    }
}

fn mirror(registry: &str, entry: MirrorEntry) -> Result<(String, Vec<Endpoint>), KeyError> {
    let name = registry.to_ascii_lowercase();
    if name != "*" && !valid_host(&name) {
        return Err(KeyError::invalid(
            format!("mirrors.{registry}"),
            "not a registry host[:port] or \"*\"",
        ));
    }
    if entry.rewrite.is_some() {
        return Err(KeyError {
            key: format!("mirrors.{registry}.rewrite"),
            kind: KeyProblem::Unsupported,
        });
    }
    let endpoints = entry
        .endpoint
        .iter()
        .enumerate()
        .map(|(i, url)| {
            parse_endpoint(url, true).map_err(|e: EndpointError| {
                KeyError::invalid(format!("mirrors.{registry}.endpoint[{i}]"), e)
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((name, endpoints))
}

fn host_config(host: &str, entry: ConfigEntry) -> Result<(String, HostConfig), KeyError> {
    let name = host.to_ascii_lowercase();
    if name != "*" && !valid_host(&name) {
        return Err(KeyError::invalid(
            format!("configs.{host}"),
            "not a host[:port] or \"*\" (write the endpoint's host, without a scheme)",
        ));
    }
    let auth = match entry.auth {
        None => None,
        Some(auth) => auth_of(host, auth)?,
    };
    let tls = entry.tls.map_or_else(TlsFiles::default, |t| TlsFiles {
        ca_file: t.ca_file,
        cert_file: t.cert_file,
        key_file: t.key_file,
        insecure_skip_verify: t.insecure_skip_verify,
    });
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err(KeyError::invalid(
            format!("configs.{host}.tls"),
            "cert_file and key_file go together",
        ));
    }
    Ok((name, HostConfig { auth, tls }))
}

/// username/password win over `auth`, as containerd reads them.
fn auth_of(host: &str, auth: AuthEntry) -> Result<Option<Credentials>, KeyError> {
    for (present, field) in [
        (auth.token.is_some(), "token"),
        (auth.identitytoken.is_some(), "identitytoken"),
    ] {
        if present {
            return Err(KeyError {
                key: format!("configs.{host}.auth.{field}"),
                kind: KeyProblem::Unsupported,
            });
        }
    }
    if let Some(username) = auth.username.filter(|u| !u.is_empty()) {
        return Ok(Some(Credentials::new(
            username,
            auth.password.unwrap_or_default(),
        )));
    }
    match auth.auth.filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(field) => Credentials::from_auth_field(&field)
            .map(Some)
            .map_err(|e: AuthFieldError| KeyError::invalid(format!("configs.{host}.auth"), e)),
    }
}

#[cfg(test)]
mod tests;

//! The kubeconfig file, as kubectl and the kubelet read it: the current
//! context's cluster (server, certificate-authority[-data],
//! insecure-skip-tls-verify) and user (client-certificate/key[-data], token,
//! tokenFile). Relative paths are relative to the file's directory.

use crate::base64;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The largest kubeconfig read: one with a few clusters' embedded CAs and
/// client certificates is tens of KiB.
const MAX_KUBECONFIG: u64 = 1 << 20;

/// Where the API server is and how to prove who we are. Never printed with
/// its secrets: `Debug` leaves them out.
#[derive(Clone)]
pub struct Connection {
    /// The API server's URL, without a trailing slash.
    pub server: String,
    /// PEM roots; `None` means the system's bundle.
    pub ca_pem: Option<Vec<u8>>,
    /// TLS verification off (only if the agent allows it).
    pub insecure_skip_verify: bool,
    /// PEM certificate chain and key.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// A bearer token, if the user has one.
    pub token: Option<Token>,
}

/// A bearer token, inline or from a file.
#[derive(Clone)]
pub enum Token {
    Inline(String),
    /// Read again for every request: projected tokens rotate.
    File(PathBuf),
}

/// The kubeconfig's tokenFile could not be read.
#[derive(Debug)]
pub struct TokenError {
    /// The tokenFile.
    pub path: PathBuf,
    /// Why it could not be read.
    pub error: std::io::Error,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tokenFile {}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for TokenError {}

impl Token {
    /// The token now (a file is read each time).
    pub fn value(&self) -> Result<String, TokenError> {
        match self {
            Token::Inline(t) => Ok(t.clone()),
            Token::File(path) => std::fs::read_to_string(path)
                .map(|t| t.trim().to_string())
                .map_err(|error| TokenError {
                    path: path.clone(),
                    error,
                }),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("custom_ca", &self.ca_pem.is_some())
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("client_certificate", &self.client_identity.is_some())
            .field("token", &self.token.is_some())
            .finish()
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    current_context: String,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    item: T,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(alias = "tokenFile")]
    token_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: String,
}

/// Why a kubeconfig cannot be used; every kind names the file.
#[derive(Debug)]
pub enum KubeconfigError {
    Read(PathBuf, std::io::Error),
    /// Larger than [`MAX_KUBECONFIG`].
    TooLarge(PathBuf),
    /// Not YAML, or YAML over picolet's bounds (src/yaml.rs).
    Yaml(PathBuf, String),
    /// A field missing, inconsistent or refused.
    Field {
        path: PathBuf,
        field: String,
        problem: String,
    },
}

impl fmt::Display for KubeconfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeconfigError::Read(path, e) => write!(f, "{}: {e}", path.display()),
            KubeconfigError::TooLarge(path) => {
                write!(f, "{}: larger than {MAX_KUBECONFIG} bytes", path.display())
            }
            KubeconfigError::Yaml(path, e) => write!(f, "{}: {e}", path.display()),
            KubeconfigError::Field {
                path,
                field,
                problem,
            } => write!(f, "{}: {field}: {problem}", path.display()),
        }
    }
}

impl std::error::Error for KubeconfigError {}

/// The current context's cluster and user.
struct Selected<'a> {
    cluster: &'a Cluster,
    user: &'a User,
}

/// Read `path` into a [`Connection`]; errors name the file and the field.
/// `insecure-skip-tls-verify: true` is refused unless `allow_insecure`
/// (`allowInsecureKubeconfig`).
pub fn load(path: &Path, allow_insecure: bool) -> Result<Connection, KubeconfigError> {
    let text = read_bounded(path)?;
    crate::state::warn_if_readable_by_others(path, "credentials");
    let config: Kubeconfig = crate::yaml::from_str(&text)
        .map_err(|e| KubeconfigError::Yaml(path.to_path_buf(), e.to_string()))?;
    let default_user = User::default();
    let Selected { cluster, user } = select(&config, &default_user).map_err(|e| e.at(path))?;
    check_cluster(cluster, allow_insecure).map_err(|e| e.at(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let read = |field, file: &Option<PathBuf>, data: &Option<String>| {
        credential(dir, field, file, data).map_err(|e| e.at(path))
    };
    let ca_pem = read(
        "certificate-authority",
        &cluster.certificate_authority,
        &cluster.certificate_authority_data,
    )?;
    let cert = read(
        "client-certificate",
        &user.client_certificate,
        &user.client_certificate_data,
    )?;
    let key = read("client-key", &user.client_key, &user.client_key_data)?;
    let client_identity = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            let e = FieldError::new(
                "users[].user.client-key",
                "required with client-certificate",
            );
            return Err(e.at(path));
        }
        (None, Some(_)) => {
            let e = FieldError::new(
                "users[].user.client-certificate",
                "required with client-key",
            );
            return Err(e.at(path));
        }
    };
    let token = match (&user.token, &user.token_file) {
        (Some(t), _) => Some(Token::Inline(t.clone())),
        (None, Some(f)) => Some(Token::File(dir.join(f))),
        (None, None) => None,
    };
    Ok(Connection {
        server: cluster.server.trim_end_matches('/').to_string(),
        ca_pem,
        insecure_skip_verify: cluster.insecure_skip_tls_verify,
        client_identity,
        token,
    })
}

/// A field's problem, before the file is known to name.
struct FieldError {
    field: String,
    problem: String,
}

impl FieldError {
    fn new(field: &str, problem: impl fmt::Display) -> FieldError {
        FieldError {
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }

    fn at(self, path: &Path) -> KubeconfigError {
        KubeconfigError::Field {
            path: path.to_path_buf(),
            field: self.field,
            problem: self.problem,
        }
    }
}

/// The current context's cluster and user (no user is a user without
/// credentials).
fn select<'a>(config: &'a Kubeconfig, default_user: &'a User) -> Result<Selected<'a>, FieldError> {
    let wanted = &config.current_context;
    let context = match config.contexts.iter().find(|c| c.name == *wanted) {
        Some(c) => &c.item,
        None if wanted.is_empty() => return Err(FieldError::new("current-context", "not set")),
        None => {
            let problem = format!("no context named {wanted:?}");
            return Err(FieldError::new("current-context", problem));
        }
    };
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .map(|c| &c.item)
        .ok_or_else(|| {
            let problem = format!("no cluster named {:?}", context.cluster);
            FieldError::new("contexts[].context.cluster", problem)
        })?;
    let user = match config.users.iter().find(|u| u.name == context.user) {
        Some(u) => &u.item,
        None if context.user.is_empty() => default_user,
        None => {
            let problem = format!("no user named {:?}", context.user);
            return Err(FieldError::new("contexts[].context.user", problem));
        }
    };
    Ok(Selected { cluster, user })
}

/// The server is an http(s) URL, and TLS verification is on unless the
/// agent allows a kubeconfig to turn it off.
fn check_cluster(cluster: &Cluster, allow_insecure: bool) -> Result<(), FieldError> {
    if !cluster.server.starts_with("https://") && !cluster.server.starts_with("http://") {
        let problem = format!("{:?} is not an http(s) URL", cluster.server);
        return Err(FieldError::new("clusters[].cluster.server", problem));
    }
    if cluster.insecure_skip_tls_verify && !allow_insecure {
        return Err(FieldError::new(
            "clusters[].cluster.insecure-skip-tls-verify",
            "true: the API server's identity would not be verified, and anyone on the way could act as it; give certificate-authority[-data] instead, or set allowInsecureKubeconfig: true in picolet's configuration",
        ));
    }
    Ok(())
}

/// A credential given inline (`<field>-data`, base64) or as a file relative
/// to the kubeconfig's directory.
fn credential(
    dir: &Path,
    field: &str,
    file: &Option<PathBuf>,
    data: &Option<String>,
) -> Result<Option<Vec<u8>>, FieldError> {
    if let Some(data) = data {
        return base64::decode(data)
            .map(Some)
            .map_err(|m| FieldError::new(&format!("{field}-data"), m));
    }
    let Some(file) = file else {
        return Ok(None);
    };
    let file = dir.join(file);
    std::fs::read(&file)
        .map(Some)
        .map_err(|e| FieldError::new(field, format!("{}: {e}", file.display())))
}

/// The file, at most [`MAX_KUBECONFIG`] bytes of UTF-8.
fn read_bounded(path: &Path) -> Result<String, KubeconfigError> {
    use std::io::Read;
    let read = |e| KubeconfigError::Read(path.to_path_buf(), e);
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_KUBECONFIG + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_KUBECONFIG {
        return Err(KubeconfigError::TooLarge(path.to_path_buf()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("kubeconfig");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_the_current_context_with_inline_data_and_relative_files() {
        let dir = std::env::temp_dir().join(format!("picolet-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "CA").unwrap();
        let p = write(
            &dir,
            "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: one\n  cluster: {server: 'https://a:1'}\n- name: two\n  cluster:\n    server: https://b:6443/\n    certificate-authority: ca.pem\ncontexts:\n- name: a\n  context: {cluster: one, user: u}\n- name: b\n  context: {cluster: two, user: u}\nusers:\n- name: u\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n    token: abc\n",
        );
        let c = load(&p, false).unwrap();
        assert_eq!(c.server, "https://b:6443");
        assert_eq!(c.ca_pem.as_deref(), Some(&b"CA"[..]));
        let (cert, key) = c.client_identity.clone().unwrap();
        assert_eq!(
            (cert.as_slice(), key.as_slice()),
            (&b"CERT"[..], &b"KEY"[..])
        );
        assert_eq!(c.token.as_ref().unwrap().value().unwrap(), "abc");
        // Debug never shows secrets.
        let shown = format!("{c:?}");
        assert!(!shown.contains("abc") && !shown.contains("KEY"), "{shown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let dir = std::env::temp_dir().join(format!("picolet-kc2-{}", std::process::id()));
        let p = write(
            &dir,
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: nope}\n",
        );
        let e = load(&p, false).unwrap_err();
        assert!(
            matches!(&e, KubeconfigError::Field { path, field, .. }
                if *path == p && field == "contexts[].context.cluster"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.contains("kubeconfig: contexts[].context.cluster: no cluster named \"nope\""),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_huge_or_bombed_kubeconfig_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("picolet-kc3-{}", std::process::id()));
        let p = write(&dir, &"# padding\n".repeat(200_000));
        let e = load(&p, false).unwrap_err();
        assert!(
            matches!(&e, KubeconfigError::TooLarge(path) if *path == p),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .ends_with("kubeconfig: larger than 1048576 bytes"),
            "{e}"
        );
        let mut bomb = format!("a0: &a0 [{}]\n", vec!["lol"; 100].join(","));
        for l in 1..4 {
            let refs = vec![format!("*a{}", l - 1); 100].join(",");
            bomb.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
        }
        let p = write(&dir, &bomb);
        let e = load(&p, false).unwrap_err();
        assert!(
            matches!(&e, KubeconfigError::Yaml(path, _) if *path == p),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.starts_with(&format!("{}: line 3 column", p.display())) && e.contains("alias bomb"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn insecure_skip_tls_verify_needs_the_agent_to_allow_it() {
        let dir = std::env::temp_dir().join(format!("picolet-kc4-{}", std::process::id()));
        let p = write(
            &dir,
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {server: 'https://a:1', insecure-skip-tls-verify: true}\n",
        );
        let e = load(&p, false).unwrap_err();
        assert!(
            matches!(&e, KubeconfigError::Field { field, .. }
                if field == "clusters[].cluster.insecure-skip-tls-verify"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.starts_with(&format!(
                "{}: clusters[].cluster.insecure-skip-tls-verify: true: ",
                p.display()
            )) && e.ends_with("set allowInsecureKubeconfig: true in picolet's configuration"),
            "{e}"
        );
        assert!(load(&p, true).unwrap().insecure_skip_verify);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

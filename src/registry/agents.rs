//! One ureq agent per host, made when first needed: TLS verified with the
//! system roots plus the host's `ca_file`, its client certificate, and
//! `insecure_skip_verify` only when written. A URL an endpoint's answer
//! names on another host (a redirect's Location, a Bearer token realm)
//! gets that host's own agent ([`Agents::named_by`]), never the
//! endpoint's: a registry's `insecure_skip_verify` or client certificate
//! is for that registry, not for whatever host it points at. Redirects
//! are never followed by ureq (src/registry/exchange.rs follows them
//! without credentials).
//! The proxy environment (`HTTPS_PROXY`, `NO_PROXY`) applies, as ureq
//! reads it and containerd does.

use super::config::{RegistryConfig, TlsFiles};
use super::endpoint::Endpoint;
use super::error::{RegistryError, TlsSetupError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The system's CA bundle (Debian's ca-certificates), trusted for every
/// host besides its `ca_file`.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Connecting (DNS, TCP, TLS handshake), as containerd's dialer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Each read of an answer, headers or body: a stalled connection fails
/// after this long, however large the layer (there is no whole-request
/// limit: a 1 GiB layer over a slow link takes its time).
const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// From the request sent to the answer's headers: a registry that
/// accepts and never answers, or drips its headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Sending a request (no bodies are sent).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an absolute http(s) URL goes, as an agent is chosen for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    /// `http://`.
    pub plain_http: bool,
    /// `host[:port]` in lower case, the port only when not the scheme's
    /// default: the `configs` key.
    pub host: String,
}

impl Origin {
    /// The origin of an absolute http(s) URL; `None` for anything else.
    pub(super) fn of(url: &str) -> Option<Origin> {
        let (scheme, host, port) = crate::redirect::origin(url)?;
        let plain_http = scheme == "http";
        let default_port = if plain_http { 80 } else { 443 };
        let host = if port == default_port {
            host
        } else {
            format!("{host}:{port}")
        };
        Some(Origin { plain_http, host })
    }
}

/// The agents made so far, by origin and the `configs` key that set them.
pub(super) struct Agents {
    config: Arc<RegistryConfig>,
    made: Mutex<HashMap<String, ureq::Agent>>,
}

impl Agents {
    pub(super) fn new(config: Arc<RegistryConfig>) -> Agents {
        Agents {
            config,
            made: Mutex::new(HashMap::new()),
        }
    }

    /// The agent for `host` (`host[:port]`), configured by
    /// `configs.<host>`, else by `configs.<alias>` (an upstream's registry
    /// name: `docker.io` for registry-1.docker.io), else by `configs."*"`.
    /// A `plain_http` host needs no roots.
    pub(super) fn get(
        &self,
        host: &str,
        alias: Option<&str>,
        plain_http: bool,
    ) -> Result<ureq::Agent, RegistryError> {
        let (source, tls) = self.tls_of(host, alias);
        self.agent_with(host, source, &tls, plain_http)
    }

    /// The agent for `host` with `tls`, from the `configs` entry `source`
    /// (keyed by it too: the same host reached as an upstream, by its
    /// alias, and as a redirect target may differ).
    fn agent_with(
        &self,
        host: &str,
        source: &str,
        tls: &TlsFiles,
        plain_http: bool,
    ) -> Result<ureq::Agent, RegistryError> {
        let scheme = if plain_http { "http" } else { "https" };
        let key = format!("{scheme}://{host} {source}");
        let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(agent) = made.get(&key) {
            return Ok(agent.clone());
        }
        let agent =
            make_agent(tls, Path::new(SYSTEM_CA_BUNDLE), plain_http).map_err(|problem| {
                RegistryError::Config {
                    host: host.to_string(),
                    problem,
                }
            })?;
        if tls.insecure_skip_verify {
            log::warn!(
                "registry {host}: insecure_skip_verify: its identity is NOT verified; anyone on the way can serve images and read credentials"
            );
        }
        made.insert(key, agent.clone());
        Ok(agent)
    }

    /// The agent for `url`'s origin, which an answer of `endpoint` (an
    /// upstream reached as `alias`) named: the endpoint's own when on its
    /// origin, else the named host's own ([`Agents::get`] without alias).
    pub(super) fn named_by(
        &self,
        url: &Origin,
        endpoint: &Endpoint,
        alias: Option<&str>,
    ) -> Result<ureq::Agent, RegistryError> {
        let (host, source, tls) = self.named_tls(url, endpoint, alias);
        self.agent_with(host, &source, &tls, url.plain_http)
    }

    /// The host, `configs` source and TLS files for `url`, named by
    /// `endpoint`. A host the registry names with no entry of its own (a
    /// token realm, blob storage) is trusted as the registry's `ca_file`
    /// says, as containerd trusts it (often the same operator's private
    /// CA, a realm on the registry's own host at another port), but gets
    /// neither the registry's `insecure_skip_verify` nor its client
    /// certificate.
    fn named_tls<'a>(
        &'a self,
        url: &'a Origin,
        endpoint: &'a Endpoint,
        alias: Option<&'a str>,
    ) -> (&'a str, String, TlsFiles) {
        let (host, own_alias) = whose(url, endpoint, alias);
        let (source, tls) = self.tls_of(host, own_alias);
        if !source.is_empty() || host == endpoint.host {
            return (host, source.to_string(), tls);
        }
        let (registry, registry_tls) = self.tls_of(&endpoint.host, alias);
        let ca_only = TlsFiles {
            ca_file: registry_tls.ca_file,
            ..TlsFiles::default()
        };
        (host, format!("ca_file of {registry}"), ca_only)
    }

    /// The `configs` key and TLS files [`Agents::named_by`] uses.
    #[cfg(test)]
    pub(super) fn chosen_for(
        &self,
        url: &Origin,
        endpoint: &Endpoint,
        alias: Option<&str>,
    ) -> (String, TlsFiles) {
        let (_, source, tls) = self.named_tls(url, endpoint, alias);
        (source, tls)
    }

    /// The `configs` key that applies to `host` (empty when none) and its
    /// TLS files.
    fn tls_of(&self, host: &str, alias: Option<&str>) -> (&str, TlsFiles) {
        let configs = &self.config.configs;
        [Some(host), alias, Some("*")]
            .into_iter()
            .flatten()
            .find_map(|k| configs.get_key_value(k))
            .map_or(("", TlsFiles::default()), |(k, c)| {
                (k.as_str(), c.tls.clone())
            })
    }
}

/// The host and alias whose settings apply to `url`, named by `endpoint`
/// (reached as `alias`): the endpoint's on its own origin, else `url`'s
/// host alone.
fn whose<'a>(
    url: &'a Origin,
    endpoint: &'a Endpoint,
    alias: Option<&'a str>,
) -> (&'a str, Option<&'a str>) {
    if Origin::of(&endpoint.base).as_ref() == Some(url) {
        (&endpoint.host, alias)
    } else {
        (&url.host, None)
    }
}

/// An agent with these TLS files, trusting `system` (if it exists) and
/// `ca_file`; one for `plain_http` needs no roots.
fn make_agent(
    tls: &TlsFiles,
    system: &Path,
    plain_http: bool,
) -> Result<ureq::Agent, TlsSetupError> {
    use ureq::tls::{ClientCert, RootCerts, TlsConfig};
    let mut roots = Vec::new();
    if system.exists() {
        roots.extend(crate::tls::pem_certificates(&read(system)?));
    }
    if let Some(ca) = &tls.ca_file {
        let own = crate::tls::pem_certificates(&read(ca)?);
        if own.is_empty() {
            return Err(TlsSetupError::NoCertificate { path: ca.clone() });
        }
        roots.extend(own);
    }
    if roots.is_empty() && !tls.insecure_skip_verify && !plain_http {
        return Err(TlsSetupError::NoRoots);
    }
    // Explicit roots always: ureq's built-in WebPki roots panic when their
    // feature is off (bench/README.md, "Dependencies and their cost").
    let mut config = TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .disable_verification(tls.insecure_skip_verify);
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let chain = crate::tls::pem_certificates(&read(cert)?);
        if chain.is_empty() {
            return Err(TlsSetupError::NoCertificate { path: cert.clone() });
        }
        let key_pem = read(key)?;
        let key_item = ureq::tls::parse_pem(&key_pem).find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(k),
            _ => None,
        });
        let key_item = key_item.ok_or_else(|| TlsSetupError::NoKey { path: key.clone() })?;
        check_client_identity(&chain, &key_item)?;
        config = config.client_cert(Some(ClientCert::new_with_certs(&chain, key_item)));
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_IDLE_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_send_request(Some(SEND_TIMEOUT))
        .max_idle_connections_per_host(2)
        .user_agent(concat!("picolet/", env!("CARGO_PKG_VERSION")))
        .tls_config(config.build())
        .build();
    Ok(agent.into())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// rustls's verdict on a client certificate and key, now rather than at
/// the first handshake (where ureq would only say the handshake failed).
fn check_client_identity(
    chain: &[ureq::tls::Certificate<'static>],
    key: &ureq::tls::PrivateKey<'static>,
) -> Result<(), TlsSetupError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key = PrivateKeyDer::try_from(key.der().to_vec())
        .map_err(|e| TlsSetupError::ClientCertificate(e.to_string()))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::ClientCertificate(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map(drop)
        .map_err(|e| TlsSetupError::ClientCertificate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn unusable_tls_files_are_named() {
        let dir = std::env::temp_dir().join(format!("picolet-reg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let missing = PathBuf::from("/nonexistent/ca.pem");
        let none = Path::new("/nonexistent/system.pem");
        let files = |ca: &Path| TlsFiles {
            ca_file: Some(ca.to_path_buf()),
            ..TlsFiles::default()
        };
        assert!(
            matches!(make_agent(&files(&missing), none, false), Err(TlsSetupError::Read { path, .. }) if path == missing)
        );
        assert!(
            matches!(make_agent(&files(&empty), none, false), Err(TlsSetupError::NoCertificate { path }) if path == empty)
        );
        assert!(matches!(
            make_agent(&TlsFiles::default(), none, false),
            Err(TlsSetupError::NoRoots)
        ));
        assert!(make_agent(&TlsFiles::default(), none, true).is_ok());
        let insecure = TlsFiles {
            insecure_skip_verify: true,
            ..TlsFiles::default()
        };
        assert!(make_agent(&insecure, none, false).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

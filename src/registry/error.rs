//! Why a registry request failed, in the registry's own words: the
//! distribution spec's `{"errors":[{"code","message"}]}` body, with the
//! endpoint and the reference. Never a credential: endpoints hold none
//! (src/registry/endpoint.rs refuses them) and headers are not shown.

use std::fmt;
use std::path::PathBuf;

/// The largest error body read: a registry's is a few hundred bytes.
pub const MAX_ERROR_BODY: u64 = 64 << 10;

/// The most of a registry's words kept for a message: they end up in pod
/// events and logs.
const MAX_SAYS: usize = 512;

/// Why a manifest or blob could not be had.
#[derive(Debug)]
pub enum RegistryError {
    /// 401 after authenticating (or with no credentials to offer).
    Unauthorized {
        endpoint: String,
        reference: String,
        says: String,
    },
    /// 404: `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `NAME_UNKNOWN`.
    NotFound {
        endpoint: String,
        reference: String,
        says: String,
    },
    /// The TLS handshake failed: an untrusted or expired certificate, a
    /// name mismatch, a refused client certificate.
    Tls {
        endpoint: String,
        reference: String,
        source: ureq::Error,
    },
    /// Connecting, sending, a timeout, a broken answer.
    Transport {
        endpoint: String,
        reference: String,
        source: ureq::Error,
    },
    /// Any other status (after retries for 5xx and 429).
    Http {
        endpoint: String,
        reference: String,
        status: u16,
        says: String,
    },
    /// A manifest or token answer over its cap.
    TooLarge {
        endpoint: String,
        reference: String,
        limit: u64,
    },
    /// Plain HTTP where HTTPS is required: a redirect or a token realm
    /// from an HTTPS endpoint to `http://`.
    InsecureRefused {
        endpoint: String,
        reference: String,
        url: String,
    },
    /// A host's TLS files from registries.yaml cannot be used.
    Config {
        host: String,
        problem: TlsSetupError,
    },
    /// A registry, repository, tag or digest that is not one.
    Invalid { what: &'static str, value: String },
    /// An answer that breaks the protocol: a token answer without a token,
    /// a redirect without a Location, a 206 for another range.
    Protocol {
        endpoint: String,
        reference: String,
        problem: String,
    },
    /// Reading a manifest or token body.
    Read {
        endpoint: String,
        reference: String,
        source: std::io::Error,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Unauthorized { endpoint, reference, says } => {
                write!(f, "{reference} from {endpoint}: unauthorized: {says}")
            }
            RegistryError::NotFound { endpoint, reference, says } => {
                write!(f, "{reference} from {endpoint}: not found: {says}")
            }
            RegistryError::Tls { endpoint, reference, source } => write!(
                f,
                "{reference} from {endpoint}: tls: {}",
                tls_words(source)
            ),
            RegistryError::Transport { endpoint, reference, source } => {
                write!(f, "{reference} from {endpoint}: {source}")
            }
            RegistryError::Http { endpoint, reference, status, says } => {
                write!(f, "{reference} from {endpoint}: HTTP {status}: {says}")
            }
            RegistryError::TooLarge { endpoint, reference, limit } => write!(
                f,
                "{reference} from {endpoint}: the answer is larger than {limit} bytes"
            ),
            RegistryError::InsecureRefused { endpoint, reference, url } => write!(
                f,
                "{reference} from {endpoint}: refused to follow {url}: plain HTTP from an HTTPS endpoint"
            ),
            RegistryError::Config { host, problem } => {
                write!(f, "registries.yaml: configs.{host}.tls: {problem}")
            }
            RegistryError::Invalid { what, value } => write!(f, "{value:?} is not a valid {what}"),
            RegistryError::Protocol { endpoint, reference, problem } => {
                write!(f, "{reference} from {endpoint}: {problem}")
            }
            RegistryError::Read { endpoint, reference, source } => {
                write!(f, "{reference} from {endpoint}: reading the answer: {source}")
            }
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Tls { source, .. } | RegistryError::Transport { source, .. } => {
                Some(source)
            }
            RegistryError::Config { problem, .. } => Some(problem),
            RegistryError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl RegistryError {
    /// Worth another try on the same endpoint: the network or the server
    /// may recover (a TLS refusal or a 4xx will not).
    pub(super) fn transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } | RegistryError::Read { .. } => true,
            RegistryError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A host's TLS material that cannot be used.
#[derive(Debug)]
pub enum TlsSetupError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `ca_file` or `cert_file` holds no PEM certificate.
    NoCertificate { path: PathBuf },
    /// `key_file` holds no PEM private key.
    NoKey { path: PathBuf },
    /// rustls refused the client certificate or key.
    ClientCertificate(String),
    /// HTTPS with no system bundle and no `ca_file`.
    NoRoots,
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            TlsSetupError::NoCertificate { path } => {
                write!(f, "{}: no PEM certificate in it", path.display())
            }
            TlsSetupError::NoKey { path } => {
                write!(f, "{}: no PEM private key in it", path.display())
            }
            TlsSetupError::ClientCertificate(e) => write!(f, "client certificate not usable: {e}"),
            TlsSetupError::NoRoots => write!(
                f,
                "no system CA bundle ({}) and no ca_file to verify the registry with",
                super::agents::SYSTEM_CA_BUNDLE
            ),
        }
    }
}

impl std::error::Error for TlsSetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsSetupError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A URL for a message: without its query, which for blob storage holds
/// a signature that grants access for a while.
pub(super) fn shown_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end]
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SAYS)
        .collect()
}

/// A transport error that is a TLS refusal.
pub(super) fn is_tls(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_)
    ) || rustls_cause(e).is_some()
}

/// The rustls error inside a ureq error: given as such, or inside the I/O
/// error a handshake read returns.
fn rustls_cause(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref()),
        _ => None,
    }
}

/// A TLS failure in the words users search for (Go's `x509: …`, which the
/// kubelet's messages carry), then rustls's own.
fn tls_words(e: &ureq::Error) -> String {
    use rustls::CertificateError as C;
    let x509 = match rustls_cause(e) {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::UnknownIssuer => "x509: certificate signed by unknown authority",
            C::Expired | C::NotValidYet => "x509: certificate has expired or is not yet valid",
            C::NotValidForName => "x509: certificate is not valid for this host name",
            C::BadSignature => "x509: certificate has a bad signature",
            C::Revoked => "x509: certificate is revoked",
            _ => "x509: certificate refused",
        },
        _ => "certificate or handshake refused",
    };
    format!("{x509} ({e})")
}

/// The registry's words for a failure: `CODE: message` of each entry of a
/// distribution-spec errors body, else the HTTP status; bounded, control
/// characters dropped (they go into events and logs).
pub(super) fn registry_says(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let words = match crate::json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!("HTTP {status}"),
    };
    words
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SAYS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registrys_words_bounded_and_clean() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}},{"code":"X"}]}"#;
        assert_eq!(
            registry_says(404, body),
            "MANIFEST_UNKNOWN: manifest unknown; X"
        );
        assert_eq!(registry_says(502, b"<html>bad gateway</html>"), "HTTP 502");
        assert_eq!(registry_says(401, br#"{"errors":[]}"#), "HTTP 401");
        assert_eq!(
            shown_url("https://s3/b?X-Amz-Signature=abc"),
            "https://s3/b"
        );
        let long = format!(
            r#"{{"errors":[{{"message":"a\u001b[31m{}"}}]}}"#,
            "x".repeat(5000)
        );
        let says = registry_says(400, long.as_bytes());
        assert_eq!(says.chars().count(), MAX_SAYS);
        assert!(!says.contains('\u{1b}'));
    }

    #[test]
    fn transient_failures_are_5xx_429_and_the_network() {
        let http = |status| RegistryError::Http {
            endpoint: "e".into(),
            reference: "r".into(),
            status,
            says: String::new(),
        };
        assert!(http(503).transient() && http(429).transient());
        assert!(!http(400).transient() && !http(403).transient());
        let tls = RegistryError::Tls {
            endpoint: "https://r".into(),
            reference: "r/x:1".into(),
            source: ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            )),
        };
        assert!(!tls.transient());
        let shown = tls.to_string();
        assert!(
            shown.contains("x509: certificate signed by unknown authority"),
            "{shown}"
        );
        assert!(shown.contains("UnknownIssuer"), "{shown}");
    }
}

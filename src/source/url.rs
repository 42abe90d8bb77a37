//! Static pods from a manifest URL (the kubelet's `staticPodURL`, with
//! `staticPodURLHeader` and `httpCheckFrequency`), for fleets.
//!
//! Blocking HTTP runs on one dedicated thread (docs/design.md, decision 1), started
//! only when a URL is configured: it polls with `If-None-Match`, every
//! interval with jitter, and hands each new document to the core through a
//! channel and a wake-up pipe in the core's epoll set. The core decodes and
//! validates it; the last good document is persisted atomically under the
//! root dir, so that after a reboot with the server unreachable the device
//! runs the same pods at once.

use super::static_pod::{self, Origin};
use crate::jitter::Jitter;
use crate::pod::Pod;
use crate::published::ManifestError;
use crate::redirect::{origin, resolve};
use crate::state::write_atomic;
use crate::time::Time;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// The system's CA bundle (Debian's ca-certificates), used when no
/// `staticPodURLCAFile` is given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The largest document accepted, as the kubelet's file limit.
const MAX_DOCUMENT: u64 = 10 << 20;

/// Redirects followed at most, as the kubelet's Go HTTP client.
const MAX_REDIRECTS: usize = 10;

/// How to reach the manifest URL.
#[derive(Debug, Clone)]
pub struct UrlConfig {
    /// `staticPodURL`.
    pub url: String,
    /// Extra request headers (a device token), `staticPodURLHeader`.
    pub headers: BTreeMap<String, Vec<String>>,
    /// PEM roots to verify an HTTPS server with; the system's bundle if unset.
    pub ca_file: Option<PathBuf>,
    /// `httpCheckFrequency`: how often the URL is fetched.
    pub interval: Duration,
    /// `staticPodURLAllowHTTP`: plain `http://` is accepted, the URL's and
    /// any redirect's.
    pub allow_http: bool,
}

/// What the poller thread tells the core.
enum Fetched {
    Document(Vec<u8>),
    Failed(FetchError),
}

/// Why a fetch of the manifest URL failed; the last good version keeps
/// running.
#[derive(Debug)]
enum FetchError {
    /// Connecting, TLS, or a timeout.
    Transport(ureq::Error),
    TooManyRedirects,
    NoLocation,
    /// A redirect to something that is not an http(s) URL.
    NotHttp(String),
    /// A redirect to plain HTTP without `staticPodURLAllowHTTP`.
    PlainHttp(String),
    Read(std::io::Error),
    /// Over [`MAX_DOCUMENT`] bytes.
    TooLarge,
    /// An answer other than 200, 304 or a redirect.
    Status(u16),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Transport(e) => e.fmt(f),
            FetchError::TooManyRedirects => write!(f, "more than {MAX_REDIRECTS} redirects"),
            FetchError::NoLocation => f.write_str("a redirect without a Location"),
            FetchError::NotHttp(location) => {
                write!(f, "a redirect to {location:?}, not an http(s) URL")
            }
            FetchError::PlainHttp(next) => write!(
                f,
                "a redirect to {next}: plain HTTP needs staticPodURLAllowHTTP: true"
            ),
            FetchError::Read(e) => write!(f, "reading the document: {e}"),
            FetchError::TooLarge => write!(f, "the document is larger than {MAX_DOCUMENT} bytes"),
            FetchError::Status(code) => write!(f, "the server answered HTTP {code}"),
        }
    }
}

/// The manifest URL: the poller thread's core side, with the last good
/// document's pods.
pub struct ManifestUrl {
    url: String,
    node_name: String,
    /// The last good document on disk.
    saved: PathBuf,
    saved_bytes: Vec<u8>,
    pods: Vec<Arc<Pod>>,
    error: Option<String>,
    from: Receiver<Fetched>,
    wake: OwnedFd,
}

impl ManifestUrl {
    /// Load the last good document, if any, and start polling.
    pub fn start(
        config: UrlConfig,
        node_name: &str,
        state_dir: &Path,
        now: Time,
    ) -> io::Result<ManifestUrl> {
        std::fs::create_dir_all(state_dir)?;
        let saved = state_dir.join("static-pod-url");
        let (wake, wake_writer) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        let (to_core, from) = channel();
        let agent = http_agent(&config)?;
        if config.url.starts_with("http://") {
            log::warn!(
                "manifest URL {}: plain HTTP (staticPodURLAllowHTTP): anyone on the way can read and change the pods and the request headers",
                config.url
            );
        }
        let mut source = ManifestUrl {
            url: config.url.clone(),
            node_name: node_name.to_string(),
            saved,
            saved_bytes: Vec::new(),
            pods: Vec::new(),
            error: None,
            from,
            wake,
        };
        if let Ok(bytes) = std::fs::read(&source.saved) {
            log::info!(
                "manifest URL {}: running the last good document until the server answers",
                source.url
            );
            source.accept(bytes, now, false);
        }
        std::thread::Builder::new()
            .name("manifest-url".into())
            .spawn(move || poll(agent, config, to_core, std::fs::File::from(wake_writer)))?;
        Ok(source)
    }

    /// The wake-up pipe the poller writes to, for the core's epoll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Take what the poller fetched; true if the wanted pods may have changed.
    pub fn drain(&mut self, now: Time) -> bool {
        let mut buf = [0u8; 64];
        while rustix::io::read(&self.wake, &mut buf).is_ok_and(|n| n > 0) {}
        let mut changed = false;
        while let Ok(fetched) = self.from.try_recv() {
            match fetched {
                Fetched::Document(bytes) => changed |= self.accept(bytes, now, true),
                Fetched::Failed(error) => {
                    let message = error.to_string();
                    if self.error.as_deref() != Some(message.as_str()) {
                        log::warn!(
                            "manifest URL {}: {message}; the last good version keeps running",
                            self.url
                        );
                    }
                    self.error = Some(message);
                }
            }
        }
        changed
    }

    /// Use a document if it is valid; keep the last good one otherwise.
    fn accept(&mut self, bytes: Vec<u8>, now: Time, persist: bool) -> bool {
        if bytes == self.saved_bytes && self.error.is_none() {
            return false;
        }
        match static_pod::decode(&bytes, Origin::Http, &self.url, &self.node_name, now) {
            Ok(pods) => {
                self.error = None;
                if persist && bytes != self.saved_bytes {
                    if let Err(e) = write_atomic(&self.saved, &bytes) {
                        log::error!("manifest URL {}: saving the document: {e}", self.url);
                    }
                }
                self.saved_bytes = bytes;
                self.pods = pods;
                true
            }
            Err(fault) => {
                let message = fault.to_string();
                log::error!(
                    "manifest URL {}: {message}; the last good version keeps running",
                    self.url
                );
                self.error = Some(message);
                false
            }
        }
    }

    /// The pods of the last good document.
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.pods.clone()
    }

    /// The last fetch's or document's problem, if any.
    pub fn errors(&self) -> Vec<ManifestError> {
        self.error
            .iter()
            .map(|message| ManifestError {
                file: PathBuf::from(&self.url),
                pods: self.pods.iter().map(|p| p.full_name()).collect(),
                message: message.clone(),
            })
            .collect()
    }
}

/// A ureq agent: status codes as values (304 is no error), TLS verified with
/// the given roots through rustls and ring.
fn http_agent(config: &UrlConfig) -> io::Result<ureq::Agent> {
    use ureq::tls::{RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
    // Explicit roots always: ureq's built-in WebPki roots panic when their
    // feature is off (bench/README.md, "Dependencies and their cost"), and a panic here would take the agent down.
    let system = Path::new(SYSTEM_CA_BUNDLE);
    let ca_file = config
        .ca_file
        .as_deref()
        .or(system.exists().then_some(system));
    if config.url.starts_with("https://") && ca_file.is_none() {
        return Err(io::Error::other(format!(
            "an https URL needs roots to verify the server: set staticPodURLCAFile (no {SYSTEM_CA_BUNDLE} here)"
        )));
    }
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", ca.display())))?;
        let roots = crate::tls::pem_certificates(&pem);
        if roots.is_empty() {
            return Err(io::Error::other(format!(
                "{}: no certificate",
                ca.display()
            )));
        }
        tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
    }
    // Redirects are followed by `fetch`, which keeps the headers to the
    // configured origin: ureq would send them to any host.
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(tls.build())
        .build();
    Ok(config.into())
}

/// The poller: GET with If-None-Match, report, sleep the interval ± 10%.
fn poll(agent: ureq::Agent, config: UrlConfig, to_core: Sender<Fetched>, mut wake: std::fs::File) {
    let mut etag: Option<String> = None;
    let mut jitter = Jitter::seeded();
    loop {
        let fetched = fetch(&agent, &config, &mut etag);
        if let Some(fetched) = fetched {
            if to_core.send(fetched).is_err() {
                return;
            }
            let _ = wake.write_all(b"!");
        }
        std::thread::sleep(jitter.around(config.interval));
    }
}

/// One request: `None` when the document did not change (304).
fn fetch(agent: &ureq::Agent, config: &UrlConfig, etag: &mut Option<String>) -> Option<Fetched> {
    let mut url = config.url.clone();
    let mut redirects = 0;
    let mut response = loop {
        let response = match request(agent, config, &url, etag.as_deref()) {
            Ok(r) => r,
            Err(e) => return Some(Fetched::Failed(e)),
        };
        if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
            break response;
        }
        redirects += 1;
        if redirects > MAX_REDIRECTS {
            return Some(Fetched::Failed(FetchError::TooManyRedirects));
        }
        match redirect_target(&url, &response, config.allow_http) {
            Ok(next) => url = next,
            Err(e) => return Some(Fetched::Failed(e)),
        }
    };
    match response.status().as_u16() {
        304 => None,
        200 => {
            let tag = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = Vec::new();
            let read = response
                .body_mut()
                .as_reader()
                .take(MAX_DOCUMENT + 1)
                .read_to_end(&mut body);
            match read {
                Err(e) => Some(Fetched::Failed(FetchError::Read(e))),
                Ok(_) if body.len() as u64 > MAX_DOCUMENT => {
                    Some(Fetched::Failed(FetchError::TooLarge))
                }
                Ok(_) => {
                    *etag = tag;
                    Some(Fetched::Document(body))
                }
            }
        }
        code => Some(Fetched::Failed(FetchError::Status(code))),
    }
}

/// GET `url`; the configured headers go only to the configured URL's
/// origin (scheme, host and port), never to where a redirect leads.
fn request(
    agent: &ureq::Agent,
    config: &UrlConfig,
    url: &str,
    etag: Option<&str>,
) -> Result<ureq::http::Response<ureq::Body>, FetchError> {
    let mut request = agent.get(url);
    if origin(url).is_some() && origin(url) == origin(&config.url) {
        for (name, values) in &config.headers {
            for value in values {
                request = request.header(name.as_str(), value.as_str());
            }
        }
    }
    if let Some(tag) = etag {
        request = request.header("If-None-Match", tag);
    }
    request.call().map_err(FetchError::Transport)
}

/// Where a redirect from `from` leads; plain HTTP only if allowed.
fn redirect_target(
    from: &str,
    response: &ureq::http::Response<ureq::Body>,
    allow_http: bool,
) -> Result<String, FetchError> {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or(FetchError::NoLocation)?;
    follow(from, location, allow_http)
}

/// Where a redirect from `from` to `location` leads, if it may be followed:
/// an http(s) URL, plain HTTP only with the opt-in. The scheme is compared
/// as `origin` lowercases it: `HTTP://` is plain HTTP too.
fn follow(from: &str, location: &str, allow_http: bool) -> Result<String, FetchError> {
    let (next, scheme) = resolve(from, location)
        .and_then(|u| origin(&u).map(|(scheme, _, _)| (u, scheme)))
        .ok_or_else(|| FetchError::NotHttp(location.to_string()))?;
    if scheme == "http" && !allow_http {
        return Err(FetchError::PlainHttp(next));
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_to_plain_http_in_any_case_needs_the_opt_in() {
        let from = "https://a.example/pods.yaml";
        for location in [
            "http://127.0.0.1:1/real.yaml",
            "HTTP://127.0.0.1:1/real.yaml",
            "Http://127.0.0.1:1/real.yaml",
        ] {
            match follow(from, location, false) {
                Err(e @ FetchError::PlainHttp(_)) => {
                    assert!(e.to_string().contains("needs staticPodURLAllowHTTP"), "{e}")
                }
                other => panic!("{location}: {other:?}"),
            }
            assert_eq!(follow(from, location, true).ok().as_deref(), Some(location));
        }
        assert_eq!(
            follow(from, "HTTPS://b.example/p", false).ok().as_deref(),
            Some("HTTPS://b.example/p")
        );
    }
}

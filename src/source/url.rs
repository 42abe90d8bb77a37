//! Static pods from a manifest URL (the kubelet's `staticPodURL`, with
//! `staticPodURLHeader` and `httpCheckFrequency`), for fleets.
//!
//! Blocking HTTP runs on one dedicated thread (DESIGN.md decision 1), started
//! only when a URL is configured: it polls with `If-None-Match`, every
//! interval with jitter, and hands each new document to the core through a
//! channel and a wake-up pipe in the core's epoll set. The core decodes and
//! validates it; the last good document is persisted atomically under the
//! root dir, so that after a reboot with the server unreachable the device
//! runs the same pods at once.

use super::file::ManifestError;
use super::jitter::Jitter;
use super::static_pod::{self, Origin};
use crate::pod::Pod;
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

/// How to reach the manifest URL.
#[derive(Debug, Clone)]
pub struct UrlConfig {
    pub url: String,
    /// Extra request headers (a device token), `staticPodURLHeader`.
    pub headers: BTreeMap<String, Vec<String>>,
    /// PEM roots to verify an HTTPS server with; the system's bundle if unset.
    pub ca_file: Option<PathBuf>,
    pub interval: Duration,
}

/// What the poller thread tells the core.
enum Fetched {
    Document(Vec<u8>),
    Failed(String),
}

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
                Fetched::Failed(message) => {
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
            Err(message) => {
                log::error!(
                    "manifest URL {}: {message}; the last good version keeps running",
                    self.url
                );
                self.error = Some(message);
                false
            }
        }
    }

    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.pods.clone()
    }

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
    // feature is off (DESIGN.md), and a panic here would take the agent down.
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
        let roots = super::pem_certificates(&pem);
        if roots.is_empty() {
            return Err(io::Error::other(format!(
                "{}: no certificate",
                ca.display()
            )));
        }
        tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
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
    let mut request = agent.get(&config.url);
    for (name, values) in &config.headers {
        for value in values {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    if let Some(tag) = etag.as_deref() {
        request = request.header("If-None-Match", tag);
    }
    let mut response = match request.call() {
        Ok(r) => r,
        Err(e) => return Some(Fetched::Failed(e.to_string())),
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
                Err(e) => Some(Fetched::Failed(format!("reading the document: {e}"))),
                Ok(_) if body.len() as u64 > MAX_DOCUMENT => Some(Fetched::Failed(format!(
                    "the document is larger than {MAX_DOCUMENT} bytes"
                ))),
                Ok(_) => {
                    *etag = tag;
                    Some(Fetched::Document(body))
                }
            }
        }
        code => Some(Fetched::Failed(format!("the server answered HTTP {code}"))),
    }
}

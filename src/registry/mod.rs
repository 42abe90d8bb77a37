//! The OCI distribution client, the pull side of the OCI distribution
//! spec: manifests and blobs from registries over ureq, blocking, on the
//! pull worker thread or in a CLI command, never on the core thread (no
//! async: the Rust registry crates all need tokio).
//!
//! It owns: registries.yaml (`config`), pull-secret credentials
//! (`credentials`), endpoints (mirrors then the upstream, `endpoint`),
//! per-host agents and TLS (`agents`), authentication (Basic, and Bearer
//! tokens cached per realm, service, scope and credentials: `auth`,
//! `challenge`), and the requests themselves with retries, redirects
//! followed without credentials, and streaming blob bodies (`session`,
//! `exchange`). It writes nothing to disk: digests are verified and blobs
//! stored by src/image/.

mod agents;
mod auth;
mod challenge;
pub mod config;
pub mod credentials;
mod endpoint;
mod error;
mod exchange;
mod names;
mod session;
#[cfg(test)]
mod tests;

pub use challenge::{parse_challenges, Challenge};
pub use config::{RegistryConfig, RegistryConfigError};
pub use credentials::{from_docker_config_json, Credentials, DockerConfigError};
pub use error::{RegistryError, TlsSetupError};
pub use session::{BlobBody, ManifestBody, Session, MAX_MANIFEST};

use std::sync::Arc;
use std::time::Duration;

/// The first pause before retrying a transport error, a 5xx or a 429;
/// doubled at each further attempt.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The registries as configured: agents made per host when first needed
/// and tokens kept across sessions. Built once; shared by pull threads.
pub struct Registries {
    shared: Arc<Shared>,
}

/// What every session of one [`Registries`] uses.
struct Shared {
    config: Arc<RegistryConfig>,
    agents: agents::Agents,
    tokens: auth::TokenCache,
    /// [`RETRY_DELAY`], shorter in tests.
    retry_delay: Duration,
    /// Tests serve the upstream over plain HTTP on loopback; never set
    /// otherwise (an upstream is always HTTPS).
    #[cfg(test)]
    plain_upstream: bool,
}

impl Registries {
    /// The registries of `config`.
    pub fn new(config: Arc<RegistryConfig>) -> Registries {
        Registries {
            shared: Arc::new(Shared {
                agents: agents::Agents::new(config.clone()),
                config,
                tokens: auth::TokenCache::default(),
                retry_delay: RETRY_DELAY,
                #[cfg(test)]
                plain_upstream: false,
            }),
        }
    }

    /// A session for one repository of `registry` (as a normalized
    /// reference names it: `docker.io`, `host:port`): its endpoints are the
    /// registry's mirrors in order, then the upstream (Docker Hub's is
    /// `https://registry-1.docker.io`). `extra` credentials (from pull
    /// secrets) are offered to the upstream before its configured ones;
    /// mirrors get only their own `configs.<host>.auth` (a pull secret is
    /// for the registry it names, not for whoever runs a mirror).
    pub fn session(
        &self,
        registry: &str,
        repository: &str,
        extra: Vec<Credentials>,
    ) -> Result<Session, RegistryError> {
        Session::new(self.shared.clone(), registry, repository, extra)
    }
}

#[cfg(test)]
impl Shared {
    /// The upstream over plain HTTP when the tests ask for it.
    fn loopback_upstream(&self, mut list: Vec<endpoint::Endpoint>) -> Vec<endpoint::Endpoint> {
        if self.plain_upstream {
            for e in list.iter_mut().filter(|e| e.upstream) {
                e.base = e.base.replacen("https://", "http://", 1);
                e.plain_http = true;
            }
        }
        list
    }
}

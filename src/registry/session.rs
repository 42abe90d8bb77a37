//! A session: one repository's manifests and blobs, from the first
//! endpoint that answers. A failure on a mirror falls through to the next
//! endpoint, then the upstream; the last endpoint's failure is the one
//! reported (the others are logged). Blobs are asked first of the endpoint
//! that gave the manifest.

use super::auth::{read_capped, Context};
use super::credentials::Credentials;
use super::endpoint::{endpoints, Endpoint};
use super::error::{is_tls, registry_says, RegistryError, MAX_ERROR_BODY};
use super::exchange::{Auth, Request};
use super::names::{valid_digest, valid_repository, valid_tag};
use super::Shared;
use std::io::Read;
use std::sync::Arc;

/// The largest manifest or index read: registries refuse to store larger
/// ones (distribution's limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// The manifest media types asked for, most wanted first.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as the registry sent it.
#[derive(Debug)]
pub struct ManifestBody {
    /// `Content-Type` when it names a manifest type, else the body's
    /// `mediaType`, else the `Content-Type` as sent (empty when none).
    pub media_type: String,
    /// The bytes, at most [`MAX_MANIFEST`]; their digest is the caller's
    /// to verify.
    pub bytes: Vec<u8>,
    /// `Docker-Content-Digest`, if sent (unverified).
    pub digest: Option<String>,
}

/// A blob's body, streamed.
pub struct BlobBody {
    /// The server honoured `Range` (206): the body starts at the offset
    /// asked for. False when it sent the whole blob (200).
    pub resumed: bool,
    /// `Content-Length`: the bytes this body holds, if told.
    pub length: Option<u64>,
    /// The body, read as it arrives (each read bounded by the idle
    /// timeout); never buffered whole.
    pub reader: Box<dyn Read + Send>,
}

impl std::fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobBody")
            .field("resumed", &self.resumed)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// One endpoint as a session uses it.
pub(super) struct Target {
    pub endpoint: Endpoint,
    /// Offered in order when challenged.
    pub credentials: Vec<Credentials>,
    /// How requests are authorized so far.
    pub auth: Auth,
}

/// One repository's manifests and blobs.
pub struct Session {
    pub(super) shared: Arc<Shared>,
    registry: String,
    repository: String,
    /// `repository:<name>:pull`, the token scope.
    pub(super) scope: String,
    pub(super) targets: Vec<Target>,
    /// The endpoint that gave the last manifest.
    answered: usize,
}

impl Session {
    pub(super) fn new(
        shared: Arc<Shared>,
        registry: &str,
        repository: &str,
        extra: Vec<Credentials>,
    ) -> Result<Session, RegistryError> {
        if !valid_repository(repository) {
            return Err(RegistryError::Invalid {
                what: "repository",
                value: repository.to_string(),
            });
        }
        let registry = registry.to_ascii_lowercase();
        let list = endpoints(&shared.config, &registry).map_err(|_| RegistryError::Invalid {
            what: "registry",
            value: registry.clone(),
        })?;
        #[cfg(test)]
        let list = shared.loopback_upstream(list);
        let targets = list
            .into_iter()
            .map(|endpoint| {
                let mut credentials = if endpoint.upstream {
                    extra.clone()
                } else {
                    Vec::new()
                };
                let alias = endpoint.upstream.then_some(registry.as_str());
                let configured = shared.config.configs.get(&endpoint.host).or_else(|| {
                    alias
                        .and_then(|a| shared.config.configs.get(a))
                        .or_else(|| shared.config.host(&endpoint.host))
                });
                credentials.extend(configured.and_then(|c| c.auth.clone()));
                Target {
                    endpoint,
                    credentials,
                    auth: Auth::Anonymous,
                }
            })
            .collect();
        Ok(Session {
            scope: format!("repository:{repository}:pull"),
            shared,
            registry,
            repository: repository.to_string(),
            targets,
            answered: 0,
        })
    }

    /// The registry's name for the configs lookup of an upstream.
    pub(super) fn registry(&self) -> &str {
        &self.registry
    }

    /// GET the manifest or index `reference` (a tag or a digest), from
    /// the first endpoint that has it.
    pub fn manifest(&mut self, reference: &str) -> Result<ManifestBody, RegistryError> {
        let shown = if valid_digest(reference) {
            format!("{}/{}@{reference}", self.registry, self.repository)
        } else if valid_tag(reference) {
            format!("{}/{}:{reference}", self.registry, self.repository)
        } else {
            return Err(RegistryError::Invalid {
                what: "tag or digest",
                value: reference.to_string(),
            });
        };
        let request = Request {
            path: format!("/v2/{}/manifests/{reference}", self.repository),
            accept: Some(MANIFEST_ACCEPT),
            range: None,
        };
        self.each_endpoint(0, &shown, |session, i| {
            let response = session.get(i, &request, &shown)?;
            read_manifest(response, &session.context(i, &shown))
        })
    }

    /// GET the blob `digest` from `offset` on (`Range: bytes=<offset>-`
    /// when not 0), first from the endpoint that gave the manifest.
    pub fn blob(&mut self, digest: &str, offset: u64) -> Result<BlobBody, RegistryError> {
        if !valid_digest(digest) {
            return Err(RegistryError::Invalid {
                what: "digest",
                value: digest.to_string(),
            });
        }
        let shown = format!("{}/{}@{digest}", self.registry, self.repository);
        let request = Request {
            path: format!("/v2/{}/blobs/{digest}", self.repository),
            accept: None,
            range: (offset > 0).then_some(offset),
        };
        self.each_endpoint(self.answered, &shown, |session, i| {
            let response = session.get(i, &request, &shown)?;
            blob_body(response, offset, &session.context(i, &shown))
        })
    }

    /// `attempt` on each endpoint from `first` until one succeeds; the
    /// last endpoint's error otherwise.
    fn each_endpoint<T>(
        &mut self,
        first: usize,
        shown: &str,
        mut attempt: impl FnMut(&mut Session, usize) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let last = self.targets.len() - 1;
        let mut i = first.min(last);
        loop {
            match attempt(self, i) {
                Ok(found) => {
                    self.answered = i;
                    return Ok(found);
                }
                Err(e) if i < last => {
                    log::warn!("{shown}: {e}; trying {}", self.targets[i + 1].endpoint.base);
                    i += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Where a request to endpoint `i` is, for messages.
    pub(super) fn context<'a>(&'a self, i: usize, shown: &'a str) -> Context<'a> {
        let endpoint = &self.targets[i].endpoint;
        Context {
            endpoint: &endpoint.base,
            reference: shown,
            plain_http: endpoint.plain_http,
        }
    }
}

/// A 200's manifest, bounded.
fn read_manifest(
    mut response: ureq::http::Response<ureq::Body>,
    at: &Context<'_>,
) -> Result<ManifestBody, RegistryError> {
    if response.status().as_u16() != 200 {
        return Err(status_error(response, at));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type")
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let digest = header("docker-content-digest");
    if response
        .body()
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST)
    {
        return Err(RegistryError::TooLarge {
            endpoint: at.endpoint.to_string(),
            reference: at.reference.to_string(),
            limit: MAX_MANIFEST,
        });
    }
    let bytes = read_capped(&mut response, MAX_MANIFEST, at)?;
    let media_type = if MANIFEST_ACCEPT.split(", ").any(|t| t == content_type) {
        content_type
    } else {
        body_media_type(&bytes).unwrap_or(content_type)
    };
    Ok(ManifestBody {
        media_type,
        bytes,
        digest,
    })
}

/// A manifest's own `mediaType` field.
fn body_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    crate::json::from_slice::<Typed>(bytes).ok()?.media_type
}

/// A 200 or 206 blob answer as a stream.
fn blob_body(
    response: ureq::http::Response<ureq::Body>,
    offset: u64,
    at: &Context<'_>,
) -> Result<BlobBody, RegistryError> {
    let status = response.status().as_u16();
    let resumed = match status {
        200 => false,
        206 => {
            let range = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if offset == 0 || range_start(range) != Some(offset) {
                return Err(RegistryError::Protocol {
                    endpoint: at.endpoint.to_string(),
                    reference: at.reference.to_string(),
                    problem: format!("206 with Content-Range {range:?} for bytes={offset}-"),
                });
            }
            true
        }
        _ => return Err(status_error(response, at)),
    };
    let length = response.body().content_length();
    Ok(BlobBody {
        resumed,
        length,
        reader: Box::new(response.into_body().into_reader()),
    })
}

/// The first byte of `bytes <first>-<last>/<size>`.
fn range_start(content_range: &str) -> Option<u64> {
    let rest = content_range.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

/// A failure status as an error, in the registry's words.
pub(super) fn status_error(
    mut response: ureq::http::Response<ureq::Body>,
    at: &Context<'_>,
) -> RegistryError {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(MAX_ERROR_BODY)
        .read_to_end(&mut body);
    let says = registry_says(status, &body);
    let (endpoint, reference) = (at.endpoint.to_string(), at.reference.to_string());
    match status {
        401 => RegistryError::Unauthorized {
            endpoint,
            reference,
            says,
        },
        404 => RegistryError::NotFound {
            endpoint,
            reference,
            says,
        },
        _ => RegistryError::Http {
            endpoint,
            reference,
            status,
            says,
        },
    }
}

/// A ureq error as a registry error: TLS refusals apart.
pub(super) fn transport_error(
    endpoint: &str,
    reference: &str,
    source: ureq::Error,
) -> RegistryError {
    let (endpoint, reference) = (endpoint.to_string(), reference.to_string());
    if is_tls(&source) {
        RegistryError::Tls {
            endpoint,
            reference,
            source,
        }
    } else {
        RegistryError::Transport {
            endpoint,
            reference,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/*"), Some(0));
        assert_eq!(range_start("items 1-2/3"), None);
        assert_eq!(range_start(""), None);
    }
}

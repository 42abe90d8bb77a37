//! One request to one endpoint, as the distribution spec's auth flow
//! wants it: sent with what authorized the last one; on 401, the
//! `WWW-Authenticate` challenge (from the answer, else from a `/v2/` ping)
//! picks Basic or a Bearer token, and the request is sent once more;
//! credentials are offered in turn, and a 401 when none is left is
//! [`RegistryError::Unauthorized`]. Transport errors, 5xx and 429 are
//! retried with back-off; redirects (blob storage) are followed without
//! the Authorization header.

use super::agents::Origin;
use super::auth::{fetch_token, token_key, Context};
use super::challenge::{parse_challenges, Challenge};
use super::endpoint::Endpoint;
use super::error::{shown_url, RegistryError};
use super::session::{status_error, transport_error, Session};
use super::Shared;
use std::time::{Duration, Instant};

/// Attempts per request for transport errors, 5xx and 429: a flaky
/// link gets three chances before the pull's own back-off takes over.
pub(super) const ATTEMPTS: u32 = 3;

/// The longest pause a 429's `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Redirects followed at most (a registry redirects a blob once, to
/// its storage).
const MAX_REDIRECTS: usize = 5;

type Response = ureq::http::Response<ureq::Body>;

/// How a session authorizes its requests to one endpoint.
#[derive(Debug, Clone)]
pub(super) enum Auth {
    /// Nothing sent (no challenge yet).
    Anonymous,
    /// HTTP Basic with the credentials at this index.
    Basic(usize),
    /// A token from this challenge's realm, got with the credentials at
    /// this index, or anonymously.
    Bearer(Challenge, Option<usize>),
}

/// A GET to send.
pub(super) struct Request<'a> {
    /// From `/v2/` on.
    pub path: String,
    pub accept: Option<&'a str>,
    /// `Range: bytes=<n>-`.
    pub range: Option<u64>,
}

impl Session {
    /// GET `request` from endpoint `i`, authorized as challenged, following
    /// redirects: the answer, whatever its status but 401.
    pub(super) fn get(
        &mut self,
        i: usize,
        request: &Request<'_>,
        shown: &str,
    ) -> Result<Response, RegistryError> {
        let endpoint = self.targets[i].endpoint.clone();
        let agent = self.endpoint_agent(i)?;
        let url = format!("{}{}", endpoint.base, request.path);
        // Each turn moves to the next credentials, or to a fresh token in
        // place of a cached one, or returns.
        for _ in 0..self.targets[i].credentials.len() + 3 {
            let (authorization, cached) = match self.authorization(i, shown) {
                Ok(a) => a,
                Err(e @ RegistryError::Unauthorized { .. }) => {
                    self.advance(i, None).ok_or(e)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let shared = self.shared.clone();
            let at = self.context(i, shown);
            let response = with_retries(&shared, || {
                send(&agent, &url, request, authorization.as_deref(), &at)
            })?;
            if response.status().as_u16() != 401 {
                let from = (&endpoint, self.alias(i));
                return follow_redirects(&shared, response, url, request, from, &at);
            }
            let mut challenges = challenges_of(&response);
            if challenges.is_empty() {
                challenges = self.ping(i, &agent, shown)?;
            }
            let chosen = choose(challenges);
            self.forget_token(i);
            // A token from the cache may have been revoked: one more try
            // with a fresh one for the same credentials.
            if cached && chosen.as_ref().is_some_and(|c| c.scheme == "bearer") {
                continue;
            }
            if chosen.is_none() || self.advance(i, chosen).is_none() {
                return Err(status_error(response, &self.context(i, shown)));
            }
        }
        Err(RegistryError::Unauthorized {
            endpoint: endpoint.base,
            reference: shown.to_string(),
            says: "no credentials left to offer".into(),
        })
    }

    /// The agent for endpoint `i`'s own host.
    fn endpoint_agent(&self, i: usize) -> Result<ureq::Agent, RegistryError> {
        let endpoint = &self.targets[i].endpoint;
        self.shared
            .agents
            .get(&endpoint.host, self.alias(i), endpoint.plain_http)
    }

    /// The registry's name for the configs lookup of endpoint `i`, when it
    /// is the upstream.
    fn alias(&self, i: usize) -> Option<&str> {
        self.targets[i].endpoint.upstream.then(|| self.registry())
    }

    /// The Authorization header for endpoint `i`, fetching a token when
    /// none is cached; whether it came from the cache.
    fn authorization(
        &self,
        i: usize,
        shown: &str,
    ) -> Result<(Option<String>, bool), RegistryError> {
        let target = &self.targets[i];
        match &target.auth {
            Auth::Anonymous => Ok((None, false)),
            Auth::Basic(k) => Ok((Some(target.credentials[*k].basic_authorization()), false)),
            Auth::Bearer(challenge, who) => {
                let credentials = who.map(|k| &target.credentials[k]);
                let key = token_key(challenge, &self.scope, credentials);
                let now = Instant::now();
                if let Some(token) = self.shared.tokens.get(&key, now) {
                    return Ok((Some(format!("Bearer {token}")), true));
                }
                // The realm's own host's agent, not the endpoint's.
                let agent_for = |realm: &Origin| {
                    self.shared
                        .agents
                        .named_by(realm, &target.endpoint, self.alias(i))
                };
                let at = self.context(i, shown);
                let (token, life) = fetch_token(agent_for, &key, credentials, &at)?;
                self.shared.tokens.put(key, token.clone(), life, now);
                Ok((Some(format!("Bearer {token}")), false))
            }
        }
    }

    /// A refused token is not used again.
    fn forget_token(&self, i: usize) {
        let target = &self.targets[i];
        if let Auth::Bearer(challenge, who) = &target.auth {
            let credentials = who.map(|k| &target.credentials[k]);
            self.shared
                .tokens
                .forget(&token_key(challenge, &self.scope, credentials));
        }
    }

    /// Move endpoint `i` to the next way of authorizing, under `challenge`
    /// (the current one's when `None`); `None` when none is left.
    fn advance(&mut self, i: usize, challenge: Option<Challenge>) -> Option<()> {
        let target = &mut self.targets[i];
        let count = target.credentials.len();
        let (next, current) = match &target.auth {
            Auth::Anonymous => (0, None),
            Auth::Basic(k) => (k + 1, None),
            Auth::Bearer(c, Some(k)) => (k + 1, Some(c.clone())),
            Auth::Bearer(_, None) => return None,
        };
        let challenge = challenge.or(current)?;
        target.auth = match challenge.scheme.as_str() {
            "bearer" if next < count => Auth::Bearer(challenge, Some(next)),
            // Anonymous tokens only before any credentials were tried.
            "bearer" if next == 0 => Auth::Bearer(challenge, None),
            "basic" if next < count => Auth::Basic(next),
            _ => return None,
        };
        Some(())
    }

    /// `GET /v2/`, for a challenge a 401 came without.
    fn ping(
        &self,
        i: usize,
        agent: &ureq::Agent,
        shown: &str,
    ) -> Result<Vec<Challenge>, RegistryError> {
        let at = self.context(i, shown);
        let url = format!("{}/v2/", self.targets[i].endpoint.base);
        let ping = Request {
            path: String::new(),
            accept: None,
            range: None,
        };
        let response = with_retries(&self.shared, || send(agent, &url, &ping, None, &at))?;
        Ok(challenges_of(&response))
    }
}

/// The challenges of every `WWW-Authenticate` header.
fn challenges_of(response: &Response) -> Vec<Challenge> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// Bearer over Basic, as containerd prefers; other schemes are not spoken.
fn choose(challenges: Vec<Challenge>) -> Option<Challenge> {
    let mut usable: Vec<Challenge> = challenges
        .into_iter()
        .filter(|c| c.scheme == "basic" || (c.scheme == "bearer" && c.param("realm").is_some()))
        .collect();
    usable.sort_by_key(|c| c.scheme != "bearer");
    usable.into_iter().next()
}

/// One GET.
fn send(
    agent: &ureq::Agent,
    url: &str,
    request: &Request<'_>,
    authorization: Option<&str>,
    at: &Context<'_>,
) -> Result<Response, RegistryError> {
    let mut builder = agent.get(url);
    if let Some(accept) = request.accept {
        builder = builder.header("Accept", accept);
    }
    if let Some(offset) = request.range {
        builder = builder.header("Range", format!("bytes={offset}-"));
    }
    if let Some(value) = authorization {
        builder = builder.header("Authorization", value);
    }
    builder
        .call()
        .map_err(|e| transport_error(at.endpoint, at.reference, e))
}

/// `send` again after a transport error, a 5xx or a 429, up to
/// [`ATTEMPTS`] times, pausing the shared delay doubled each time (or a
/// 429's `Retry-After`, bounded).
fn with_retries(
    shared: &Shared,
    mut send: impl FnMut() -> Result<Response, RegistryError>,
) -> Result<Response, RegistryError> {
    let mut delay = shared.retry_delay;
    for attempt in 1.. {
        let result = send();
        let pause = match &result {
            Ok(r) if r.status().as_u16() == 429 => Some(retry_after(r).unwrap_or(delay)),
            Ok(r) if r.status().is_server_error() => Some(delay),
            Ok(_) => None,
            Err(e) => e.transient().then_some(delay),
        };
        match pause {
            Some(pause) if attempt < ATTEMPTS => {
                log::debug!("registry request: retrying in {pause:?} ({attempt} of {ATTEMPTS})");
                std::thread::sleep(pause.min(MAX_RETRY_AFTER));
                delay *= 2;
            }
            _ => return result,
        }
    }
    unreachable!("the attempts loop returns")
}

/// A 429's `Retry-After` in seconds.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse().ok().map(Duration::from_secs)
}

/// Follow redirects from `url`, got from `from` (an endpoint, and its
/// registry's name when it is the upstream), never with the Authorization
/// header: blob storage (S3, a CDN) gets a signed URL, not the registry's
/// credentials, and is reached with its own host's agent. Plain HTTP only
/// from a plain HTTP endpoint.
fn follow_redirects(
    shared: &Shared,
    mut response: Response,
    mut url: String,
    request: &Request<'_>,
    from: (&Endpoint, Option<&str>),
    at: &Context<'_>,
) -> Result<Response, RegistryError> {
    use crate::redirect::resolve;
    let protocol = |problem: String| RegistryError::Protocol {
        endpoint: at.endpoint.to_string(),
        reference: at.reference.to_string(),
        problem,
    };
    for _ in 0..MAX_REDIRECTS {
        if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Ok(response);
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| protocol("a redirect without a Location".into()))?;
        let next = resolve(&url, location)
            .ok_or_else(|| protocol(format!("a redirect to {:?}", shown_url(location))))?;
        let origin = Origin::of(&next).ok_or_else(|| {
            protocol(format!(
                "a redirect to {:?}, not an http(s) URL",
                shown_url(&next)
            ))
        })?;
        if origin.plain_http && !at.plain_http {
            return Err(RegistryError::InsecureRefused {
                endpoint: at.endpoint.to_string(),
                reference: at.reference.to_string(),
                url: shown_url(&next),
            });
        }
        let agent = shared.agents.named_by(&origin, from.0, from.1)?;
        response = with_retries(shared, || send(&agent, &next, request, None, at))?;
        url = next;
    }
    if matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Err(protocol(format!("more than {MAX_REDIRECTS} redirects")));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_preferred_and_needs_a_realm() {
        let c = |h: &str| choose(parse_challenges(h)).map(|c| c.scheme);
        assert_eq!(
            c(r#"Basic realm="r", Bearer realm="https://t""#).as_deref(),
            Some("bearer")
        );
        assert_eq!(
            c(r#"Bearer service="s", Basic realm="r""#).as_deref(),
            Some("basic")
        );
        assert_eq!(c(r#"Negotiate, Digest realm="x""#), None);
        assert_eq!(c(""), None);
    }

    fn redirect(location: &str) -> Response {
        ureq::http::Response::builder()
            .status(307)
            .header("location", location)
            .body(ureq::Body::builder().data(Vec::new()))
            .unwrap()
    }

    #[test]
    fn a_redirect_from_https_to_plain_http_is_refused_before_any_request() {
        let shared = crate::registry::tests::loopback_shared();
        let request = Request {
            path: String::new(),
            accept: None,
            range: None,
        };
        let https = Context {
            endpoint: "https://reg.example",
            reference: "reg.example/app@sha256:x",
            plain_http: false,
        };
        let endpoint = crate::registry::endpoint::parse_endpoint("reg.example", false).unwrap();
        let by = (&endpoint, None);
        for location in ["http://127.0.0.1:1/blob?sig=1", "HTTP://127.0.0.1:1/blob"] {
            let from = "https://reg.example/v2/app/blobs/x".to_string();
            match follow_redirects(&shared, redirect(location), from, &request, by, &https) {
                Err(e @ RegistryError::InsecureRefused { .. }) => {
                    assert!(e.to_string().contains("plain HTTP"), "{e}");
                    assert!(!e.to_string().contains("sig"), "{e}");
                }
                other => panic!("{location}: {other:?}"),
            }
        }
        let from = "https://reg.example/v2/app/blobs/x".to_string();
        let no_location = ureq::http::Response::builder()
            .status(302)
            .body(ureq::Body::builder().data(Vec::new()))
            .unwrap();
        let e = follow_redirects(&shared, no_location, from, &request, by, &https);
        assert!(
            matches!(&e, Err(RegistryError::Protocol { problem, .. }) if problem.contains("Location")),
            "{e:?}"
        );
    }
}

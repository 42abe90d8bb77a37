//! Bearer tokens (distribution/distribution's token authentication, as
//! Docker Hub and most registries use it): after a `Bearer
//! realm=…,service=…` challenge, GET the realm with `service` and
//! `scope=repository:<repo>:pull`, with Basic credentials when there are
//! any, anonymously otherwise; the answer's `token` (or `access_token`) is
//! kept until its `expires_in` (60 s when absent) less a margin, per
//! realm, service, scope and credentials.
//!
//! The realm may be on another host than the registry (Docker Hub's is
//! auth.docker.io). It is fetched with the realm host's own agent
//! (`configs.<realm host>` TLS, else `configs."*"`, else the system roots:
//! src/registry/agents.rs), never with the registry's: a registry's
//! `insecure_skip_verify` or client certificate does not extend to the
//! hosts it names. The registry's credentials do go to the realm it
//! names, as containerd's docker authorizer sends them (the registry
//! chooses its token service; a pull cannot work otherwise), but only
//! over HTTPS verified for the realm's host, or over plain HTTP when the
//! endpoint itself is a plain HTTP mirror as written in registries.yaml
//! (the credentials already cross that link in the clear).

use super::agents::Origin;
use super::challenge::Challenge;
use super::credentials::Credentials;
use super::error::{registry_says, shown_url, RegistryError, MAX_ERROR_BODY};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The largest token answer read: a JWT with its claims is a few KiB;
/// some registries add a refresh token.
const MAX_TOKEN_ANSWER: u64 = 1 << 20;

/// A token's life when the answer gives none (the token spec's default).
const DEFAULT_EXPIRES_IN: u64 = 60;

/// Taken off a token's life so that it is not sent as it expires; at most
/// half its life.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Tokens kept at most: one per repository pulled within a minute or so.
const MAX_TOKENS: usize = 256;

/// What a token was got for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TokenKey {
    pub realm: String,
    pub service: String,
    /// Scopes, separated by spaces (each is sent as its own `scope`).
    pub scope: String,
    /// The credentials' fingerprint; `None` for an anonymous token.
    pub who: Option<[u8; 32]>,
}

/// Tokens still valid, shared by every session.
#[derive(Default)]
pub(super) struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

impl TokenCache {
    /// A token for `key` that has not expired.
    pub(super) fn get(&self, key: &TokenKey, now: Instant) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(token, _)| token.clone())
    }

    /// Keep a token for `life`, less the margin.
    pub(super) fn put(&self, key: TokenKey, token: String, life: Duration, now: Instant) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= MAX_TOKENS {
            tokens.retain(|_, (_, until)| now < *until);
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
        }
        let margin = EXPIRY_MARGIN.min(life / 2);
        tokens.insert(key, (token, now + (life - margin)));
    }

    /// Forget a token the registry refused.
    pub(super) fn forget(&self, key: &TokenKey) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.remove(key);
    }
}

/// The token request's key for a challenge, a scope and credentials. A
/// scope the challenge names besides ours is asked for too, as
/// containerd does (a registry may want its own wording).
pub(super) fn token_key(challenge: &Challenge, scope: &str, who: Option<&Credentials>) -> TokenKey {
    let mut scopes = scope.to_string();
    if let Some(theirs) = challenge
        .param("scope")
        .filter(|s| !s.is_empty() && *s != scope)
    {
        scopes.push(' ');
        scopes.push_str(theirs);
    }
    TokenKey {
        realm: challenge.param("realm").unwrap_or("").to_string(),
        service: challenge.param("service").unwrap_or("").to_string(),
        scope: scopes,
        who: who.map(Credentials::fingerprint),
    }
}

/// Where the failure happened, for messages.
pub(super) struct Context<'a> {
    pub endpoint: &'a str,
    pub reference: &'a str,
    /// The endpoint is plain HTTP: a plain HTTP realm is no worse.
    pub plain_http: bool,
}

/// GET a token from the realm, with the agent `agent_for` gives for the
/// realm's origin once it is found to be one a token may come from; the
/// token's value and life.
pub(super) fn fetch_token(
    agent_for: impl FnOnce(&Origin) -> Result<ureq::Agent, RegistryError>,
    key: &TokenKey,
    credentials: Option<&Credentials>,
    at: &Context<'_>,
) -> Result<(String, Duration), RegistryError> {
    let realm = &key.realm;
    let protocol = |problem: String| RegistryError::Protocol {
        endpoint: at.endpoint.to_string(),
        reference: at.reference.to_string(),
        problem,
    };
    let origin = Origin::of(realm).ok_or_else(|| {
        protocol(format!(
            "the token realm {:?} is not an http(s) URL",
            shown_url(realm)
        ))
    })?;
    if origin.plain_http && !at.plain_http {
        return Err(RegistryError::InsecureRefused {
            endpoint: at.endpoint.to_string(),
            reference: at.reference.to_string(),
            url: shown_url(realm),
        });
    }
    let agent = agent_for(&origin)?;
    let mut url = format!("{realm}{}", if realm.contains('?') { '&' } else { '?' });
    if !key.service.is_empty() {
        url.push_str(&format!("service={}&", percent_encode(&key.service)));
    }
    let scopes: Vec<String> = key
        .scope
        .split(' ')
        .map(|s| format!("scope={}", percent_encode(s)))
        .collect();
    url.push_str(&scopes.join("&"));
    let mut request = agent.get(&url);
    if let Some(c) = credentials {
        request = request.header("Authorization", c.basic_authorization());
    }
    let mut response = request.call().map_err(|source| {
        // Named: a TLS refusal of the realm is not the registry's.
        let via = format!("{} (token realm {})", at.endpoint, shown_url(realm));
        super::session::transport_error(&via, at.reference, source)
    })?;
    let status = response.status().as_u16();
    let body = read_capped(&mut response, MAX_TOKEN_ANSWER, at)?;
    if status != 200 {
        let says = registry_says(status, &body[..body.len().min(MAX_ERROR_BODY as usize)]);
        let says = format!("token realm {}: {says}", shown_url(realm));
        return Err(match status {
            401 | 403 => RegistryError::Unauthorized {
                endpoint: at.endpoint.to_string(),
                reference: at.reference.to_string(),
                says,
            },
            _ => RegistryError::Http {
                endpoint: at.endpoint.to_string(),
                reference: at.reference.to_string(),
                status,
                says,
            },
        });
    }
    parse_token_answer(&body)
        .map_err(|problem| protocol(format!("token realm {}: {problem}", shown_url(realm))))
}

/// The token and its life from a token answer.
fn parse_token_answer(body: &[u8]) -> Result<(String, Duration), &'static str> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let answer: Answer =
        crate::json::from_slice(body).map_err(|_| "the answer is not a token's JSON")?;
    let token = answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token.filter(|t| !t.is_empty()))
        .ok_or("the answer holds no token")?;
    // It goes into a header: visible ASCII only.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token is not visible ASCII");
    }
    let seconds = answer
        .expires_in
        .filter(|&s| s > 0)
        .unwrap_or(DEFAULT_EXPIRES_IN);
    // A day at most: a token is not worth keeping longer than the agent
    // would trust a registry's word.
    Ok((token, Duration::from_secs(seconds.min(86_400))))
}

/// At most `cap` bytes of an answer; more is [`RegistryError::TooLarge`].
pub(super) fn read_capped(
    response: &mut ureq::http::Response<ureq::Body>,
    cap: u64,
    at: &Context<'_>,
) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(cap + 1)
        .read_to_end(&mut body)
        .map_err(|source| RegistryError::Read {
            endpoint: at.endpoint.to_string(),
            reference: at.reference.to_string(),
            source,
        })?;
    if body.len() as u64 > cap {
        return Err(RegistryError::TooLarge {
            endpoint: at.endpoint.to_string(),
            reference: at.reference.to_string(),
            limit: cap,
        });
    }
    Ok(body)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers() {
        let ok = |body: &str| parse_token_answer(body.as_bytes());
        assert_eq!(
            ok(r#"{"token":"t1","expires_in":300}"#),
            Ok(("t1".into(), Duration::from_secs(300)))
        );
        assert_eq!(
            ok(r#"{"access_token":"t2"}"#),
            Ok(("t2".into(), Duration::from_secs(60)))
        );
        assert_eq!(
            ok(r#"{"token":"","access_token":"t3","expires_in":0}"#),
            Ok(("t3".into(), Duration::from_secs(60)))
        );
        assert!(ok(r#"{"token":"a\r\nX-Evil: 1"}"#).is_err());
        assert!(ok(r#"{"expires_in":5}"#).is_err());
        assert!(ok("<html>").is_err());
    }

    #[test]
    fn tokens_expire_before_the_registry_says() {
        let cache = TokenCache::default();
        let key = TokenKey {
            realm: "https://auth/token".into(),
            service: "s".into(),
            scope: "repository:a:pull".into(),
            who: None,
        };
        let now = Instant::now();
        cache.put(key.clone(), "t".into(), Duration::from_secs(60), now);
        assert_eq!(
            cache.get(&key, now + Duration::from_secs(49)).as_deref(),
            Some("t")
        );
        assert_eq!(cache.get(&key, now + Duration::from_secs(50)), None);
        let other = TokenKey {
            who: Some([1; 32]),
            ..key.clone()
        };
        assert_eq!(cache.get(&other, now), None);
        cache.put(key.clone(), "short".into(), Duration::from_secs(4), now);
        assert_eq!(
            cache.get(&key, now + Duration::from_secs(1)).as_deref(),
            Some("short")
        );
        assert_eq!(cache.get(&key, now + Duration::from_secs(2)), None);
        cache.forget(&key);
        assert_eq!(cache.get(&key, now), None);
        assert_eq!(
            percent_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}

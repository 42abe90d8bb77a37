//! A blocking Kubernetes API client over ureq for the sync threads: JSON
//! requests with the kubeconfig's credentials, and watch streams read line
//! by line. TLS is verified unless the kubeconfig says otherwise.

use super::kubeconfig::Connection;
use crate::source::pem_certificates;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The system's CA bundle, used when the kubeconfig names no authority.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The largest response read whole (a pod list of a busy node fits).
const MAX_RESPONSE: u64 = 64 << 20;

pub struct ApiClient {
    agent: ureq::Agent,
    connection: Connection,
}

/// An answer: its HTTP status and JSON body (`Null` when it had none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API's own words for a failure (a `Status` object's message).
    pub fn message(&self) -> String {
        let text = self
            .body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("");
        format!("HTTP {}: {text}", self.status)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Patch {
    Merge,
}

impl ApiClient {
    /// `timeout` bounds connecting and waiting for an answer; `longest`
    /// bounds a whole request, watches included: a server that accepts and
    /// never answers, or stops sending, cannot hold a thread.
    pub fn new(
        connection: Connection,
        timeout: Duration,
        longest: Duration,
    ) -> Result<ApiClient, String> {
        use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig};
        let mut tls = TlsConfig::builder()
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        let roots_pem = match &connection.ca_pem {
            Some(pem) => Some(pem.clone()),
            None => std::fs::read(Path::new(SYSTEM_CA_BUNDLE)).ok(),
        };
        match roots_pem {
            Some(pem) => {
                let roots = pem_certificates(&pem);
                if roots.is_empty() {
                    return Err("certificate-authority: no certificate in it".into());
                }
                // Explicit roots always: ureq's default panics without its
                // WebPki feature (DESIGN.md).
                tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
            }
            None if connection.server.starts_with("https://")
                && !connection.insecure_skip_verify =>
            {
                return Err(format!(
                    "no certificate-authority in the kubeconfig and no {SYSTEM_CA_BUNDLE}"
                ));
            }
            None => {}
        }
        if connection.insecure_skip_verify {
            log::warn!(
                "kubeconfig: insecure-skip-tls-verify: the API server's identity is NOT verified"
            );
            tls = tls.disable_verification(true);
        }
        if let Some((cert_pem, key_pem)) = &connection.client_identity {
            let chain = pem_certificates(cert_pem);
            let key = ureq::tls::parse_pem(key_pem).find_map(|item| match item {
                Ok(PemItem::PrivateKey(k)) => Some(k),
                _ => None,
            });
            match (chain.is_empty(), key) {
                (false, Some(key)) => {
                    check_client_identity(&chain, &key)?;
                    tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
                }
                (true, _) => return Err("client-certificate: no certificate in it".into()),
                (_, None) => return Err("client-key: no private key in it".into()),
            }
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_global(Some(longest))
            .max_idle_connections_per_host(2)
            .tls_config(tls.build())
            .build();
        Ok(ApiClient {
            agent: config.into(),
            connection,
        })
    }

    pub fn server(&self) -> &str {
        &self.connection.server
    }

    fn authorization(&self) -> Result<Option<String>, String> {
        match &self.connection.token {
            None => Ok(None),
            Some(t) => t.value().map(|v| Some(format!("Bearer {v}"))),
        }
    }

    fn call_get(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
        let mut request = self.agent.get(format!("{}{path}", self.connection.server));
        if let Some(auth) = self.authorization()? {
            request = request.header("Authorization", auth);
        }
        request
            .header("Accept", "application/json")
            .call()
            .map_err(|e| e.to_string())
    }

    pub fn get(&self, path: &str) -> Result<Reply, String> {
        reply(self.call_get(path)?)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, String> {
        self.send("POST", path, "application/json", body)
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Reply, String> {
        self.send("PUT", path, "application/json", body)
    }

    pub fn patch(&self, path: &str, kind: Patch, body: &Value) -> Result<Reply, String> {
        let content_type = match kind {
            Patch::Merge => "application/merge-patch+json",
        };
        self.send("PATCH", path, content_type, body)
    }

    /// DELETE with a `DeleteOptions` body (grace period, preconditions).
    pub fn delete(&self, path: &str, options: &Value) -> Result<Reply, String> {
        self.send("DELETE", path, "application/json", options)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.connection.server);
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let auth = self.authorization()?;
        let with_headers = |mut r: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            if let Some(auth) = &auth {
                r = r.header("Authorization", auth);
            }
            r.header("Accept", "application/json")
                .content_type(content_type)
        };
        let request = match method {
            "POST" => with_headers(self.agent.post(&url)),
            "PUT" => with_headers(self.agent.put(&url)),
            "PATCH" => with_headers(self.agent.patch(&url)),
            _ => with_headers(self.agent.delete(&url).force_send_body()),
        };
        reply(request.send(&bytes[..]).map_err(|e| e.to_string())?)
    }

    /// Open a watch: on 200, its events one JSON object per line; otherwise
    /// the error reply.
    pub fn watch(&self, path: &str) -> Result<Result<WatchStream, Reply>, String> {
        let response = self.call_get(path)?;
        if response.status().as_u16() != 200 {
            return reply(response).map(Err);
        }
        Ok(Ok(WatchStream {
            reader: BufReader::new(Box::new(response.into_body().into_reader())),
        }))
    }
}

/// ureq panics on a client certificate rustls refuses (a v1 certificate,
/// a key that does not match): ask rustls first and make it an error.
fn check_client_identity(
    chain: &[ureq::tls::Certificate<'static>],
    key: &ureq::tls::PrivateKey<'static>,
) -> Result<(), String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key =
        PrivateKeyDer::try_from(key.der().to_vec()).map_err(|e| format!("client-key: {e}"))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map(drop)
        .map_err(|e| format!("client-certificate: not usable: {e}"))
}

pub struct WatchStream {
    reader: BufReader<Box<dyn Read + Send>>,
}

impl WatchStream {
    /// The next event; `Ok(None)` when the server ended the watch.
    pub fn next_event(&mut self) -> Result<Option<Value>, String> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = (&mut self.reader)
                .take(MAX_RESPONSE)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(None);
            }
            if !line.trim().is_empty() {
                return serde_json::from_str(&line)
                    .map(Some)
                    .map_err(|e| format!("a watch event that is not JSON: {e}"));
            }
        }
    }
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, String> {
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_RESPONSE)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok(Reply { status, body })
}

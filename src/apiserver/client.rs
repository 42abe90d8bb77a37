//! A blocking Kubernetes API client over ureq for the sync threads: JSON
//! requests with the kubeconfig's credentials, and watch streams read line
//! by line. TLS is verified unless the kubeconfig says otherwise.

use super::kubeconfig::{Connection, TokenError};
use crate::json::JsonError;
use crate::tls::pem_certificates;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The system's CA bundle, used when the kubeconfig names no authority.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The largest answer read whole: a list of a full node's pods (110, the
/// kubelet's maxPods) at 150 KiB each, ten times a typical pod with its
/// managedFields; a ConfigMap or Secret is at most 1 MiB.
pub const MAX_RESPONSE: u64 = 16 << 20;

/// The longest watch event (one line): one object, which etcd keeps to
/// 1.5 MiB, in its envelope.
pub const MAX_EVENT: u64 = 2 << 20;

/// A blocking client of one API server, with its credentials.
pub struct ApiClient {
    agent: ureq::Agent,
    connection: Connection,
}

/// An answer: its HTTP status and JSON body (`Null` when it had none).
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body; `Null` when there was none.
    pub body: Value,
}

impl Reply {
    /// A 2xx status.
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

/// The kinds of PATCH the client sends.
#[derive(Debug, Clone, Copy)]
pub enum Patch {
    Merge,
}

/// Why the client could not be made: the kubeconfig's TLS material.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsError {
    /// The certificate-authority holds no certificate.
    NoCaCertificate,
    /// HTTPS with no certificate-authority and no system bundle.
    NoRoots,
    NoClientCertificate,
    NoClientKey,
    /// rustls refused the client key.
    ClientKey(String),
    /// rustls refused the client certificate (a v1 certificate, a key that
    /// does not match).
    ClientCertificate(String),
    /// rustls's protocol versions.
    Provider(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::NoCaCertificate => f.write_str("certificate-authority: no certificate in it"),
            TlsError::NoRoots => write!(
                f,
                "no certificate-authority in the kubeconfig and no {SYSTEM_CA_BUNDLE}"
            ),
            TlsError::NoClientCertificate => {
                f.write_str("client-certificate: no certificate in it")
            }
            TlsError::NoClientKey => f.write_str("client-key: no private key in it"),
            TlsError::ClientKey(e) => write!(f, "client-key: {e}"),
            TlsError::ClientCertificate(e) => write!(f, "client-certificate: not usable: {e}"),
            TlsError::Provider(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for TlsError {}

/// Why a request got no usable answer.
#[derive(Debug)]
pub enum RequestError {
    /// The kubeconfig's tokenFile could not be read.
    Token(TokenError),
    /// Connecting, TLS, sending, or a timeout.
    Transport(ureq::Error),
    /// The body could not be serialized.
    Encode(serde_json::Error),
    /// The answer could not be taken in.
    Answer {
        method: &'static str,
        endpoint: String,
        problem: AnswerError,
    },
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Token(e) => e.fmt(f),
            RequestError::Transport(e) => e.fmt(f),
            RequestError::Encode(e) => e.fmt(f),
            RequestError::Answer {
                method,
                endpoint,
                problem,
            } => write!(f, "{method} {endpoint}: {problem}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Why an answer's body was refused.
#[derive(Debug)]
pub enum AnswerError {
    /// Over [`MAX_RESPONSE`] bytes.
    TooLarge,
    Read(std::io::Error),
    /// A success whose body is not JSON.
    NotJson {
        status: u16,
        error: String,
    },
    /// A success whose JSON is over the parser's bounds (src/json.rs).
    Refused {
        status: u16,
        error: String,
    },
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::TooLarge => write!(f, "the answer is larger than {MAX_RESPONSE} bytes"),
            AnswerError::Read(e) => write!(f, "reading the answer: {e}"),
            AnswerError::NotJson { status, error } => {
                write!(f, "HTTP {status} with an answer that is not JSON: {error}")
            }
            AnswerError::Refused { status, error } => {
                write!(f, "HTTP {status} with an answer refused: {error}")
            }
        }
    }
}

impl ApiClient {
    /// `timeout` bounds connecting and waiting for an answer; `longest`
    /// bounds a whole request, watches included: a server that accepts and
    /// never answers, or stops sending, cannot hold a thread.
    pub fn new(
        connection: Connection,
        timeout: Duration,
        longest: Duration,
    ) -> Result<ApiClient, TlsError> {
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
                    return Err(TlsError::NoCaCertificate);
                }
                // Explicit roots always: ureq's default panics without its
                // WebPki feature (bench/README.md, "Dependencies and their cost").
                tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
            }
            None if connection.server.starts_with("https://")
                && !connection.insecure_skip_verify =>
            {
                return Err(TlsError::NoRoots);
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
                (true, _) => return Err(TlsError::NoClientCertificate),
                (_, None) => return Err(TlsError::NoClientKey),
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

    /// The server's URL, to name in messages.
    pub fn server(&self) -> &str {
        &self.connection.server
    }

    fn authorization(&self) -> Result<Option<String>, RequestError> {
        match &self.connection.token {
            None => Ok(None),
            Some(t) => t
                .value()
                .map(|v| Some(format!("Bearer {v}")))
                .map_err(RequestError::Token),
        }
    }

    fn call_get(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>, RequestError> {
        let mut request = self.agent.get(format!("{}{path}", self.connection.server));
        if let Some(auth) = self.authorization()? {
            request = request.header("Authorization", auth);
        }
        request
            .header("Accept", "application/json")
            .call()
            .map_err(RequestError::Transport)
    }

    /// GET a JSON object.
    pub fn get(&self, path: &str) -> Result<Reply, RequestError> {
        reply(self.call_get(path)?, "GET", &self.endpoint(path))
    }

    /// The server and path, to name in errors (a path holds no secret).
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.connection.server)
    }

    /// POST (create) an object.
    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, RequestError> {
        self.send("POST", path, "application/json", body)
    }

    /// PUT (replace) an object.
    pub fn put(&self, path: &str, body: &Value) -> Result<Reply, RequestError> {
        self.send("PUT", path, "application/json", body)
    }

    /// PATCH an object.
    pub fn patch(&self, path: &str, kind: Patch, body: &Value) -> Result<Reply, RequestError> {
        let content_type = match kind {
            Patch::Merge => "application/merge-patch+json",
        };
        self.send("PATCH", path, content_type, body)
    }

    /// DELETE with a `DeleteOptions` body (grace period, preconditions).
    pub fn delete(&self, path: &str, options: &Value) -> Result<Reply, RequestError> {
        self.send("DELETE", path, "application/json", options)
    }

    fn send(
        &self,
        method: &'static str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<Reply, RequestError> {
        let url = format!("{}{path}", self.connection.server);
        let bytes = serde_json::to_vec(body).map_err(RequestError::Encode)?;
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
        reply(
            request.send(&bytes[..]).map_err(RequestError::Transport)?,
            method,
            &url,
        )
    }

    /// Open a watch: on 200, its events one JSON object per line; otherwise
    /// the error reply.
    pub fn watch(&self, path: &str) -> Result<Result<WatchStream, Reply>, RequestError> {
        let response = self.call_get(path)?;
        if response.status().as_u16() != 200 {
            return reply(response, "GET", &self.endpoint(path)).map(Err);
        }
        Ok(Ok(WatchStream {
            reader: BufReader::new(Box::new(response.into_body().into_reader())),
            line: Vec::new(),
        }))
    }
}

/// ureq panics on a client certificate rustls refuses (a v1 certificate,
/// a key that does not match): ask rustls first and make it an error.
fn check_client_identity(
    chain: &[ureq::tls::Certificate<'static>],
    key: &ureq::tls::PrivateKey<'static>,
) -> Result<(), TlsError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key = PrivateKeyDer::try_from(key.der().to_vec())
        .map_err(|e| TlsError::ClientKey(e.to_string()))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map(drop)
        .map_err(|e| TlsError::ClientCertificate(e.to_string()))
}

/// An open watch: its events, one JSON object per line.
pub struct WatchStream {
    reader: BufReader<Box<dyn Read + Send>>,
    line: Vec<u8>,
}

/// Why a watch stream gave no event.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The connection broke or a line was cut: watch again from the last
    /// version seen.
    Dropped(String),
    /// An event longer than [`MAX_EVENT`]: the same event would come again.
    TooLong,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Dropped(m) => f.write_str(m),
            StreamError::TooLong => write!(f, "a watch event longer than {MAX_EVENT} bytes"),
        }
    }
}

impl WatchStream {
    /// The next event; `Ok(None)` when the server ended the watch.
    pub fn next_event(&mut self) -> Result<Option<Value>, StreamError> {
        loop {
            self.line.clear();
            let n = (&mut self.reader)
                .take(MAX_EVENT + 1)
                .read_until(b'\n', &mut self.line)
                .map_err(|e| StreamError::Dropped(e.to_string()))?;
            if n == 0 {
                return Ok(None);
            }
            if n as u64 > MAX_EVENT {
                return Err(StreamError::TooLong);
            }
            if !self.line.trim_ascii().is_empty() {
                return decode_event(&self.line).map(Some);
            }
        }
    }
}

/// One line of a watch stream as JSON.
pub fn decode_event(line: &[u8]) -> Result<Value, StreamError> {
    crate::json::from_slice(line).map_err(|e| {
        StreamError::Dropped(match e {
            JsonError::Invalid(e) => format!("a watch event that is not JSON: {e}"),
            e => format!("a watch event refused: {e}"),
        })
    })
}

/// Read an answer of at most [`MAX_RESPONSE`] bytes; a successful one must be
/// JSON (an empty body is `Null`). Errors name the method and endpoint.
fn reply(
    mut response: ureq::http::Response<ureq::Body>,
    method: &'static str,
    endpoint: &str,
) -> Result<Reply, RequestError> {
    let answer = |problem| RequestError::Answer {
        method,
        endpoint: endpoint.to_string(),
        problem,
    };
    let status = response.status().as_u16();
    // A declared length says it at once, before any of it is read.
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_RESPONSE) {
        return Err(answer(AnswerError::TooLarge));
    }
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| answer(AnswerError::Read(e)))?;
    decode_reply(status, &bytes).map_err(answer)
}

/// An answer's body as the API client takes it: at most [`MAX_RESPONSE`]
/// bytes; JSON when the status is a success (an error page from a proxy
/// need not be).
pub fn decode_reply(status: u16, bytes: &[u8]) -> Result<Reply, AnswerError> {
    if bytes.len() as u64 > MAX_RESPONSE {
        return Err(AnswerError::TooLarge);
    }
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        match crate::json::from_slice(bytes) {
            Ok(v) => v,
            Err(JsonError::Invalid(e)) if (200..300).contains(&status) => {
                let error = e.to_string();
                return Err(AnswerError::NotJson { status, error });
            }
            Err(e) if (200..300).contains(&status) => {
                let error = e.to_string();
                return Err(AnswerError::Refused { status, error });
            }
            Err(_) => Value::Null,
        }
    };
    Ok(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::kubeconfig::Connection;
    use std::io::Write;
    use std::net::TcpListener;

    /// A server on loopback that answers one request with `answer` (the
    /// head), then `body` in chunks; returns its URL.
    fn serve_once(head: String, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut request);
            let _ = conn.write_all(head.as_bytes());
            for chunk in body.chunks(64 << 10) {
                if conn.write_all(chunk).is_err() {
                    return;
                }
            }
        });
        url
    }

    fn client(server: String) -> ApiClient {
        let connection = Connection {
            server,
            ca_pem: None,
            insecure_skip_verify: false,
            client_identity: None,
            token: None,
        };
        let t = Duration::from_secs(10);
        ApiClient::new(connection, t, t).unwrap()
    }

    #[test]
    fn an_oversized_answer_is_an_error_naming_the_endpoint() {
        let body = vec![b' '; MAX_RESPONSE as usize + 1];
        // Without a length (to the end of the connection): read, then refused.
        let url = serve_once("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".into(), body);
        let e = client(url.clone()).get("/api/v1/pods").unwrap_err();
        assert!(
            matches!(&e, RequestError::Answer { method: "GET", endpoint, problem: AnswerError::TooLarge }
                if *endpoint == format!("{url}/api/v1/pods")),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("GET {url}/api/v1/pods: the answer is larger than {MAX_RESPONSE} bytes")
        );
        // With a length: refused before reading.
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            u64::MAX / 2
        );
        let url = serve_once(head, Vec::new());
        let e = client(url.clone()).get("/api/v1/pods").unwrap_err();
        assert!(
            matches!(
                &e,
                RequestError::Answer {
                    problem: AnswerError::TooLarge,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .ends_with("the answer is larger than 16777216 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_successful_answer_must_be_json() {
        let e = decode_reply(200, b"<html>").unwrap_err();
        assert!(
            matches!(e, AnswerError::NotJson { status: 200, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("HTTP 200 with an answer that is not JSON"),
            "{e}"
        );
        let proxy_error = decode_reply(502, b"<html>bad gateway</html>").unwrap();
        assert_eq!((proxy_error.status, proxy_error.body), (502, Value::Null));
    }

    #[test]
    fn a_watch_event_longer_than_the_limit_is_refused_and_shorter_ones_pass() {
        let mut body = b"{\"type\":\"BOOKMARK\"}\n\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_EVENT as usize + 10));
        body.push(b'\n');
        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string();
        let url = serve_once(head, body);
        let mut stream = match client(url).watch("/api/v1/pods?watch=1") {
            Ok(Ok(stream)) => stream,
            other => panic!("{:?}", other.map(|r| r.map(drop))),
        };
        assert_eq!(
            stream.next_event().unwrap(),
            Some(serde_json::json!({"type": "BOOKMARK"}))
        );
        assert_eq!(stream.next_event(), Err(StreamError::TooLong));
    }
}

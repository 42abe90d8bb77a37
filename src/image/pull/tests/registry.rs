//! The registry the pull tests talk to: one HTTP/1.1 connection at a
//! time on 127.0.0.1, answered by a closure, recorded; [`Repo`] answers as
//! the distribution registry does, and a test lies where it wants to.

use super::super::*;
use super::fixtures::sha;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A request as the registry saw it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) path: String,
    pub(super) range: Option<String>,
}

/// An answer. `cut`: only that many bytes of `body` are sent, though
/// `Content-Length` announces them all (a link that breaks). `padding`:
/// that many zero bytes follow `body`, announced too (a blob longer than
/// its descriptor).
pub(super) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    cut: Option<usize>,
    padding: u64,
}

impl Reply {
    pub(super) fn new(status: u16, body: &[u8]) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
            cut: None,
            padding: 0,
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    pub(super) fn cut(mut self, at: usize) -> Reply {
        self.cut = Some(at.min(self.body.len()));
        self
    }

    pub(super) fn padding(mut self, bytes: u64) -> Reply {
        self.padding = bytes;
        self
    }

    /// Send it on `stream`; the bytes of body the peer took before it
    /// hung up.
    pub(super) fn send(&self, stream: &mut TcpStream) -> u64 {
        let length = self.body.len() as u64 + self.padding;
        let mut head = format!(
            "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {length}\r\n",
            self.status
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).is_err() {
            return 0;
        }
        let body = &self.body[..self.cut.unwrap_or(self.body.len())];
        if stream.write_all(body).is_err() {
            return 0;
        }
        let mut sent = body.len() as u64;
        let zeros = vec![0u8; 64 * 1024];
        while sent < self.body.len() as u64 + self.padding && self.cut.is_none() {
            match stream.write(&zeros) {
                Ok(n) if n > 0 => sent += n as u64,
                _ => break,
            }
        }
        sent
    }
}

/// What the server has seen and sent: requests as they come, then the
/// body bytes of each answer once its connection is done.
#[derive(Default)]
pub(super) struct Log {
    seen: Mutex<(Vec<Seen>, Vec<u64>)>,
    done: Condvar,
}

/// The registry in a thread, one connection at a time, each closed after
/// its answer; `handler` answers every request.
pub(super) struct Registry {
    pub(super) addr: String,
    log: Arc<Log>,
}

impl Registry {
    pub(super) fn start(handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Log::default());
        let record = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                // Only a broken test sends no request (TLS to the
                // upstream): never hang on it.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                record.seen.lock().unwrap().0.push(request.clone());
                let sent = handler(&request).send(&mut stream);
                drop(stream);
                record.seen.lock().unwrap().1.push(sent);
                record.done.notify_all();
            }
        });
        Registry { addr, log }
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.log.seen.lock().unwrap().0.clone()
    }

    /// The requests for blobs (not manifests).
    pub(super) fn blob_gets(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains("/blobs/"))
            .collect()
    }

    /// The body bytes sent for each request, once all `n` are done.
    pub(super) fn sent(&self, n: usize) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut log = self.log.seen.lock().unwrap();
        while log.1.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the server never finished {n} answers");
            log = self.log.done.wait_timeout(log, left).unwrap().0;
        }
        log.1.clone()
    }
}

pub(super) fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            return Some(Seen { path, range });
        }
        let (name, value) = header.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("range") {
            range = Some(value.trim().to_string());
        }
    }
}

/// What the repository `app` holds, answered as the distribution registry
/// does.
#[derive(Clone, Default)]
pub(super) struct Repo {
    /// By tag and by digest: (media type, body).
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
}

impl Repo {
    /// `body` under its digest and, if given, `tag`.
    pub(super) fn manifest(mut self, tag: Option<&str>, media_type: &str, body: &[u8]) -> Repo {
        let entry = (media_type.to_string(), body.to_vec());
        if let Some(tag) = tag {
            self.manifests.insert(tag.to_string(), entry.clone());
        }
        self.manifests.insert(sha(body).to_string(), entry);
        self
    }

    pub(super) fn blob(mut self, body: &[u8]) -> Repo {
        self.blobs.insert(sha(body).to_string(), body.to_vec());
        self
    }

    /// The spec's answer: a manifest with its Content-Type; a blob whole,
    /// or from `Range: bytes=N-` with 206 (416 past its end); else 404.
    pub(super) fn answer(&self, req: &Seen) -> Reply {
        if let Some(name) = req.path.strip_prefix("/v2/app/manifests/") {
            return match self.manifests.get(name) {
                Some((media_type, body)) => {
                    Reply::new(200, body).header("Content-Type", media_type)
                }
                None => Reply::new(404, br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
            };
        }
        let blob = req
            .path
            .strip_prefix("/v2/app/blobs/")
            .and_then(|d| self.blobs.get(d));
        let Some(blob) = blob else {
            return Reply::new(404, br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#);
        };
        match range_start(req) {
            None => Reply::new(200, blob),
            Some(n) if n >= blob.len() => Reply::new(416, b""),
            Some(n) => Reply::new(206, &blob[n..]).header(
                "Content-Range",
                &format!("bytes {n}-{}/{}", blob.len() - 1, blob.len()),
            ),
        }
    }
}

/// N of `Range: bytes=N-`.
pub(super) fn range_start(req: &Seen) -> Option<usize> {
    req.range
        .as_deref()?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

//! A TCP proxy on loopback in front of a plain-HTTP registry that cuts the
//! first blob response longer than `cut_after` bytes after that many body
//! bytes, so a client that resumes must send `Range: bytes=N-`. Each
//! request gets its own upstream connection (`Connection: close`), so the
//! proxy sees every request head; it records them for the test to assert.
//! A slow proxy ([`CuttingProxy::slow`]) cuts nothing but sends blob bodies
//! at a set rate, so a pull lasts long enough to be watched.
//! Stopped on drop: the accept loop ends and its thread is joined;
//! connection threads end with their sockets (read timeouts bound them).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request or response head is at most this long: the registry and the
/// agent send a few hundred bytes; more means something is wrong.
const HEAD_LIMIT: usize = 64 << 10;

/// No socket of the proxy waits longer than this for a byte.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    upstream: u16,
    cut_after: u64,
    /// Blob bodies go at most this many bytes a second (0: at once).
    rate: u64,
    /// Set once the one cut has been made.
    cut_done: AtomicBool,
    /// The request line of the response that was cut.
    cut_request: Mutex<Option<String>>,
    stopping: AtomicBool,
    /// Every request head, in arrival order.
    requests: Mutex<Vec<String>>,
}

pub struct CuttingProxy {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl CuttingProxy {
    /// Listen on a free loopback port, forwarding to `127.0.0.1:upstream`
    /// and cutting the first blob body longer than `cut_after`.
    pub fn start(upstream: u16, cut_after: u64) -> CuttingProxy {
        CuttingProxy::listen(upstream, cut_after, 0)
    }

    /// Forward to `127.0.0.1:upstream`, blob bodies at `bytes_per_sec`.
    pub fn slow(upstream: u16, bytes_per_sec: u64) -> CuttingProxy {
        CuttingProxy::listen(upstream, u64::MAX, bytes_per_sec)
    }

    fn listen(upstream: u16, cut_after: u64, rate: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            cut_after,
            rate,
            cut_done: AtomicBool::new(false),
            cut_request: Mutex::new(None),
            stopping: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
        });
        let for_thread = shared.clone();
        let acceptor = std::thread::spawn(move || {
            for client in listener.incoming() {
                if for_thread.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = for_thread.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &shared);
                });
            }
        });
        CuttingProxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`, for a mirror endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request heads seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The digest of the blob whose response was cut.
    pub fn cut_blob(&self) -> Option<String> {
        let line = self.shared.cut_request.lock().unwrap().clone()?;
        let path = line.split(' ').nth(1)?;
        let digest = path.rsplit('/').next()?;
        Some(digest.split('?').next()?.to_string())
    }

    /// The start offsets of the `Range: bytes=N-` requests for blob `digest`.
    pub fn range_starts(&self, digest: &str) -> Vec<u64> {
        self.requests()
            .iter()
            .filter(|h| h.lines().next().is_some_and(|l| l.contains(digest)))
            .filter_map(|h| {
                h.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    let range = value.trim().strip_prefix("bytes=")?;
                    let start = range.split('-').next()?;
                    name.eq_ignore_ascii_case("range")
                        .then(|| start.parse().ok())
                        .flatten()
                })
            })
            .collect()
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Read a head (up to and including the blank line) from `from`.
fn read_head(from: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if from.read(&mut byte)? == 0 || head.len() >= HEAD_LIMIT {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// The value of header `name` in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One request: forward it with `Connection: close`, stream the response
/// back, cut if it is the first long enough blob body.
fn serve(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    let head = String::from_utf8_lossy(&read_head(&mut client)?).into_owned();
    shared.requests.lock().unwrap().push(head.clone());
    let mut forwarded: String = head
        .lines()
        .filter(|l| {
            !l.is_empty()
                && !l
                    .split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("connection"))
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut upstream = TcpStream::connect(("127.0.0.1", shared.upstream))?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.write_all(forwarded.as_bytes())?;
    let body_len: u64 = header(&head, "content-length")
        .map_or(Ok(0), str::parse)
        .unwrap_or(0);
    io::copy(&mut (&mut client).take(body_len), &mut upstream)?;

    let response = read_head(&mut upstream)?;
    client.write_all(&response)?;
    let response = String::from_utf8_lossy(&response);
    let is_blob_get =
        head.starts_with("GET ") && head.lines().next().is_some_and(|l| l.contains("/blobs/"));
    let long: u64 = header(&response, "content-length")
        .map_or(Ok(0), str::parse)
        .unwrap_or(0);
    let cut = is_blob_get
        && response.starts_with("HTTP/1.1 200")
        && long > shared.cut_after
        && shared
            .cut_done
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
    if cut {
        *shared.cut_request.lock().unwrap() = head.lines().next().map(String::from);
        io::copy(&mut (&mut upstream).take(shared.cut_after), &mut client)?;
    } else if is_blob_get && shared.rate > 0 {
        copy_slowly(&mut upstream, &mut client, shared.rate)?;
    } else {
        io::copy(&mut upstream, &mut client)?;
    }
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// Copy `from` to `to` in chunks of a tenth of `rate`, one chunk every
/// 100 ms: `rate` bytes a second.
fn copy_slowly(from: &mut TcpStream, to: &mut TcpStream, rate: u64) -> io::Result<()> {
    let mut chunk = vec![0u8; (rate / 10).max(1) as usize];
    loop {
        let n = from.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&chunk[..n])?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

//! Running probe and hook handlers for the engine, without blocking the one
//! thread: `exec` through `<runtime> exec` watched by a pidfd; `tcpSocket`
//! and `httpGet` as non-blocking connections made inside the pod's network
//! namespace and driven by epoll. Timeouts are the engine's: it cancels.
//!
//! Without a CNI there is no pod IP: probes connect to 127.0.0.1 in the
//! pod's namespace (the host's for hostNetwork pods), or to `host` if set.

use super::{sandbox, Runtime};
use crate::engine::{InstanceRef, Observation};
use crate::pod::{Container, ExecAction, Handler, HttpGetAction, IntOrString, Pod};
use crate::reactor::{Interest, Reactor, Token};
use rustix::fd::OwnedFd;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The most of an HTTP response read: enough for the status line.
const MAX_RESPONSE: usize = 4096;

/// Why a handler failed: the message the probe or hook reports.
#[derive(Debug)]
pub enum HandlerError {
    /// The exec command exited non-zero; `None`: killed by a signal.
    Exited { code: Option<i32> },
    /// Waiting for the exec command failed.
    Wait(io::Error),
    /// The connection was refused, reset, timed out in the kernel, ...
    Connect(rustix::io::Errno),
    /// The socket's pending error could not be read.
    SocketError(rustix::io::Errno),
    /// Writing the HTTP request failed.
    Send(io::Error),
    /// Waiting for the response could not be set up.
    Watch(io::Error),
    /// Reading the HTTP response failed.
    Read(io::Error),
    /// The response does not start with an HTTP status line.
    NotHttp { line: String },
    /// A status outside 200 to 399.
    Status { code: u16 },
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Exited { code } => write!(
                f,
                "command exited with {}",
                code.map_or("a signal".into(), |c| c.to_string())
            ),
            HandlerError::Wait(e) | HandlerError::Watch(e) => e.fmt(f),
            HandlerError::Connect(e) => write!(f, "connect: {e}"),
            HandlerError::SocketError(e) => e.fmt(f),
            HandlerError::Send(e) => write!(f, "sending the request: {e}"),
            HandlerError::Read(e) => write!(f, "reading the response: {e}"),
            HandlerError::NotHttp { line } => write!(f, "not an HTTP response: {line:?}"),
            HandlerError::Status { code } => {
                write!(f, "HTTP probe failed with statuscode: {code}")
            }
        }
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandlerError::Wait(e)
            | HandlerError::Watch(e)
            | HandlerError::Send(e)
            | HandlerError::Read(e) => Some(e),
            HandlerError::Connect(e) | HandlerError::SocketError(e) => Some(e),
            HandlerError::Exited { .. }
            | HandlerError::NotHttp { .. }
            | HandlerError::Status { .. } => None,
        }
    }
}

/// A handler in progress.
pub(super) enum Running {
    Exec { child: Child, pidfd: OwnedFd },
    Connect { socket: OwnedFd, http: Option<Http> },
}

/// An httpGet exchange: the request to send, then the response's start.
pub(super) struct Http {
    request: Vec<u8>,
    sent: bool,
    response: Vec<u8>,
}

impl Runtime {
    /// Start a handler; a failure to start is an immediate answer.
    pub(super) fn run_handler(
        &mut self,
        run: u64,
        pod: &Pod,
        instance: &InstanceRef,
        handler: &Handler,
        reactor: &mut Reactor,
    ) -> Vec<Observation> {
        let started = match handler {
            Handler::Exec(e) => self.spawn_exec(instance, e, reactor),
            Handler::TcpSocket(t) => {
                self.connect(pod, instance, t.host.as_deref(), &t.port, None, reactor)
            }
            Handler::HttpGet(h) => {
                let request = http_request(
                    h,
                    &pod.container(&instance.container)
                        .cloned()
                        .unwrap_or_default(),
                );
                self.connect(
                    pod,
                    instance,
                    h.host.as_deref(),
                    &h.port,
                    Some(request),
                    reactor,
                )
            }
            Handler::Sleep(_) => Err(io::Error::other("sleep is the engine's timer")),
        };
        match started {
            Ok((token, running)) => {
                self.handlers.insert(token, (run, running));
                self.handler_tokens.insert(run, token);
                vec![]
            }
            Err(e) => vec![Observation::HandlerDone {
                run,
                result: Err(e.to_string()),
            }],
        }
    }

    fn spawn_exec(
        &self,
        instance: &InstanceRef,
        e: &ExecAction,
        reactor: &mut Reactor,
    ) -> io::Result<(Token, Running)> {
        let mut cmd = Command::new(&self.config.binary);
        cmd.arg("--root")
            .arg(self.config.paths.runc_root())
            .arg("exec")
            .arg(self.runtime_id(instance))
            .args(&e.command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: clear_signal_mask is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                super::process::clear_signal_mask();
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )?;
        let token = reactor.register(&pidfd)?;
        Ok((token, Running::Exec { child, pidfd }))
    }

    fn connect(
        &self,
        pod: &Pod,
        instance: &InstanceRef,
        host: Option<&str>,
        port: &IntOrString,
        request: Option<Vec<u8>>,
        reactor: &mut Reactor,
    ) -> io::Result<(Token, Running)> {
        let container = pod
            .container(&instance.container)
            .cloned()
            .unwrap_or_default();
        let port = resolve_port(port, &container)?;
        let ip: IpAddr = match host {
            None | Some("") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(h) => h.parse().map_err(|_| {
                io::Error::other(format!(
                    "host {h:?} is not an IP address (picolet does not resolve names in probes)"
                ))
            })?,
        };
        let addr = SocketAddr::new(ip, port);
        let open = || -> io::Result<OwnedFd> {
            let family = if ip.is_ipv4() {
                AddressFamily::INET
            } else {
                AddressFamily::INET6
            };
            let socket = rustix::net::socket_with(
                family,
                SocketType::STREAM,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
                None,
            )?;
            match rustix::net::connect(&socket, &addr) {
                Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(socket),
                Err(e) => Err(io::Error::other(format!("dial tcp {addr}: {e}"))),
            }
        };
        let socket = if pod.spec.host_network {
            open()?
        } else {
            let ns = sandbox::view(&self.config.paths, pod)?
                .net
                .unwrap_or_default();
            sandbox::in_network_namespace(&ns, open)?
        };
        let token = reactor.register_for(&socket, Interest::Write)?;
        let http = request.map(|request| Http {
            request,
            sent: false,
            response: Vec::new(),
        });
        Ok((token, Running::Connect { socket, http }))
    }

    /// A handler's fd is ready: move it on; an answer if it finished.
    pub(super) fn on_handler_ready(
        &mut self,
        token: Token,
        reactor: &mut Reactor,
    ) -> Option<Observation> {
        let (run, mut running) = self.handlers.remove(&token)?;
        let outcome = match &mut running {
            Running::Exec { child, pidfd } => {
                reactor.deregister(&*pidfd);
                Some(match child.wait() {
                    Ok(status) if status.success() => Ok(()),
                    Ok(status) => Err(HandlerError::Exited {
                        code: status.code(),
                    }),
                    Err(e) => Err(HandlerError::Wait(e)),
                })
            }
            Running::Connect { socket, http } => progress_connection(socket, http, token, reactor),
        };
        match outcome {
            Some(result) => {
                if let Running::Connect { socket, .. } = &running {
                    reactor.deregister(socket);
                }
                self.handler_tokens.remove(&run);
                // The engine keeps the message for the status and events.
                let result = result.map_err(|e| e.to_string());
                Some(Observation::HandlerDone { run, result })
            }
            None => {
                self.handlers.insert(token, (run, running));
                None
            }
        }
    }

    /// Abandon a run: kill its process or drop its connection.
    pub(super) fn cancel_handler(&mut self, run: u64, reactor: &mut Reactor) {
        let Some(token) = self.handler_tokens.remove(&run) else {
            return;
        };
        match self.handlers.remove(&token) {
            Some((_, Running::Exec { mut child, pidfd })) => {
                reactor.deregister(&pidfd);
                let _ = child.kill();
                let _ = child.wait();
            }
            Some((_, Running::Connect { socket, .. })) => reactor.deregister(&socket),
            None => {}
        }
    }
}

/// One step of a connection; `Some` once it has an answer.
fn progress_connection(
    socket: &OwnedFd,
    http: &mut Option<Http>,
    token: Token,
    reactor: &mut Reactor,
) -> Option<Result<(), HandlerError>> {
    let Some(h) = http else {
        // tcpSocket: writable means connected, unless the connect failed.
        return Some(socket_error(socket));
    };
    if !h.sent {
        if let Err(e) = socket_error(socket) {
            return Some(Err(e));
        }
        let mut stream = std::net::TcpStream::from(socket.try_clone().ok()?);
        if let Err(e) = stream.write_all(&h.request) {
            return Some(Err(HandlerError::Send(e)));
        }
        h.sent = true;
        return match reactor.reregister(socket, token, Interest::Read) {
            Ok(()) => None,
            Err(e) => Some(Err(HandlerError::Watch(e))),
        };
    }
    let mut stream = std::net::TcpStream::from(socket.try_clone().ok()?);
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(http_verdict(&h.response)),
            Ok(n) => {
                h.response.extend_from_slice(&buf[..n]);
                if h.response.windows(2).any(|w| w == b"\r\n") || h.response.len() >= MAX_RESPONSE {
                    return Some(http_verdict(&h.response));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => return Some(Err(HandlerError::Read(e))),
        }
    }
}

fn socket_error(socket: &OwnedFd) -> Result<(), HandlerError> {
    match rustix::net::sockopt::socket_error(socket) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(HandlerError::Connect(e)),
        Err(e) => Err(HandlerError::SocketError(e)),
    }
}

/// Success for a status from 200 to 399, as the kubelet's HTTP prober.
fn http_verdict(response: &[u8]) -> Result<(), HandlerError> {
    let text = String::from_utf8_lossy(response);
    let line = text.lines().next().unwrap_or("");
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| HandlerError::NotHttp { line: line.into() })?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(HandlerError::Status { code })
    }
}

/// The kubelet's probe request: GET, its User-Agent and Accept, the user's headers.
fn http_request(h: &HttpGetAction, c: &Container) -> Vec<u8> {
    let path = h.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
    let port = resolve_port(&h.port, c).unwrap_or(0);
    let host = h
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let mut headers = vec![
        ("Host".to_string(), format!("{host}:{port}")),
        ("User-Agent".to_string(), "kube-probe/1.33".to_string()),
        ("Accept".to_string(), "*/*".to_string()),
    ];
    for extra in &h.http_headers {
        match headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&extra.name))
        {
            Some(slot) => slot.1 = extra.value.clone(),
            None => headers.push((extra.name.clone(), extra.value.clone())),
        }
    }
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    request.into_bytes()
}

/// A port by number, or by the name of one of the container's ports.
fn resolve_port(port: &IntOrString, c: &Container) -> io::Result<u16> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::Str(name) => c
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| io::Error::other(format!("no container port named {name:?}")))?,
    };
    u16::try_from(number).map_err(|_| io::Error::other(format!("port {number} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::{ContainerPort, HttpHeader};

    #[test]
    fn the_request_is_the_kubelets() {
        let c = Container {
            ports: vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..ContainerPort::default()
            }],
            ..Container::default()
        };
        let h = HttpGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::Str("http".into()),
            http_headers: vec![
                HttpHeader {
                    name: "X-Token".into(),
                    value: "t".into(),
                },
                HttpHeader {
                    name: "user-agent".into(),
                    value: "mine".into(),
                },
            ],
            ..HttpGetAction::default()
        };
        let text = String::from_utf8(http_request(&h, &c)).unwrap();
        assert_eq!(
            text,
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: mine\r\nAccept: */*\r\nX-Token: t\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn status_codes_200_to_399_succeed() {
        assert!(http_verdict(b"HTTP/1.1 200 OK\r\n").is_ok());
        assert!(http_verdict(b"HTTP/1.0 302 Found\r\n").is_ok());
        let failed = http_verdict(b"HTTP/1.1 500 Internal Server Error\r\n").unwrap_err();
        assert!(matches!(failed, HandlerError::Status { code: 500 }));
        assert_eq!(failed.to_string(), "HTTP probe failed with statuscode: 500");
        assert!(matches!(
            http_verdict(b"garbage"),
            Err(HandlerError::NotHttp { line }) if line == "garbage"
        ));
    }
}

//! Probes and lifecycle hooks, and the handler each resolves to.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A port by number or by the name of one of the container's ports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A port number.
    Int(i64),
    /// A port name.
    Str(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

/// A command run in the container, without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct ExecAction {
    /// The argv; run without a shell.
    #[serde(default)]
    pub command: Vec<String>,
}

/// A header an HTTP probe or hook sends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct HttpHeader {
    /// A token (RFC 9110).
    pub name: String,
    /// Sent as given.
    pub value: String,
}

/// An HTTP GET to the pod; HTTP only (HTTPS is rejected by validation).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpGetAction {
    /// `/` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A number or a container port's name.
    pub port: IntOrString,
    /// An IP address; 127.0.0.1 when unset (picolet resolves no names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP`; `HTTPS` is rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Headers to send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// A TCP connection to the pod.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct TcpSocketAction {
    /// A number or a container port's name.
    pub port: IntOrString,
    /// An IP address; 127.0.0.1 when unset (picolet resolves no names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A hook that waits, in the agent, instead of acting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct SleepAction {
    /// How long.
    pub seconds: i64,
}

/// A probe (core/v1 Probe). API defaults are applied by `defaults::apply`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// Run a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// Send an HTTP GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// Open a TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// Not implemented: rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<Value>,
    /// Before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i64>,
    /// For each probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// Between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i64>,
    /// Successes in a row that count as success (1 but for readiness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i64>,
    /// Failures in a row that count as failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
    /// The grace period of a restart this probe causes, instead of the pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

/// A lifecycle hook's action (core/v1 LifecycleHandler).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHandler {
    /// Run a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// Send an HTTP GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// Wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<SleepAction>,
    /// Deprecated in Kubernetes and not implemented: rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<Value>,
}

/// A container's `lifecycle` hooks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Run right after the container starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<LifecycleHandler>,
    /// Run before the container is sent SIGTERM, within the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<LifecycleHandler>,
    /// Not implemented: rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// What a probe or hook does, resolved from the spec: the one action the
/// runtime carries out (a `sleep` never reaches the runtime: it is a timer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// Run a command in the container.
    Exec(ExecAction),
    /// Send an HTTP GET.
    HttpGet(HttpGetAction),
    /// Open a TCP connection.
    TcpSocket(TcpSocketAction),
    /// Wait this many seconds.
    Sleep(i64),
}

impl Probe {
    /// The probe's one handler; `None` only for a probe validation refuses.
    pub fn handler(&self) -> Option<Handler> {
        if let Some(e) = &self.exec {
            Some(Handler::Exec(e.clone()))
        } else if let Some(h) = &self.http_get {
            Some(Handler::HttpGet(h.clone()))
        } else {
            self.tcp_socket.clone().map(Handler::TcpSocket)
        }
    }
}

impl LifecycleHandler {
    /// The hook's one handler; `None` only for a hook validation refuses.
    pub fn handler(&self) -> Option<Handler> {
        if let Some(e) = &self.exec {
            Some(Handler::Exec(e.clone()))
        } else if let Some(h) = &self.http_get {
            Some(Handler::HttpGet(h.clone()))
        } else {
            self.sleep.as_ref().map(|s| Handler::Sleep(s.seconds))
        }
    }
}

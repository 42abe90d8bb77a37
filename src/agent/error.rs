//! Why the agent could not start or had to stop.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An error that ends the agent, with what it was doing.
#[derive(Debug)]
pub enum AgentError {
    /// Blocking the signals the agent handles.
    Signals(io::Error),
    /// The cgroup v2 hierarchy cannot be used (`--cgroups v2`).
    Cgroups(crate::cgroup::CgroupError),
    /// Neither `--runtime` nor a runc or crun on PATH.
    NoRuntime,
    /// One of the agent's directories could not be made or secured.
    Directory(PathBuf, io::Error),
    /// `/proc/self/exe`, which the monitors are started from.
    OwnBinary(io::Error),
    /// The published file `<run>/agent.json`.
    Publish(PathBuf, io::Error),
    /// The manifest directory.
    Manifests(PathBuf, io::Error),
    /// The manifest URL's source.
    Url(io::Error),
    /// The kubeconfig of node mode.
    Kubeconfig(crate::apiserver::kubeconfig::KubeconfigError),
    /// Node mode's pod watch.
    ApiSource(crate::source::api::StartError),
    /// Node mode's reporter.
    Node(crate::node::StartError),
    /// The epoll set.
    Epoll(io::Error),
    /// registries.yaml (`registryConfig`).
    Registries(crate::registry::RegistryConfigError),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Signals(e) => write!(f, "blocking signals: {e}"),
            AgentError::Cgroups(e) => e.fmt(f),
            AgentError::Kubeconfig(e) => e.fmt(f),
            AgentError::NoRuntime => {
                f.write_str("no OCI runtime found: install runc or crun, or pass --runtime PATH")
            }
            AgentError::Directory(dir, e) => write!(f, "{}: {e}", dir.display()),
            AgentError::OwnBinary(e) => write!(f, "finding picolet's own binary: {e}"),
            AgentError::Publish(file, e) => write!(f, "{}: {e}", file.display()),
            AgentError::Manifests(dir, e) => write!(f, "{}: {e}", dir.display()),
            AgentError::Url(e) => write!(f, "staticPodURL: {e}"),
            AgentError::ApiSource(e) => e.fmt(f),
            AgentError::Node(e) => e.fmt(f),
            AgentError::Epoll(e) => write!(f, "epoll: {e}"),
            AgentError::Registries(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Signals(e)
            | AgentError::Directory(_, e)
            | AgentError::OwnBinary(e)
            | AgentError::Publish(_, e)
            | AgentError::Manifests(_, e)
            | AgentError::Url(e)
            | AgentError::Epoll(e) => Some(e),
            AgentError::ApiSource(e) => Some(e),
            AgentError::Node(e) => Some(e),
            AgentError::Cgroups(e) => Some(e),
            AgentError::Kubeconfig(e) => Some(e),
            AgentError::Registries(e) => Some(e),
            AgentError::NoRuntime => None,
        }
    }
}

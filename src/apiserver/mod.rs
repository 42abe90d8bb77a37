//! The connection to a Kubernetes API server: the kubeconfig that names it
//! and the blocking client the node-mode threads use. Shared by the pod
//! watch (src/source/api) and the node's reporter (src/node); it knows
//! nothing of either.

pub mod client;
pub mod kubeconfig;

use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// How long to wait to connect or for an answer before calling the server
/// unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A pod on the server: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
}

impl PodKey {
    /// The key of a decoded pod.
    pub fn of(pod: &crate::pod::Pod) -> PodKey {
        PodKey {
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
        }
    }

    /// The key of a pod object as the server sent it.
    pub fn of_object(object: &Value) -> PodKey {
        let field = |f: &str| object["metadata"][f].as_str().unwrap_or("").to_string();
        PodKey {
            namespace: field("namespace"),
            name: field("name"),
        }
    }

    /// The pod's path in the API.
    pub fn path(&self) -> String {
        format!("/api/v1/namespaces/{}/pods/{}", self.namespace, self.name)
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

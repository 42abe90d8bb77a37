//! Node mode's reporter: picolet as a node of a Kubernetes cluster.
//!
//! A writer thread ([`writer::Writer`]) registers the Node, renews its Lease,
//! and sends pod statuses, deletions, mirror pods and events; the core hands
//! it messages by a channel and never waits on it. This side turns what the
//! engine's [`Snapshot`] shows into those messages, and sends each only once
//! ([`asked::Asked`]). The pods themselves come from src/source/api.

mod asked;
mod event;
pub mod facts;
mod mirror;
pub mod writer;

use crate::apiserver::client::ApiClient;
use crate::apiserver::kubeconfig::Connection;
use crate::apiserver::{PodKey, REQUEST_TIMEOUT};
use crate::engine::{PodEvent, PodReport, Snapshot};
use crate::pod::policy::NodePolicy;
use crate::pod::status::PodStatus;
use crate::pod::Pod;
use crate::source::api::{ApiSource, Listing, Mirror, SOURCE};
use crate::time::Time;
use asked::Asked;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

/// The annotation with a static pod's content hash, which its mirror carries.
const HASH: &str = "kubernetes.io/config.hash";

/// The node-mode settings of the agent's configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `kubeconfig`: where the API server is and the node's credentials.
    pub kubeconfig: PathBuf,
    /// What the API server's pods may do here.
    pub policy: NodePolicy,
    /// `allowInsecureKubeconfig`: a kubeconfig may turn TLS verification off.
    pub allow_insecure: bool,
}

/// From the core to the writer.
pub enum ToServer {
    Status {
        key: PodKey,
        uid: String,
        status: Value,
    },
    /// Remove a pod that finished its graceful deletion.
    Delete {
        key: PodKey,
        uid: String,
    },
    CreateMirror {
        key: PodKey,
        pod: Value,
    },
    DeleteMirror {
        key: PodKey,
        uid: String,
    },
    Event(Value),
}

/// What the writer needs to describe this node.
pub struct NodeInputs<'a> {
    /// The Node's name.
    pub node_name: &'a str,
    /// Capacity and allocatable millicores.
    pub cpu: (u64, u64),
    /// Capacity and allocatable bytes.
    pub memory: (u64, u64),
    /// The state directory, whose filesystem is the node's ephemeral storage.
    pub root: &'a Path,
    /// The OCI runtime binary, asked for its version.
    pub runtime: &'a Path,
}

/// Why node mode's reporter could not start.
#[derive(Debug)]
pub enum StartError {
    /// The client (its TLS settings).
    Client(crate::apiserver::client::TlsError),
    /// The writer thread.
    Thread(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Client(e) => e.fmt(f),
            StartError::Thread(e) => write!(f, "starting the api-write thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The core's side of the writer.
pub struct Node {
    node_name: String,
    to: Sender<ToServer>,
    /// The server's mirror pods, from its last list.
    mirrors: BTreeMap<PodKey, Mirror>,
    asked: Asked,
    /// Static pods whose mirror was asked for, with the hash asked.
    mirror_requested: BTreeMap<PodKey, String>,
    host_ip: Option<String>,
    /// Bumped whenever a list of the server is taken in: with the engine's
    /// generation, it tells `report` whether anything can have changed.
    version: u64,
    reported: Option<(u64, u64)>,
}

impl Node {
    /// Gather the node's facts and start the writer thread.
    pub fn start(connection: Connection, inputs: NodeInputs<'_>) -> Result<Node, StartError> {
        let facts = facts::NodeFacts::gather(&inputs, &connection.server);
        let host_ip = facts.internal_ip.clone();
        let (to, from_core) = channel();
        let writer = writer::Writer {
            client: ApiClient::new(connection, REQUEST_TIMEOUT, 2 * REQUEST_TIMEOUT)
                .map_err(StartError::Client)?,
            facts,
            root: inputs.root.to_path_buf(),
            from_core,
        };
        std::thread::Builder::new()
            .name("api-write".into())
            .spawn(move || writer.run())
            .map_err(StartError::Thread)?;
        Ok(Node {
            node_name: inputs.node_name.to_string(),
            to,
            mirrors: BTreeMap::new(),
            asked: Asked::default(),
            mirror_requested: BTreeMap::new(),
            host_ip,
            version: 0,
            reported: None,
        })
    }

    /// The address this node uses to reach the API server.
    pub fn host_ip(&self) -> Option<&str> {
        self.host_ip.as_deref()
    }

    /// Take in what the server's last list showed: its mirror pods, the
    /// pods it still lists (what was asked for others is forgotten), and
    /// the pods picolet refused, which get a Failed status that says why.
    pub fn observe(&mut self, listing: Listing) {
        self.version += 1;
        for (key, mirror) in &listing.mirrors {
            if self.mirror_requested.get(key) == Some(&mirror.hash) {
                self.mirror_requested.remove(key);
            }
        }
        self.asked.keep_only(&listing);
        for (key, uid, error) in listing.invalid {
            let status = json!({
                "phase": "Failed",
                "reason": "UnsupportedPodSpec",
                "message": format!("Pod was rejected: picolet cannot run it: {error}"),
            });
            self.send_status(key, uid, status);
        }
        self.mirrors = listing.mirrors;
    }

    /// After the engine moved: report statuses that changed, delete the
    /// server's pods (`assigned`) that finished their graceful deletion, and
    /// keep a mirror pod for every static pod.
    pub fn report(&mut self, engine: Snapshot<'_>, assigned: &ApiSource) {
        let now = (engine.generation(), self.version);
        if self.reported == Some(now) {
            return;
        }
        self.reported = Some(now);
        let mut statics = BTreeMap::new();
        for report in engine.pods() {
            let is_api = assigned.holds(&report.pod.metadata.uid);
            self.report_pod(report, is_api, &mut statics);
        }
        self.delete_finished(engine, assigned);
        self.reconcile_mirrors(&statics);
    }

    /// Send one pod's status: an API pod's against itself, a static pod's
    /// against its mirror (and the static pod joins `statics`).
    fn report_pod(
        &mut self,
        report: PodReport<'_>,
        is_api: bool,
        statics: &mut BTreeMap<PodKey, Arc<Pod>>,
    ) {
        let PodReport {
            pod,
            status,
            deleting_since,
        } = report;
        let key = PodKey::of(pod);
        let is_static = pod
            .metadata
            .annotations
            .get(SOURCE)
            .is_some_and(|s| s != "api");
        let uid = if is_static {
            if deleting_since.is_none() {
                statics.insert(key.clone(), pod.clone());
            }
            match self.mirrors.get(&key) {
                Some(m) if Some(&m.hash) == pod.metadata.annotations.get(HASH) => m.uid.clone(),
                _ => return,
            }
        } else if is_api {
            pod.metadata.uid.clone()
        } else {
            return;
        };
        let status = self.api_status(pod, status);
        self.send_status(key, uid, status);
    }

    /// Delete the server's pods whose graceful deletion is over: the
    /// engine no longer holds them.
    fn delete_finished(&mut self, engine: Snapshot<'_>, assigned: &ApiSource) {
        let finished: Vec<(PodKey, String)> = assigned
            .assigned()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && !engine.holds(&p.metadata.uid))
            .map(|p| (PodKey::of(p), p.metadata.uid.clone()))
            .filter(|(_, uid)| !self.asked.deletion_asked(uid))
            .collect();
        for (key, uid) in finished {
            self.asked.deletion(&uid);
            let _ = self.to.send(ToServer::Delete { key, uid });
        }
    }

    /// Post an engine event against the pod it concerns: an API pod itself,
    /// a static pod through its mirror.
    pub fn event(&mut self, pod: &Pod, assigned: &ApiSource, event: &PodEvent, now: Time) {
        let uid = if assigned.holds(&pod.metadata.uid) {
            pod.metadata.uid.clone()
        } else {
            match self.mirrors.get(&PodKey::of(pod)) {
                Some(m) => m.uid.clone(),
                None => return,
            }
        };
        let event = event::to_api(pod, &uid, event, &self.node_name, now);
        let _ = self.to.send(ToServer::Event(event));
    }

    /// The engine's status as the API wants it: with the node's address.
    fn api_status(&self, pod: &Pod, status: PodStatus) -> Value {
        let mut value = serde_json::to_value(status).unwrap_or_default();
        if let Some(ip) = &self.host_ip {
            value["hostIP"] = json!(ip);
            value["hostIPs"] = json!([{"ip": ip}]);
            if pod.spec.host_network {
                value["podIP"] = json!(ip);
                value["podIPs"] = json!([{"ip": ip}]);
            }
        }
        value
    }

    fn send_status(&mut self, key: PodKey, uid: String, status: Value) {
        if self.asked.status(&key, &uid, &status) {
            let _ = self.to.send(ToServer::Status { key, uid, status });
        }
    }
}

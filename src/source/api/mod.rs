//! Node mode: picolet as a node of a Kubernetes cluster, from a kubeconfig.
//!
//! Two threads talk to the API server (docs/design.md, decision 1, stretched by
//! one: a blocking client cannot hold a watch open and write on the same
//! connection): the [`watch::PodReflector`] keeps the set of pods bound to
//! this node, and the [`writer::Writer`] sends the Node, its Lease, pod
//! statuses, deletions, mirror pods and events. The core talks to both by
//! channels and a wake-up pipe in its epoll set, and never waits on them.
//!
//! This module is the core's side: it decodes and checks the server's pods,
//! keeps the last set on disk so that a reboot without a server runs the
//! same pods at once, applies the node policy, and turns what the engine
//! reports into status patches, deletions and mirror pods.

mod asked;
pub mod client;
pub mod kubeconfig;
pub mod node;
pub mod watch;
pub mod writer;

use crate::engine::{EventType, PodEvent, PodReport, Snapshot};
use crate::pod::decode::decode_pod;
use crate::pod::policy::{NodePolicy, FROM_API};
use crate::pod::status::PodStatus;
use crate::pod::validate::check;
use crate::pod::{defaults, Pod};
use crate::state::{create_private_dir, write_atomic};
use crate::time::Time;
use asked::{Asked, Listed};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// How long to wait to connect or for an answer before calling the server
/// unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The annotation that marks a mirror pod.
const MIRROR: &str = "kubernetes.io/config.mirror";
const SOURCE: &str = "kubernetes.io/config.source";
const HASH: &str = "kubernetes.io/config.hash";

/// A pod on the server: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    fn of(pod: &Pod) -> PodKey {
        PodKey {
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
        }
    }

    /// The key of a pod object as the server sent it.
    fn of_object(object: &Value) -> PodKey {
        let field = |f: &str| object["metadata"][f].as_str().unwrap_or("").to_string();
        PodKey {
            namespace: field("namespace"),
            name: field("name"),
        }
    }

    pub fn path(&self) -> String {
        format!("/api/v1/namespaces/{}/pods/{}", self.namespace, self.name)
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// From the reflector to the core.
pub enum FromServer {
    /// Every pod bound to this node now, mirror pods included.
    Pods(Vec<Value>),
    Unreachable(String),
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

/// The node-mode settings of the agent's configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub kubeconfig: PathBuf,
    pub policy: NodePolicy,
    /// `allowInsecureKubeconfig`: a kubeconfig may turn TLS verification off.
    pub allow_insecure: bool,
}

/// A pod the server assigned, as the engine gets it.
pub struct Assigned {
    pub pod: Arc<Pod>,
    /// Why this node refuses to run it, as (reason, message).
    pub refused: Option<(String, String)>,
}

/// A mirror pod on the server.
struct Mirror {
    uid: String,
    hash: String,
    /// Someone deleted it: remove it now and create it again.
    deleted: bool,
}

pub struct NodeSync {
    node_name: String,
    policy: NodePolicy,
    from: Receiver<FromServer>,
    to: Sender<ToServer>,
    wake: OwnedFd,
    /// The decoded pods, by UID, with the resourceVersion they came with.
    assigned: BTreeMap<String, (String, Arc<Pod>)>,
    mirrors: BTreeMap<PodKey, Mirror>,
    /// `<root>/api/pods.json`: the assigned pods, for a reboot offline.
    saved: PathBuf,
    saved_bytes: Vec<u8>,
    asked: Asked,
    /// Static pods whose mirror was asked for, with the hash asked.
    mirror_requested: BTreeMap<PodKey, String>,
    host_ip: Option<String>,
    unreachable: Option<String>,
    /// Bumped whenever the server's pods are taken in: with the engine's
    /// generation, it tells `report` whether anything can have changed.
    version: u64,
    reported: Option<(u64, u64)>,
}

/// What the writer needs to describe this node.
pub struct NodeInputs<'a> {
    pub node_name: &'a str,
    pub cpu: (u64, u64),
    pub memory: (u64, u64),
    pub root: &'a Path,
    pub runtime: &'a Path,
}

impl NodeSync {
    /// Load the pods saved by an earlier run and start both sync threads.
    pub fn start(config: &NodeConfig, inputs: NodeInputs<'_>) -> Result<NodeSync, String> {
        let connection = kubeconfig::load(&config.kubeconfig, config.allow_insecure)?;
        let dir = inputs.root.join("api");
        create_private_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let saved = dir.join("pods.json");
        let (wake, wake_writer) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| format!("pipe: {e}"))?;
        let (to_core, from) = channel();
        let (to, from_core) = channel();
        let watch_longest = Duration::from_secs(2 * watch::WATCH_SECONDS) + REQUEST_TIMEOUT;
        let reflector = watch::PodReflector {
            client: client::ApiClient::new(connection.clone(), REQUEST_TIMEOUT, watch_longest)?,
            node: inputs.node_name.to_string(),
            objects: inputs.root.join("api/objects"),
            to_core,
            wake: std::fs::File::from(wake_writer),
        };
        let facts = node::NodeFacts::gather(
            inputs.node_name,
            inputs.cpu,
            inputs.memory,
            inputs.root,
            inputs.runtime,
            &connection.server,
        );
        let host_ip = facts.internal_ip.clone();
        let writer = writer::Writer {
            client: client::ApiClient::new(connection, REQUEST_TIMEOUT, 2 * REQUEST_TIMEOUT)?,
            facts,
            root: inputs.root.to_path_buf(),
            from_core,
        };
        let mut sync = NodeSync {
            node_name: inputs.node_name.to_string(),
            policy: config.policy.clone(),
            from,
            to,
            wake,
            assigned: BTreeMap::new(),
            mirrors: BTreeMap::new(),
            saved,
            saved_bytes: Vec::new(),
            asked: Asked::default(),
            mirror_requested: BTreeMap::new(),
            host_ip,
            unreachable: None,
            version: 0,
            reported: None,
        };
        sync.load_saved();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(drop)
                .map_err(|e| format!("starting the {name} thread: {e}"))
        };
        spawn("api-watch", Box::new(move || reflector.run()))?;
        spawn("api-write", Box::new(move || writer.run()))?;
        Ok(sync)
    }

    fn load_saved(&mut self) {
        let Ok(bytes) = std::fs::read(&self.saved) else {
            return;
        };
        match serde_json::from_slice::<Vec<Pod>>(&bytes) {
            Ok(pods) => {
                log::info!(
                    "{} pod(s) assigned by the API server before: running them until it answers",
                    pods.len()
                );
                self.assigned = pods
                    .into_iter()
                    .map(|p| (p.metadata.uid.clone(), (String::new(), Arc::new(p))))
                    .collect();
                self.saved_bytes = bytes;
            }
            Err(e) => log::error!("{}: {e}; ignored", self.saved.display()),
        }
    }

    /// The address this node uses to reach the API server.
    pub fn host_ip(&self) -> Option<&str> {
        self.host_ip.as_deref()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Take what the reflector sent; true if the assigned pods changed.
    pub fn drain(&mut self) -> bool {
        let mut buf = [0u8; 64];
        while rustix::io::read(&self.wake, &mut buf).is_ok_and(|n| n > 0) {}
        let mut latest = None;
        while let Ok(message) = self.from.try_recv() {
            match message {
                FromServer::Pods(pods) => latest = Some(pods),
                FromServer::Unreachable(message) => {
                    if self.unreachable.as_deref() != Some(message.as_str()) {
                        log::warn!("API server: {message}; running the last pods it assigned");
                    }
                    self.unreachable = Some(message);
                }
            }
        }
        match latest {
            Some(pods) => {
                if self.unreachable.take().is_some() {
                    log::info!("API server reachable again");
                }
                self.accept(pods)
            }
            None => false,
        }
    }

    fn accept(&mut self, objects: Vec<Value>) -> bool {
        self.version += 1;
        let mut assigned = BTreeMap::new();
        let mut listed = Listed::default();
        self.mirrors.clear();
        for mut object in objects {
            let key = PodKey::of_object(&object);
            let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
            listed.keys.insert(key.clone());
            listed.uids.insert(uid.clone());
            let annotations = &object["metadata"]["annotations"];
            if let Some(hash) = annotations[MIRROR].as_str() {
                if self.mirror_requested.get(&key).is_some_and(|h| h == hash) {
                    self.mirror_requested.remove(&key);
                }
                let deleted = !object["metadata"]["deletionTimestamp"].is_null();
                self.mirrors.insert(
                    key,
                    Mirror {
                        uid,
                        deleted,
                        hash: hash.to_string(),
                    },
                );
                continue;
            }
            let version = object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if let Some((v, pod)) = self.assigned.get(&uid) {
                if *v == version {
                    assigned.insert(uid, (version, pod.clone()));
                    continue;
                }
            }
            let reported = object["status"]["phase"] == "Failed";
            match decode(&mut object) {
                Ok(pod) => {
                    assigned.insert(uid, (version, Arc::new(pod)));
                }
                Err(message) if reported => {
                    log::debug!("pod {key} from the API server: {message}");
                }
                Err(message) => {
                    log::error!("pod {key} from the API server: {message}; not run");
                    self.refuse_invalid(&object, &uid, &message);
                }
            }
        }
        let changed = assigned.len() != self.assigned.len()
            || assigned
                .iter()
                .any(|(uid, (_, pod))| self.assigned.get(uid).is_none_or(|(_, p)| p != pod));
        self.assigned = assigned;
        self.asked.keep_only(&listed);
        if changed {
            self.save();
        }
        changed
    }

    /// A pod picolet cannot run gets a Failed status that says why.
    fn refuse_invalid(&mut self, object: &Value, uid: &str, message: &str) {
        let key = PodKey::of_object(object);
        let status = json!({
            "phase": "Failed",
            "reason": "UnsupportedPodSpec",
            "message": format!("Pod was rejected: picolet cannot run it: {message}"),
        });
        self.send_status(key, uid.to_string(), status);
    }

    /// Keep the assigned pods (their spec and metadata, not their status)
    /// on disk, written only when they change.
    fn save(&mut self) {
        let pods: Vec<&Pod> = self.assigned.values().map(|(_, p)| p.as_ref()).collect();
        let bytes = serde_json::to_vec(&pods).unwrap_or_default();
        if bytes == self.saved_bytes {
            return;
        }
        match write_atomic(&self.saved, &bytes) {
            Ok(()) => self.saved_bytes = bytes,
            Err(e) => log::error!("saving the assigned pods: {e}"),
        }
    }

    /// The pods the server wants here, with this node's policy applied.
    pub fn pods(&self) -> Vec<Assigned> {
        self.assigned
            .values()
            .map(|(_, pod)| Assigned {
                pod: pod.clone(),
                refused: self.policy.refusal(pod, FROM_API),
            })
            .collect()
    }

    /// After the engine moved: report statuses that changed, delete pods that
    /// finished their graceful deletion, and keep a mirror pod for every
    /// static pod.
    pub fn report(&mut self, engine: Snapshot<'_>) {
        let now = (engine.generation(), self.version);
        if self.reported == Some(now) {
            return;
        }
        self.reported = Some(now);
        let mut statics = BTreeMap::new();
        for PodReport {
            pod,
            status,
            deleting_since,
        } in engine.pods()
        {
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
                    _ => continue,
                }
            } else if self.assigned.contains_key(&pod.metadata.uid) {
                pod.metadata.uid.clone()
            } else {
                continue;
            };
            let status = self.api_status(pod, status);
            self.send_status(key, uid, status);
        }
        let finished: Vec<(PodKey, String)> = self
            .assigned
            .values()
            .filter(|(_, p)| {
                p.metadata.deletion_timestamp.is_some() && !engine.holds(&p.metadata.uid)
            })
            .map(|(_, p)| (PodKey::of(p), p.metadata.uid.clone()))
            .filter(|(_, uid)| !self.asked.deletion_asked(uid))
            .collect();
        for (key, uid) in finished {
            self.asked.deletion(&uid);
            let _ = self.to.send(ToServer::Delete { key, uid });
        }
        self.reconcile_mirrors(&statics);
    }

    fn reconcile_mirrors(&mut self, statics: &BTreeMap<PodKey, Arc<Pod>>) {
        let hash_of = |pod: &Pod| {
            pod.metadata
                .annotations
                .get(HASH)
                .cloned()
                .unwrap_or_default()
        };
        self.mirror_requested
            .retain(|key, _| statics.contains_key(key));
        // Stale or orphaned mirrors go first: the writer deletes before it
        // creates, so a changed static pod's new mirror takes the name.
        for (key, m) in &self.mirrors {
            let current = statics.get(key).is_some_and(|p| hash_of(p) == m.hash);
            if (!current || m.deleted) && self.asked.deletion(&m.uid) {
                let (key, uid) = (key.clone(), m.uid.clone());
                let _ = self.to.send(ToServer::DeleteMirror { key, uid });
            }
        }
        for (key, pod) in statics {
            let hash = hash_of(pod);
            // A mirror being deleted holds the name until it is gone.
            let present = self
                .mirrors
                .get(key)
                .is_some_and(|m| m.hash == hash || m.deleted);
            if present || self.mirror_requested.get(key) == Some(&hash) {
                continue;
            }
            self.mirror_requested.insert(key.clone(), hash.clone());
            let mut mirror = serde_json::to_value(pod.as_ref()).unwrap_or_default();
            mirror["apiVersion"] = json!("v1");
            mirror["kind"] = json!("Pod");
            mirror["metadata"]["annotations"][MIRROR] = json!(hash);
            if let Some(m) = mirror["metadata"].as_object_mut() {
                m.remove("uid");
                m.remove("creationTimestamp");
            }
            let _ = self.to.send(ToServer::CreateMirror {
                key: key.clone(),
                pod: mirror,
            });
        }
    }

    /// Post an engine event against the pod it concerns: an API pod itself,
    /// a static pod through its mirror.
    pub fn event(&mut self, pod: &Pod, event: &PodEvent, now: Time) {
        let key = PodKey::of(pod);
        let uid = if self.assigned.contains_key(&pod.metadata.uid) {
            pod.metadata.uid.clone()
        } else {
            match self.mirrors.get(&key) {
                Some(m) => m.uid.clone(),
                None => return,
            }
        };
        let field_path = event.container.as_ref().map(|c| {
            let init = pod.spec.init_containers.iter().any(|i| i.name == *c);
            let list = if init { "initContainers" } else { "containers" };
            format!("spec.{list}{{{c}}}")
        });
        let mut involved = json!({
            "apiVersion": "v1", "kind": "Pod", "namespace": key.namespace,
            "name": key.name, "uid": uid,
        });
        if let Some(path) = field_path {
            involved["fieldPath"] = json!(path);
        }
        let kind = match event.kind {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let _ = self.to.send(ToServer::Event(json!({
            "apiVersion": "v1",
            "kind": "Event",
            "involvedObject": involved,
            "reason": event.reason,
            "message": event.message,
            "type": kind,
            "source": {"component": "kubelet", "host": self.node_name},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node_name,
            "firstTimestamp": now.rfc3339(),
            "lastTimestamp": now.rfc3339(),
            "count": 1,
        })));
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

/// Decode one pod of the server: picolet's own checks (an unsupported field
/// is an error), its defaults; namespace, name and UID as the server gave
/// them.
pub(crate) fn decode(object: &mut Value) -> Result<Pod, String> {
    // Indexing a Value that is not an object by a key panics.
    let Some(m) = object.as_object_mut() else {
        return Err("a pod is a JSON object".into());
    };
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("kind".into(), json!("Pod"));
    m.remove("status");
    let decoded = decode_pod(object).map_err(|e| e.to_string())?;
    let mut pod = decoded.pod;
    // The UID names the pod's directories; `check` accepts an empty one only
    // for a static pod, which is given one from its content.
    if pod.metadata.uid.is_empty() {
        return Err("metadata.uid: required".into());
    }
    check(&pod).map_err(|e| e.to_string())?;
    defaults::apply(&mut pod);
    pod.metadata.annotations.insert(SOURCE.into(), "api".into());
    Ok(pod)
}

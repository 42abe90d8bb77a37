//! The pods the API server binds to this node, as a source of desired pods.
//!
//! A thread keeps the set (the [`watch::PodReflector`]; docs/design.md,
//! decision 1, stretched: a blocking client cannot hold a watch open and
//! write on the same connection) and sends it to the core by a channel and a
//! wake-up pipe in the core's epoll set. This side decodes and checks the
//! server's pods, keeps the last set on disk so that a reboot without a
//! server runs the same pods at once, and applies the node policy. What the
//! server listed besides (mirror pods, pods picolet cannot run) is handed on
//! as a [`Listing`] for the node's reporter (src/node).

pub mod watch;

use crate::apiserver::client::ApiClient;
use crate::apiserver::kubeconfig::Connection;
use crate::apiserver::{PodKey, REQUEST_TIMEOUT};
use crate::pod::decode::decode_pod;
use crate::pod::policy::{NodePolicy, FROM_API};
use crate::pod::validate::check;
use crate::pod::{defaults, Pod};
use crate::state::{create_private_dir, write_atomic};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

/// The annotation that marks a mirror pod, with its static pod's hash.
pub const MIRROR: &str = "kubernetes.io/config.mirror";
/// The annotation that says where a pod came from (`api`, `file`, `http`).
pub const SOURCE: &str = "kubernetes.io/config.source";

/// From the reflector to the core.
pub enum FromServer {
    /// Every pod bound to this node now, mirror pods included.
    Pods(Vec<Value>),
    Unreachable(String),
}

/// A pod the server assigned, as the engine gets it.
pub struct Assigned {
    /// The pod, decoded, checked and defaulted.
    pub pod: Arc<Pod>,
    /// Why this node refuses to run it, as (reason, message).
    pub refused: Option<(String, String)>,
}

/// A mirror pod on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The mirror pod's UID on the server.
    pub uid: String,
    /// The static pod's hash it mirrors.
    pub hash: String,
    /// Someone deleted it: remove it now and create it again.
    pub deleted: bool,
}

/// What the server's last list held besides the pods to run, for the
/// reporter: every key and UID listed, the mirror pods, and the pods that
/// picolet cannot run.
#[derive(Default)]
pub struct Listing {
    /// Every pod listed, by namespace and name.
    pub keys: BTreeSet<PodKey>,
    /// Every pod listed, by UID.
    pub uids: BTreeSet<String>,
    /// The mirror pods listed.
    pub mirrors: BTreeMap<PodKey, Mirror>,
    /// Pods refused at decoding: key, UID and why.
    pub invalid: Vec<(PodKey, String, DecodeError)>,
}

/// Why a pod of the server cannot be run here.
#[derive(Debug)]
pub enum DecodeError {
    /// The object is not a JSON object.
    NotAnObject,
    /// It has no `metadata.uid`, which names its directories.
    NoUid,
    /// It is not a pod picolet can decode (an unknown or unsupported field).
    Decode(crate::pod::decode::DecodeError),
    /// picolet's checks refused it.
    Invalid(crate::pod::validate::InvalidPod),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotAnObject => f.write_str("a pod is a JSON object"),
            DecodeError::NoUid => f.write_str("metadata.uid: required"),
            DecodeError::Decode(e) => e.fmt(f),
            DecodeError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why the API source could not start.
#[derive(Debug)]
pub enum StartError {
    /// `<root>/api` could not be made.
    StateDir(PathBuf, std::io::Error),
    /// The wake-up pipe.
    Pipe(std::io::Error),
    /// The client (its TLS settings).
    Client(crate::apiserver::client::TlsError),
    /// The watch thread.
    Thread(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::StateDir(dir, e) => write!(f, "{}: {e}", dir.display()),
            StartError::Pipe(e) => write!(f, "pipe: {e}"),
            StartError::Client(e) => e.fmt(f),
            StartError::Thread(e) => write!(f, "starting the api-watch thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The core's side of the pod watch.
pub struct ApiSource {
    policy: NodePolicy,
    from: Receiver<FromServer>,
    wake: OwnedFd,
    /// The decoded pods, by UID, with the resourceVersion they came with.
    assigned: BTreeMap<String, (String, Arc<Pod>)>,
    /// `<root>/api/pods.json`: the assigned pods, for a reboot offline.
    saved: PathBuf,
    saved_bytes: Vec<u8>,
    unreachable: Option<String>,
    /// The last list's extras, until the reporter takes them.
    listing: Option<Listing>,
}

impl ApiSource {
    /// Load the pods saved by an earlier run and start the watch thread.
    pub fn start(
        connection: Connection,
        node_name: &str,
        root: &Path,
        policy: NodePolicy,
    ) -> Result<ApiSource, StartError> {
        let dir = root.join("api");
        create_private_dir(&dir).map_err(|e| StartError::StateDir(dir.clone(), e))?;
        let (wake, wake_writer) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| StartError::Pipe(e.into()))?;
        let (to_core, from) = channel();
        let watch_longest = Duration::from_secs(2 * watch::WATCH_SECONDS) + REQUEST_TIMEOUT;
        let reflector = watch::PodReflector {
            client: ApiClient::new(connection, REQUEST_TIMEOUT, watch_longest)
                .map_err(StartError::Client)?,
            node: node_name.to_string(),
            objects: dir.join("objects"),
            to_core,
            wake: std::fs::File::from(wake_writer),
        };
        let mut source = ApiSource {
            policy,
            from,
            wake,
            assigned: BTreeMap::new(),
            saved: dir.join("pods.json"),
            saved_bytes: Vec::new(),
            unreachable: None,
            listing: None,
        };
        source.load_saved();
        std::thread::Builder::new()
            .name("api-watch".into())
            .spawn(move || reflector.run())
            .map_err(StartError::Thread)?;
        Ok(source)
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

    /// The wake-up pipe the reflector writes to after every message.
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

    /// The extras of the server's last list, once: for the reporter.
    pub fn take_listing(&mut self) -> Option<Listing> {
        self.listing.take()
    }

    fn accept(&mut self, objects: Vec<Value>) -> bool {
        let mut assigned = BTreeMap::new();
        let mut listing = Listing::default();
        for object in objects {
            let key = PodKey::of_object(&object);
            let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
            listing.keys.insert(key.clone());
            listing.uids.insert(uid.clone());
            if let Some(hash) = object["metadata"]["annotations"][MIRROR].as_str() {
                let deleted = !object["metadata"]["deletionTimestamp"].is_null();
                let hash = hash.to_string();
                listing.mirrors.insert(key, Mirror { uid, hash, deleted });
                continue;
            }
            if let Some(pod) = self.take_in(object, key, &uid, &mut listing) {
                assigned.insert(uid, pod);
            }
        }
        let changed = assigned.len() != self.assigned.len()
            || assigned
                .iter()
                .any(|(uid, (_, pod))| self.assigned.get(uid).is_none_or(|(_, p)| p != pod));
        self.assigned = assigned;
        self.listing = Some(listing);
        if changed {
            self.save();
        }
        changed
    }

    /// One listed pod, decoded unless it is the version held already; a pod
    /// picolet cannot run goes to the listing's `invalid`, unless the server
    /// already shows it Failed.
    fn take_in(
        &self,
        mut object: Value,
        key: PodKey,
        uid: &str,
        listing: &mut Listing,
    ) -> Option<(String, Arc<Pod>)> {
        let version = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if let Some((v, pod)) = self.assigned.get(uid) {
            if *v == version {
                return Some((version, pod.clone()));
            }
        }
        let reported = object["status"]["phase"] == "Failed";
        match decode(&mut object) {
            Ok(pod) => Some((version, Arc::new(pod))),
            Err(error) if reported => {
                log::debug!("pod {key} from the API server: {error}");
                None
            }
            Err(error) => {
                log::error!("pod {key} from the API server: {error}; not run");
                listing.invalid.push((key, uid.to_string(), error));
                None
            }
        }
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

    /// The pods the server assigned: the reporter deletes them from the
    /// server once they are gone.
    pub fn assigned(&self) -> impl Iterator<Item = &Arc<Pod>> {
        self.assigned.values().map(|(_, pod)| pod)
    }

    /// Is this pod one the server assigned (not a static pod)?
    pub fn holds(&self, uid: &str) -> bool {
        self.assigned.contains_key(uid)
    }
}

/// Decode one pod of the server: picolet's own checks (an unsupported field
/// is an error), its defaults; namespace, name and UID as the server gave
/// them.
pub(crate) fn decode(object: &mut Value) -> Result<Pod, DecodeError> {
    // Indexing a Value that is not an object by a key panics.
    let Some(m) = object.as_object_mut() else {
        return Err(DecodeError::NotAnObject);
    };
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("kind".into(), json!("Pod"));
    m.remove("status");
    let decoded = decode_pod(object).map_err(DecodeError::Decode)?;
    let mut pod = decoded.pod;
    // The UID names the pod's directories; `check` accepts an empty one only
    // for a static pod, which is given one from its content.
    if pod.metadata.uid.is_empty() {
        return Err(DecodeError::NoUid);
    }
    check(&pod).map_err(DecodeError::Invalid)?;
    defaults::apply(&mut pod);
    pod.metadata.annotations.insert(SOURCE.into(), "api".into());
    Ok(pod)
}

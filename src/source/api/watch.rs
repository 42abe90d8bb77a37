//! The pods bound to this node, as a client-go reflector keeps them: list
//! (`fieldSelector=spec.nodeName=<node>`), then watch from the list's
//! resourceVersion with bookmarks; a watch that ends or drops resumes from
//! the last version seen; 410 Gone lists again; failures back off with
//! jitter. After every change the whole set goes to the core.

use super::FromServer;
use crate::apiserver::client::{ApiClient, Reply, RequestError, StreamError};
use crate::jitter::{Jitter, RetryBackoff};
use crate::pod::refs::{object_uses, pull_secret_uses};
use crate::pod::validate::{dns1123_label, dns1123_subdomain};
use crate::pod::Pod;
use crate::state::{create_private_dir, write_atomic};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Duration;

/// Watches are ended by the server after 5 to 10 minutes, as reflectors ask.
pub const WATCH_SECONDS: u64 = 300;

/// The watch thread: its client, the node, the object cache and the way
/// back to the core.
pub struct PodReflector {
    /// Its own client: the writer thread holds the other.
    pub client: ApiClient,
    /// The node whose pods are watched.
    pub node: String,
    /// Where the ConfigMaps and Secrets the pods use are kept (root only).
    pub objects: PathBuf,
    /// The way to the core.
    pub to_core: Sender<FromServer>,
    /// The wake-up pipe's writing end, written after every message.
    pub wake: std::fs::File,
}

/// Why listing or watching failed; the reflector backs off and tries again.
#[derive(Debug)]
enum WatchError {
    /// No answer.
    Request(RequestError),
    /// The server refused the list or the watch.
    Refused(&'static str, Reply),
    /// An event longer than the client reads.
    TooLong(StreamError),
    /// An ERROR event other than 410 Gone, with the server's message.
    Event(String),
}

impl From<RequestError> for WatchError {
    fn from(e: RequestError) -> WatchError {
        WatchError::Request(e)
    }
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Request(e) => e.fmt(f),
            WatchError::Refused(what, reply) => write!(f, "{what}: {}", reply.message()),
            WatchError::TooLong(e) => write!(f, "watching pods: {e}"),
            WatchError::Event(message) => write!(f, "pod watch error: {message}"),
        }
    }
}

/// Why a watch ended.
enum Ended {
    /// Normally (timeout) or dropped: watch again from the last version.
    Resume,
    /// 410 Gone: the version is too old; list again.
    Expired,
}

impl PodReflector {
    /// The thread's loop: list, watch, list again after 410; ends when the
    /// core is gone.
    pub fn run(mut self) {
        let mut backoff = RetryBackoff::new();
        let mut jitter = Jitter::seeded();
        let selector = format!("fieldSelector=spec.nodeName%3D{}", self.node);
        loop {
            let (mut pods, mut version) = match self.list(&selector) {
                Ok(listed) => listed,
                Err(e) => {
                    if !self.send(FromServer::Unreachable(e.to_string())) {
                        return;
                    }
                    std::thread::sleep(backoff.failed());
                    continue;
                }
            };
            backoff.reset();
            // A fresh list refreshes every object the pods use.
            self.cache_objects(pods.values());
            if !self.send(FromServer::Pods(pods.values().cloned().collect())) {
                return;
            }
            loop {
                let timeout = jitter
                    .up_to_double(Duration::from_secs(WATCH_SECONDS))
                    .as_secs();
                let path = format!(
                    "/api/v1/pods?{selector}&watch=1&allowWatchBookmarks=true&resourceVersion={version}&timeoutSeconds={timeout}"
                );
                match self.watch(&path, &mut pods, &mut version) {
                    Ok(Ended::Resume) => backoff.reset(),
                    Ok(Ended::Expired) => break,
                    Err(e) => {
                        if !self.send(FromServer::Unreachable(e.to_string())) {
                            return;
                        }
                        std::thread::sleep(backoff.failed());
                    }
                }
            }
        }
    }

    /// Tell the core; false once the core is gone.
    fn send(&mut self, message: FromServer) -> bool {
        let sent = self.to_core.send(message).is_ok();
        let _ = self.wake.write_all(b"!");
        sent
    }

    fn list(&self, selector: &str) -> Result<(BTreeMap<String, Value>, String), WatchError> {
        let reply = self.client.get(&format!("/api/v1/pods?{selector}"))?;
        if !reply.ok() {
            return Err(WatchError::Refused("listing pods", reply));
        }
        let version = resource_version(&reply.body).to_string();
        let pods = reply
            .body
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| Some((uid(p)?.to_string(), p.clone())))
            .collect();
        Ok((pods, version))
    }

    fn watch(
        &mut self,
        path: &str,
        pods: &mut BTreeMap<String, Value>,
        version: &mut String,
    ) -> Result<Ended, WatchError> {
        let mut stream = match self.client.watch(path)? {
            Ok(stream) => stream,
            Err(reply) if reply.status == 410 => return Ok(Ended::Expired),
            Err(reply) => return Err(WatchError::Refused("watching pods", reply)),
        };
        loop {
            let event = match stream.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(Ended::Resume),
                // A dropped connection: resume from the last version seen.
                Err(StreamError::Dropped(message)) => {
                    log::info!("pod watch ended: {message}; resuming from {version}");
                    return Ok(Ended::Resume);
                }
                // The same event would come again at once: back off.
                Err(e @ StreamError::TooLong) => return Err(WatchError::TooLong(e)),
            };
            let object = &event["object"];
            match event.get("type").and_then(Value::as_str) {
                Some("ADDED" | "MODIFIED") => {
                    if let Some(uid) = uid(object) {
                        if !pods.contains_key(uid) {
                            // A new pod reads its objects as they are now,
                            // as the kubelet reads them when it starts one.
                            self.cache_objects(std::iter::once(object));
                        }
                        pods.insert(uid.to_string(), object.clone());
                    }
                }
                Some("DELETED") => {
                    if let Some(uid) = uid(object) {
                        pods.remove(uid);
                    }
                }
                Some("BOOKMARK") => {
                    *version = resource_version(object).to_string();
                    continue;
                }
                Some("ERROR") if object.get("code").and_then(Value::as_u64) == Some(410) => {
                    log::info!("pod watch: resourceVersion {version} is too old; listing again");
                    return Ok(Ended::Expired);
                }
                _ => {
                    let message = object.get("message").and_then(Value::as_str).unwrap_or("");
                    return Err(WatchError::Event(message.to_string()));
                }
            }
            *version = resource_version(object).to_string();
            if !self.send(FromServer::Pods(pods.values().cloned().collect())) {
                return Ok(Ended::Resume);
            }
        }
    }
}

impl PodReflector {
    /// Fetch the ConfigMaps and Secrets the pods use (pull secrets too), each once,
    /// before the core sees the pods: a container starts with them, and
    /// after a reboot offline with the copies kept here. An object the server
    /// no longer has is forgotten; one it cannot give now is kept.
    fn cache_objects<'a>(&self, pods: impl IntoIterator<Item = &'a Value>) {
        let mut fetched = BTreeSet::new();
        for object in pods {
            let Ok(pod) = serde_json::from_value::<Pod>(object.clone()) else {
                continue;
            };
            let namespace = pod.metadata.namespace.clone();
            for u in object_uses(&pod).into_iter().chain(pull_secret_uses(&pod)) {
                let key = (u.kind, namespace.clone(), u.name.clone());
                if fetched.contains(&key) {
                    continue;
                }
                let (path, file) =
                    match object_location(&self.objects, u.kind.plural(), &namespace, &u.name) {
                        Ok(found) => found,
                        Err(e) => {
                            log::warn!(
                                "pod {}: not fetching {}: {e}",
                                pod.metadata.name,
                                u.kind.plural()
                            );
                            continue;
                        }
                    };
                match self.client.get(&path) {
                    Ok(reply) if reply.ok() => {
                        let bytes = serde_json::to_vec(&reply.body).unwrap_or_default();
                        let saved = file
                            .parent()
                            .map_or(Ok(()), create_private_dir)
                            .and_then(|()| write_atomic(&file, &bytes));
                        match saved {
                            Ok(()) => {
                                fetched.insert(key);
                            }
                            Err(e) => log::error!("keeping {path}: {e}"),
                        }
                    }
                    Ok(reply) if reply.status == 404 => {
                        let _ = std::fs::remove_file(&file);
                        fetched.insert(key);
                    }
                    Ok(reply) => log::warn!(
                        "fetching {path}: {}; using the copy kept here",
                        reply.message()
                    ),
                    Err(e) => log::warn!("fetching {path}: {e}; using the copy kept here"),
                }
            }
        }
    }
}

fn uid(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}

fn resource_version(object: &Value) -> &str {
    object["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

/// A ConfigMap or Secret name the API server could not have made.
#[derive(Debug)]
enum BadObjectName {
    Namespace(String),
    Name(String),
}

impl std::fmt::Display for BadObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadObjectName::Namespace(e) => write!(f, "namespace: {e}"),
            BadObjectName::Name(e) => write!(f, "name: {e}"),
        }
    }
}

/// The request path and the file of a ConfigMap or Secret a pod names. The
/// pod is the server's, not validated yet: its names go into a request
/// path and a file name only when the API server itself could have made
/// them (a namespace is a DNS-1123 label, an object name a subdomain).
fn object_location(
    objects: &std::path::Path,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Result<(String, PathBuf), BadObjectName> {
    dns1123_label(namespace).map_err(|e| BadObjectName::Namespace(e.to_string()))?;
    dns1123_subdomain(name).map_err(|e| BadObjectName::Name(e.to_string()))?;
    let path = format!("/api/v1/namespaces/{namespace}/{plural}/{name}");
    Ok((
        path,
        objects
            .join(plural)
            .join(namespace)
            .join(format!("{name}.json")),
    ))
}

#[cfg(test)]
mod tests {
    use super::{object_location, BadObjectName};
    use std::path::Path;

    #[test]
    fn object_names_from_the_server_cannot_leave_the_cache() {
        let objects = Path::new("/var/lib/picolet/api/objects");
        let (path, file) = object_location(objects, "secrets", "default", "db.creds").unwrap();
        assert_eq!(path, "/api/v1/namespaces/default/secrets/db.creds");
        assert_eq!(file, objects.join("secrets/default/db.creds.json"));
        for (namespace, name) in [
            ("default", "../../../../etc/cron.d/x"),
            ("default", ".."),
            ("..", "x"),
            ("a/b", "x"),
            ("default", "x?watch=1"),
            ("default", ""),
        ] {
            let e = object_location(objects, "secrets", namespace, name).unwrap_err();
            let right_field = match e {
                BadObjectName::Name(_) => namespace == "default",
                BadObjectName::Namespace(_) => namespace != "default",
            };
            assert!(right_field, "{namespace:?}/{name:?}: {e}");
        }
    }
}

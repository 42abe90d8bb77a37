//! The pods bound to this node, as a client-go reflector keeps them: list
//! (`fieldSelector=spec.nodeName=<node>`), then watch from the list's
//! resourceVersion with bookmarks; a watch that ends or drops resumes from
//! the last version seen; 410 Gone lists again; failures back off with
//! jitter. After every change the whole set goes to the core.

use super::client::ApiClient;
use super::FromServer;
use crate::source::jitter::{Jitter, RetryBackoff};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::Sender;
use std::time::Duration;

/// Watches are ended by the server after 5 to 10 minutes, as reflectors ask.
pub const WATCH_SECONDS: u64 = 300;

pub struct PodReflector {
    pub client: ApiClient,
    pub node: String,
    pub to_core: Sender<FromServer>,
    pub wake: std::fs::File,
}

/// Why a watch ended.
enum Ended {
    /// Normally (timeout) or dropped: watch again from the last version.
    Resume,
    /// 410 Gone: the version is too old; list again.
    Expired,
}

impl PodReflector {
    pub fn run(mut self) {
        let mut backoff = RetryBackoff::new();
        let mut jitter = Jitter::seeded();
        let selector = format!("fieldSelector=spec.nodeName%3D{}", self.node);
        loop {
            let (mut pods, mut version) = match self.list(&selector) {
                Ok(listed) => listed,
                Err(message) => {
                    if !self.send(FromServer::Unreachable(message)) {
                        return;
                    }
                    std::thread::sleep(backoff.failed());
                    continue;
                }
            };
            backoff.reset();
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
                    Err(message) => {
                        if !self.send(FromServer::Unreachable(message)) {
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

    fn list(&self, selector: &str) -> Result<(BTreeMap<String, Value>, String), String> {
        let reply = self.client.get(&format!("/api/v1/pods?{selector}"))?;
        if !reply.ok() {
            return Err(format!("listing pods: {}", reply.message()));
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
    ) -> Result<Ended, String> {
        let mut stream = match self.client.watch(path)? {
            Ok(stream) => stream,
            Err(reply) if reply.status == 410 => return Ok(Ended::Expired),
            Err(reply) => return Err(format!("watching pods: {}", reply.message())),
        };
        loop {
            let event = match stream.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(Ended::Resume),
                // A dropped connection: resume from the last version seen.
                Err(message) => {
                    log::info!("pod watch ended: {message}; resuming from {version}");
                    return Ok(Ended::Resume);
                }
            };
            let object = &event["object"];
            match event.get("type").and_then(Value::as_str) {
                Some("ADDED" | "MODIFIED") => {
                    if let Some(uid) = uid(object) {
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
                    return Err(format!("pod watch error: {message}"));
                }
            }
            *version = resource_version(object).to_string();
            if !self.send(FromServer::Pods(pods.values().cloned().collect())) {
                return Ok(Ended::Resume);
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

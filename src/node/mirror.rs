//! Mirror pods: the read-only copies of static pods the kubelet keeps on the
//! API server, so that `kubectl get pods` shows them. One per static pod,
//! marked with its content hash; a stale or deleted one is replaced.

use super::{Node, ToServer, HASH};
use crate::apiserver::PodKey;
use crate::pod::Pod;
use crate::source::api::MIRROR;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Node {
    /// Ask for the mirrors the static pods need, and for the deletion of
    /// those that are stale or orphaned.
    pub(super) fn reconcile_mirrors(&mut self, statics: &BTreeMap<PodKey, Arc<Pod>>) {
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
            let _ = self.to.send(ToServer::CreateMirror {
                key: key.clone(),
                pod: mirror_of(pod, &hash),
            });
        }
    }
}

fn hash_of(pod: &Pod) -> String {
    pod.metadata
        .annotations
        .get(HASH)
        .cloned()
        .unwrap_or_default()
}

/// The mirror pod object of a static pod: its spec and metadata, marked with
/// its hash, without the UID and creation time the server assigns.
fn mirror_of(pod: &Pod, hash: &str) -> serde_json::Value {
    let mut mirror = serde_json::to_value(pod).unwrap_or_default();
    mirror["apiVersion"] = json!("v1");
    mirror["kind"] = json!("Pod");
    mirror["metadata"]["annotations"][MIRROR] = json!(hash);
    if let Some(m) = mirror["metadata"].as_object_mut() {
        m.remove("uid");
        m.remove("creationTimestamp");
    }
    mirror
}

//! Engine events as the API's core/v1 Events, as the kubelet posts them.

use crate::apiserver::PodKey;
use crate::engine::{EventType, PodEvent};
use crate::pod::Pod;
use crate::time::Time;
use serde_json::{json, Value};

/// The Event object for `event` of `pod`, posted against the object `uid`
/// (the pod itself, or a static pod's mirror).
pub fn to_api(pod: &Pod, uid: &str, event: &PodEvent, node_name: &str, now: Time) -> Value {
    let key = PodKey::of(pod);
    let mut involved = json!({
        "apiVersion": "v1", "kind": "Pod", "namespace": key.namespace,
        "name": key.name, "uid": uid,
    });
    if let Some(path) = field_path(pod, event) {
        involved["fieldPath"] = json!(path);
    }
    let kind = match event.kind {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "involvedObject": involved,
        "reason": event.reason,
        "message": event.message,
        "type": kind,
        "source": {"component": "kubelet", "host": node_name},
        "reportingComponent": "kubelet",
        "reportingInstance": node_name,
        "firstTimestamp": now.rfc3339(),
        "lastTimestamp": now.rfc3339(),
        "count": 1,
    })
}

/// `spec.containers{name}` or `spec.initContainers{name}` for an event about
/// a container.
fn field_path(pod: &Pod, event: &PodEvent) -> Option<String> {
    let c = event.container.as_ref()?;
    let init = pod.spec.init_containers.iter().any(|i| i.name == *c);
    let list = if init { "initContainers" } else { "containers" };
    Some(format!("spec.{list}{{{c}}}"))
}

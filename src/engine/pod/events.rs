//! Events for `kubectl describe pod` users: the kinds and reasons the
//! kubelet reports, and the one place their texts are built.

use super::Cx;

/// An event for `kubectl describe pod` users (Created, Started, Killing,
/// BackOff, Unhealthy, FailedPreStopHook, ...), with the kubelet's reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub pod_uid: String,
    pub container: Option<String>,
    pub kind: EventType,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl Cx<'_> {
    pub(super) fn event(
        &mut self,
        pod_uid: &str,
        container: Option<&str>,
        kind: EventType,
        reason: &'static str,
        message: String,
    ) {
        self.events.push_back(PodEvent {
            pod_uid: pod_uid.to_string(),
            container: container.map(str::to_string),
            kind,
            reason,
            message,
        });
    }
}

//! Events for `kubectl describe pod` users: the kinds and reasons the
//! kubelet reports, and the one place their texts are built.

use super::context::HandlerError;
use super::Cx;
use crate::engine::backoff::go_duration;
use std::time::Duration;

/// An event for `kubectl describe pod` users (Created, Started, Killing,
/// BackOff, Unhealthy, FailedPreStopHook, ...), with the kubelet's reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// The pod it is about.
    pub pod_uid: String,
    /// The container it is about, if any.
    pub container: Option<String>,
    pub kind: EventType,
    /// The kubelet's reason, a CamelCase word.
    pub reason: &'static str,
    /// The kubelet's text.
    pub message: String,
}

/// The two kinds of events Kubernetes knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Something normal that happened to a container. The image events are
/// the image manager's (`pkg/kubelet/images/image_manager.go`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Normal<'a> {
    /// Its image is in the store and needs no pull.
    AlreadyPresent {
        image: &'a str,
    },
    /// A pull of its image began.
    Pulling {
        image: &'a str,
    },
    /// Its image was pulled: its size, and how long it took.
    Pulled {
        image: &'a str,
        bytes: u64,
        took: Duration,
    },
    /// A pull of its image waits out the ImagePullBackOff.
    PullBackOff {
        image: &'a str,
    },
    Created,
    Started,
    /// Its stop began.
    Killing,
}

impl Normal<'_> {
    fn reason(self) -> &'static str {
        match self {
            Normal::AlreadyPresent { .. } | Normal::Pulled { .. } => "Pulled",
            Normal::Pulling { .. } => "Pulling",
            Normal::PullBackOff { .. } => "BackOff",
            Normal::Created => "Created",
            Normal::Started => "Started",
            Normal::Killing => "Killing",
        }
    }

    fn message(self, container: &str) -> String {
        match self {
            Normal::AlreadyPresent { image } => {
                format!("Container image \"{image}\" already present on machine")
            }
            Normal::Pulling { image } => format!("Pulling image \"{image}\""),
            // picolet's pulls do not queue: the time including waiting is
            // the pull's.
            Normal::Pulled { image, bytes, took } => {
                let took = go_duration(took);
                format!("Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {bytes} bytes.")
            }
            Normal::PullBackOff { image } => format!("Back-off pulling image \"{image}\""),
            Normal::Created => format!("Created container: {container}"),
            Normal::Started => format!("Started container {container}"),
            Normal::Killing => format!("Stopping container {container}"),
        }
    }
}

/// Something that went wrong with a container.
#[derive(Debug, Clone, Copy)]
pub(super) enum Warning<'a> {
    /// The runtime could not create an instance, for this (waiting) reason.
    StartFailed { reason: &'a str, message: &'a str },
    /// A pull of the container's image failed.
    PullFailed { image: &'a str, message: &'a str },
    /// The start failed for this reason, told in detail by the events
    /// before it (`ErrImagePull`, `ImagePullBackOff`).
    Error { reason: &'a str },
    /// A restart waits in CrashLoopBackOff.
    BackOff { pod_name: &'a str },
    /// A probe attempt or a lifecycle hook failed.
    HandlerFailed(&'a HandlerError),
}

impl Warning<'_> {
    fn reason(self) -> &'static str {
        match self {
            Warning::StartFailed { .. } | Warning::PullFailed { .. } | Warning::Error { .. } => {
                "Failed"
            }
            Warning::BackOff { .. } => "BackOff",
            Warning::HandlerFailed(HandlerError::Probe { .. }) => "Unhealthy",
            Warning::HandlerFailed(HandlerError::PostStart { .. }) => "FailedPostStartHook",
            Warning::HandlerFailed(HandlerError::PreStop { .. }) => "FailedPreStopHook",
        }
    }

    fn message(self, container: &str) -> String {
        match self {
            Warning::StartFailed { reason, message } => format!("Error: {reason}: {message}"),
            Warning::PullFailed { image, message } => {
                format!("Failed to pull image \"{image}\": {message}")
            }
            Warning::Error { reason } => format!("Error: {reason}"),
            Warning::BackOff { pod_name } => {
                format!("Back-off restarting failed container {container} in pod {pod_name}")
            }
            Warning::HandlerFailed(error) => error.to_string(),
        }
    }
}

impl Cx<'_> {
    /// Tell users something normal happened to `container`.
    pub(super) fn normal(&mut self, pod_uid: &str, container: &str, event: Normal) {
        let message = event.message(container);
        self.push(
            pod_uid,
            container,
            EventType::Normal,
            event.reason(),
            message,
        );
    }

    /// Warn users that something went wrong with `container`.
    pub(super) fn warn(&mut self, pod_uid: &str, container: &str, warning: Warning) {
        let message = warning.message(container);
        self.push(
            pod_uid,
            container,
            EventType::Warning,
            warning.reason(),
            message,
        );
    }

    fn push(
        &mut self,
        pod_uid: &str,
        container: &str,
        kind: EventType,
        reason: &'static str,
        message: String,
    ) {
        self.events.push_back(PodEvent {
            pod_uid: pod_uid.to_string(),
            container: Some(container.to_string()),
            kind,
            reason,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::probe::ProbeKind;

    #[test]
    fn warnings_carry_the_kubelets_reasons_and_texts() {
        let probe_failed = HandlerError::Probe {
            kind: ProbeKind::Liveness,
            message: "exit 1".into(),
        };
        let post_start_failed = HandlerError::PostStart {
            message: "exit 1".into(),
        };
        let pre_stop_failed = HandlerError::PreStop {
            message: "exit 1".into(),
        };
        let cases = [
            (
                Warning::StartFailed {
                    reason: "ErrImageNeverPull",
                    message: "image not present",
                },
                "Failed",
                "Error: ErrImageNeverPull: image not present",
            ),
            (
                Warning::PullFailed {
                    image: "app:1",
                    message: "manifest unknown",
                },
                "Failed",
                "Failed to pull image \"app:1\": manifest unknown",
            ),
            (
                Warning::Error {
                    reason: "ImagePullBackOff",
                },
                "Failed",
                "Error: ImagePullBackOff",
            ),
            (
                Warning::BackOff { pod_name: "web" },
                "BackOff",
                "Back-off restarting failed container c in pod web",
            ),
            (
                Warning::HandlerFailed(&probe_failed),
                "Unhealthy",
                "Liveness probe failed: exit 1",
            ),
            (
                Warning::HandlerFailed(&post_start_failed),
                "FailedPostStartHook",
                "PostStartHook failed: exit 1",
            ),
            (
                Warning::HandlerFailed(&pre_stop_failed),
                "FailedPreStopHook",
                "PreStopHook failed: exit 1",
            ),
        ];
        for (warning, reason, message) in cases {
            assert_eq!(warning.reason(), reason);
            assert_eq!(warning.message("c"), message);
        }
    }

    #[test]
    fn image_events_carry_the_image_managers_reasons_and_texts() {
        let image = "app:1";
        let cases = [
            (
                Normal::AlreadyPresent { image },
                "Pulled",
                "Container image \"app:1\" already present on machine",
            ),
            (Normal::Pulling { image }, "Pulling", "Pulling image \"app:1\""),
            (
                Normal::Pulled {
                    image,
                    bytes: 4_194_304,
                    took: Duration::from_millis(1234),
                },
                "Pulled",
                "Successfully pulled image \"app:1\" in 1.234s (1.234s including waiting). Image size: 4194304 bytes.",
            ),
            (
                Normal::PullBackOff { image },
                "BackOff",
                "Back-off pulling image \"app:1\"",
            ),
        ];
        for (event, reason, message) in cases {
            assert_eq!(event.reason(), reason);
            assert_eq!(event.message("c"), message);
        }
    }
}

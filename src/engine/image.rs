//! Image pulls as the kubelet's image manager sees them
//! (kubernetes/kubernetes `pkg/kubelet/images/image_manager.go`,
//! docs/lifecycle.md "Image pulls"): what the runtime tells of a container's
//! image ([`ImageNotice`]), and the ImagePullBackOff of failed pulls, one
//! sequence per (pod UID, image) ([`PullBackoff`]).
//!
//! The runtime decides whether to pull (the pull policy, the store) and
//! pulls; the engine only spaces the attempts and tells users.

use super::backoff::{BackoffKey, BackoffPolicy, CrashLoopBackoff};
use crate::time::Time;
use std::collections::BTreeMap;
use std::time::Duration;

/// The waiting reason of a failed pull (`images.ErrImagePull`).
pub const ERR_IMAGE_PULL: &str = "ErrImagePull";

/// The waiting reason while a pull waits out its back-off
/// (`images.ErrImagePullBackOff`).
pub const IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";

/// How long after a failed pull the container is tried again: the pod
/// worker's requeue after a sync error (`backOffPeriod` in
/// `pkg/kubelet/kubelet.go`, used by `pkg/kubelet/pod_workers.go`; picolet
/// adds no jitter).
pub const PULL_RETRY: Duration = Duration::from_secs(10);

/// The image back-off: `flowcontrol.NewBackOff(backOffPeriod,
/// MaxContainerBackOff)` in `pkg/kubelet/kubelet.go`, 10 s doubling to
/// 300 s. Fixed, like the kubelet's; the CrashLoopBackOff is the one the
/// node configures.
const IMAGE_BACKOFF: BackoffPolicy = BackoffPolicy {
    initial: Duration::from_secs(10),
    max: Duration::from_secs(300),
};

/// What the runtime tells of the image of an instance it is starting, before
/// its `Started` or `StartFailed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageNotice {
    /// The image is in the store and the pull policy needs no pull.
    Present,
    /// A pull began.
    Pulling,
    /// The pull succeeded: the image's size, and how long it took.
    Pulled { bytes: u64, took: Duration },
}

/// The ImagePullBackOff of every (pod UID, image), with the failure that
/// began each wait (the image manager's `prevPullErrMsg`).
#[derive(Debug)]
pub struct PullBackoff {
    backoff: CrashLoopBackoff,
    /// `ErrImagePull: <message>` of the latest failed pull, by key.
    last_error: BTreeMap<BackoffKey, String>,
}

impl Default for PullBackoff {
    fn default() -> Self {
        PullBackoff {
            backoff: CrashLoopBackoff::new(IMAGE_BACKOFF),
            last_error: BTreeMap::new(),
        }
    }
}

/// The image manager's `backOffKey`: the pod's UID and the image as the spec
/// writes it, so that two pods pulling one image back off each on its own.
fn key(pod_uid: &str, image: &str) -> BackoffKey {
    BackoffKey {
        pod_uid: pod_uid.to_string(),
        container: String::new(),
        image: image.to_string(),
    }
}

impl PullBackoff {
    /// A pull of `image` for the pod failed at `now` with `message`: the
    /// back-off advances (`backOff.Next`).
    pub fn failed(&mut self, pod_uid: &str, image: &str, message: &str, now: Time) {
        let key = key(pod_uid, image);
        self.backoff.advance(key.clone(), now, now);
        self.last_error
            .insert(key, format!("{ERR_IMAGE_PULL}: {message}"));
    }

    /// If a pull of `image` for the pod must wait at `now`: when the wait
    /// ends, and the waiting message (`Back-off pulling image "<image>":
    /// ErrImagePull: <last message>`).
    pub fn holds(&self, pod_uid: &str, image: &str, now: Time) -> Option<(Time, String)> {
        let key = key(pod_uid, image);
        let (until, _) = self.backoff.in_backoff_since_update(&key, now)?;
        let mut message = format!("Back-off pulling image \"{image}\"");
        if let Some(last) = self.last_error.get(&key) {
            message = format!("{message}: {last}");
        }
        Some((until, message))
    }

    /// A container of the pod with `image` started: its image is there, and
    /// the next failure starts the sequence over.
    pub fn succeeded(&mut self, pod_uid: &str, image: &str) {
        let key = key(pod_uid, image);
        self.backoff.reset(&key);
        self.last_error.remove(&key);
    }

    /// Drop every sequence of a pod that is gone.
    pub fn forget_pod(&mut self, pod_uid: &str) {
        self.backoff.forget_pod(pod_uid);
        self.last_error.retain(|k, _| k.pod_uid != pod_uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_pull_holds_the_next_for_its_back_off_with_its_message() {
        let mut b = PullBackoff::default();
        let t0 = Time::from_secs(1000);
        assert!(b.holds("u", "app:1", t0).is_none(), "no failure, no wait");
        b.failed("u", "app:1", "manifest unknown", t0);
        let (until, message) = b.holds("u", "app:1", t0).expect("held");
        assert_eq!(until, t0 + Duration::from_secs(10));
        assert_eq!(
            message,
            "Back-off pulling image \"app:1\": ErrImagePull: manifest unknown"
        );
        assert!(b.holds("other-pod", "app:1", t0).is_none(), "per pod");
        assert!(b.holds("u", "app:2", t0).is_none(), "per image");
        assert!(b.holds("u", "app:1", until).is_none(), "ends at `until`");
        b.succeeded("u", "app:1");
        assert!(b.holds("u", "app:1", t0).is_none());
        b.failed("u", "app:1", "x", t0);
        b.forget_pod("u");
        assert!(b.holds("u", "app:1", t0).is_none());
    }
}

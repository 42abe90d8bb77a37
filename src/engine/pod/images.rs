//! A pod's side of image pulls (docs/lifecycle.md "Image pulls", after
//! `EnsureImageExists` in kubernetes/kubernetes
//! `pkg/kubelet/images/image_manager.go`): the runtime's notices become
//! events; a failed pull waits under the image's ImagePullBackOff instead of
//! the container's start back-off; a container due to start while that
//! back-off runs waits without a pull.

use super::events::{Normal, Warning};
use super::{Cx, PodMachine};
use crate::engine::container::{State, Waiting};
use crate::engine::image::{ImageNotice, ERR_IMAGE_PULL, IMAGE_PULL_BACK_OFF, PULL_RETRY};

impl PodMachine {
    /// The runtime told what became of the image of instance `attempt` of
    /// container `name`, which it is starting: users are told.
    pub fn image_notice(&self, name: &str, attempt: u32, notice: ImageNotice, cx: &mut Cx) {
        let Some(c) = self.containers.iter().find(|c| c.name() == name) else {
            return;
        };
        if !c.is_starting(attempt) {
            return;
        }
        let image = c.image();
        let event = match notice {
            ImageNotice::Present => Normal::AlreadyPresent { image },
            ImageNotice::Pulling => Normal::Pulling { image },
            ImageNotice::Pulled { bytes, took } => Normal::Pulled { image, bytes, took },
        };
        cx.normal(self.uid(), name, event);
    }

    /// The pull for instance `attempt` of container `name` failed with the
    /// registry's `message`: the image's back-off advances, and the
    /// container waits with `ErrImagePull` until the pod worker's requeue.
    pub(super) fn pull_failed(&mut self, name: &str, attempt: u32, message: String, cx: &mut Cx) {
        let uid = self.uid().to_string();
        let Some(c) = self.container_mut(name).filter(|c| c.is_starting(attempt)) else {
            return;
        };
        let image = c.image().to_string();
        cx.pull_backoff.failed(&uid, &image, &message, cx.now);
        let failed = Warning::PullFailed {
            image: &image,
            message: &message,
        };
        cx.warn(&uid, name, failed);
        let reason = ERR_IMAGE_PULL;
        cx.warn(&uid, name, Warning::Error { reason });
        let waiting = Waiting {
            reason: Some(reason.into()),
            message: Some(message),
            retry_at: Some(cx.now + PULL_RETRY),
        };
        c.start_failed(attempt, waiting);
        self.sync(cx);
    }

    /// Container `i` is due to start. If a pull of its image for this pod
    /// failed and the back-off since runs (`IsInBackOffSinceUpdate`), it
    /// waits with `ImagePullBackOff` until the back-off ends, and true is
    /// returned: no instance is asked for. Only a waiting container (never
    /// started, or its start failed) is held; the restart that follows an
    /// exit goes to the runtime, which had the image for the exited one.
    pub(super) fn pull_held(&mut self, i: usize, cx: &mut Cx) -> bool {
        let uid = self.uid().to_string();
        let c = &mut self.containers[i];
        if !matches!(c.state(), State::Waiting(_)) {
            return false;
        }
        let image = c.image().to_string();
        let Some((until, message)) = cx.pull_backoff.holds(&uid, &image, cx.now) else {
            return false;
        };
        let reason = IMAGE_PULL_BACK_OFF;
        c.wait(Waiting {
            reason: Some(reason.into()),
            message: Some(message),
            retry_at: Some(until),
        });
        cx.normal(&uid, c.name(), Normal::PullBackOff { image: &image });
        cx.warn(&uid, c.name(), Warning::Error { reason });
        true
    }
}

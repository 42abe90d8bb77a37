//! Container starts waiting for their image to be unpacked: the engine has
//! sent `StartContainer` and sees the instance as starting (waiting,
//! `ContainerCreating`) until the runtime answers `Started` or `StartFailed`.

use crate::engine::InstanceRef;
use crate::pod::Pod;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A start deferred until its image is unpacked.
#[derive(Debug)]
pub(super) struct PendingStart {
    /// The pod the start is for.
    pub pod: Arc<Pod>,
    /// The instance to start.
    pub instance: InstanceRef,
}

/// Deferred starts by the unpacked image root they wait for.
#[derive(Debug, Default)]
pub(super) struct Pending {
    by_image: BTreeMap<PathBuf, Vec<PendingStart>>,
}

impl Pending {
    /// Hold `start` until `image` is unpacked.
    pub fn wait(&mut self, image: PathBuf, start: PendingStart) {
        self.by_image.entry(image).or_default().push(start);
    }

    /// The starts that waited for `image`, in the order they came.
    pub fn take(&mut self, image: &Path) -> Vec<PendingStart> {
        self.by_image.remove(image).unwrap_or_default()
    }

    /// Remove and return the starts of the pods `drop` picks.
    pub fn remove_pods(&mut self, drop: impl Fn(&str) -> bool) -> Vec<PendingStart> {
        let mut removed = Vec::new();
        for starts in self.by_image.values_mut() {
            let (gone, kept) = std::mem::take(starts)
                .into_iter()
                .partition(|s| drop(&s.instance.pod_uid));
            *starts = kept;
            removed.extend(gone);
        }
        self.by_image.retain(|_, starts| !starts.is_empty());
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(uid: &str, container: &str) -> PendingStart {
        let mut pod = Pod::default();
        pod.metadata.uid = uid.into();
        PendingStart {
            pod: Arc::new(pod),
            instance: InstanceRef {
                pod_uid: uid.into(),
                container: container.into(),
                attempt: 0,
            },
        }
    }

    fn names(starts: &[PendingStart]) -> Vec<(&str, &str)> {
        starts
            .iter()
            .map(|s| (s.instance.pod_uid.as_str(), s.instance.container.as_str()))
            .collect()
    }

    #[test]
    fn starts_on_one_image_are_released_together_in_order() {
        let mut pending = Pending::default();
        pending.wait("/r/big".into(), start("a", "app"));
        pending.wait("/r/small".into(), start("b", "app"));
        pending.wait("/r/big".into(), start("c", "app"));
        assert_eq!(
            names(&pending.take(Path::new("/r/big"))),
            [("a", "app"), ("c", "app")]
        );
        assert!(pending.take(Path::new("/r/big")).is_empty());
        assert_eq!(names(&pending.take(Path::new("/r/small"))), [("b", "app")]);
    }

    #[test]
    fn a_removed_pod_is_never_released() {
        let mut pending = Pending::default();
        pending.wait("/r/big".into(), start("a", "one"));
        pending.wait("/r/big".into(), start("b", "app"));
        pending.wait("/r/big".into(), start("a", "two"));
        pending.wait("/r/small".into(), start("a", "three"));
        let removed = pending.remove_pods(|uid| uid == "a");
        assert_eq!(
            names(&removed),
            [("a", "one"), ("a", "two"), ("a", "three")]
        );
        assert_eq!(names(&pending.take(Path::new("/r/big"))), [("b", "app")]);
        assert!(pending.by_image.is_empty());
    }
}

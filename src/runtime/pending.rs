//! Container starts waiting for their image to be pulled or unpacked: the
//! engine has sent `StartContainer` and sees the instance as starting
//! (waiting, `ContainerCreating`) until the runtime answers `Started` or
//! `StartFailed`.

use crate::engine::InstanceRef;
use crate::pod::Pod;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What a deferred start waits for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Awaited {
    /// The pull of this reference (`Reference::full`).
    Pull(String),
    /// The unpack into this image root.
    Unpack(PathBuf),
    /// The store's upkeep (an import, a collection: `upkeep.rs`).
    Upkeep,
}

/// A start deferred until its image is pulled or unpacked.
#[derive(Debug)]
pub(super) struct PendingStart {
    /// The pod the start is for.
    pub pod: Arc<Pod>,
    /// The instance to start.
    pub instance: InstanceRef,
}

impl PendingStart {
    /// The image the container runs, as the pod names it.
    pub fn image(&self) -> &str {
        self.pod
            .container(&self.instance.container)
            .map_or("?", |c| c.image.as_str())
    }
}

/// Deferred starts by what they wait for.
#[derive(Debug, Default)]
pub(super) struct Pending {
    by_image: BTreeMap<Awaited, Vec<PendingStart>>,
}

impl Pending {
    /// Hold `start` until `awaited` is done.
    pub fn wait(&mut self, awaited: Awaited, start: PendingStart) {
        self.by_image.entry(awaited).or_default().push(start);
    }

    /// The starts that waited for `awaited`, in the order they came.
    pub fn take(&mut self, awaited: &Awaited) -> Vec<PendingStart> {
        self.by_image.remove(awaited).unwrap_or_default()
    }

    /// The images starts wait for, as the pods name them: what image
    /// collection must leave alone.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.by_image.values().flatten().map(PendingStart::image)
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

    fn unpack(dest: &str) -> Awaited {
        Awaited::Unpack(dest.into())
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
        pending.wait(unpack("/r/big"), start("a", "app"));
        pending.wait(unpack("/r/small"), start("b", "app"));
        pending.wait(unpack("/r/big"), start("c", "app"));
        assert_eq!(
            names(&pending.take(&unpack("/r/big"))),
            [("a", "app"), ("c", "app")]
        );
        assert!(pending.take(&unpack("/r/big")).is_empty());
        assert_eq!(names(&pending.take(&unpack("/r/small"))), [("b", "app")]);
    }

    #[test]
    fn a_pull_and_an_unpack_of_one_image_are_awaited_apart() {
        let mut pending = Pending::default();
        let pull = Awaited::Pull("docker.io/library/app:1".into());
        pending.wait(pull.clone(), start("a", "app"));
        pending.wait(unpack("/r/app"), start("b", "app"));
        assert_eq!(names(&pending.take(&pull)), [("a", "app")]);
        assert_eq!(names(&pending.take(&unpack("/r/app"))), [("b", "app")]);
    }

    #[test]
    fn a_removed_pod_is_never_released() {
        let mut pending = Pending::default();
        pending.wait(unpack("/r/big"), start("a", "one"));
        pending.wait(unpack("/r/big"), start("b", "app"));
        pending.wait(unpack("/r/big"), start("a", "two"));
        pending.wait(unpack("/r/small"), start("a", "three"));
        let removed = pending.remove_pods(|uid| uid == "a");
        assert_eq!(
            names(&removed),
            [("a", "one"), ("a", "two"), ("a", "three")]
        );
        assert_eq!(names(&pending.take(&unpack("/r/big"))), [("b", "app")]);
        assert!(pending.by_image.is_empty());
    }
}

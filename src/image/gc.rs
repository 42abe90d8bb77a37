//! Image garbage collection as the kubelet does it
//! (pkg/kubelet/images/image_gc_manager.go): [`plan`] chooses, purely, which
//! images go — first those unused for longer than `imageMaximumGCAge`, then,
//! when the disk is at least `imageGCHighThresholdPercent` full, the least
//! recently used until it is down to `imageGCLowThresholdPercent` — never
//! one in use, never one a manifest of the device names (protected: a device
//! that is offline must never delete what it cannot get back), never one
//! younger than `imageMinimumGCAge`. [`collect()`] (in `gc/collect.rs`) then
//! removes them: index entries, the blobs nothing else needs, their unpacked
//! trees, and stale partial downloads.

pub(crate) mod collect;

pub use collect::{collect, inventory, lock, try_lock, GcError};
pub(crate) use collect::{image_id, reachable};

use super::digest::Digest;
use super::index::full_name;
use super::reference::Reference;
use crate::time::Time;
use std::collections::BTreeSet;
use std::time::Duration;

/// One image as the collector weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcImage {
    /// What index.json points to: a manifest, or a multi-platform index.
    pub manifest: Digest,
    /// The imageID the runtime records for its containers: the manifest
    /// [`Layout::resolve`](crate::image::layout::Layout::resolve) chooses
    /// for this machine, which is the platform manifest of an index and
    /// `manifest` itself otherwise. `None` when it cannot be read.
    pub image_id: Option<Digest>,
    /// The config of this platform's manifest; names the unpacked tree.
    /// `None` when the manifest cannot be read (it is collected all the same).
    pub config: Option<Digest>,
    /// The names index.json gives it, as stored.
    pub refs: Vec<String>,
    /// Bytes of its blobs in the layout (layers shared with other images
    /// counted in each, as the kubelet's image sizes do).
    pub size: u64,
    /// When a container last used it (by either digest, as the caller
    /// knows it: src/published.rs); `None`: never since it arrived.
    pub last_used: Option<Time>,
    /// When it arrived: the manifest blob's modification time.
    pub first_seen: Time,
}

impl GcImage {
    /// The time it counts as last used: when never used, its arrival, so
    /// an image imported for later is not taken for one unused since 1970.
    fn used(&self) -> Time {
        self.last_used
            .unwrap_or(self.first_seen)
            .max(self.first_seen)
    }

    /// Whether `digests` hold either of its digests.
    pub fn is_among(&self, digests: &BTreeSet<Digest>) -> bool {
        digests.contains(&self.manifest)
            || self.image_id.as_ref().is_some_and(|d| digests.contains(d))
    }
}

/// The file system holding the images, as statvfs gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in all.
    pub capacity: u64,
    /// Bytes free for unprivileged users (`f_bavail`), as the kubelet reads them.
    pub available: u64,
}

impl Usage {
    /// The file system holding `path` now.
    pub fn of(path: &std::path::Path) -> std::io::Result<Usage> {
        let fs = rustix::fs::statvfs(path)?;
        Ok(Usage {
            capacity: fs.f_blocks.saturating_mul(fs.f_frsize),
            available: fs.f_bavail.saturating_mul(fs.f_frsize),
        })
    }
}

/// The kubelet's image GC settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// `imageGCHighThresholdPercent`: at this use or more, collect (85).
    pub high_pct: u8,
    /// `imageGCLowThresholdPercent`: collect down to this use (80).
    pub low_pct: u8,
    /// `imageMinimumGCAge`: an image that arrived more recently stays (2m).
    pub min_age: Duration,
    /// `imageMaximumGCAge`: an image unused this long goes whatever the
    /// disk; zero: off (the default).
    pub max_age: Duration,
}

impl Default for GcPolicy {
    /// The kubelet's defaults.
    fn default() -> GcPolicy {
        GcPolicy {
            high_pct: 85,
            low_pct: 80,
            min_age: Duration::from_secs(120),
            max_age: Duration::ZERO,
        }
    }
}

/// Why an image is to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Unused for longer than `imageMaximumGCAge`.
    MaxAge,
    /// The disk is above the high threshold.
    DiskPressure,
}

/// One image to remove, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub manifest: Digest,
    pub reason: Reason,
    /// Its size, counted towards the bytes to free.
    pub size: u64,
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The images to remove, in order.
    pub victims: Vec<Victim>,
    /// Bytes the high threshold asked to free that no removable image
    /// covers: the kubelet's "failed to garbage collect required amount of
    /// images" (a warning event), or 0.
    pub shortfall: u64,
}

/// Choose the images to remove. `in_use`: image digests of containers
/// that exist (running or not), either of an image's; `protected`:
/// references the device's own manifests name (any form; compared
/// normalized; one pinned by digest, `name@sha256:...`, protects the image
/// of that digest whatever its name).
pub fn plan(
    images: &[GcImage],
    in_use: &BTreeSet<Digest>,
    protected: &BTreeSet<String>,
    disk: Usage,
    policy: &GcPolicy,
    now: Time,
) -> Plan {
    let pinned: BTreeSet<Digest> = protected
        .iter()
        .filter_map(|p| Reference::parse(p).ok()?.digest)
        .filter_map(|d| Digest::parse(&d).ok())
        .collect();
    let protected: BTreeSet<String> = protected
        .iter()
        .map(|p| full_name(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let removable = |i: &GcImage| {
        !i.is_among(in_use)
            && !i.is_among(&pinned)
            && !i
                .refs
                .iter()
                .any(|r| protected.contains(&full_name(r).unwrap_or_else(|_| r.clone())))
            && now.saturating_sub(i.first_seen) >= policy.min_age
    };
    // Least recently used first; then the earliest arrival, as the kubelet.
    let mut order: Vec<&GcImage> = images.iter().filter(|i| removable(i)).collect();
    order.sort_by_key(|i| (i.used(), i.first_seen));

    let mut out = Plan::default();
    let mut freed = 0u64;
    if !policy.max_age.is_zero() {
        for image in order
            .iter()
            .filter(|i| now.saturating_sub(i.used()) > policy.max_age)
        {
            freed = freed.saturating_add(image.size);
            out.victims.push(victim(image, Reason::MaxAge));
        }
    }
    let capacity = u128::from(disk.capacity.max(1));
    let used = u128::from(disk.capacity.saturating_sub(disk.available));
    if used * 100 < u128::from(policy.high_pct) * capacity {
        return out;
    }
    // Free until `available` reaches (100 - low)% of the capacity.
    let want_free = capacity * u128::from(100 - policy.low_pct.min(100)) / 100;
    let to_free = u64::try_from(want_free.saturating_sub(u128::from(disk.available)))
        .unwrap_or(u64::MAX)
        .saturating_sub(freed);
    let mut pressure_freed = 0u64;
    for image in &order {
        if pressure_freed >= to_free {
            break;
        }
        if out.victims.iter().any(|v| v.manifest == image.manifest) {
            continue;
        }
        pressure_freed = pressure_freed.saturating_add(image.size);
        out.victims.push(victim(image, Reason::DiskPressure));
    }
    out.shortfall = to_free.saturating_sub(pressure_freed);
    out
}

fn victim(image: &GcImage, reason: Reason) -> Victim {
    Victim {
        manifest: image.manifest.clone(),
        reason,
        size: image.size,
    }
}

#[cfg(test)]
mod tests {
    use super::super::digest::Algorithm;
    use super::*;

    const MIN: u64 = 60_000;

    fn image(name: &str, size: u64, last_used: Option<u64>, first_seen: u64) -> GcImage {
        GcImage {
            manifest: Digest::of(Algorithm::Sha256, name.as_bytes()),
            image_id: None,
            config: None,
            refs: vec![format!("docker.io/library/{name}:1")],
            size,
            last_used: last_used.map(|m| Time(m * MIN)),
            first_seen: Time(first_seen * MIN),
        }
    }

    fn names(plan: &Plan, images: &[GcImage]) -> Vec<String> {
        plan.victims
            .iter()
            .map(|v| {
                let i = images.iter().find(|i| i.manifest == v.manifest).unwrap();
                i.refs[0].clone()
            })
            .collect()
    }

    fn disk(used_pct: u64) -> Usage {
        Usage {
            capacity: 1000,
            available: 1000 - used_pct * 10,
        }
    }

    #[test]
    fn below_the_high_threshold_nothing_goes() {
        let images = [image("a", 100, Some(1), 0)];
        let p = plan(
            &images,
            &BTreeSet::new(),
            &BTreeSet::new(),
            disk(84),
            &GcPolicy::default(),
            Time(100 * MIN),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn least_recently_used_go_first_down_to_the_low_threshold() {
        // 90% used: free 100 bytes to reach 80%.
        let images = [
            image("recent", 60, Some(50), 0),
            image("old", 60, Some(10), 0),
            image("never", 60, None, 5),
            image("middle", 60, Some(30), 0),
        ];
        let p = plan(
            &images,
            &BTreeSet::new(),
            &BTreeSet::new(),
            disk(90),
            &GcPolicy::default(),
            Time(100 * MIN),
        );
        assert_eq!(
            names(&p, &images),
            ["docker.io/library/never:1", "docker.io/library/old:1"]
        );
        assert!(p.victims.iter().all(|v| v.reason == Reason::DiskPressure));
        assert_eq!(p.shortfall, 0);
    }

    #[test]
    fn in_use_protected_and_young_images_stay() {
        let images = [
            image("used", 500, Some(1), 0),
            image("pinned", 500, Some(2), 0),
            image("young", 500, Some(3), 99),
            image("free", 50, Some(4), 0),
        ];
        let in_use = BTreeSet::from([images[0].manifest.clone()]);
        // The device's manifest names it in its short form.
        let protected = BTreeSet::from(["pinned:1".to_string()]);
        let p = plan(
            &images,
            &in_use,
            &protected,
            disk(100),
            &GcPolicy::default(),
            Time(100 * MIN),
        );
        assert_eq!(names(&p, &images), ["docker.io/library/free:1"]);
        // 1000 free wanted at 100% used with low 80%: 200; 50 found.
        assert_eq!(p.shortfall, 150);
    }

    #[test]
    fn max_age_removes_whatever_the_disk() {
        let images = [
            image("stale", 10, Some(1), 0),
            image("fresh", 10, Some(90), 0),
            image("stale-pinned", 10, Some(1), 0),
        ];
        let policy = GcPolicy {
            max_age: Duration::from_secs(3600),
            ..GcPolicy::default()
        };
        let protected = BTreeSet::from(["docker.io/library/stale-pinned:1".to_string()]);
        let p = plan(
            &images,
            &BTreeSet::new(),
            &protected,
            disk(10),
            &policy,
            Time(100 * MIN),
        );
        assert_eq!(names(&p, &images), ["docker.io/library/stale:1"]);
        assert_eq!(p.victims[0].reason, Reason::MaxAge);
        // Never used: counted from its arrival, not from 1970.
        let imported = [image("imported", 10, None, 95)];
        let p = plan(
            &imported,
            &BTreeSet::new(),
            &BTreeSet::new(),
            disk(10),
            &policy,
            Time(100 * MIN),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn usage_is_the_file_systems() {
        let u = Usage::of(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(u.capacity > 0 && u.available <= u.capacity, "{u:?}");
    }

    #[test]
    fn max_age_victims_count_towards_the_pressure() {
        let images = [
            image("stale", 100, Some(1), 0),
            image("other", 100, Some(80), 0),
        ];
        let policy = GcPolicy {
            max_age: Duration::from_secs(3600),
            ..GcPolicy::default()
        };
        let p = plan(
            &images,
            &BTreeSet::new(),
            &BTreeSet::new(),
            disk(90),
            &policy,
            Time(100 * MIN),
        );
        assert_eq!(names(&p, &images), ["docker.io/library/stale:1"]);
    }

    #[test]
    fn a_pod_pinned_by_digest_protects_its_image_whatever_its_name() {
        let mut multi = image("multi", 500, Some(2), 0);
        multi.image_id = Some(Digest::of(Algorithm::Sha256, b"multi/amd64"));
        let images = [
            image("app", 500, Some(1), 0),
            multi,
            image("free", 50, Some(3), 0),
        ];
        // Pinned by the index digest under another name, and by the
        // platform manifest's digest.
        let protected = BTreeSet::from([
            format!("registry.example/other@{}", images[0].manifest),
            format!("multi@{}", Digest::of(Algorithm::Sha256, b"multi/amd64")),
        ]);
        let p = plan(
            &images,
            &BTreeSet::new(),
            &protected,
            disk(100),
            &GcPolicy::default(),
            Time(100 * MIN),
        );
        assert_eq!(names(&p, &images), ["docker.io/library/free:1"]);
    }

    #[test]
    fn a_multi_platform_image_in_use_by_its_platform_digest_stays() {
        let mut multi = image("multi", 500, Some(1), 0);
        let platform = Digest::of(Algorithm::Sha256, b"multi/amd64");
        multi.image_id = Some(platform.clone());
        let images = [multi, image("free", 50, Some(3), 0)];
        let p = plan(
            &images,
            &BTreeSet::from([platform]),
            &BTreeSet::new(),
            disk(100),
            &GcPolicy::default(),
            Time(100 * MIN),
        );
        assert_eq!(names(&p, &images), ["docker.io/library/free:1"]);
    }
}

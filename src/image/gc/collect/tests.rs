use super::*;
use crate::image::blobs::tests::TempLayout;
use crate::image::index::Descriptor;
use crate::image::layout::MANIFEST;

/// An image of `layers` (blob bytes, not real tars: nothing unpacks them)
/// named `name` in `layout`: its manifest and config digests.
pub(crate) fn put_image(layout: &Layout, name: &str, layers: &[&[u8]]) -> (Digest, Digest) {
    let sha = |b: &[u8]| Digest::of(Algorithm::Sha256, b);
    let blobs = layout.blobs().unwrap();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "name": name,
        "rootfs": {"type": "layers", "diff_ids": []}})
    .to_string();
    blobs
        .write_whole(&sha(config.as_bytes()), config.as_bytes())
        .unwrap();
    let layer_descriptors: Vec<Value> = layers
        .iter()
        .map(|l| {
            blobs.write_whole(&sha(l), l).unwrap();
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha(l), "size": l.len()})
        })
        .collect();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(config.as_bytes()), "size": config.len()},
        "layers": layer_descriptors})
    .to_string();
    let digest = sha(manifest.as_bytes());
    blobs.write_whole(&digest, manifest.as_bytes()).unwrap();
    let descriptor = Descriptor {
        media_type: MANIFEST.into(),
        digest: digest.clone(),
        size: manifest.len() as u64,
    };
    layout.add_ref(name, &descriptor).unwrap();
    (digest, sha(config.as_bytes()))
}

fn blob_count(layout: &Layout) -> usize {
    fs::read_dir(layout.dir().join("blobs/sha256")).map_or(0, |d| d.count())
}

fn rootfs_for(rootfs: &Path, config: &Digest) {
    fs::create_dir_all(rootfs.join(rootfs_name(config)).join("bin")).unwrap();
    fs::write(rootfs.join(rootfs_name(config)).join("bin/sh"), b"x").unwrap();
}

#[test]
fn a_victim_goes_with_its_own_blobs_and_tree_and_shared_ones_stay() {
    let t = TempLayout::new("gc-victim");
    let layout = &t.0;
    let rootfs = layout.dir().join("../rootfs-gc-victim");
    let _ = fs::remove_dir_all(&rootfs);
    let (a, a_config) = put_image(layout, "a:1", &[b"shared", b"only a"]);
    let (b, b_config) = put_image(layout, "b:1", &[b"shared", b"only b"]);
    rootfs_for(&rootfs, &a_config);
    rootfs_for(&rootfs, &b_config);
    fs::create_dir_all(rootfs.join(".tmp-unpacking")).unwrap();
    assert_eq!(blob_count(layout), 7);

    let images = inventory(layout, &BTreeMap::new()).unwrap();
    let of_a = images.iter().find(|i| i.manifest == a).unwrap();
    assert_eq!(of_a.refs, ["docker.io/library/a:1"]);
    assert_eq!(of_a.config, Some(a_config.clone()));
    assert!(of_a.size > 12, "{}", of_a.size);

    let victims = BTreeSet::from([a.clone()]);
    let freed = collect(
        layout,
        &rootfs,
        &victims,
        &BTreeSet::new(),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!((freed.images, freed.blobs, freed.rootfs), (1, 3, 1));
    assert!(!layout.has_blob(&a));
    assert!(!rootfs.join(rootfs_name(&a_config)).exists());
    assert!(rootfs.join(rootfs_name(&b_config)).exists());
    assert!(rootfs.join(".tmp-unpacking").exists());
    let sha = |s: &[u8]| Digest::of(Algorithm::Sha256, s);
    assert!(layout.has_blob(&sha(b"shared")));
    assert!(layout.has_blob(&sha(b"only b")));
    assert!(!layout.has_blob(&sha(b"only a")));
    let left: Vec<_> = layout
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.descriptor.digest)
        .collect();
    assert_eq!(left, [b]);
    let _ = fs::remove_dir_all(&rootfs);
}

#[test]
fn in_use_images_and_fresh_foreign_blobs_stay() {
    let t = TempLayout::new("gc-in-use");
    let layout = &t.0;
    let rootfs = layout.dir().join("../rootfs-gc-in-use");
    let _ = fs::remove_dir_all(&rootfs);
    let (a, a_config) = put_image(layout, "a:1", &[b"layer a"]);
    rootfs_for(&rootfs, &a_config);
    // Renamed away (a newer a:1 pulled) while a container still runs it.
    layout.remove_ref("a:1").unwrap();
    // A blob skopeo just wrote, not yet named.
    let foreign = Digest::of(Algorithm::Sha256, b"foreign");
    layout
        .blobs()
        .unwrap()
        .write_whole(&foreign, b"foreign")
        .unwrap();

    let in_use = BTreeSet::from([a.clone()]);
    let none = BTreeSet::new();
    let freed = collect(layout, &rootfs, &in_use, &in_use, SystemTime::now()).unwrap();
    assert_eq!(freed, Freed::default());
    assert!(layout.has_blob(&a) && layout.has_blob(&foreign));
    assert!(rootfs.join(rootfs_name(&a_config)).exists());

    // The container is gone, and an hour later: all of it goes.
    let later = SystemTime::now() + Duration::from_secs(3600);
    let freed = collect(layout, &rootfs, &none, &none, later).unwrap();
    assert_eq!((freed.blobs, freed.rootfs), (4, 1));
    assert_eq!(blob_count(layout), 0);
    let _ = fs::remove_dir_all(&rootfs);
}

use super::*;
use crate::image::blobs::tests::TempLayout;
use crate::image::index::Descriptor;
use crate::image::layout::{INDEX, MANIFEST};

/// An image of `layers` (blob bytes, not real tars: nothing unpacks them)
/// named `name` in `layout`: its manifest and config digests.
pub(crate) fn put_image(layout: &Layout, name: &str, layers: &[&[u8]]) -> (Digest, Digest) {
    let (descriptor, config) = put_manifest(layout, name, "amd64", Algorithm::Sha256, layers);
    layout.add_ref(name, &descriptor).unwrap();
    (descriptor.digest, config)
}

/// A manifest of `layers` for `architecture`, its config digested with
/// `config_algorithm`, stored but not named: its descriptor and config.
fn put_manifest(
    layout: &Layout,
    name: &str,
    architecture: &str,
    config_algorithm: Algorithm,
    layers: &[&[u8]],
) -> (Descriptor, Digest) {
    let sha = |b: &[u8]| Digest::of(Algorithm::Sha256, b);
    let blobs = layout.blobs().unwrap();
    let config = serde_json::json!({"architecture": architecture, "os": "linux", "name": name,
        "rootfs": {"type": "layers", "diff_ids": []}})
    .to_string();
    let config_digest = Digest::of(config_algorithm, config.as_bytes());
    blobs
        .write_whole(&config_digest, config.as_bytes())
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
            "digest": config_digest, "size": config.len()},
        "layers": layer_descriptors})
    .to_string();
    let digest = sha(manifest.as_bytes());
    blobs.write_whole(&digest, manifest.as_bytes()).unwrap();
    let descriptor = Descriptor {
        media_type: MANIFEST.into(),
        digest,
        size: manifest.len() as u64,
    };
    (descriptor, config_digest)
}

/// A two-platform image named `name`: this machine's manifest and a
/// foreign one in an index. Its index digest, and this machine's manifest
/// and config digests.
pub(crate) fn put_index(layout: &Layout, name: &str) -> (Digest, Digest, Digest) {
    let host = crate::image::platform::host();
    let (here, config) = put_manifest(layout, name, &host.architecture, Algorithm::Sha256, &[]);
    let (there, _) = put_manifest(layout, name, "s390x", Algorithm::Sha256, &[b"s390x"]);
    let entry = |d: &Descriptor, arch: &str, variant: &Option<String>| {
        serde_json::json!({"mediaType": MANIFEST, "digest": d.digest, "size": d.size,
            "platform": {"architecture": arch, "os": "linux", "variant": variant}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        entry(&there, "s390x", &None),
        entry(&here, &host.architecture, &host.variant)]})
    .to_string();
    let digest = Digest::of(Algorithm::Sha256, index.as_bytes());
    let blobs = layout.blobs().unwrap();
    blobs.write_whole(&digest, index.as_bytes()).unwrap();
    let descriptor = Descriptor {
        media_type: INDEX.into(),
        digest: digest.clone(),
        size: index.len() as u64,
    };
    layout.add_ref(name, &descriptor).unwrap();
    (digest, here.digest, config)
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
        &lock(layout).unwrap(),
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
    let freed = collect(
        &lock(layout).unwrap(),
        layout,
        &rootfs,
        &in_use,
        &in_use,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(freed, Freed::default());
    assert!(layout.has_blob(&a) && layout.has_blob(&foreign));
    assert!(rootfs.join(rootfs_name(&a_config)).exists());

    // The container is gone, and an hour later: all of it goes.
    let later = SystemTime::now() + Duration::from_secs(3600);
    let freed = collect(&lock(layout).unwrap(), layout, &rootfs, &none, &none, later).unwrap();
    assert_eq!((freed.blobs, freed.rootfs), (4, 1));
    assert_eq!(blob_count(layout), 0);
    let _ = fs::remove_dir_all(&rootfs);
}

#[test]
fn the_lock_is_not_to_be_had_while_a_pull_writes() {
    let t = TempLayout::new("gc-try-lock");
    let layout = &t.0;
    let pull = layout.blobs().unwrap();
    assert!(
        try_lock(layout).unwrap().is_none(),
        "a pull holds it shared"
    );
    drop(pull);
    let held = try_lock(layout)
        .unwrap()
        .expect("free once the pull named its image");
    assert!(
        try_lock(layout).unwrap().is_none(),
        "held by another collector"
    );
    drop(held);
    assert!(lock(layout).is_ok());
}

#[test]
fn unnamed_blobs_last_as_long_as_partial_downloads() {
    let t = TempLayout::new("gc-fresh");
    let layout = &t.0;
    let rootfs = layout.dir().join("../rootfs-gc-fresh");
    // Committed by a pull that failed on its next blob, 30 minutes ago:
    // its retry (with the partial, kept an hour) still wants it.
    let committed = Digest::of(Algorithm::Sha256, b"first layer");
    layout
        .blobs()
        .unwrap()
        .write_whole(&committed, b"first layer")
        .unwrap();
    let none = BTreeSet::new();
    let later = SystemTime::now() + Duration::from_secs(30 * 60);
    let freed = collect(&lock(layout).unwrap(), layout, &rootfs, &none, &none, later).unwrap();
    assert_eq!(freed, Freed::default());
    assert!(layout.has_blob(&committed));
    assert!(FRESH_BLOB_AGE >= STALE_PARTIAL_AGE);
}

#[test]
fn rootfs_names_keep_sha256_hex_and_prefix_sha512() {
    let d256 = Digest::of(Algorithm::Sha256, b"c");
    let d512 = Digest::of(Algorithm::Sha512, b"c");
    assert_eq!(rootfs_name(&d256), d256.hex());
    assert_eq!(rootfs_name(&d512), format!("sha512-{}", d512.hex()));
    assert_eq!(rootfs_config(&rootfs_name(&d256)), Some(d256));
    assert_eq!(rootfs_config(&rootfs_name(&d512)), Some(d512));
    assert_eq!(rootfs_config("sha512-zz"), None);
}

#[test]
fn the_tree_of_a_sha512_config_goes_with_its_image() {
    let t = TempLayout::new("gc-sha512");
    let layout = &t.0;
    let rootfs = layout.dir().join("../rootfs-gc-sha512");
    let _ = fs::remove_dir_all(&rootfs);
    let (a, a_desc_config) = {
        let (d, c) = put_manifest(layout, "a:1", "amd64", Algorithm::Sha512, &[b"a"]);
        layout.add_ref("a:1", &d).unwrap();
        (d.digest, c)
    };
    let (b, b_config) = put_manifest(layout, "b:1", "amd64", Algorithm::Sha512, &[b"b"]);
    layout.add_ref("b:1", &b).unwrap();
    rootfs_for(&rootfs, &a_desc_config);
    rootfs_for(&rootfs, &b_config);
    let images = inventory(layout, &BTreeMap::new()).unwrap();
    assert!(images
        .iter()
        .any(|i| i.config == Some(a_desc_config.clone())));

    let victims = BTreeSet::from([a]);
    let l = lock(layout).unwrap();
    let freed = collect(
        &l,
        layout,
        &rootfs,
        &victims,
        &BTreeSet::new(),
        SystemTime::now(),
    );
    assert_eq!(freed.unwrap().rootfs, 1);
    assert!(!rootfs.join(rootfs_name(&a_desc_config)).exists());
    assert!(rootfs.join(rootfs_name(&b_config)).exists());
    let _ = fs::remove_dir_all(&rootfs);
}

#[test]
fn a_multi_platform_image_is_known_by_its_platform_manifest_too() {
    let t = TempLayout::new("gc-multi");
    let layout = &t.0;
    let (index, here, config) = put_index(layout, "multi:1");
    let used = BTreeMap::from([(here.clone(), Time(5_000))]);
    let images = inventory(layout, &used).unwrap();
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image.manifest, index);
    assert_eq!(image.image_id, Some(here.clone()));
    assert_eq!(image.config, Some(config));
    assert_eq!(
        image.last_used,
        Some(Time(5_000)),
        "keyed by the runtime's imageID"
    );
    assert_eq!(image_id(layout, &index), Some(here));
    // A plain manifest is its own imageID.
    let (plain, _) = put_image(layout, "plain:1", &[b"p"]);
    assert_eq!(image_id(layout, &plain), Some(plain));
}

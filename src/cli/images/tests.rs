use super::*;
use crate::image::blobs::tests::TempLayout;
use crate::image::digest::Algorithm;
use crate::image::gc::collect::tests::{put_image, put_index};
use crate::pod::status::{ContainerStatus, PodObject, PodStatus};
use crate::pod::types::ObjectMeta;

/// A root with an image store, and a run dir beside it.
struct Root {
    _layout: TempLayout,
    dirs: Dirs,
}

impl Root {
    fn new(tag: &str) -> Root {
        let layout = TempLayout::new(tag);
        let base = layout.0.dir().to_path_buf();
        let dirs = Dirs {
            root: base.clone(),
            run: base.join("run"),
            registry_config: base.join("registries.yaml"),
        };
        std::fs::create_dir_all(&dirs.run).unwrap();
        Root {
            _layout: layout,
            dirs,
        }
    }
}

/// pods.json with a pod `default/<name>` whose container uses `image`.
fn publish_pod(run: &Path, name: &str, image: &Digest) {
    let pod = PodObject {
        api_version: "v1".into(),
        kind: "Pod".into(),
        metadata: ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            ..ObjectMeta::default()
        },
        spec: Default::default(),
        status: PodStatus {
            container_statuses: vec![ContainerStatus {
                image_id: image.to_string(),
                ..ContainerStatus::default()
            }],
            ..PodStatus::default()
        },
    };
    crate::state::write_json(&run.join(STATUS_FILE), &PodList::new(vec![pod])).unwrap();
}

#[test]
fn the_table_has_a_row_per_name() {
    let d = |s: &[u8]| Digest::of(Algorithm::Sha256, s);
    let images = [
        GcImage {
            manifest: d(b"a"),
            image_id: None,
            config: None,
            refs: vec![
                "docker.io/library/busybox:1.36".into(),
                "quay.io/org/app:2".into(),
            ],
            size: 4_260_000,
            last_used: Some(Time(1_000_000)),
            first_seen: Time(0),
        },
        GcImage {
            manifest: d(b"b"),
            image_id: Some(d(b"b/amd64")),
            config: None,
            refs: vec![],
            size: 999,
            last_used: None,
            first_seen: Time(0),
        },
    ];
    // pods.json names a multi-platform image by its platform manifest.
    let users = BTreeMap::from([
        (d(b"a"), vec!["default/web".to_string()]),
        (d(b"b/amd64"), vec!["default/db".to_string()]),
    ]);
    let text = table(&images, &users, Time(1_000_000 + 150_000));
    let (da, db) = (d(b"a"), d(b"b"));
    let (a, b) = (&da.hex()[..12], &db.hex()[..12]);
    let expected = format!(
        "IMAGE               DIGEST         SIZE     LAST USED   IN USE\n\
         busybox:1.36        {a}   4.26MB   2m30s ago   default/web\n\
         quay.io/org/app:2   {a}   4.26MB   2m30s ago   default/web\n\
         <none>              {b}   999B     -           default/db\n"
    );
    assert_eq!(text, expected);
}

#[test]
fn sizes_read_like_crictl() {
    assert_eq!(human_size(0), "0B");
    assert_eq!(human_size(1500), "1.5kB");
    assert_eq!(human_size(42_600_000), "42.6MB");
    assert_eq!(human_size(426_500_000), "426MB");
    assert_eq!(human_size(1_000_000_000), "1GB");
}

#[test]
fn rm_refuses_an_image_in_use_and_collects_an_unused_one() {
    let r = Root::new("cli-rm");
    let layout = r.dirs.layout();
    let (web, _) = put_image(&layout, "web:1", &[b"web layer"]);
    let (old, old_config) = put_image(&layout, "old:1", &[b"old layer"]);
    put_image(&layout, "also-old:1", &[b"old layer"]);
    let rootfs = r.dirs.root.join("rootfs").join(old_config.hex());
    std::fs::create_dir_all(&rootfs).unwrap();
    publish_pod(&r.dirs.run, "web", &web);

    let users = users(&r.dirs.run);
    let e = remove_one(&layout, "web:1", &users).unwrap_err();
    assert!(
        matches!(&e, ImagesError::InUse { pods, .. } if pods == &["default/web"]),
        "{e}"
    );
    assert!(e.to_string().contains("default/web"), "{e}");
    let e = remove_one(&layout, "nothere:1", &users).unwrap_err();
    assert!(matches!(e, ImagesError::NotFound { .. }), "{e}");

    let refs = ["old:1".to_string(), "web:1".to_string()];
    let e = remove(&r.dirs, &refs).unwrap_err();
    assert!(
        matches!(
            e,
            ImagesError::RemoveFailed {
                failed: 1,
                total: 2
            }
        ),
        "{e}"
    );
    assert!(!layout.has_blob(&old) && !rootfs.exists());
    assert!(layout.has_blob(&web));
    let shared = Digest::of(Algorithm::Sha256, b"old layer");
    assert!(layout.has_blob(&shared), "also-old:1 still needs it");
    let names: Vec<_> = layout
        .list()
        .unwrap()
        .into_iter()
        .filter_map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        ["docker.io/library/web:1", "docker.io/library/also-old:1"]
    );
}

#[test]
fn last_used_comes_from_the_agents_file() {
    let r = Root::new("cli-used");
    let d = Digest::of(Algorithm::Sha256, b"m");
    let json = serde_json::json!({ d.to_string(): "2026-12-08T01:02:03Z", "junk": "x" });
    std::fs::write(r.dirs.run.join(IMAGES_USED_FILE), json.to_string()).unwrap();
    let used = last_used(&r.dirs.run);
    assert_eq!(used.len(), 1);
    assert_eq!(used[&d].rfc3339(), "2026-12-08T01:02:03Z");
    assert!(last_used(&r.dirs.run.join("absent")).is_empty());
}

#[test]
fn rm_refuses_a_multi_platform_image_its_pods_know_by_the_platform_digest() {
    let r = Root::new("cli-rm-multi");
    let layout = r.dirs.layout();
    let (index, here, _) = put_index(&layout, "multi:1");
    publish_pod(&r.dirs.run, "web", &here);
    let users = users(&r.dirs.run);
    let e = remove_one(&layout, "multi:1", &users).unwrap_err();
    assert!(
        matches!(&e, ImagesError::InUse { pods, .. } if pods == &["default/web"]),
        "{e}"
    );
    assert!(layout.has_blob(&index));
    assert_eq!(layout.list().unwrap().len(), 1);
}

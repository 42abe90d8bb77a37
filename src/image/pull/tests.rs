//! [`PullJob`] against a hostile registry: a tiny HTTP/1.1 server on
//! 127.0.0.1 that follows the distribution spec's contract (manifests by
//! tag and digest, blobs, `Range` as Go's `http.ServeContent` answers it)
//! except where a test makes it lie. Each test pulls into a temporary root
//! and checks the error the container would show and what the store keeps:
//! a blob that does not match leaves nothing behind (issue 15). The
//! registry is configured as a plain-HTTP mirror of itself
//! (registries.yaml), the only way a plain-HTTP endpoint is allowed.

use super::*;

mod fixtures;
mod registry;

use crate::image::blobs::INGEST_DIR;
use crate::image::platform;
use fixtures::*;
use registry::{range_start, Registry, Reply, Repo};
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// What the oversized blob streams past its descriptor: far more than a
/// pull may buffer, so reading it all would show.
const ENDLESS: u64 = 64 << 20;

// ---- what a hostile registry cannot do ---------------------------------

#[test]
fn a_tampered_layer_is_a_digest_mismatch_and_leaves_nothing() {
    let image = test_image();
    let (path, len) = (image.layer_path(), image.layer.len());
    let registry =
        image.serve(move |req| (req.path == path).then(|| Reply::new(200, &vec![b'!'; len])));
    let root = TempRoot::new("tampered");
    let job = job_v1(&registry, &root);
    let e = job.pull().unwrap_err();
    assert!(
        matches!(&e, PullError::Blob(BlobError::DigestMismatch { expected, .. })
            if *expected == sha(&image.layer)),
        "{e:?}"
    );
    root.assert_clean(&[&image.layer]);
    // Again, as the container shows it: the kubelet's reason, the words.
    let shown = job.run().unwrap_err();
    assert_eq!(shown.reason, "ErrImagePull");
    let full = format!("{}/app:v1", registry.addr);
    assert!(
        shown
            .message
            .starts_with(&format!("failed to pull image {full:?}: digest mismatch")),
        "{}",
        shown.message
    );
    assert!(shown.message.contains(&sha(&image.layer).to_string()));
    root.assert_clean(&[&image.layer]);
}

/// Pull `app:v1` from a registry whose layer runs [`ENDLESS`] bytes past
/// its descriptor: the error, once the server is done with the layer.
fn pull_a_longer_blob(root: &TempRoot) -> (TestImage, PullError) {
    let image = test_image();
    let path = image.layer_path();
    let layer = image.layer.clone();
    let registry = image
        .serve(move |req| (req.path == path).then(|| Reply::new(200, &layer).padding(ENDLESS)));
    let e = job_v1(&registry, root).pull().unwrap_err();
    assert_eq!(registry.blob_gets().len(), 2, "config, then the layer once");
    // The pull hung up: the server could not hand over the endless body
    // (only what the loopback socket buffers hold: about 4 MiB here).
    let sent = registry.sent(registry.seen().len());
    let layer_sent = *sent.last().unwrap();
    assert!(layer_sent < ENDLESS / 2, "the pull read {layer_sent} bytes");
    (image, e)
}

#[test]
fn a_blob_longer_than_its_descriptor_is_refused_without_reading_it_all() {
    let root = TempRoot::new("longer");
    let (image, e) = pull_a_longer_blob(&root);
    assert!(
        matches!(&e, PullError::Store { source, .. }
            if source.kind() == io::ErrorKind::InvalidData
                && source.to_string().contains("more than the expected")),
        "{e:?}"
    );
    assert!(!root.layout().has_blob(&sha(&image.layer)));
    assert_eq!(root.layout().list().unwrap(), vec![]);
}

#[test]
fn a_blob_longer_than_its_descriptor_leaves_no_partial_file() {
    let root = TempRoot::new("longer-partial");
    let (image, _) = pull_a_longer_blob(&root);
    root.assert_clean(&[&image.layer]);
}

#[test]
fn a_manifest_named_by_digest_must_hash_to_it_and_nothing_is_stored() {
    let image = test_image();
    let wanted = sha(&image.manifest());
    // Another manifest, served whatever digest is asked for.
    let other = image.manifest_with(MANIFEST, OCI_CONFIG, DOCKER_LAYER);
    let served = other.clone();
    let registry =
        Registry::start(move |_| Reply::new(200, &served).header("Content-Type", MANIFEST));
    let root = TempRoot::new("by-digest");
    let image_ref = format!("{}/app@{wanted}", registry.addr);
    let e = job(&registry, &root, &image_ref, None).pull().unwrap_err();
    assert!(
        matches!(&e, PullError::ManifestDigest { expected, actual }
            if *expected == wanted.to_string()
                && *actual == sha(&other).to_string()),
        "{e:?}"
    );
    assert!(e.to_string().contains("manifest digest mismatch"), "{e}");
    let paths: Vec<String> = registry.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, [format!("/v2/app/manifests/{wanted}")]);
    assert_eq!(root.stored_blobs(), Vec::<PathBuf>::new());
    root.assert_clean(&[]);
}

#[test]
fn an_index_without_this_machines_platform_names_it() {
    let image = test_image();
    let host = platform::host();
    let elsewhere = if host.architecture == "riscv64" {
        "s390x"
    } else {
        "riscv64"
    };
    let manifest = image.manifest();
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": sha(&manifest).to_string(), "size": manifest.len(),
         "platform": {"os": "windows", "architecture": host.architecture}},
        {"mediaType": MANIFEST, "digest": sha(&manifest).to_string(), "size": manifest.len(),
         "platform": {"os": "linux", "architecture": elsewhere}}]})
    .to_string();
    let repo = Repo::default()
        .manifest(Some("v1"), INDEX, index.as_bytes())
        .manifest(None, MANIFEST, &manifest);
    let registry = Registry::start(move |req| repo.answer(req));
    let root = TempRoot::new("no-platform");
    let job = job_v1(&registry, &root);
    let e = job.pull().unwrap_err();
    assert!(
        matches!(&e, PullError::NoPlatform { platform } if *platform == host),
        "{e:?}"
    );
    let shown = job.run().unwrap_err();
    assert_eq!(shown.reason, "ErrImagePull");
    let words = format!("no matching manifest for {host} in the manifest list entries");
    assert!(shown.message.contains(&words), "{}", shown.message);
    assert!(
        registry
            .seen()
            .iter()
            .all(|s| s.path.ends_with("/manifests/v1")),
        "no entry's manifest is fetched: {:?}",
        registry.seen()
    );
    root.assert_clean(&[]);
}

#[test]
fn an_index_entry_whose_manifest_hashes_to_another_is_refused() {
    let image = test_image();
    let manifest = image.manifest();
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": sha(&manifest).to_string(), "size": manifest.len(),
         "platform": host_platform()}]})
    .to_string();
    let forged = image.manifest_with(MANIFEST, OCI_CONFIG, DOCKER_LAYER);
    let (wanted, served) = (
        format!("/v2/app/manifests/{}", sha(&manifest)),
        forged.clone(),
    );
    let repo = Repo::default()
        .manifest(Some("v1"), INDEX, index.as_bytes())
        .blob(&image.config)
        .blob(&image.layer);
    let registry = Registry::start(move |req| {
        if req.path == wanted {
            return Reply::new(200, &served).header("Content-Type", MANIFEST);
        }
        repo.answer(req)
    });
    let root = TempRoot::new("forged-entry");
    let e = job_v1(&registry, &root).pull().unwrap_err();
    assert!(
        matches!(&e, PullError::ManifestDigest { expected, actual }
            if *expected == sha(&manifest).to_string() && *actual == sha(&forged).to_string()),
        "{e:?}"
    );
    assert_eq!(registry.blob_gets().len(), 0);
    assert!(!root.layout().has_blob(&sha(&forged)));
    root.assert_clean(&[&image.config, &image.layer]);
}

/// Pull `manifest` as `app:v1` from a registry holding the image's blobs:
/// the error, with no blob asked for.
fn refused_before_any_blob(
    image: &TestImage,
    media_type: &str,
    manifest: &[u8],
    limit: Option<u64>,
) -> PullError {
    let repo = Repo::default()
        .manifest(Some("v1"), media_type, manifest)
        .blob(&image.config)
        .blob(&image.layer);
    let registry = Registry::start(move |req| repo.answer(req));
    let root = TempRoot::new(&format!("refused-{}", &sha(manifest).hex()[..12]));
    let image_ref = format!("{}/app:v1", registry.addr);
    let e = job(&registry, &root, &image_ref, limit).pull().unwrap_err();
    assert_eq!(registry.blob_gets().len(), 0, "{:?}", registry.seen());
    root.assert_clean(&[&image.config, &image.layer]);
    e
}

#[test]
fn zstd_layers_and_unknown_manifests_are_refused_before_any_blob() {
    let image = test_image();
    let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    let e = refused_before_any_blob(
        &image,
        MANIFEST,
        &image.manifest_with(MANIFEST, OCI_CONFIG, zstd),
        None,
    );
    assert!(
        matches!(&e, PullError::MediaType { what, media_type }
            if media_type == zstd && *what == format!("layer {}", sha(&image.layer))),
        "{e:?}"
    );
    let unknown = "application/vnd.example.thing.v1+json";
    let e = refused_before_any_blob(
        &image,
        unknown,
        &image.manifest_with(unknown, OCI_CONFIG, OCI_LAYER),
        None,
    );
    assert!(
        matches!(&e, PullError::MediaType { media_type, .. } if media_type == unknown),
        "{e:?}"
    );
    assert!(e.to_string().contains("unsupported media type"), "{e}");
}

#[test]
fn more_layers_than_the_cap_are_refused_before_any_blob() {
    let image = test_image();
    let layers = (0..=MAX_LAYERS)
        .map(|i| descriptor(OCI_LAYER, format!("layer {i}").as_bytes()))
        .collect();
    let manifest = manifest_doc(MANIFEST, descriptor(OCI_CONFIG, &image.config), layers);
    let e = refused_before_any_blob(&image, MANIFEST, &manifest, None);
    assert!(
        matches!(e, PullError::TooManyLayers { count } if count == MAX_LAYERS + 1),
        "{e:?}"
    );
}

#[test]
fn blobs_over_the_pull_limit_are_too_large_before_any_blob() {
    let image = test_image();
    let limit = image.bytes() - 1;
    let e = refused_before_any_blob(&image, MANIFEST, &image.manifest(), Some(limit));
    assert!(
        matches!(&e, PullError::TooLarge { bytes, limit: l, why }
            if *bytes == image.bytes() && *l == limit && why == "imageUnpackLimit"),
        "{e:?}"
    );
    // Sizes that overflow when summed are too large too, not small.
    let huge = json!({"mediaType": OCI_LAYER, "digest": sha(b"x").to_string(), "size": u64::MAX});
    let manifest = manifest_doc(MANIFEST, descriptor(OCI_CONFIG, &image.config), vec![huge]);
    let e = refused_before_any_blob(&image, MANIFEST, &manifest, Some(1 << 30));
    assert!(
        matches!(
            e,
            PullError::TooLarge {
                bytes: u64::MAX,
                ..
            }
        ),
        "{e:?}"
    );
}

// ---- broken transfers ----------------------------------------------------

/// The ranges asked for the layer, in order.
fn layer_ranges(registry: &Registry, image: &TestImage) -> Vec<Option<String>> {
    registry
        .seen()
        .into_iter()
        .filter(|s| s.path == image.layer_path())
        .map(|s| s.range)
        .collect()
}

#[test]
fn a_cut_layer_resumes_with_range_where_the_server_honours_it() {
    let image = test_image();
    let (path, layer) = (image.layer_path(), image.layer.clone());
    let half = layer.len() / 2;
    let registry = image.serve(move |req| {
        (req.path == path && req.range.is_none()).then(|| Reply::new(200, &layer).cut(half))
    });
    let root = TempRoot::new("resume");
    let pulled = job_v1(&registry, &root).run().unwrap();
    assert_eq!(pulled.bytes, image.bytes());
    assert_eq!(
        layer_ranges(&registry, &image),
        [None, Some(format!("bytes={half}-"))]
    );
    let stored = fs::read(root.layout().blob_path(&sha(&image.layer))).unwrap();
    assert_eq!(stored, image.layer);
    assert_eq!(root.ingest_files(), Vec::<PathBuf>::new());
}

#[test]
fn a_cut_layer_restarts_from_zero_where_the_server_ignores_range() {
    let image = test_image();
    let (path, layer) = (image.layer_path(), image.layer.clone());
    let half = layer.len() / 2;
    let registry = image.serve(move |req| {
        (req.path == path).then(|| match req.range {
            None => Reply::new(200, &layer).cut(half),
            // The whole blob again, with 200: appended, it would not
            // hash to its digest.
            Some(_) => Reply::new(200, &layer),
        })
    });
    let root = TempRoot::new("restart");
    job_v1(&registry, &root).run().unwrap();
    assert_eq!(
        layer_ranges(&registry, &image),
        [None, Some(format!("bytes={half}-"))]
    );
    let stored = fs::read(root.layout().blob_path(&sha(&image.layer))).unwrap();
    assert_eq!(stored, image.layer);
    assert_eq!(root.ingest_files(), Vec::<PathBuf>::new());
}

#[test]
fn a_server_that_cuts_every_attempt_is_interrupted_after_the_cap_and_leaves_nothing() {
    const EACH: usize = 7;
    let image = test_image();
    let (path, layer) = (image.layer_path(), image.layer.clone());
    assert!(layer.len() > EACH * BLOB_ATTEMPTS as usize);
    let registry = image.serve(move |req| {
        (req.path == path).then(|| {
            let from = range_start(req).unwrap_or(0);
            let reply = match from {
                0 => Reply::new(200, &layer),
                n => Reply::new(206, &layer[n..]).header(
                    "Content-Range",
                    &format!("bytes {n}-{}/{}", layer.len() - 1, layer.len()),
                ),
            };
            reply.cut(EACH)
        })
    });
    let root = TempRoot::new("interrupted");
    let e = job_v1(&registry, &root).pull().unwrap_err();
    assert!(
        matches!(&e, PullError::Interrupted { digest, .. } if *digest == sha(&image.layer).to_string()),
        "{e:?}"
    );
    let words = format!("the transfer broke {BLOB_ATTEMPTS} times");
    assert!(e.to_string().contains(&words), "{e}");
    // Each attempt took up where the last one broke.
    let expected: Vec<Option<String>> = (0..BLOB_ATTEMPTS as usize)
        .map(|i| (i > 0).then(|| format!("bytes={}-", i * EACH)))
        .collect();
    assert_eq!(layer_ranges(&registry, &image), expected);
    root.assert_clean(&[&image.layer]);
}

#[test]
fn a_complete_partial_file_is_committed_not_asked_for_past_its_end() {
    let image = test_image();
    let registry = image.serve(|_| None);
    let root = TempRoot::new("complete-partial");
    let ingest = root.0.join("images").join(INGEST_DIR);
    fs::create_dir_all(&ingest).unwrap();
    let partial = ingest.join(format!("sha256-{}", sha(&image.layer).hex()));
    fs::write(&partial, &image.layer).unwrap();
    job_v1(&registry, &root).run().unwrap();
    assert!(root.layout().has_blob(&sha(&image.layer)));
    assert_eq!(root.ingest_files(), Vec::<PathBuf>::new());
    // A partial of the blob's size but other bytes starts over.
    let root = TempRoot::new("wrong-partial");
    fs::create_dir_all(root.0.join("images").join(INGEST_DIR)).unwrap();
    let partial = root
        .0
        .join("images")
        .join(INGEST_DIR)
        .join(partial.file_name().unwrap());
    fs::write(&partial, vec![b'?'; image.layer.len()]).unwrap();
    job_v1(&registry, &root).run().unwrap();
    let stored = fs::read(root.layout().blob_path(&sha(&image.layer))).unwrap();
    assert_eq!(stored, image.layer);
}

// ---- what a pull stores --------------------------------------------------

/// `full`'s index.json entry, and the file's (inode, mtime).
fn named(root: &TempRoot, full: &str) -> (index::Descriptor, (u64, i64, i64)) {
    let entries = root.layout().list().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].name.as_deref(), Some(full));
    let meta = fs::metadata(root.0.join("images/index.json")).unwrap();
    (
        entries[0].descriptor.clone(),
        (meta.ino(), meta.mtime(), meta.mtime_nsec()),
    )
}

/// Pull `app:v1` twice: the first stores `blobs` and names the image; the
/// second asks for no blob and leaves index.json as it was.
fn pulls_and_pulls_again(registry: &Registry, root: &TempRoot, top: &[u8], blobs: &[&[u8]]) {
    let full = format!("{}/app:v1", registry.addr);
    let pulled = job_v1(registry, root).run().unwrap();
    assert_eq!(pulled.digest, sha(top).to_string());
    assert_eq!(
        pulled.bytes,
        test_image().bytes(),
        "the config and the layer"
    );
    for blob in blobs {
        let stored = fs::read(root.layout().blob_path(&sha(blob))).unwrap();
        assert_eq!(stored, *blob);
    }
    assert_eq!(root.stored_blobs().len(), blobs.len());
    assert_eq!(root.ingest_files(), Vec::<PathBuf>::new());
    let (entry, file) = named(root, &full);
    assert_eq!(entry.digest, sha(top));
    assert_eq!(entry.size, top.len() as u64);
    // The unpack path finds it by the name the pod gives.
    let reference = Reference::parse(&full).unwrap();
    let manifest = root.layout().resolve(&reference).unwrap().unwrap();
    assert_eq!(manifest.layers.len(), 1);
    assert!(manifest.layers[0].gzip);

    assert!(pulled.changed, "the first pull fills the store");
    let gets = registry.blob_gets().len();
    let again = job_v1(registry, root).run().unwrap();
    assert_eq!((&again.digest, again.bytes), (&pulled.digest, pulled.bytes));
    assert!(
        !again.changed,
        "an unchanged tag changes nothing: no GC is due"
    );
    assert_eq!(registry.blob_gets().len(), gets, "no blob fetched again");
    assert_eq!(named(root, &full), (entry, file), "index.json untouched");
}

#[test]
fn an_oci_image_is_stored_and_named_and_an_unchanged_tag_writes_nothing() {
    let image = test_image();
    let registry = image.serve(|_| None);
    let root = TempRoot::new("oci");
    let manifest = image.manifest();
    let all = [&manifest[..], &image.config, &image.layer];
    pulls_and_pulls_again(&registry, &root, &manifest, &all);
}

#[test]
fn a_docker_manifest_list_gives_this_machines_image() {
    let image = test_image();
    let host = platform::host();
    let manifest = image.manifest_with(DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER);
    // Another platform's manifest, which must not be fetched.
    let other = image.manifest_with(DOCKER_MANIFEST, DOCKER_CONFIG, "other");
    let list = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": sha(&other).to_string(), "size": other.len(),
         "platform": {"os": "windows", "architecture": host.architecture}},
        {"mediaType": DOCKER_MANIFEST, "digest": sha(&manifest).to_string(),
         "size": manifest.len(), "platform": host_platform()}]})
    .to_string()
    .into_bytes();
    let repo = Repo::default()
        .manifest(Some("v1"), DOCKER_LIST, &list)
        .manifest(None, DOCKER_MANIFEST, &manifest)
        .manifest(None, DOCKER_MANIFEST, &other)
        .blob(&image.config)
        .blob(&image.layer);
    let registry = Registry::start(move |req| repo.answer(req));
    let root = TempRoot::new("docker-list");
    let all = [&list[..], &manifest, &image.config, &image.layer];
    pulls_and_pulls_again(&registry, &root, &list, &all);
    let entry = &root.layout().list().unwrap()[0];
    assert_eq!(entry.descriptor.media_type, DOCKER_LIST);
    let other_path = format!("/v2/app/manifests/{}", sha(&other));
    assert!(registry.seen().iter().all(|s| s.path != other_path));
}

//! [`PullJob`] against a hostile registry: a tiny HTTP/1.1 server on
//! 127.0.0.1 that follows the distribution spec's contract (manifests by
//! tag and digest, blobs, `Range` as Go's `http.ServeContent` answers it)
//! except where a test makes it lie. Each test pulls into a temporary root
//! and checks the error the container would show and what the store keeps:
//! a blob that does not match leaves nothing behind (issue 15). The
//! registry is configured as a plain-HTTP mirror of itself
//! (registries.yaml), the only way a plain-HTTP endpoint is allowed.

use super::*;
use crate::image::blobs::INGEST_DIR;
use crate::image::digest::Algorithm;
use crate::image::platform;
use crate::image::unpack::tar_writer::TarBuilder;
use crate::registry::RegistryConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// What the oversized blob streams past its descriptor: far more than a
/// pull may buffer, so reading it all would show.
const ENDLESS: u64 = 64 << 20;

// ---- the registry ------------------------------------------------------

/// A request as the registry saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    range: Option<String>,
}

/// An answer. `cut`: only that many bytes of `body` are sent, though
/// `Content-Length` announces them all (a link that breaks). `padding`:
/// that many zero bytes follow `body`, announced too (a blob longer than
/// its descriptor).
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    cut: Option<usize>,
    padding: u64,
}

impl Reply {
    fn new(status: u16, body: &[u8]) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
            cut: None,
            padding: 0,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    fn cut(mut self, at: usize) -> Reply {
        self.cut = Some(at.min(self.body.len()));
        self
    }

    fn padding(mut self, bytes: u64) -> Reply {
        self.padding = bytes;
        self
    }

    /// Send it on `stream`; the bytes of body the peer took before it
    /// hung up.
    fn send(&self, stream: &mut TcpStream) -> u64 {
        let length = self.body.len() as u64 + self.padding;
        let mut head = format!(
            "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {length}\r\n",
            self.status
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).is_err() {
            return 0;
        }
        let body = &self.body[..self.cut.unwrap_or(self.body.len())];
        if stream.write_all(body).is_err() {
            return 0;
        }
        let mut sent = body.len() as u64;
        let zeros = vec![0u8; 64 * 1024];
        while sent < self.body.len() as u64 + self.padding && self.cut.is_none() {
            match stream.write(&zeros) {
                Ok(n) if n > 0 => sent += n as u64,
                _ => break,
            }
        }
        sent
    }
}

/// What the server has seen and sent: requests as they come, then the
/// body bytes of each answer once its connection is done.
#[derive(Default)]
struct Log {
    seen: Mutex<(Vec<Seen>, Vec<u64>)>,
    done: Condvar,
}

/// The registry in a thread, one connection at a time, each closed after
/// its answer; `handler` answers every request.
struct Registry {
    addr: String,
    log: Arc<Log>,
}

impl Registry {
    fn start(handler: impl Fn(&Seen) -> Reply + Send + 'static) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Log::default());
        let record = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                // Only a broken test sends no request (TLS to the
                // upstream): never hang on it.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                record.seen.lock().unwrap().0.push(request.clone());
                let sent = handler(&request).send(&mut stream);
                drop(stream);
                record.seen.lock().unwrap().1.push(sent);
                record.done.notify_all();
            }
        });
        Registry { addr, log }
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.seen.lock().unwrap().0.clone()
    }

    /// The requests for blobs (not manifests).
    fn blob_gets(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains("/blobs/"))
            .collect()
    }

    /// The body bytes sent for each request, once all `n` are done.
    fn sent(&self, n: usize) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut log = self.log.seen.lock().unwrap();
        while log.1.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the server never finished {n} answers");
            log = self.log.done.wait_timeout(log, left).unwrap().0;
        }
        log.1.clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            return Some(Seen { path, range });
        }
        let (name, value) = header.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("range") {
            range = Some(value.trim().to_string());
        }
    }
}

/// What the repository `app` holds, answered as the distribution registry
/// does.
#[derive(Clone, Default)]
struct Repo {
    /// By tag and by digest: (media type, body).
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
}

impl Repo {
    /// `body` under its digest and, if given, `tag`.
    fn manifest(mut self, tag: Option<&str>, media_type: &str, body: &[u8]) -> Repo {
        let entry = (media_type.to_string(), body.to_vec());
        if let Some(tag) = tag {
            self.manifests.insert(tag.to_string(), entry.clone());
        }
        self.manifests.insert(sha(body).to_string(), entry);
        self
    }

    fn blob(mut self, body: &[u8]) -> Repo {
        self.blobs.insert(sha(body).to_string(), body.to_vec());
        self
    }

    /// The spec's answer: a manifest with its Content-Type; a blob whole,
    /// or from `Range: bytes=N-` with 206 (416 past its end); else 404.
    fn answer(&self, req: &Seen) -> Reply {
        if let Some(name) = req.path.strip_prefix("/v2/app/manifests/") {
            return match self.manifests.get(name) {
                Some((media_type, body)) => {
                    Reply::new(200, body).header("Content-Type", media_type)
                }
                None => Reply::new(404, br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
            };
        }
        let blob = req
            .path
            .strip_prefix("/v2/app/blobs/")
            .and_then(|d| self.blobs.get(d));
        let Some(blob) = blob else {
            return Reply::new(404, br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#);
        };
        match range_start(req) {
            None => Reply::new(200, blob),
            Some(n) if n >= blob.len() => Reply::new(416, b""),
            Some(n) => Reply::new(206, &blob[n..]).header(
                "Content-Range",
                &format!("bytes {n}-{}/{}", blob.len() - 1, blob.len()),
            ),
        }
    }
}

/// N of `Range: bytes=N-`.
fn range_start(req: &Seen) -> Option<usize> {
    req.range
        .as_deref()?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

// ---- images ------------------------------------------------------------

fn sha(data: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A tiny runnable image: a config and one gzip layer of a few KiB (bytes
/// that do not compress, so that a cut falls inside the layer).
struct TestImage {
    config: Vec<u8>,
    layer: Vec<u8>,
}

fn test_image() -> TestImage {
    let mut noise = 0x2545_f491_u32;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (noise >> 16) as u8
        })
        .collect();
    let tar = TarBuilder::new()
        .dir("bin", 0o755)
        .entry(b"bin/hello", b'0', 0o755, b"", &random)
        .finish();
    let config = json!({"architecture": platform::host().architecture, "os": "linux",
        "config": {"Cmd": ["/bin/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar).to_string()]}});
    TestImage {
        config: config.to_string().into_bytes(),
        layer: gzip(&tar),
    }
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha(bytes).to_string(), "size": bytes.len()})
}

fn manifest_doc(media_type: &str, config: Value, layers: Vec<Value>) -> Vec<u8> {
    json!({"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers})
        .to_string()
        .into_bytes()
}

impl TestImage {
    /// Its OCI manifest.
    fn manifest(&self) -> Vec<u8> {
        self.manifest_with(MANIFEST, OCI_CONFIG, OCI_LAYER)
    }

    fn manifest_with(&self, media_type: &str, config: &str, layer: &str) -> Vec<u8> {
        manifest_doc(
            media_type,
            descriptor(config, &self.config),
            vec![descriptor(layer, &self.layer)],
        )
    }

    /// A registry holding it as `app:v1` (an OCI manifest), its blobs,
    /// answered by `lie` first where it returns a reply.
    fn serve(&self, lie: impl Fn(&Seen) -> Option<Reply> + Send + 'static) -> Registry {
        let repo = Repo::default()
            .manifest(Some("v1"), MANIFEST, &self.manifest())
            .blob(&self.config)
            .blob(&self.layer);
        Registry::start(move |req| lie(req).unwrap_or_else(|| repo.answer(req)))
    }

    fn layer_path(&self) -> String {
        format!("/v2/app/blobs/{}", sha(&self.layer))
    }

    /// Everything the image's config and layer take.
    fn bytes(&self) -> u64 {
        (self.config.len() + self.layer.len()) as u64
    }
}

// ---- the store -----------------------------------------------------------

/// A temporary picolet root, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(tag: &str) -> TempRoot {
        let dir = std::env::temp_dir().join(format!("picolet-pull-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempRoot(dir)
    }

    fn layout(&self) -> Layout {
        Layout::new(self.0.join("images"))
    }

    fn ingest_files(&self) -> Vec<PathBuf> {
        fs::read_dir(self.0.join("images").join(INGEST_DIR))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    /// Every file under `blobs/`.
    fn stored_blobs(&self) -> Vec<PathBuf> {
        let dir = self.0.join("images/blobs/sha256");
        fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    /// The failed pull left no partial file, no entry in index.json, and
    /// none of `absent`.
    fn assert_clean(&self, absent: &[&[u8]]) {
        assert_eq!(self.ingest_files(), Vec::<PathBuf>::new(), "partial files");
        assert_eq!(self.layout().list().unwrap(), vec![], "index.json entries");
        for blob in absent {
            assert!(!self.layout().has_blob(&sha(blob)), "{} stored", sha(blob));
        }
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A pull of `image` (`{addr}/app...`) from `registry`, into `root`.
fn job(registry: &Registry, root: &TempRoot, image: &str, limit: Option<u64>) -> PullJob {
    let yaml = format!(
        "mirrors:\n  '{0}':\n    endpoint: ['http://{0}']\n",
        registry.addr
    );
    let config = RegistryConfig::parse(&yaml, Path::new("registries.yaml")).unwrap();
    let registries = Arc::new(Registries::new(Arc::new(config)));
    let reference = Reference::parse(image).unwrap();
    PullJob::new(image, reference, Vec::new(), registries, &root.0, limit)
}

/// `app:v1` from `registry`.
fn job_v1(registry: &Registry, root: &TempRoot) -> PullJob {
    job(registry, root, &format!("{}/app:v1", registry.addr), None)
}

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

#[test]
#[ignore = "bug: a blob longer than its descriptor leaves its partial file in ingest/ \
            (fetch_blob returns copy's error without writer.discard())"]
fn a_blob_longer_than_its_descriptor_is_refused_without_reading_it_all() {
    let image = test_image();
    let path = image.layer_path();
    let layer = image.layer.clone();
    let registry = image
        .serve(move |req| (req.path == path).then(|| Reply::new(200, &layer).padding(ENDLESS)));
    let root = TempRoot::new("longer");
    let e = job_v1(&registry, &root).pull().unwrap_err();
    assert!(
        matches!(&e, PullError::Store { source, .. }
            if source.kind() == io::ErrorKind::InvalidData
                && source.to_string().contains("more than the expected")),
        "{e:?}"
    );
    assert_eq!(registry.blob_gets().len(), 2, "config, then the layer once");
    // The pull hung up: the server could not hand over the endless body
    // (only what the loopback socket buffers hold).
    let sent = registry.sent(registry.seen().len());
    let layer_sent = *sent.last().unwrap();
    assert!(layer_sent < ENDLESS / 2, "the pull read {layer_sent} bytes");
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
#[ignore = "bug: a partial file holding the whole blob (the agent stopped before the \
            commit) makes every pull ask Range: bytes=<size>- and fail on the 416"]
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

    let gets = registry.blob_gets().len();
    assert_eq!(job_v1(registry, root).run().unwrap(), pulled);
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
         "size": manifest.len(), "platform": {"os": host.os, "architecture": host.architecture,
         "variant": host.variant}}]})
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

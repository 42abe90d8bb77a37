//! The image store: a standard OCI image layout at `<root>/images`, layers
//! unpacked once per image under `<root>/rootfs/<config digest>`.
//!
//! Images arrive by registry pulls (`pull.rs`), imported archives
//! (`import/`) or standard tools (`skopeo copy ... oci:DIR:REF`); a
//! Kubernetes image reference finds them under the container's pull policy.
//! Finding is quick and runs on the core thread; pulling and unpacking are
//! [`PullJob`]s and [`UnpackJob`]s for the workers of `worker.rs`.

pub mod blobs;
pub mod config;
pub mod digest;
pub mod gc;
pub mod import;
pub mod index;
pub mod layout;
pub mod platform;
pub mod pull;
pub mod reference;
pub mod unpack;
pub mod upkeep;
pub mod used;
pub mod worker;

use crate::pod::PullPolicy;
use crate::registry::{Credentials, Registries};
use config::ImageConfig;
use layout::{Layout, Manifest};
pub use pull::PullJob;
use reference::Reference;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An image ready to run: its unpacked, read-only root and its config.
#[derive(Debug, Clone)]
pub struct Image {
    /// The unpacked layers: read-only, shared by the image's containers.
    pub rootfs: PathBuf,
    /// The image config, merged with each container (`config::merge`).
    pub config: ImageConfig,
    /// `sha256:...` of the manifest, reported as imageID.
    pub digest: String,
}

/// Why an image cannot be had, as a kubelet waiting reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    /// The kubelet's waiting reason: `ErrImagePull`, `InvalidImageName`, ...
    pub reason: &'static str,
    /// What the container status says.
    pub message: String,
}

/// What [`ImageStore::find`] found.
pub enum Found {
    Ready(Image),
    /// In the layout but not unpacked yet: run the job, then find again.
    Unpack(UnpackJob),
    /// To be pulled first (the policy, or absent): run the job, then find
    /// again in the layout ([`ImageStore::find_local`]).
    Pull(PullJob),
}

/// One image to unpack, with all the worker thread needs.
pub struct UnpackJob {
    /// The reference as the pod names it, for messages.
    image: String,
    layout: Arc<Layout>,
    manifest: Manifest,
    dest: PathBuf,
    limit: Option<u64>,
    root: PathBuf,
}

/// The images on this node: the layout they arrive in and their unpacked roots.
pub struct ImageStore {
    layout: Arc<Layout>,
    rootfs_dir: PathBuf,
    root: PathBuf,
    /// `imageUnpackLimit` in bytes; `None`: half the free space (see
    /// [`space_limit`]).
    unpack_limit: Option<u64>,
    registries: Arc<Registries>,
}

impl ImageStore {
    /// The store at `root`, with what interrupted unpacks left there
    /// removed: once, at start, before any unpack can begin.
    pub fn new(root: &Path, unpack_limit: Option<u64>, registries: Arc<Registries>) -> ImageStore {
        let rootfs_dir = root.join("rootfs");
        unpack::clean_leftovers(&rootfs_dir);
        ImageStore {
            layout: Arc::new(Layout::new(root.join("images"))),
            rootfs_dir,
            root: root.to_path_buf(),
            unpack_limit,
            registries,
        }
    }

    /// Find `image` under `policy`, as the kubelet's image manager decides:
    /// `Always` pulls (the registry says whether the tag moved), `Never`
    /// takes the store or fails, `IfNotPresent` pulls only what is absent.
    /// `credentials` are asked for only when a pull is due.
    pub fn find(
        &self,
        image: &str,
        policy: PullPolicy,
        credentials: impl FnOnce(&Reference) -> Vec<Credentials>,
    ) -> Result<Found, ImageError> {
        let reference = parse(image)?;
        let local = match policy {
            PullPolicy::Always => None,
            _ => self.resolve(image, &reference)?,
        };
        match (local, policy) {
            (Some(manifest), _) => self.ready_or_unpack(image, manifest),
            (None, PullPolicy::Never) => Err(ImageError {
                reason: "ErrImageNeverPull",
                message: format!(
                    "image {image:?} is not present in {} and the pull policy is \"Never\"; import it with `picolet image import`",
                    self.layout.dir().display()
                ),
            }),
            (None, _) => Ok(Found::Pull(PullJob::new(
                image,
                reference.clone(),
                credentials(&reference),
                Arc::clone(&self.registries),
                &self.root,
                self.unpack_limit,
            ))),
        }
    }

    /// The layout the images are in.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// Where the images are unpacked (`<root>/rootfs`).
    pub fn rootfs_dir(&self) -> &Path {
        &self.rootfs_dir
    }

    /// The root whose filesystem holds the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Find `image` in the layout only: after its pull.
    pub fn find_local(&self, image: &str) -> Result<Found, ImageError> {
        let reference = parse(image)?;
        match self.resolve(image, &reference)? {
            Some(manifest) => self.ready_or_unpack(image, manifest),
            None => Err(ImageError {
                reason: "ErrImagePull",
                message: format!(
                    "image {image:?} was pulled but is not in {}: removed meanwhile",
                    self.layout.dir().display()
                ),
            }),
        }
    }

    fn resolve(&self, image: &str, reference: &Reference) -> Result<Option<Manifest>, ImageError> {
        self.layout.resolve(reference).map_err(|e| ImageError {
            reason: "ErrImagePull",
            message: format!(
                "image {image:?}: store {}: {e}",
                self.layout.dir().display()
            ),
        })
    }

    fn ready_or_unpack(&self, image: &str, manifest: Manifest) -> Result<Found, ImageError> {
        let config = self
            .layout
            .config(&manifest)
            .map_err(|e| create_error(image, e))?;
        let config_digest =
            digest::Digest::parse(&manifest.config_digest).map_err(|e| create_error(image, e))?;
        let rootfs = self
            .rootfs_dir
            .join(gc::collect::rootfs_name(&config_digest));
        if !rootfs.is_dir() {
            return Ok(Found::Unpack(UnpackJob {
                image: image.to_string(),
                layout: Arc::clone(&self.layout),
                manifest,
                dest: rootfs,
                limit: self.unpack_limit,
                root: self.root.clone(),
            }));
        }
        Ok(Found::Ready(Image {
            rootfs,
            config,
            digest: manifest.digest,
        }))
    }
}

fn parse(image: &str) -> Result<Reference, ImageError> {
    Reference::parse(image).map_err(|m| ImageError {
        reason: "InvalidImageName",
        message: format!("invalid image name {image:?}: {m}"),
    })
}

/// The most bytes an image may take (its blobs when pulled, its tree when
/// unpacked), and where the figure comes from. Without `imageUnpackLimit`:
/// half the space free on the root's filesystem now. Half, because that
/// filesystem also holds the pods' writable layers, emptyDir volumes and
/// logs, which must keep room to run; and because a second image of the
/// same size must still fit. `f_bavail` leaves the filesystem's reserve for
/// root alone.
fn space_limit(limit: Option<u64>, root: &Path) -> std::io::Result<(u64, String)> {
    if let Some(limit) = limit {
        return Ok((limit, "imageUnpackLimit".into()));
    }
    let fs = rustix::fs::statvfs(root)?;
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    let why = format!(
        "half the free space of {}; set imageUnpackLimit to change it",
        root.display()
    );
    Ok((free / 2, why))
}

impl UnpackJob {
    /// Where the image unpacks to; one job per destination is enough.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Unpack, on the worker thread: this blocks for as long as the layers
    /// take.
    pub fn run(&self) -> Result<(), ImageError> {
        let (max_bytes, source) = self.max_bytes().map_err(|e| {
            create_error(
                &self.image,
                format!("reading the free space of {}: {e}", self.root.display()),
            )
        })?;
        let limits = unpack::Limits::with_max_bytes(max_bytes);
        unpack::unpack_image(&self.layout, &self.manifest, &self.dest, &limits).map_err(|e| {
            create_error(
                &self.image,
                format!("unpacking with a limit of {max_bytes} bytes ({source}): {e}"),
            )
        })
    }

    fn max_bytes(&self) -> std::io::Result<(u64, String)> {
        space_limit(self.limit, &self.root)
    }
}

fn create_error(image: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError {
        reason: "CreateContainerError",
        message: format!("image {image:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(root: &Path, limit: Option<u64>) -> UnpackJob {
        UnpackJob {
            image: "big:1".into(),
            layout: Arc::new(Layout::new(root.join("images"))),
            manifest: Manifest {
                digest: String::new(),
                config_digest: String::new(),
                layers: Vec::new(),
            },
            dest: root.join("rootfs/x"),
            limit,
            root: root.to_path_buf(),
        }
    }

    #[test]
    fn the_unpack_limit_is_the_configured_one_or_half_the_free_space() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (bytes, source) = job(root, Some(4 << 20)).max_bytes().unwrap();
        assert_eq!((bytes, source.as_str()), (4 << 20, "imageUnpackLimit"));

        let (bytes, source) = job(root, None).max_bytes().unwrap();
        // df's figure for unprivileged users, as the limit's.
        let df = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(root)
            .output()
            .unwrap();
        let text = String::from_utf8(df.stdout).unwrap();
        let avail: u64 = text.lines().nth(1).unwrap().trim().parse().unwrap();
        let half = avail / 2;
        assert!(bytes.abs_diff(half) < half / 100, "{bytes} vs df's {avail}");
        assert!(
            source.starts_with(&format!("half the free space of {}", root.display())),
            "{source}"
        );
    }
}

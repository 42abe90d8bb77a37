//! The image store: a standard OCI image layout at `<root>/images`, layers
//! unpacked once per image under `<root>/rootfs/<config digest>`.
//!
//! Images arrive by standard tools (`umoci`, `skopeo copy ... oci:DIR:REF`)
//! until registry pulls exist; a Kubernetes image reference finds them.

pub mod config;
pub mod layout;
pub mod reference;
pub mod unpack;

use crate::pod::PullPolicy;
use config::ImageConfig;
use layout::Layout;
use reference::Reference;
use std::path::{Path, PathBuf};

/// An image ready to run: its unpacked, read-only root and its config.
#[derive(Debug, Clone)]
pub struct Image {
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    /// `sha256:...` of the manifest, reported as imageID.
    pub digest: String,
}

/// Why an image cannot be had, as a kubelet waiting reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    pub reason: &'static str,
    pub message: String,
}

pub struct ImageStore {
    layout: Layout,
    rootfs_dir: PathBuf,
}

impl ImageStore {
    pub fn new(root: &Path) -> ImageStore {
        ImageStore {
            layout: Layout::new(root.join("images")),
            rootfs_dir: root.join("rootfs"),
        }
    }

    /// Find `image` in the layout under `policy` and unpack it if needed.
    pub fn ensure(&self, image: &str, policy: PullPolicy) -> Result<Image, ImageError> {
        let reference = Reference::parse(image).map_err(|m| ImageError {
            reason: "InvalidImageName",
            message: format!("invalid image name {image:?}: {m}"),
        })?;
        let found = self.layout.resolve(&reference).map_err(|e| ImageError {
            reason: "ErrImagePull",
            message: format!("image store {}: {e}", self.layout.dir().display()),
        })?;
        let Some(manifest) = found else {
            let (reason, why) = match policy {
                PullPolicy::Never => ("ErrImageNeverPull", "and the pull policy is \"Never\""),
                _ => ("ErrImagePull", "and registry pulls are not implemented yet"),
            };
            return Err(ImageError {
                reason,
                message: format!(
                    "image {:?} is not present in {} {why}; add it with umoci or `skopeo copy ... oci:{}:{}`",
                    image,
                    self.layout.dir().display(),
                    self.layout.dir().display(),
                    reference.familiar()
                ),
            });
        };
        let config = self
            .layout
            .config(&manifest)
            .map_err(|e| create_error(image, e))?;
        let rootfs = self
            .rootfs_dir
            .join(manifest.config_digest.trim_start_matches("sha256:"));
        if !rootfs.is_dir() {
            unpack::unpack_image(
                &self.layout,
                &manifest,
                &rootfs,
                &unpack::Limits::with_max_bytes(u64::MAX),
            )
            .map_err(|e| create_error(image, e))?;
        }
        Ok(Image {
            rootfs,
            config,
            digest: manifest.digest,
        })
    }
}

fn create_error(image: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError {
        reason: "CreateContainerError",
        message: format!("image {image:?}: {e}"),
    }
}

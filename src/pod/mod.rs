//! The core/v1 Pod subset picolet honours: serde types, API defaults, decoding
//! from manifest files and validation.
//!
//! Types mirror Kubernetes' field names (camelCase on the wire) so that a user's
//! existing manifests decode unchanged. Fields picolet knows but does not
//! implement are kept as raw values so that validation can reject them by path
//! instead of silently dropping behaviour.

pub mod decode;
pub mod defaults;
pub mod policy;
pub mod quantity;
pub mod refs;
pub mod resources;
pub mod status;
pub mod types;
pub mod validate;

pub use types::*;

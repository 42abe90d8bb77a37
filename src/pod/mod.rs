//! The core/v1 Pod subset picolet honours: serde types, API defaults, decoding
//! from manifest files and validation.
//!
//! Types mirror Kubernetes' field names (camelCase on the wire) so that a user's
//! existing manifests decode unchanged. Fields picolet knows but does not
//! implement are kept as raw values so that validation can reject them by path
//! instead of silently dropping behaviour.
//!
//! One concern a file: `types/` (the spec) and `status.rs` (the status),
//! `decode.rs` (bytes to pods), `defaults.rs` (the API server's defaults),
//! `validate/` (the API server's rules and picolet's own), `policy.rs`
//! (what the operator lets pods from elsewhere do), `quantity.rs`
//! (resource quantities), `resources.rs` (QoS and cgroup arithmetic),
//! `refs.rs` (ConfigMaps, Secrets and the downward API a pod uses). This
//! layer imports no runtime, engine or source: they import it.

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

/// The capabilities a container gets unless it adds or drops some:
/// containerd's default set, which Kubernetes pods get.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

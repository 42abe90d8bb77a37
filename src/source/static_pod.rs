//! What turns a decoded pod into a static pod, whatever its source
//! (docs/lifecycle.md, "Static pods"): validation, API defaults, the API
//! name `<name>-<node>`, a UID from the content, the node name and the
//! origin, the kubelet's annotations and toleration.

use crate::pod::decode::{decode_manifest, DecodeError};
use crate::pod::refs::{object_uses, ObjectKind};
use crate::pod::validate::{check, InvalidPod};
use crate::pod::{defaults, Pod};
use crate::time::Time;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Where static pods come from, as `kubernetes.io/config.source` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    File,
    Http,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::Http => "http",
        }
    }
}

/// Why a manifest document runs no pod: any fault rejects the whole
/// document, with the field path.
#[derive(Debug)]
pub enum ManifestFault {
    /// Not YAML or JSON of pods picolet decodes (an unknown kind, a wrong type).
    Decode(DecodeError),
    /// A pod that fails picolet's checks.
    Invalid(InvalidPod),
    /// A static pod that names a ConfigMap or Secret, at `path`.
    UsesObject { path: String, kind: ObjectKind },
}

impl std::fmt::Display for ManifestFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestFault::Decode(e) => e.fmt(f),
            ManifestFault::Invalid(e) => e.fmt(f),
            ManifestFault::UsesObject { path, kind } => write!(
                f,
                "{path}: a static pod cannot use a {kind:?} (only pods from an API server can)"
            ),
        }
    }
}

/// Decode, validate and default every pod of a document from `location` (a
/// path or a URL); any fault rejects the whole document, with the field path.
pub fn decode(
    bytes: &[u8],
    origin: Origin,
    location: &str,
    node_name: &str,
    now: Time,
) -> Result<Vec<Arc<Pod>>, ManifestFault> {
    let decoded = decode_manifest(bytes).map_err(ManifestFault::Decode)?;
    let mut pods = Vec::new();
    for d in decoded {
        for field in &d.unknown_fields {
            log::warn!("manifest {location}: {field}: unknown field, ignored");
        }
        check(&d.pod).map_err(ManifestFault::Invalid)?;
        // As the kubelet: a static pod cannot reference API objects.
        if let Some(u) = object_uses(&d.pod).first() {
            let (path, kind) = (u.path.clone(), u.kind);
            return Err(ManifestFault::UsesObject { path, kind });
        }
        pods.push(Arc::new(static_pod(
            d.pod, origin, location, node_name, now,
        )));
    }
    Ok(pods)
}

fn static_pod(mut pod: Pod, origin: Origin, location: &str, node_name: &str, now: Time) -> Pod {
    let hash = {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&pod).unwrap_or_default());
        h.update(format!("host:{node_name}"));
        h.update(format!("{}:{location}", origin.name()));
        let digest = h.finalize();
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    defaults::apply(&mut pod);
    let m = &mut pod.metadata;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
    if m.uid.is_empty() {
        m.uid = hash;
    }
    m.name = format!("{}-{node_name}", m.name);
    m.annotations
        .insert("kubernetes.io/config.hash".into(), m.uid.clone());
    m.annotations
        .insert("kubernetes.io/config.source".into(), origin.name().into());
    m.annotations
        .insert("kubernetes.io/config.seen".into(), now.rfc3339());
    pod.spec.node_name = Some(node_name.to_string());
    let toleration = serde_json::json!({"operator": "Exists", "effect": "NoExecute"});
    let tolerations = pod.spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations.contains(&toleration) {
        tolerations.push(Value::clone(&toleration));
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(uid: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  uid: '{uid}'\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
    }

    #[test]
    fn a_given_uid_is_kept_only_if_it_is_a_safe_path_component() {
        let decode = |uid: &str| {
            decode(
                manifest(uid).as_bytes(),
                Origin::File,
                "/m/web.yaml",
                "node1",
                Time(0),
            )
        };
        for uid in ["../../../../../../../../tmp/victim2", "..", ".", "a/b"] {
            let e = decode(uid).unwrap_err();
            let ManifestFault::Invalid(invalid) = &e else {
                panic!("{uid:?}: {e:?}");
            };
            assert!(
                invalid.faults.iter().all(|f| f.path == "metadata.uid"),
                "{uid:?}: {e:?}"
            );
            assert!(e.to_string().starts_with("metadata.uid: "), "{uid:?}: {e}");
        }
        let pods = decode("0b0f4c5e-8d9a-4a56-9a4b-3f1a2c7d9e10").unwrap();
        assert_eq!(pods[0].metadata.uid, "0b0f4c5e-8d9a-4a56-9a4b-3f1a2c7d9e10");
    }
}

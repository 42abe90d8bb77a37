//! What a pod takes from outside its spec: ConfigMaps and Secrets (env,
//! envFrom, volumes) and the downward API (fields of the pod itself and its
//! containers' resources). The field paths picolet resolves, and where each
//! API object is used, for validation and for the sync that caches them.

use super::quantity::{self, QuantityError};
use super::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use std::fmt;

/// Fields an environment variable may take (`fieldRef.fieldPath`).
pub const ENV_FIELDS: [&str; 8] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.podIP",
    "status.hostIPs",
];

/// Fields a downward API volume file may hold.
pub const VOLUME_FIELDS: [&str; 5] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
];

/// `resourceFieldRef.resource` values.
pub const RESOURCES: [&str; 4] = [
    "limits.cpu",
    "limits.memory",
    "requests.cpu",
    "requests.memory",
];

/// Is `path` a field of this set, or one label or annotation
/// (`metadata.labels['app']`) where single keys are allowed (env)?
pub fn field_allowed(field: &ObjectFieldSelector, allowed: &[&str], single_keys: bool) -> bool {
    let path = field.field_path.as_str();
    allowed.contains(&path)
        || (single_keys
            && ["metadata.labels['", "metadata.annotations['"]
                .iter()
                .any(|p| path.starts_with(p) && path.ends_with("']") && path.len() > p.len() + 2))
}

/// Which API object kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A core/v1 ConfigMap.
    ConfigMap,
    /// A core/v1 Secret.
    Secret,
}

impl ObjectKind {
    /// The kind's resource name in API paths (`/api/v1/.../configmaps/<name>`).
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "configmaps",
            ObjectKind::Secret => "secrets",
        }
    }
}

/// One use of a ConfigMap or Secret, at a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUse {
    /// Where the pod names the object (`spec.volumes[0].secret`).
    pub path: String,
    /// ConfigMap or Secret.
    pub kind: ObjectKind,
    /// The object's name in the pod's namespace.
    pub name: String,
}

/// Every ConfigMap and Secret the pod uses.
pub fn object_uses(pod: &Pod) -> Vec<ObjectUse> {
    let mut uses = Vec::new();
    let mut add = |path: String, kind, name: &str| {
        uses.push(ObjectUse {
            path,
            kind,
            name: name.to_string(),
        })
    };
    for (i, v) in pod.spec.volumes.iter().enumerate() {
        if let Some(c) = &v.config_map {
            add(
                format!("spec.volumes[{i}].configMap"),
                ObjectKind::ConfigMap,
                &c.name,
            );
        }
        if let Some(s) = &v.secret {
            add(
                format!("spec.volumes[{i}].secret"),
                ObjectKind::Secret,
                &s.secret_name,
            );
        }
    }
    let lists = [
        ("initContainers", &pod.spec.init_containers),
        ("containers", &pod.spec.containers),
    ];
    for (list, containers) in lists {
        for (ci, c) in containers.iter().enumerate() {
            let base = format!("spec.{list}[{ci}]");
            for (i, e) in c.env.iter().enumerate() {
                let Some(from) = &e.value_from else { continue };
                if let Some(k) = &from.config_map_key_ref {
                    add(
                        format!("{base}.env[{i}].valueFrom.configMapKeyRef"),
                        ObjectKind::ConfigMap,
                        &k.name,
                    );
                }
                if let Some(k) = &from.secret_key_ref {
                    add(
                        format!("{base}.env[{i}].valueFrom.secretKeyRef"),
                        ObjectKind::Secret,
                        &k.name,
                    );
                }
            }
            for (i, e) in c.env_from.iter().enumerate() {
                if let Some(r) = &e.config_map_ref {
                    add(
                        format!("{base}.envFrom[{i}].configMapRef"),
                        ObjectKind::ConfigMap,
                        &r.name,
                    );
                }
                if let Some(r) = &e.secret_ref {
                    add(
                        format!("{base}.envFrom[{i}].secretRef"),
                        ObjectKind::Secret,
                        &r.name,
                    );
                }
            }
        }
    }
    uses
}

/// The Secrets whose credentials pull the pod's images. Apart from
/// [`object_uses`]: a missing pull secret stops nothing (the pull goes on
/// without it, as the kubelet's does), and a static pod may name one.
pub fn pull_secret_uses(pod: &Pod) -> impl Iterator<Item = ObjectUse> + '_ {
    pod.spec
        .image_pull_secrets
        .iter()
        .enumerate()
        .map(|(i, s)| ObjectUse {
            path: format!("spec.imagePullSecrets[{i}]"),
            kind: ObjectKind::Secret,
            name: s.name.clone(),
        })
}

/// Why a `resourceFieldRef` has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceValueError {
    /// Not one of [`RESOURCES`].
    UnsupportedResource(String),
    /// The container's amount or the divisor is not a quantity.
    Quantity(QuantityError),
}

impl fmt::Display for ResourceValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceValueError::UnsupportedResource(r) => write!(f, "unsupported resource {r:?}"),
            ResourceValueError::Quantity(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ResourceValueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResourceValueError::UnsupportedResource(_) => None,
            ResourceValueError::Quantity(e) => Some(e),
        }
    }
}

impl From<QuantityError> for ResourceValueError {
    fn from(e: QuantityError) -> Self {
        ResourceValueError::Quantity(e)
    }
}

/// The value of a `resourceFieldRef` for `container`, with the node's
/// allocatable (millicores, bytes) standing in for a missing limit, as the
/// kubelet does; rounded up to whole divisors.
pub fn resource_value(
    selector: &ResourceFieldSelector,
    container: &Container,
    allocatable: (u64, u64),
) -> Result<String, ResourceValueError> {
    let res = container.resources.as_ref();
    let get = |section: &str, name: &str| {
        res.and_then(|r| match section {
            "limits" => r.limits.get(name),
            _ => r.requests.get(name),
        })
    };
    let (section, name) = selector
        .resource
        .split_once('.')
        .ok_or_else(|| ResourceValueError::UnsupportedResource(selector.resource.clone()))?;
    // Millicores for cpu (divisor 1 core), bytes for memory (divisor 1).
    type Parse = fn(&serde_json::Value) -> Result<u64, QuantityError>;
    let (parse, unlimited, default_divisor): (Parse, u64, u64) = match name {
        "cpu" => (quantity::millicores_of, allocatable.0, 1000),
        "memory" => (quantity::bytes_of, allocatable.1, 1),
        _ => {
            return Err(ResourceValueError::UnsupportedResource(
                selector.resource.clone(),
            ))
        }
    };
    let amount = match get(section, name) {
        Some(v) => parse(v)?,
        None if section == "limits" => unlimited,
        None => 0,
    };
    let divisor = match &selector.divisor {
        Some(d) => parse(d)?,
        None => default_divisor,
    };
    let value = amount.div_ceil(divisor.max(1));
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::decode::decode_manifest;

    fn pod(yaml_spec: &str) -> Pod {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{yaml_spec}");
        decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod
    }

    #[test]
    fn finds_every_use_with_its_path() {
        let p = pod("  volumes:\n  - name: s\n    secret: {secretName: tls}\n  containers:\n  - name: c\n    image: i\n    env:\n    - name: A\n      valueFrom: {configMapKeyRef: {name: cfg, key: a}}\n    envFrom:\n    - secretRef: {name: creds}\n");
        let uses: Vec<(String, ObjectKind, String)> = object_uses(&p)
            .into_iter()
            .map(|u| (u.path, u.kind, u.name))
            .collect();
        assert_eq!(
            uses,
            [
                (
                    "spec.volumes[0].secret".into(),
                    ObjectKind::Secret,
                    "tls".into()
                ),
                (
                    "spec.containers[0].env[0].valueFrom.configMapKeyRef".into(),
                    ObjectKind::ConfigMap,
                    "cfg".into()
                ),
                (
                    "spec.containers[0].envFrom[0].secretRef".into(),
                    ObjectKind::Secret,
                    "creds".into()
                ),
            ]
        );
    }

    #[test]
    fn resource_values_round_up_and_fall_back_to_allocatable() {
        let p = pod("  containers:\n  - name: c\n    image: i\n    resources:\n      limits: {cpu: 1500m, memory: 64Mi}\n      requests: {cpu: 250m}\n");
        let c = &p.spec.containers[0];
        let sel = |resource: &str, divisor: Option<&str>| ResourceFieldSelector {
            container_name: None,
            resource: resource.into(),
            divisor: divisor.map(|d| serde_json::json!(d)),
        };
        let alloc = (4000, 8 << 30);
        assert_eq!(
            resource_value(&sel("limits.cpu", None), c, alloc).unwrap(),
            "2"
        );
        assert_eq!(
            resource_value(&sel("requests.cpu", Some("1m")), c, alloc).unwrap(),
            "250"
        );
        assert_eq!(
            resource_value(&sel("limits.memory", Some("1Mi")), c, alloc).unwrap(),
            "64"
        );
        assert_eq!(
            resource_value(&sel("requests.memory", None), c, alloc).unwrap(),
            "0"
        );
        let bare = pod("  containers:\n  - name: c\n    image: i\n");
        let c = &bare.spec.containers[0];
        assert_eq!(
            resource_value(&sel("limits.cpu", None), c, alloc).unwrap(),
            "4"
        );
        assert_eq!(
            resource_value(&sel("limits.memory", None), c, alloc).unwrap(),
            (8u64 << 30).to_string()
        );
        assert_eq!(
            resource_value(&sel("limits.gpu", None), c, alloc),
            Err(ResourceValueError::UnsupportedResource("limits.gpu".into()))
        );
        let err = resource_value(&sel("limits.memory", Some("1Mx")), c, alloc).unwrap_err();
        assert_eq!(
            err,
            ResourceValueError::Quantity(QuantityError::UnknownSuffix {
                text: "1Mx".into(),
                suffix: "Mx".into()
            })
        );
        assert_eq!(err.to_string(), "\"1Mx\" has an unknown suffix \"Mx\"");
    }

    #[test]
    fn env_fields_allow_single_labels_volumes_whole_maps() {
        let f = |p: &str| ObjectFieldSelector {
            api_version: None,
            field_path: p.into(),
        };
        assert!(field_allowed(
            &f("metadata.labels['app']"),
            &ENV_FIELDS,
            true
        ));
        assert!(!field_allowed(&f("metadata.labels"), &ENV_FIELDS, true));
        assert!(field_allowed(&f("metadata.labels"), &VOLUME_FIELDS, false));
        assert!(!field_allowed(&f("status.podIP"), &VOLUME_FIELDS, false));
        assert!(!field_allowed(&f("spec.nope"), &ENV_FIELDS, true));
    }
}

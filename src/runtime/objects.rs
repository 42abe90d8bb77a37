//! What a pod takes from outside its spec, resolved when a container starts
//! or a sandbox is made: environment from ConfigMaps, Secrets and the
//! downward API, and the files of configMap, secret and downwardAPI volumes.
//! ConfigMaps and Secrets are read from the copies the API sync keeps under
//! `<root>/api/objects` (root only), so that they work offline.

use super::paths::Paths;
use crate::pod::refs::{self, ObjectKind};
use crate::pod::validate::config_map_key;
use crate::pod::{Container, KeyToPath, ObjectFieldSelector, Pod, Volume};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a value from outside the pod's spec cannot be had: the container
/// does not start (CreateContainerConfigError), or the sandbox is not made.
#[derive(Debug)]
pub enum ObjectError {
    /// The object's name makes no file name under `<root>/api/objects`.
    Name {
        kind: ObjectKind,
        name: String,
        source: io::Error,
    },
    /// The object's copy could not be read.
    Read { path: PathBuf, source: io::Error },
    /// The object's copy is not JSON.
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A value of `data` (Secret) or `binaryData` (ConfigMap) is not base64.
    Base64(crate::base64::InvalidCharacter),
    /// A required ConfigMap or Secret is not known here.
    NotFound { kind: ObjectKind, name: String },
    /// A resourceFieldRef names a container the pod does not have.
    NoContainer { container: String },
    /// A resourceFieldRef's value cannot be had (`refs::resource_value`).
    Resource(crate::pod::refs::ResourceValueError),
    /// A required key of a configMapKeyRef or secretKeyRef is absent.
    NoKey {
        kind: ObjectKind,
        namespace: String,
        name: String,
        key: String,
    },
    /// A key that is not a valid file name, in a volume of every key.
    BadKey {
        kind: ObjectKind,
        name: String,
        error: crate::pod::validate::NameError,
    },
    /// A volume item names a key the object does not have.
    NoItemKey {
        kind: ObjectKind,
        name: String,
        key: String,
    },
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::Name { kind, name, source } => {
                write!(f, "{} {name:?}: {source}", kind_name(*kind))
            }
            ObjectError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            ObjectError::Decode { path, source } => write!(f, "{}: {source}", path.display()),
            // The decoder's message alone, as before the object had a type.
            ObjectError::Base64(e) => e.fmt(f),
            ObjectError::Resource(e) => e.fmt(f),
            ObjectError::NotFound { kind, name } => {
                write!(f, "{} {name:?} not found", kind_name(*kind))
            }
            ObjectError::NoContainer { container } => {
                write!(f, "container {container:?} not found")
            }
            ObjectError::NoKey {
                kind,
                namespace,
                name,
                key,
            } => write!(
                f,
                "couldn't find key {key} in {} {namespace}/{name}",
                kind_name(*kind)
            ),
            ObjectError::BadKey { kind, name, error } => {
                write!(f, "{} {name:?}: {error}", kind_name(*kind))
            }
            ObjectError::NoItemKey { kind, name, key } => {
                write!(f, "{} {name:?} has no key {key:?}", kind_name(*kind))
            }
        }
    }
}

impl std::error::Error for ObjectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ObjectError::Name { source, .. } | ObjectError::Read { source, .. } => Some(source),
            ObjectError::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Where a pod's outside values come from.
pub struct PodFacts<'a> {
    /// Where the API objects' copies are.
    pub paths: &'a Paths,
    /// The pod whose values these are.
    pub pod: &'a Pod,
    /// This node's address: `status.hostIP`, and `status.podIP` with
    /// hostNetwork.
    pub host_ip: &'a str,
    /// Millicores and bytes, for limits a container does not set.
    pub allocatable: (u64, u64),
}

/// One file of a volume: path inside it, content, mode.
pub type VolumeFile = (String, Vec<u8>, u32);

impl PodFacts<'_> {
    /// The keys of a ConfigMap or Secret, decoded; `None` if it is not known
    /// here (not on the server, or never fetched).
    pub(super) fn object(
        &self,
        kind: ObjectKind,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ObjectError> {
        let path = self
            .paths
            .api_object(kind.plural(), &self.pod.metadata.namespace, name)
            .map_err(|source| ObjectError::Name {
                kind,
                name: name.into(),
                source,
            })?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ObjectError::Read { path, source }),
        };
        let object: Value = match serde_json::from_slice(&bytes) {
            Ok(object) => object,
            Err(source) => return Err(ObjectError::Decode { path, source }),
        };
        let base64 = |v: &Value| {
            crate::base64::decode(v.as_str().unwrap_or("")).map_err(ObjectError::Base64)
        };
        let mut keys = BTreeMap::new();
        let text = |field: &str| object[field].as_object().into_iter().flatten();
        match kind {
            ObjectKind::ConfigMap => {
                for (k, v) in text("data") {
                    keys.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
                }
                for (k, v) in text("binaryData") {
                    keys.insert(k.clone(), base64(v)?);
                }
            }
            ObjectKind::Secret => {
                for (k, v) in text("data") {
                    keys.insert(k.clone(), base64(v)?);
                }
                for (k, v) in text("stringData") {
                    keys.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
                }
            }
        }
        Ok(Some(keys))
    }

    fn required(
        &self,
        kind: ObjectKind,
        name: &str,
        optional: Option<bool>,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, ObjectError> {
        match self.object(kind, name)? {
            Some(keys) => Ok(Some(keys)),
            None if optional == Some(true) => Ok(None),
            None => Err(ObjectError::NotFound {
                kind,
                name: name.into(),
            }),
        }
    }

    /// A downward API field of the pod (`fieldRef.fieldPath`).
    pub fn field(&self, field: &ObjectFieldSelector) -> String {
        let m = &self.pod.metadata;
        let path = field.field_path.as_str();
        let map_entry = |prefix: &str, map: &BTreeMap<String, String>| {
            let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
            Some(map.get(key).cloned().unwrap_or_default())
        };
        let pod_ip = if self.pod.spec.host_network {
            self.host_ip
        } else {
            ""
        };
        match path {
            "metadata.name" => m.name.clone(),
            "metadata.namespace" => m.namespace.clone(),
            "metadata.uid" => m.uid.clone(),
            "metadata.labels" => map_lines(&m.labels),
            "metadata.annotations" => map_lines(&m.annotations),
            "spec.nodeName" => self.pod.spec.node_name.clone().unwrap_or_default(),
            "spec.serviceAccountName" => self
                .pod
                .spec
                .service_account_name
                .clone()
                .unwrap_or_default(),
            "status.hostIP" | "status.hostIPs" => self.host_ip.to_string(),
            "status.podIP" => pod_ip.to_string(),
            _ => map_entry("metadata.labels['", &m.labels)
                .or_else(|| map_entry("metadata.annotations['", &m.annotations))
                .unwrap_or_default(),
        }
    }

    /// The container's environment from `envFrom` then `env`, in order, a
    /// later name replacing an earlier one.
    pub fn container_env(&self, c: &Container) -> Result<Vec<(String, String)>, ObjectError> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: String, v: String| match env.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        };
        for from in &c.env_from {
            let (kind, r) = match (&from.config_map_ref, &from.secret_ref) {
                (Some(r), _) => (ObjectKind::ConfigMap, r),
                (None, Some(r)) => (ObjectKind::Secret, r),
                (None, None) => continue,
            };
            let prefix = from.prefix.as_deref().unwrap_or("");
            for (k, v) in self
                .required(kind, &r.name, r.optional)?
                .unwrap_or_default()
            {
                set(
                    format!("{prefix}{k}"),
                    String::from_utf8_lossy(&v).into_owned(),
                );
            }
        }
        for e in &c.env {
            let value = match &e.value_from {
                None => e.value.clone().unwrap_or_default(),
                Some(from) => match self.env_source(c, from)? {
                    Some(v) => v,
                    None => continue,
                },
            };
            set(e.name.clone(), value);
        }
        Ok(env)
    }

    /// `None`: an optional key that is absent, so the variable is not set.
    fn env_source(
        &self,
        c: &Container,
        from: &crate::pod::EnvVarSource,
    ) -> Result<Option<String>, ObjectError> {
        if let Some(f) = &from.field_ref {
            return Ok(Some(self.field(f)));
        }
        if let Some(r) = &from.resource_field_ref {
            let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => self
                    .pod
                    .container(name)
                    .ok_or_else(|| ObjectError::NoContainer {
                        container: name.into(),
                    })?,
                None => c,
            };
            return refs::resource_value(r, target, self.allocatable)
                .map(Some)
                .map_err(ObjectError::Resource);
        }
        let (kind, k) = match (&from.config_map_key_ref, &from.secret_key_ref) {
            (Some(k), _) => (ObjectKind::ConfigMap, k),
            (None, Some(k)) => (ObjectKind::Secret, k),
            (None, None) => return Ok(None),
        };
        let Some(keys) = self.required(kind, &k.name, k.optional)? else {
            return Ok(None);
        };
        match keys.get(&k.key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
            None if k.optional == Some(true) => Ok(None),
            None => Err(ObjectError::NoKey {
                kind,
                namespace: self.pod.metadata.namespace.clone(),
                name: k.name.clone(),
                key: k.key.clone(),
            }),
        }
    }

    /// The files of a configMap, secret or downwardAPI volume; `None` for
    /// other volumes.
    pub fn volume_files(&self, v: &Volume) -> Result<Option<Vec<VolumeFile>>, ObjectError> {
        let keyed = match (&v.config_map, &v.secret) {
            (Some(c), _) => Some((
                ObjectKind::ConfigMap,
                &c.name,
                &c.items,
                c.default_mode,
                c.optional,
            )),
            (None, Some(s)) => Some((
                ObjectKind::Secret,
                &s.secret_name,
                &s.items,
                s.default_mode,
                s.optional,
            )),
            (None, None) => None,
        };
        if let Some((kind, name, items, mode, optional)) = keyed {
            let keys = self.required(kind, name, optional)?;
            return project(keys.unwrap_or_default(), items, mode, kind, name).map(Some);
        }
        let Some(d) = &v.downward_api else {
            return Ok(None);
        };
        let mode = d.default_mode.unwrap_or(0o644);
        let mut files = Vec::new();
        for item in &d.items {
            let content = match (&item.field_ref, &item.resource_field_ref) {
                (Some(f), _) => self.field(f),
                (None, Some(r)) => {
                    let name = r.container_name.as_deref().unwrap_or("");
                    let c = self
                        .pod
                        .container(name)
                        .ok_or_else(|| ObjectError::NoContainer {
                            container: name.into(),
                        })?;
                    refs::resource_value(r, c, self.allocatable).map_err(ObjectError::Resource)?
                }
                (None, None) => continue,
            };
            files.push((
                item.path.clone(),
                content.into_bytes(),
                item.mode.unwrap_or(mode),
            ));
        }
        Ok(Some(files))
    }
}

/// The kubelet's format for a whole map in a file: `key="value"` lines,
/// sorted, values quoted as Go's %q.
fn map_lines(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every key as a file, or the listed items only.
fn project(
    keys: BTreeMap<String, Vec<u8>>,
    items: &[KeyToPath],
    default_mode: Option<u32>,
    kind: ObjectKind,
    name: &str,
) -> Result<Vec<VolumeFile>, ObjectError> {
    let mode = default_mode.unwrap_or(0o644);
    if items.is_empty() {
        // Every key becomes a file name: keys come from the server's object,
        // so they are checked here as the API server checks them.
        return keys
            .into_iter()
            .map(|(k, v)| match config_map_key(&k) {
                Ok(()) => Ok((k, v, mode)),
                Err(error) => Err(ObjectError::BadKey {
                    kind,
                    name: name.into(),
                    error,
                }),
            })
            .collect();
    }
    items
        .iter()
        .map(|item| match keys.get(&item.key) {
            Some(v) => Ok((item.path.clone(), v.clone(), item.mode.unwrap_or(mode))),
            None => Err(ObjectError::NoItemKey {
                kind,
                name: name.into(),
                key: item.key.clone(),
            }),
        })
        .collect()
}

/// The kind as the kubelet's messages name it.
fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::ConfigMap => "configmap",
        ObjectKind::Secret => "secret",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_a_file_name_fails_the_volume() {
        for key in ["..", "../../etc/cron.d/x", "a/b", "."] {
            let keys = BTreeMap::from([("ok".to_string(), vec![]), (key.to_string(), vec![])]);
            let e = project(keys, &[], None, ObjectKind::Secret, "creds").unwrap_err();
            assert!(
                matches!(&e, ObjectError::BadKey { kind: ObjectKind::Secret, name, .. } if name == "creds"),
                "{e}"
            );
            let e = e.to_string();
            assert!(
                e.starts_with(&format!("secret \"creds\": {key:?} is not a valid key")),
                "{e}"
            );
        }
        let keys = BTreeMap::from([("a.conf".to_string(), b"x".to_vec())]);
        let files = project(keys, &[], Some(0o400), ObjectKind::ConfigMap, "app").unwrap();
        assert_eq!(files, [("a.conf".to_string(), b"x".to_vec(), 0o400)]);
    }
}

//! Volumes and volume mounts: one supported type per volume, unique names,
//! file paths and modes of ConfigMap, Secret and downward API volumes that
//! stay below their directory and grant no more than permission bits, and
//! mounts of volumes that exist at absolute, unique paths.

use super::env::validate_resource_ref;
use super::error::{Errors, Fault};
use super::names::{
    dns1123_label, dns1123_subdomain, local_descending_path, local_non_reserved_path,
};
use crate::pod::{
    quantity, refs, Container, DownwardApiVolumeSource, EmptyDirSource, HostPathSource, Pod, Volume,
};
use std::collections::BTreeSet;

/// Every volume of the pod; the names of those that have a valid one, for
/// the mounts to be checked against.
pub(super) fn validate_volumes<'a>(
    volumes: &'a [Volume],
    pod: &Pod,
    errors: &mut Errors,
) -> BTreeSet<&'a str> {
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}]");
        if let Err(e) = dns1123_label(&v.name) {
            errors.push(format!("{path}.name"), e);
        } else if !names.insert(v.name.as_str()) {
            errors.push(
                format!("{path}.name"),
                Fault::Duplicate {
                    what: "name",
                    name: v.name.clone(),
                },
            );
        }
        validate_volume(v, &path, pod, errors);
    }
    names
}

/// One volume's source, at `path`.
fn validate_volume(v: &Volume, path: &str, pod: &Pod, errors: &mut Errors) {
    for key in v.unsupported.keys() {
        errors.unsupported(format!("{path}.{key}"));
    }
    validate_object_volume(v, path, errors);
    if let Some(d) = &v.downward_api {
        validate_downward_api(d, path, pod, errors);
    }
    let sources = usize::from(v.empty_dir.is_some())
        + usize::from(v.host_path.is_some())
        + usize::from(v.config_map.is_some())
        + usize::from(v.secret.is_some())
        + usize::from(v.downward_api.is_some());
    if sources + v.unsupported.len() == 0 {
        errors.invalid(path, "must specify a volume type");
    } else if sources + v.unsupported.len() > 1 {
        errors.invalid(path, "may not specify more than one volume type");
    }
    if let Some(e) = &v.empty_dir {
        validate_empty_dir(e, path, errors);
    }
    if let Some(h) = &v.host_path {
        validate_host_path(h, path, errors);
    }
}

/// A ConfigMap or Secret volume: its items' paths, keys and modes, the
/// default modes (the downward API's too) and the object's name.
fn validate_object_volume(v: &Volume, path: &str, errors: &mut Errors) {
    let items = v
        .config_map
        .iter()
        .map(|c| ("configMap", &c.items))
        .chain(v.secret.iter().map(|s| ("secret", &s.items)));
    for (field, items) in items {
        for (j, item) in items.iter().enumerate() {
            let ipath = format!("{path}.{field}.items[{j}]");
            validate_file_path(&item.path, format!("{ipath}.path"), errors);
            if item.key.is_empty() {
                errors.required(format!("{ipath}.key"));
            }
            validate_file_mode(item.mode, format!("{ipath}.mode"), errors);
        }
    }
    let default_modes = [
        (
            "configMap",
            v.config_map.as_ref().and_then(|c| c.default_mode),
        ),
        ("secret", v.secret.as_ref().and_then(|s| s.default_mode)),
        (
            "downwardAPI",
            v.downward_api.as_ref().and_then(|d| d.default_mode),
        ),
    ];
    for (field, mode) in default_modes {
        validate_file_mode(mode, format!("{path}.{field}.defaultMode"), errors);
    }
    let object_names = v
        .config_map
        .iter()
        .map(|c| ("configMap.name", &c.name))
        .chain(
            v.secret
                .iter()
                .map(|s| ("secret.secretName", &s.secret_name)),
        );
    for (field, name) in object_names {
        if name.is_empty() {
            errors.required(format!("{path}.{field}"));
        } else if let Err(e) = dns1123_subdomain(name) {
            errors.push(format!("{path}.{field}"), e);
        }
    }
}

/// A downward API volume's files: each a pod field or a container resource.
fn validate_downward_api(d: &DownwardApiVolumeSource, path: &str, pod: &Pod, errors: &mut Errors) {
    for (j, item) in d.items.iter().enumerate() {
        let ipath = format!("{path}.downwardAPI.items[{j}]");
        validate_file_path(&item.path, format!("{ipath}.path"), errors);
        validate_file_mode(item.mode, format!("{ipath}.mode"), errors);
        match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), None) => {
                if !refs::field_allowed(f, &refs::VOLUME_FIELDS, false) {
                    errors.push(
                        format!("{ipath}.fieldRef.fieldPath"),
                        Fault::UnsupportedValue {
                            value: f.field_path.clone(),
                            allowed: None,
                        },
                    );
                }
            }
            (None, Some(r)) => {
                validate_resource_ref(r, &format!("{ipath}.resourceFieldRef"), pod, true, errors)
            }
            _ => errors.invalid(
                ipath,
                "must specify exactly one of fieldRef and resourceFieldRef",
            ),
        }
    }
}

/// An emptyDir: on disk or in memory, with a size limit that is a quantity.
fn validate_empty_dir(e: &EmptyDirSource, path: &str, errors: &mut Errors) {
    if !matches!(e.medium.as_str(), "" | "Memory") {
        errors.unsupported(format!("{path}.emptyDir.medium"));
    }
    if let Some(limit) = &e.size_limit {
        if let Err(q) = quantity::bytes_of(limit) {
            errors.push(format!("{path}.emptyDir.sizeLimit"), q);
        }
    }
}

/// A hostPath: absolute, of a type the API knows.
fn validate_host_path(h: &HostPathSource, path: &str, errors: &mut Errors) {
    if !h.path.starts_with('/') {
        errors.invalid(format!("{path}.hostPath.path"), "must be an absolute path");
    }
    const TYPES: [&str; 8] = [
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    ];
    if !TYPES.contains(&h.kind.as_str()) {
        errors.push(
            format!("{path}.hostPath.type"),
            Fault::UnsupportedValue {
                value: h.kind.clone(),
                allowed: None,
            },
        );
    }
}

/// A volume file path, as the API server's `ValidateLocalNonReservedPath`.
fn validate_file_path(p: &str, path: String, errors: &mut Errors) {
    if p.is_empty() {
        errors.required(path);
    } else if let Err(e) = local_non_reserved_path(p) {
        errors.push(path, e);
    }
}

/// A volume file's mode: permission bits only, as the API server requires
/// (a set-user-ID bit on a file written as root would make it a way to root
/// inside the container).
fn validate_file_mode(mode: Option<u32>, path: String, errors: &mut Errors) {
    if mode.is_some_and(|m| m > 0o777) {
        errors.invalid(
            path,
            "must be a number between 0 and 0777 (octal), both inclusive",
        );
    }
}

/// Container `c`'s volume mounts, at `path`: of volumes in `volumes`, at
/// absolute and unique paths, subPaths that stay below the volume, and no
/// mount propagation.
pub(super) fn validate_mounts(
    c: &Container,
    path: &str,
    volumes: &BTreeSet<&str>,
    errors: &mut Errors,
) {
    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mpath = format!("{path}.volumeMounts[{i}]");
        if !volumes.contains(m.name.as_str()) {
            errors.push(format!("{mpath}.name"), Fault::NoSuchVolume(m.name.clone()));
        }
        if !m.mount_path.starts_with('/') {
            errors.invalid(format!("{mpath}.mountPath"), "must be an absolute path");
        } else if !mount_paths.insert(m.mount_path.trim_end_matches('/')) {
            errors.invalid(format!("{mpath}.mountPath"), "must be unique");
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if let Err(e) = local_descending_path(sub) {
                errors.push(format!("{mpath}.subPath"), e);
            }
        }
        if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
            errors.unsupported(format!("{mpath}.mountPropagation"));
        }
    }
}

//! A container's environment: variable names, `valueFrom` sources (pod
//! fields, resources, ConfigMap and Secret keys) and `envFrom`. The
//! resource reference check is shared with downward API volumes.

use super::error::{Errors, Fault};
use super::names::{config_map_key, dns1123_subdomain};
use crate::pod::{quantity, refs, Container, EnvVar, EnvVarSource, Pod, ResourceFieldSelector};

/// `env` and `envFrom` of container `c`, at `path`.
pub(super) fn validate_env(c: &Container, path: &str, pod: &Pod, errors: &mut Errors) {
    for (i, env) in c.env.iter().enumerate() {
        if env.name.is_empty() || env.name.contains('=') {
            errors.invalid(
                format!("{path}.env[{i}].name"),
                "must be a non-empty name without '='",
            );
        }
        if let Some(from) = &env.value_from {
            validate_env_source(env, from, &format!("{path}.env[{i}]"), pod, errors);
        }
    }
    for (i, e) in c.env_from.iter().enumerate() {
        let epath = format!("{path}.envFrom[{i}]");
        let refs = [&e.config_map_ref, &e.secret_ref];
        match refs.iter().flat_map(|r| r.iter()).collect::<Vec<_>>()[..] {
            [r] if r.name.is_empty() => errors.required(format!("{epath}.name")),
            [r] => {
                if let Err(e) = dns1123_subdomain(&r.name) {
                    errors.push(format!("{epath}.name"), e);
                }
            }
            _ => errors.invalid(
                epath,
                "must specify exactly one of configMapRef and secretRef",
            ),
        }
    }
}

fn validate_env_source(
    env: &EnvVar,
    from: &EnvVarSource,
    path: &str,
    pod: &Pod,
    errors: &mut Errors,
) {
    let fpath = format!("{path}.valueFrom");
    if env.value.as_deref().is_some_and(|v| !v.is_empty()) {
        errors.invalid(
            fpath.clone(),
            "may not be specified when `value` is not empty",
        );
    }
    let sources = usize::from(from.field_ref.is_some())
        + usize::from(from.resource_field_ref.is_some())
        + usize::from(from.config_map_key_ref.is_some())
        + usize::from(from.secret_key_ref.is_some());
    if sources != 1 {
        errors.invalid(fpath.clone(), "must specify exactly one source");
    }
    if let Some(f) = &from.field_ref {
        if !refs::field_allowed(f, &refs::ENV_FIELDS, true) {
            errors.push(
                format!("{fpath}.fieldRef.fieldPath"),
                Fault::UnsupportedValue {
                    value: f.field_path.clone(),
                    allowed: None,
                },
            );
        }
    }
    if let Some(r) = &from.resource_field_ref {
        validate_resource_ref(r, &format!("{fpath}.resourceFieldRef"), pod, false, errors);
    }
    for (field, k) in [
        ("configMapKeyRef", &from.config_map_key_ref),
        ("secretKeyRef", &from.secret_key_ref),
    ] {
        let Some(k) = k else { continue };
        if k.name.is_empty() {
            errors.required(format!("{fpath}.{field}.name"));
        } else if let Err(e) = dns1123_subdomain(&k.name) {
            errors.push(format!("{fpath}.{field}.name"), e);
        }
        if k.key.is_empty() {
            errors.required(format!("{fpath}.{field}.key"));
        } else if let Err(e) = config_map_key(&k.key) {
            errors.push(format!("{fpath}.{field}.key"), e);
        }
    }
}

/// A `resourceFieldRef` at `path`: a resource picolet resolves, a container
/// the pod has (which a volume must name), a divisor that is a quantity.
pub(super) fn validate_resource_ref(
    r: &ResourceFieldSelector,
    path: &str,
    pod: &Pod,
    needs_container: bool,
    errors: &mut Errors,
) {
    if !refs::RESOURCES.contains(&r.resource.as_str()) {
        errors.push(
            format!("{path}.resource"),
            Fault::UnsupportedValue {
                value: r.resource.clone(),
                allowed: None,
            },
        );
    }
    match r.container_name.as_deref() {
        None | Some("") if needs_container => errors.required(format!("{path}.containerName")),
        Some(name) if !name.is_empty() && pod.container(name).is_none() => errors.push(
            format!("{path}.containerName"),
            Fault::NoSuchContainer(name.to_string()),
        ),
        _ => {}
    }
    if let Some(d) = &r.divisor {
        let parsed = if r.resource.ends_with("cpu") {
            quantity::millicores_of(d).map(drop)
        } else {
            quantity::bytes_of(d).map(drop)
        };
        if let Err(e) = parsed {
            errors.push(format!("{path}.divisor"), e);
        }
    }
}

//! Validation as the API server does it, plus picolet's own rule: a field that
//! would change behaviour but is not implemented is an error naming its path,
//! never silently ignored (docs/lifecycle.md, "Defaults and validation").
//!
//! This file walks the pod in field order (metadata, then spec); each part
//! of a pod has its own file: `container.rs` (one container),
//! `handlers.rs` (probes and hooks), `env.rs` (environment),
//! `volumes.rs` (volumes and mounts), `security.rs` (security contexts and
//! capabilities), `names.rs` (names, keys, UIDs and paths that become file
//! names), `error.rs` (what a fault is).

mod container;
mod env;
mod error;
mod handlers;
mod names;
mod security;
mod volumes;

pub use error::{Fault, FieldError, InvalidPod};
pub use names::{config_map_key, dns1123_label, dns1123_subdomain, pod_uid, NameError};
pub use security::{capability_name, CAPABILITIES};

use super::Pod;
use container::{validate_container, Kind};
use error::Errors;
use std::collections::BTreeSet;

/// `Ok` if the pod is valid, else every fault, in field order, each with
/// its path.
pub fn check(pod: &Pod) -> Result<(), InvalidPod> {
    let faults = validate(pod);
    if faults.is_empty() {
        return Ok(());
    }
    Err(InvalidPod {
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        faults,
    })
}

/// All faults of a pod, in field order. Empty means valid.
pub fn validate(pod: &Pod) -> Vec<FieldError> {
    let mut errors = Errors::default();
    validate_metadata(pod, &mut errors);
    validate_spec(pod, &mut errors);
    errors.0
}

fn validate_metadata(pod: &Pod, errors: &mut Errors) {
    let meta = &pod.metadata;
    if meta.generate_name.is_some() {
        errors.push(
            "metadata.generateName",
            Fault::NotSupported(Some("a static pod needs a fixed name")),
        );
    }
    if meta.name.is_empty() {
        errors.required("metadata.name");
    } else if let Err(e) = dns1123_subdomain(&meta.name) {
        errors.push("metadata.name", e);
    }
    if !meta.namespace.is_empty() {
        if let Err(e) = dns1123_label(&meta.namespace) {
            errors.push("metadata.namespace", e);
        }
    }
    // Empty: a static pod gets one from its content (src/source/static_pod.rs).
    if !meta.uid.is_empty() {
        if let Err(e) = pod_uid(&meta.uid) {
            errors.push("metadata.uid", e);
        }
    }
}

fn validate_spec(pod: &Pod, errors: &mut Errors) {
    let spec = &pod.spec;
    errors.unsupported_fields(
        "spec",
        &[
            ("hostPID", spec.host_pid == Some(true)),
            ("hostIPC", spec.host_ipc == Some(true)),
            (
                "shareProcessNamespace",
                spec.share_process_namespace == Some(true),
            ),
            (
                "activeDeadlineSeconds",
                spec.active_deadline_seconds.is_some(),
            ),
            ("runtimeClassName", spec.runtime_class_name.is_some()),
            ("hostAliases", spec.host_aliases.is_some()),
            ("dnsConfig", spec.dns_config.is_some()),
            ("ephemeralContainers", spec.ephemeral_containers.is_some()),
            ("readinessGates", spec.readiness_gates.is_some()),
        ],
    );
    if spec.termination_grace_period_seconds.is_some_and(|g| g < 0) {
        errors.invalid("spec.terminationGracePeriodSeconds", "must be >= 0");
    }
    if let Some(h) = &spec.hostname {
        if let Err(e) = dns1123_label(h) {
            errors.push("spec.hostname", e);
        }
    }
    if let Some(sc) = &spec.security_context {
        security::validate_pod_security(sc, errors);
    }

    let volumes = volumes::validate_volumes(&spec.volumes, pod, errors);
    if spec.containers.is_empty() {
        errors.push(
            "spec.containers",
            Fault::Required(Some("at least one container")),
        );
    }
    let mut names = BTreeSet::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        let path = format!("spec.initContainers[{i}]");
        validate_container(c, &path, Kind::Init, &volumes, &mut names, pod, errors);
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        validate_container(c, &path, Kind::Regular, &volumes, &mut names, pod, errors);
    }
}

#[cfg(test)]
mod tests;

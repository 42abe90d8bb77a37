//! One container, init or regular: its name and image, restart policy,
//! which probes and hooks it may have, its ports and resources; the checks
//! of its environment, mounts, handlers and security context are in their
//! own files and called from here in field order.

use super::env::validate_env;
use super::error::{Errors, Fault};
use super::handlers::{validate_hook, validate_probe};
use super::names::{dns1123_label, port_name};
use super::security::validate_container_security;
use super::volumes::validate_mounts;
use crate::pod::{quantity, Container, Pod};
use std::collections::BTreeSet;

/// Which list a container is in: init containers (sidecars among them)
/// may have different fields from regular ones.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Init,
    Regular,
}

/// What a plain init container may not have (a sidecar may).
const NOT_FOR_PLAIN_INIT: &str = "may not be set for init containers without restartPolicy=Always";

/// Container `c` at `path`; `names` holds the container names seen so far
/// and `volumes` the pod's volume names.
pub(super) fn validate_container(
    c: &Container,
    path: &str,
    kind: Kind,
    volumes: &BTreeSet<&str>,
    names: &mut BTreeSet<String>,
    pod: &Pod,
    errors: &mut Errors,
) {
    validate_name_and_image(c, path, names, errors);
    validate_restart_policy(c, path, kind, errors);
    validate_handlers(c, path, kind, errors);
    errors.unsupported_fields(
        path,
        &[
            ("stdin", c.stdin == Some(true)),
            ("tty", c.tty == Some(true)),
            ("volumeDevices", c.volume_devices.is_some()),
            ("resizePolicy", c.resize_policy.is_some()),
        ],
    );
    validate_env(c, path, pod, errors);
    validate_ports(c, path, pod.spec.host_network, errors);
    validate_mounts(c, path, volumes, errors);
    validate_resources(c, path, errors);
    if let Some(sc) = &c.security_context {
        validate_container_security(sc, &format!("{path}.securityContext"), errors);
    }
}

/// A DNS label unique among the pod's containers; an image reference
/// without surrounding whitespace.
fn validate_name_and_image(
    c: &Container,
    path: &str,
    names: &mut BTreeSet<String>,
    errors: &mut Errors,
) {
    if c.name.is_empty() {
        errors.required(format!("{path}.name"));
    } else if let Err(e) = dns1123_label(&c.name) {
        errors.push(format!("{path}.name"), e);
    } else if !names.insert(c.name.clone()) {
        errors.push(
            format!("{path}.name"),
            Fault::Duplicate {
                what: "name",
                name: c.name.clone(),
            },
        );
    }
    if c.image.trim().is_empty() {
        errors.required(format!("{path}.image"));
    } else if c.image.trim() != c.image {
        errors.invalid(
            format!("{path}.image"),
            "must not have leading or trailing whitespace",
        );
    }
}

/// Only an init container may have a restart policy, and only `Always`
/// (which makes it a sidecar).
fn validate_restart_policy(c: &Container, path: &str, kind: Kind, errors: &mut Errors) {
    match (kind, c.restart_policy.as_deref()) {
        (_, None) | (Kind::Init, Some("Always")) => {}
        (Kind::Regular, Some(_)) => errors.push(
            format!("{path}.restartPolicy"),
            Fault::Forbidden("may only be set on init containers"),
        ),
        (Kind::Init, Some(other)) => errors.push(
            format!("{path}.restartPolicy"),
            Fault::UnsupportedValue {
                value: other.to_string(),
                allowed: Some("only \"Always\" is allowed"),
            },
        ),
    }
}

/// Probes and lifecycle hooks, which a plain init container (one that is
/// not a sidecar) may not have.
fn validate_handlers(c: &Container, path: &str, kind: Kind, errors: &mut Errors) {
    let plain_init = kind == Kind::Init && !c.is_sidecar();
    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    for (field, probe) in probes {
        let Some(probe) = probe else { continue };
        if plain_init {
            errors.push(
                format!("{path}.{field}"),
                Fault::Forbidden(NOT_FOR_PLAIN_INIT),
            );
            continue;
        }
        validate_probe(probe, &format!("{path}.{field}"), field, c, errors);
    }
    let Some(lifecycle) = &c.lifecycle else {
        return;
    };
    if plain_init {
        errors.push(
            format!("{path}.lifecycle"),
            Fault::Forbidden(NOT_FOR_PLAIN_INIT),
        );
        return;
    }
    if lifecycle.stop_signal.is_some() {
        errors.unsupported(format!("{path}.lifecycle.stopSignal"));
    }
    for (field, hook) in [
        ("postStart", &lifecycle.post_start),
        ("preStop", &lifecycle.pre_stop),
    ] {
        if let Some(h) = hook {
            validate_hook(h, &format!("{path}.lifecycle.{field}"), c, errors);
        }
    }
}

/// Container ports: valid numbers, protocols and unique names; a host port
/// only in the host's network, where it is the container port itself.
fn validate_ports(c: &Container, path: &str, host_network: bool, errors: &mut Errors) {
    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        if !(1..=65535).contains(&p.container_port) {
            errors.invalid(
                format!("{ppath}.containerPort"),
                "must be between 1 and 65535",
            );
        }
        if let Some(proto) = &p.protocol {
            if !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP") {
                errors.push(
                    format!("{ppath}.protocol"),
                    Fault::UnsupportedValue {
                        value: proto.clone(),
                        allowed: Some("TCP, UDP or SCTP"),
                    },
                );
            }
        }
        if let Some(name) = &p.name {
            if let Err(e) = port_name(name) {
                errors.push(format!("{ppath}.name"), e);
            } else if !port_names.insert(name.as_str()) {
                errors.push(
                    format!("{ppath}.name"),
                    Fault::Duplicate {
                        what: "port name",
                        name: name.clone(),
                    },
                );
            }
        }
        if let Some(host_port) = p.host_port {
            let hpath = format!("{ppath}.hostPort");
            if !(1..=65535).contains(&host_port) {
                errors.invalid(hpath, "must be between 1 and 65535");
            } else if !host_network {
                errors.push(hpath, Fault::HostPortWithoutHostNetwork);
            } else if host_port != p.container_port {
                errors.invalid(hpath, "must match containerPort when hostNetwork is true");
            }
        }
    }
}

/// Requests and limits: cpu, memory and ephemeral-storage, each a quantity.
fn validate_resources(c: &Container, path: &str, errors: &mut Errors) {
    let Some(res) = &c.resources else { return };
    for (section, map) in [("requests", &res.requests), ("limits", &res.limits)] {
        for (name, value) in map {
            let qpath = format!("{path}.resources.{section}.{name}");
            let parsed = match name.as_str() {
                "cpu" => quantity::millicores_of(value),
                "memory" | "ephemeral-storage" => quantity::bytes_of(value),
                _ => {
                    errors.unsupported(qpath);
                    continue;
                }
            };
            if let Err(e) = parsed {
                errors.push(qpath, e);
            }
        }
    }
}

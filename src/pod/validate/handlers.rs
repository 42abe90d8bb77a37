//! Probes and lifecycle hooks: one handler each (exec, httpGet, tcpSocket,
//! sleep), ports that exist, timings and thresholds as the API requires.

use super::error::{Errors, Fault};
use super::names::{http_header_name, port_name};
use crate::pod::{Container, ExecAction, HttpGetAction, IntOrString, LifecycleHandler, Probe};

/// A probe at `path` (`field` is `livenessProbe`, `readinessProbe` or
/// `startupProbe`) of container `c`.
pub(super) fn validate_probe(
    p: &Probe,
    path: &str,
    field: &str,
    c: &Container,
    errors: &mut Errors,
) {
    if p.grpc.is_some() {
        errors.unsupported(format!("{path}.grpc"));
    }
    let handlers = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ];
    exactly_one_handler(&handlers, path, errors);
    if let Some(e) = &p.exec {
        validate_exec(e, path, errors);
    }
    if let Some(h) = &p.http_get {
        validate_http_get(h, &format!("{path}.httpGet"), c, errors);
    }
    if let Some(t) = &p.tcp_socket {
        validate_port(&t.port, &format!("{path}.tcpSocket.port"), c, errors);
    }
    validate_probe_timing(p, path, field, errors);
}

/// A probe's delays, periods and thresholds; a readiness probe may take
/// several successes but no grace period of its own.
fn validate_probe_timing(p: &Probe, path: &str, field: &str, errors: &mut Errors) {
    let fields = [
        ("initialDelaySeconds", p.initial_delay_seconds, 0),
        ("timeoutSeconds", p.timeout_seconds, 1),
        ("periodSeconds", p.period_seconds, 1),
        ("successThreshold", p.success_threshold, 1),
        ("failureThreshold", p.failure_threshold, 1),
    ];
    for (name, value, min) in fields {
        if value.is_some_and(|v| v < min) {
            errors.push(format!("{path}.{name}"), Fault::LessThan(min));
        }
    }
    if field != "readinessProbe" && p.success_threshold.is_some_and(|v| v != 1) {
        errors.invalid(format!("{path}.successThreshold"), "must be 1");
    }
    match p.termination_grace_period_seconds {
        Some(_) if field == "readinessProbe" => errors.invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            "must not be set for readinessProbes",
        ),
        Some(g) if g <= 0 => errors.invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            "must be greater than 0",
        ),
        _ => {}
    }
}

/// A lifecycle hook: exec, httpGet or sleep.
pub(super) fn validate_hook(h: &LifecycleHandler, path: &str, c: &Container, errors: &mut Errors) {
    if h.tcp_socket.is_some() {
        errors.unsupported(format!("{path}.tcpSocket"));
    }
    let handlers = [
        h.exec.is_some(),
        h.http_get.is_some(),
        h.sleep.is_some(),
        h.tcp_socket.is_some(),
    ];
    exactly_one_handler(&handlers, path, errors);
    if let Some(e) = &h.exec {
        validate_exec(e, path, errors);
    }
    if let Some(g) = &h.http_get {
        validate_http_get(g, &format!("{path}.httpGet"), c, errors);
    }
    if h.sleep.as_ref().is_some_and(|s| s.seconds < 0) {
        errors.push(format!("{path}.sleep.seconds"), Fault::LessThan(0));
    }
}

/// A probe or hook names exactly one handler type.
fn exactly_one_handler(set: &[bool], path: &str, errors: &mut Errors) {
    match set.iter().filter(|h| **h).count() {
        0 => errors.invalid(path, "must specify a handler type"),
        1 => {}
        _ => errors.invalid(path, "may not specify more than one handler type"),
    }
}

fn validate_exec(e: &ExecAction, path: &str, errors: &mut Errors) {
    if e.command.is_empty() {
        errors.required(format!("{path}.exec.command"));
    }
}

fn validate_http_get(h: &HttpGetAction, path: &str, c: &Container, errors: &mut Errors) {
    validate_port(&h.port, &format!("{path}.port"), c, errors);
    match h.scheme.as_deref() {
        None | Some("HTTP") => {}
        Some("HTTPS") => errors.push(
            format!("{path}.scheme"),
            Fault::NotSupported(Some(
                "HTTPS probes need TLS, which picolet does not link yet",
            )),
        ),
        Some(other) => errors.push(
            format!("{path}.scheme"),
            Fault::UnsupportedValue {
                value: other.to_string(),
                allowed: Some("HTTP or HTTPS"),
            },
        ),
    }
    if h.path
        .as_deref()
        .is_some_and(|p| !p.starts_with('/') && !p.is_empty())
    {
        errors.invalid(format!("{path}.path"), "must be an absolute path");
    }
    for (i, header) in h.http_headers.iter().enumerate() {
        if let Err(e) = http_header_name(&header.name) {
            errors.push(format!("{path}.httpHeaders[{i}].name"), e);
        }
    }
}

/// A port by number (1-65535) or by the name of one of the container's ports.
fn validate_port(port: &IntOrString, path: &str, c: &Container, errors: &mut Errors) {
    match port {
        IntOrString::Int(n) if !(1..=65535).contains(n) => {
            errors.invalid(path, "must be between 1 and 65535")
        }
        IntOrString::Int(_) => {}
        IntOrString::Str(name) => {
            if let Err(e) = port_name(name) {
                errors.push(path, e);
            } else if !c
                .ports
                .iter()
                .any(|p| p.name.as_deref() == Some(name.as_str()))
            {
                errors.push(path, Fault::NoSuchPort(name.clone()));
            }
        }
    }
}

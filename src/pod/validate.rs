//! Validation as the API server does it, plus picolet's own rule: a field that
//! would change behaviour but is not implemented is an error naming its path,
//! never silently ignored.

use super::{
    quantity, refs, Container, ExecAction, HttpGetAction, IntOrString, LifecycleHandler, Pod,
    Probe, Volume,
};
use std::collections::BTreeSet;
use std::fmt;

/// One fault in a pod, at a field path such as `spec.volumes[1].nfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn unsupported(&mut self, path: impl Into<String>) {
        self.push(path, "not supported");
    }
}

/// `Ok` if the pod is valid, else every fault in one message, in field
/// order, each with its path.
pub fn check(pod: &Pod) -> Result<(), String> {
    let errors = validate(pod);
    if errors.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Err(list.join("; "))
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
            "not supported: a static pod needs a fixed name",
        );
    }
    if meta.name.is_empty() {
        errors.push("metadata.name", "required");
    } else if let Err(m) = dns1123_subdomain(&meta.name) {
        errors.push("metadata.name", m);
    }
    if !meta.namespace.is_empty() {
        if let Err(m) = dns1123_label(&meta.namespace) {
            errors.push("metadata.namespace", m);
        }
    }
    // Empty: a static pod gets one from its content (src/source/static_pod.rs).
    if !meta.uid.is_empty() {
        if let Err(m) = pod_uid(&meta.uid) {
            errors.push("metadata.uid", m);
        }
    }
}

fn validate_spec(pod: &Pod, errors: &mut Errors) {
    let spec = &pod.spec;
    let flags = [
        ("spec.hostPID", spec.host_pid == Some(true)),
        ("spec.hostIPC", spec.host_ipc == Some(true)),
        (
            "spec.shareProcessNamespace",
            spec.share_process_namespace == Some(true),
        ),
        (
            "spec.activeDeadlineSeconds",
            spec.active_deadline_seconds.is_some(),
        ),
        ("spec.runtimeClassName", spec.runtime_class_name.is_some()),
        ("spec.hostAliases", spec.host_aliases.is_some()),
        ("spec.dnsConfig", spec.dns_config.is_some()),
        (
            "spec.ephemeralContainers",
            spec.ephemeral_containers.is_some(),
        ),
        ("spec.readinessGates", spec.readiness_gates.is_some()),
    ];
    for (path, set) in flags {
        if set {
            errors.unsupported(path);
        }
    }
    if let Some(grace) = spec.termination_grace_period_seconds {
        if grace < 0 {
            errors.push("spec.terminationGracePeriodSeconds", "must be >= 0");
        }
    }
    if let Some(h) = &spec.hostname {
        if let Err(m) = dns1123_label(h) {
            errors.push("spec.hostname", m);
        }
    }
    if let Some(sc) = &spec.security_context {
        let unsupported = [
            ("fsGroup", sc.fs_group.is_some()),
            ("sysctls", sc.sysctls.is_some()),
            ("seLinuxOptions", sc.se_linux_options.is_some()),
            ("appArmorProfile", sc.app_armor_profile.is_some()),
        ];
        for (field, set) in unsupported {
            if set {
                errors.unsupported(format!("spec.securityContext.{field}"));
            }
        }
        if let Some(p) = &sc.seccomp_profile {
            validate_seccomp(p, "spec.securityContext.seccompProfile", errors);
        }
    }

    let volumes = validate_volumes(&spec.volumes, pod, errors);
    if spec.containers.is_empty() {
        errors.push("spec.containers", "required: at least one container");
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

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Init,
    Regular,
}

fn validate_container(
    c: &Container,
    path: &str,
    kind: Kind,
    volumes: &BTreeSet<&str>,
    names: &mut BTreeSet<String>,
    pod: &Pod,
    errors: &mut Errors,
) {
    if c.name.is_empty() {
        errors.push(format!("{path}.name"), "required");
    } else if let Err(m) = dns1123_label(&c.name) {
        errors.push(format!("{path}.name"), m);
    } else if !names.insert(c.name.clone()) {
        errors.push(
            format!("{path}.name"),
            format!("duplicate name {:?}", c.name),
        );
    }
    if c.image.trim().is_empty() {
        errors.push(format!("{path}.image"), "required");
    } else if c.image.trim() != c.image {
        errors.push(
            format!("{path}.image"),
            "must not have leading or trailing whitespace",
        );
    }

    let sidecar = kind == Kind::Init && c.is_sidecar();
    match (kind, c.restart_policy.as_deref()) {
        (_, None) | (Kind::Init, Some("Always")) => {}
        (Kind::Regular, Some(_)) => errors.push(
            format!("{path}.restartPolicy"),
            "forbidden: may only be set on init containers",
        ),
        (Kind::Init, Some(other)) => errors.push(
            format!("{path}.restartPolicy"),
            format!("unsupported value {other:?}: only \"Always\" is allowed"),
        ),
    }
    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    let plain_init = kind == Kind::Init && !sidecar;
    for (field, probe) in probes {
        let Some(probe) = probe else { continue };
        if plain_init {
            errors.push(
                format!("{path}.{field}"),
                "forbidden: may not be set for init containers without restartPolicy=Always",
            );
            continue;
        }
        validate_probe(probe, &format!("{path}.{field}"), field, c, errors);
    }
    if let Some(lifecycle) = &c.lifecycle {
        if plain_init {
            errors.push(
                format!("{path}.lifecycle"),
                "forbidden: may not be set for init containers without restartPolicy=Always",
            );
        } else {
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
    }
    let unsupported = [
        ("stdin", c.stdin == Some(true)),
        ("tty", c.tty == Some(true)),
        ("volumeDevices", c.volume_devices.is_some()),
        ("resizePolicy", c.resize_policy.is_some()),
    ];
    for (field, set) in unsupported {
        if set {
            errors.unsupported(format!("{path}.{field}"));
        }
    }

    for (i, env) in c.env.iter().enumerate() {
        if env.name.is_empty() || env.name.contains('=') {
            errors.push(
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
            [r] if r.name.is_empty() => errors.push(format!("{epath}.name"), "required"),
            [r] => {
                if let Err(m) = dns1123_subdomain(&r.name) {
                    errors.push(format!("{epath}.name"), m);
                }
            }
            _ => errors.push(
                epath,
                "must specify exactly one of configMapRef and secretRef",
            ),
        }
    }

    validate_ports(c, path, pod.spec.host_network, errors);

    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mpath = format!("{path}.volumeMounts[{i}]");
        if !volumes.contains(m.name.as_str()) {
            errors.push(
                format!("{mpath}.name"),
                format!("volume {:?} not found", m.name),
            );
        }
        if !m.mount_path.starts_with('/') {
            errors.push(format!("{mpath}.mountPath"), "must be an absolute path");
        } else if !mount_paths.insert(m.mount_path.trim_end_matches('/')) {
            errors.push(format!("{mpath}.mountPath"), "must be unique");
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if let Err(m) = local_descending_path(sub) {
                errors.push(format!("{mpath}.subPath"), m);
            }
        }
        if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
            errors.unsupported(format!("{mpath}.mountPropagation"));
        }
    }

    if let Some(res) = &c.resources {
        for (section, map) in [("requests", &res.requests), ("limits", &res.limits)] {
            for (name, value) in map {
                let qpath = format!("{path}.resources.{section}.{name}");
                match name.as_str() {
                    "cpu" => {
                        if let Err(m) = quantity::millicores_of(value) {
                            errors.push(qpath, m);
                        }
                    }
                    "memory" | "ephemeral-storage" => {
                        if let Err(m) = quantity::bytes_of(value) {
                            errors.push(qpath, m);
                        }
                    }
                    _ => errors.unsupported(qpath),
                }
            }
        }
    }

    if let Some(sc) = &c.security_context {
        if let Some(p) = &sc.seccomp_profile {
            validate_seccomp(p, &format!("{path}.securityContext.seccompProfile"), errors);
        }
        let unsupported = [
            ("seLinuxOptions", sc.se_linux_options.is_some()),
            ("appArmorProfile", sc.app_armor_profile.is_some()),
            (
                "procMount",
                sc.proc_mount.as_deref().is_some_and(|p| p != "Default"),
            ),
        ];
        for (field, set) in unsupported {
            if set {
                errors.unsupported(format!("{path}.securityContext.{field}"));
            }
        }
        if let Some(caps) = &sc.capabilities {
            for (list, names) in [("add", &caps.add), ("drop", &caps.drop)] {
                for (i, name) in names.iter().enumerate() {
                    if capability_name(name).is_none() {
                        errors.push(
                            format!("{path}.securityContext.capabilities.{list}[{i}]"),
                            format!("unknown capability {name:?}"),
                        );
                    }
                }
            }
        }
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            errors.push(
                format!("{path}.securityContext"),
                "cannot set allowPrivilegeEscalation to false and privileged to true",
            );
        }
    }
}

/// The API server's rules for a seccomp profile; `Localhost` (a profile
/// file on the node) is not implemented.
fn validate_seccomp(p: &crate::pod::SeccompProfile, path: &str, errors: &mut Errors) {
    match p.kind.as_str() {
        "RuntimeDefault" | "Unconfined" => {}
        "Localhost" => errors.push(
            format!("{path}.type"),
            "\"Localhost\" is not supported: use RuntimeDefault or Unconfined",
        ),
        "" => errors.push(format!("{path}.type"), "required"),
        other => errors.push(
            format!("{path}.type"),
            format!("unsupported value {other:?}: RuntimeDefault, Unconfined or Localhost"),
        ),
    }
    if p.localhost_profile.is_some() && p.kind != "Localhost" {
        errors.push(
            format!("{path}.localhostProfile"),
            "can only be set when the type is Localhost",
        );
    }
}

/// A probe: one handler, sane timings, thresholds as the API requires.
fn validate_probe(p: &Probe, path: &str, field: &str, c: &Container, errors: &mut Errors) {
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
    let fields = [
        ("initialDelaySeconds", p.initial_delay_seconds, 0),
        ("timeoutSeconds", p.timeout_seconds, 1),
        ("periodSeconds", p.period_seconds, 1),
        ("successThreshold", p.success_threshold, 1),
        ("failureThreshold", p.failure_threshold, 1),
    ];
    for (name, value, min) in fields {
        if value.is_some_and(|v| v < min) {
            errors.push(
                format!("{path}.{name}"),
                format!("must be greater than or equal to {min}"),
            );
        }
    }
    if field != "readinessProbe" && p.success_threshold.is_some_and(|v| v != 1) {
        errors.push(format!("{path}.successThreshold"), "must be 1");
    }
    match p.termination_grace_period_seconds {
        Some(_) if field == "readinessProbe" => errors.push(
            format!("{path}.terminationGracePeriodSeconds"),
            "must not be set for readinessProbes",
        ),
        Some(g) if g <= 0 => errors.push(
            format!("{path}.terminationGracePeriodSeconds"),
            "must be greater than 0",
        ),
        _ => {}
    }
}

/// A lifecycle hook: exec, httpGet or sleep.
fn validate_hook(h: &LifecycleHandler, path: &str, c: &Container, errors: &mut Errors) {
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
        errors.push(
            format!("{path}.sleep.seconds"),
            "must be greater than or equal to 0",
        );
    }
}

/// A probe or hook names exactly one handler type.
fn exactly_one_handler(set: &[bool], path: &str, errors: &mut Errors) {
    match set.iter().filter(|h| **h).count() {
        0 => errors.push(path.to_string(), "must specify a handler type"),
        1 => {}
        _ => errors.push(
            path.to_string(),
            "may not specify more than one handler type",
        ),
    }
}

fn validate_exec(e: &ExecAction, path: &str, errors: &mut Errors) {
    if e.command.is_empty() {
        errors.push(format!("{path}.exec.command"), "required");
    }
}

fn validate_http_get(h: &HttpGetAction, path: &str, c: &Container, errors: &mut Errors) {
    validate_port(&h.port, &format!("{path}.port"), c, errors);
    match h.scheme.as_deref() {
        None | Some("HTTP") => {}
        Some("HTTPS") => errors.push(
            format!("{path}.scheme"),
            "not supported: HTTPS probes need TLS, which picolet does not link yet",
        ),
        Some(other) => errors.push(
            format!("{path}.scheme"),
            format!("unsupported value {other:?}: HTTP or HTTPS"),
        ),
    }
    if h.path
        .as_deref()
        .is_some_and(|p| !p.starts_with('/') && !p.is_empty())
    {
        errors.push(format!("{path}.path"), "must be an absolute path");
    }
    for (i, header) in h.http_headers.iter().enumerate() {
        let ok = !header.name.is_empty()
            && header
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
        if !ok {
            errors.push(
                format!("{path}.httpHeaders[{i}].name"),
                format!("{:?} is not a valid HTTP header name", header.name),
            );
        }
    }
}

/// A port by number (1-65535) or by the name of one of the container's ports.
fn validate_port(port: &IntOrString, path: &str, c: &Container, errors: &mut Errors) {
    match port {
        IntOrString::Int(n) if !(1..=65535).contains(n) => {
            errors.push(path.to_string(), "must be between 1 and 65535")
        }
        IntOrString::Int(_) => {}
        IntOrString::Str(name) => {
            if let Err(m) = port_name(name) {
                errors.push(path.to_string(), m);
            } else if !c
                .ports
                .iter()
                .any(|p| p.name.as_deref() == Some(name.as_str()))
            {
                errors.push(
                    path.to_string(),
                    format!("no container port named {name:?}"),
                );
            }
        }
    }
}

fn validate_ports(c: &Container, path: &str, host_network: bool, errors: &mut Errors) {
    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        if !(1..=65535).contains(&p.container_port) {
            errors.push(
                format!("{ppath}.containerPort"),
                "must be between 1 and 65535",
            );
        }
        if let Some(proto) = &p.protocol {
            if !matches!(proto.as_str(), "TCP" | "UDP" | "SCTP") {
                errors.push(
                    format!("{ppath}.protocol"),
                    format!("unsupported value {proto:?}: TCP, UDP or SCTP"),
                );
            }
        }
        if let Some(name) = &p.name {
            if let Err(m) = port_name(name) {
                errors.push(format!("{ppath}.name"), m);
            } else if !port_names.insert(name.as_str()) {
                errors.push(
                    format!("{ppath}.name"),
                    format!("duplicate port name {name:?}"),
                );
            }
        }
        if let Some(host_port) = p.host_port {
            if !(1..=65535).contains(&host_port) {
                errors.push(format!("{ppath}.hostPort"), "must be between 1 and 65535");
            } else if !host_network {
                errors.push(
                    format!("{ppath}.hostPort"),
                    "not supported without hostNetwork (picolet has no port mapping)",
                );
            } else if host_port != p.container_port {
                errors.push(
                    format!("{ppath}.hostPort"),
                    "must match containerPort when hostNetwork is true",
                );
            }
        }
    }
}

fn validate_volumes<'a>(
    volumes: &'a [Volume],
    pod: &Pod,
    errors: &mut Errors,
) -> BTreeSet<&'a str> {
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}]");
        if let Err(m) = dns1123_label(&v.name) {
            errors.push(format!("{path}.name"), m);
        } else if !names.insert(v.name.as_str()) {
            errors.push(
                format!("{path}.name"),
                format!("duplicate name {:?}", v.name),
            );
        }
        for key in v.unsupported.keys() {
            errors.unsupported(format!("{path}.{key}"));
        }
        let sources = usize::from(v.empty_dir.is_some())
            + usize::from(v.host_path.is_some())
            + usize::from(v.config_map.is_some())
            + usize::from(v.secret.is_some())
            + usize::from(v.downward_api.is_some());
        let items = v
            .config_map
            .iter()
            .map(|c| ("configMap", &c.items))
            .chain(v.secret.iter().map(|s| ("secret", &s.items)));
        for (field, items) in items {
            for (j, item) in items.iter().enumerate() {
                validate_file_path(
                    &item.path,
                    format!("{path}.{field}.items[{j}].path"),
                    errors,
                );
                if item.key.is_empty() {
                    errors.push(format!("{path}.{field}.items[{j}].key"), "required");
                }
                validate_file_mode(item.mode, format!("{path}.{field}.items[{j}].mode"), errors);
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
                errors.push(format!("{path}.{field}"), "required");
            } else if let Err(m) = dns1123_subdomain(name) {
                errors.push(format!("{path}.{field}"), m);
            }
        }
        if let Some(d) = &v.downward_api {
            for (j, item) in d.items.iter().enumerate() {
                let ipath = format!("{path}.downwardAPI.items[{j}]");
                validate_file_path(&item.path, format!("{ipath}.path"), errors);
                validate_file_mode(item.mode, format!("{ipath}.mode"), errors);
                match (&item.field_ref, &item.resource_field_ref) {
                    (Some(f), None) => {
                        if !refs::field_allowed(f, &refs::VOLUME_FIELDS, false) {
                            errors.push(
                                format!("{ipath}.fieldRef.fieldPath"),
                                format!("unsupported value {:?}", f.field_path),
                            );
                        }
                    }
                    (None, Some(r)) => validate_resource_ref(
                        r,
                        &format!("{ipath}.resourceFieldRef"),
                        pod,
                        true,
                        errors,
                    ),
                    _ => errors.push(
                        ipath,
                        "must specify exactly one of fieldRef and resourceFieldRef",
                    ),
                }
            }
        }
        if sources + v.unsupported.len() == 0 {
            errors.push(path.clone(), "must specify a volume type");
        } else if sources + v.unsupported.len() > 1 {
            errors.push(path.clone(), "may not specify more than one volume type");
        }
        if let Some(e) = &v.empty_dir {
            if !matches!(e.medium.as_str(), "" | "Memory") {
                errors.unsupported(format!("{path}.emptyDir.medium"));
            }
            if let Some(limit) = &e.size_limit {
                if let Err(m) = quantity::bytes_of(limit) {
                    errors.push(format!("{path}.emptyDir.sizeLimit"), m);
                }
            }
        }
        if let Some(h) = &v.host_path {
            if !h.path.starts_with('/') {
                errors.push(format!("{path}.hostPath.path"), "must be an absolute path");
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
                    format!("unsupported value {:?}", h.kind),
                );
            }
        }
    }
    names
}

fn validate_env_source(
    env: &super::EnvVar,
    from: &super::EnvVarSource,
    path: &str,
    pod: &Pod,
    errors: &mut Errors,
) {
    let fpath = format!("{path}.valueFrom");
    if env.value.as_deref().is_some_and(|v| !v.is_empty()) {
        errors.push(
            fpath.clone(),
            "may not be specified when `value` is not empty",
        );
    }
    let sources = usize::from(from.field_ref.is_some())
        + usize::from(from.resource_field_ref.is_some())
        + usize::from(from.config_map_key_ref.is_some())
        + usize::from(from.secret_key_ref.is_some());
    if sources != 1 {
        errors.push(fpath.clone(), "must specify exactly one source");
    }
    if let Some(f) = &from.field_ref {
        if !refs::field_allowed(f, &refs::ENV_FIELDS, true) {
            errors.push(
                format!("{fpath}.fieldRef.fieldPath"),
                format!("unsupported value {:?}", f.field_path),
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
            errors.push(format!("{fpath}.{field}.name"), "required");
        } else if let Err(m) = dns1123_subdomain(&k.name) {
            errors.push(format!("{fpath}.{field}.name"), m);
        }
        if k.key.is_empty() {
            errors.push(format!("{fpath}.{field}.key"), "required");
        } else if let Err(m) = config_map_key(&k.key) {
            errors.push(format!("{fpath}.{field}.key"), m);
        }
    }
}

fn validate_resource_ref(
    r: &super::ResourceFieldSelector,
    path: &str,
    pod: &Pod,
    needs_container: bool,
    errors: &mut Errors,
) {
    if !refs::RESOURCES.contains(&r.resource.as_str()) {
        errors.push(
            format!("{path}.resource"),
            format!("unsupported value {:?}", r.resource),
        );
    }
    match r.container_name.as_deref() {
        None | Some("") if needs_container => {
            errors.push(format!("{path}.containerName"), "required")
        }
        Some(name) if !name.is_empty() && pod.container(name).is_none() => errors.push(
            format!("{path}.containerName"),
            format!("container {name:?} not found"),
        ),
        _ => {}
    }
    if let Some(d) = &r.divisor {
        let parsed = if r.resource.ends_with("cpu") {
            quantity::millicores_of(d).map(drop)
        } else {
            quantity::bytes_of(d).map(drop)
        };
        if let Err(m) = parsed {
            errors.push(format!("{path}.divisor"), m);
        }
    }
}

/// A volume file path, as the API server's `ValidateLocalNonReservedPath`.
fn validate_file_path(p: &str, path: String, errors: &mut Errors) {
    let checked = if p.is_empty() {
        Err("required".to_string())
    } else {
        local_non_reserved_path(p)
    };
    if let Err(m) = checked {
        errors.push(path, m);
    }
}

/// A volume file's mode: permission bits only, as the API server requires
/// (a set-user-ID bit on a file written as root would make it a way to root
/// inside the container).
fn validate_file_mode(mode: Option<u32>, path: String, errors: &mut Errors) {
    if mode.is_some_and(|m| m > 0o777) {
        errors.push(
            path,
            "must be a number between 0 and 0777 (octal), both inclusive",
        );
    }
}

/// The longest path and path element a volume file or subPath may have, as
/// the kubelet's atomic writer allows (and Linux's PATH_MAX / NAME_MAX).
const MAX_PATH: usize = 4096;
const MAX_ELEMENT: usize = 255;

/// A path that stays below the directory it is joined to, as the API
/// server's `validateLocalDescendingPath` (used for subPath and volume file
/// paths): relative, no `..` element; and, since it becomes a file name,
/// no NUL and within the file system's length limits.
pub fn local_descending_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') {
        return Err(format!("{p:?} must be a relative path"));
    }
    if p.contains('\0') {
        return Err(format!("{p:?} must not contain NUL"));
    }
    if p.split('/').any(|part| part == "..") {
        return Err(format!("{p:?} must not contain '..'"));
    }
    if p.len() > MAX_PATH || p.split('/').any(|part| part.len() > MAX_ELEMENT) {
        return Err(format!(
            "is {} bytes: at most {MAX_PATH}, and {MAX_ELEMENT} per element",
            p.len()
        ));
    }
    Ok(())
}

/// `local_descending_path` that does not start with `..` either (the
/// kubelet's atomic writer keeps its own `..data` names there), as the API
/// server's `ValidateLocalNonReservedPath`.
fn local_non_reserved_path(p: &str) -> Result<(), String> {
    local_descending_path(p)?;
    if p.starts_with("..") {
        return Err(format!("{p:?} must not start with '..'"));
    }
    Ok(())
}

/// A ConfigMap or Secret key, as the API server's `IsConfigMapKey`: at most
/// 253 of `[-._a-zA-Z0-9]`, not `.` or `..`. A key becomes a file name in
/// a volume.
pub fn config_map_key(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && s != "."
        && s != "..";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid key (at most 253 of '-', '.', '_' and alphanumerics, not '.' or '..')"
        ))
    }
}

/// The longest `metadata.uid` accepted: a DNS label's length, room for an
/// RFC 4122 UUID (36, what API servers assign) and the kubelet's and
/// picolet's 32-digit hex hashes.
const MAX_UID: usize = 63;

/// A pod UID given in a manifest or by a server. An API server makes UUIDs
/// and the kubelet keeps a static pod's as given, unchecked; here it names
/// the pod's directories (`<root>/pods/<uid>`, the log directory
/// `<namespace>_<name>_<uid>`, container ids `<uid>_<container>_<n>`), so
/// only ASCII alphanumerics and '-' are allowed: never `.`, `..`, '/' or
/// NUL, and no '_', which separates the parts of those names.
pub fn pod_uid(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_UID
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid pod UID (1-{MAX_UID} ASCII letters, digits and '-', as a UUID)"
        ))
    }
}

/// A DNS-1123 label: at most 63 lowercase alphanumerics or '-', alphanumeric at both ends.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1123 label (at most 63 lowercase alphanumerics or '-', starting and ending alphanumeric)"
        ))
    }
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() <= 253 && s.split('.').all(|l| dns1123_label(l).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1123 subdomain (lowercase alphanumerics, '-' and '.', at most 253)"
        ))
    }
}

/// IANA_SVC_NAME: at most 15 lowercase alphanumerics or '-', with a letter, no "--".
fn port_name(s: &str) -> Result<(), String> {
    let ok = dns1123_label(s).is_ok()
        && s.len() <= 15
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid port name (IANA_SVC_NAME)"))
    }
}

/// Every Linux capability Kubernetes accepts, without the `CAP_` prefix.
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The canonical `CAP_*` name of a Kubernetes capability name (`NET_ADMIN`);
/// `ALL` gives `CAP_ALL`.
pub fn capability_name(name: &str) -> Option<String> {
    let bare = name
        .strip_prefix("CAP_")
        .unwrap_or(name)
        .to_ascii_uppercase();
    (bare == "ALL" || CAPABILITIES.contains(&bare.as_str())).then(|| format!("CAP_{bare}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::decode::decode_manifest;

    fn errors_of(yaml: &str) -> Vec<String> {
        let pod = decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod;
        validate(&pod).iter().map(ToString::to_string).collect()
    }

    const HEAD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n";

    #[test]
    fn seccomp_profiles_runtime_default_and_unconfined_only() {
        let pod = |pod_sc: &str, container_sc: &str| {
            errors_of(&format!(
                "{HEAD}  securityContext: {{seccompProfile: {pod_sc}}}\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {{seccompProfile: {container_sc}}}\n"
            ))
        };
        assert!(pod("{type: RuntimeDefault}", "{type: Unconfined}").is_empty());
        assert_eq!(
            pod("{type: Localhost, localhostProfile: x.json}", "{type: Unconfined}"),
            ["spec.securityContext.seccompProfile.type: \"Localhost\" is not supported: use RuntimeDefault or Unconfined"]
        );
        assert_eq!(
            pod("{type: RuntimeDefault}", "{type: Bogus, localhostProfile: x.json}"),
            [
                "spec.containers[0].securityContext.seccompProfile.type: unsupported value \"Bogus\": RuntimeDefault, Unconfined or Localhost",
                "spec.containers[0].securityContext.seccompProfile.localhostProfile: can only be set when the type is Localhost"
            ]
        );
        assert_eq!(
            pod("{type: Unconfined}", "{}"),
            ["spec.containers[0].securityContext.seccompProfile.type: required"]
        );
    }

    #[test]
    fn a_plain_pod_is_valid() {
        let errs = errors_of(&format!(
            "{HEAD}  containers:\n  - name: c\n    image: busybox\n"
        ));
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn unsupported_volume_type_is_named_by_path() {
        let errs = errors_of(&format!(
            "{HEAD}  volumes:\n  - name: a\n    emptyDir: {{}}\n  - name: b\n    nfs:\n      server: x\n      path: /\n  containers:\n  - name: c\n    image: busybox\n"
        ));
        assert_eq!(errs, ["spec.volumes[1].nfs: not supported"]);
    }

    #[test]
    fn names_images_and_duplicates() {
        let errs = errors_of(&format!(
            "{HEAD}  initContainers:\n  - name: c\n    image: busybox\n  containers:\n  - name: c\n    image: ''\n  - name: Bad_Name\n    image: busybox\n"
        ));
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("spec.containers[0].name: duplicate"));
        assert_eq!(errs[1], "spec.containers[0].image: required");
        assert!(
            errs[2].starts_with("spec.containers[1].name: \"Bad_Name\" is not a DNS-1123 label")
        );
    }

    #[test]
    fn probes_are_forbidden_on_plain_init_containers() {
        let errs = errors_of(&format!(
            "{HEAD}  initContainers:\n  - name: i\n    image: busybox\n    livenessProbe:\n      exec:\n        command: [\"true\"]\n  containers:\n  - name: c\n    image: busybox\n    restartPolicy: Always\n"
        ));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("spec.initContainers[0].livenessProbe: forbidden"));
        assert!(errs[1].starts_with("spec.containers[0].restartPolicy: forbidden"));
    }

    #[test]
    fn sidecars_take_probes_and_hooks_and_probes_are_checked() {
        let errs = errors_of(&format!(
            "{HEAD}  initContainers:\n  - name: side\n    image: busybox\n    restartPolicy: Always\n    startupProbe:\n      exec:\n        command: [\"true\"]\n    lifecycle:\n      preStop:\n        sleep:\n          seconds: 1\n  - name: bad\n    image: busybox\n    restartPolicy: OnFailure\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - name: http\n      containerPort: 80\n    livenessProbe:\n      httpGet:\n        port: http\n      successThreshold: 2\n    readinessProbe:\n      tcpSocket:\n        port: web\n      terminationGracePeriodSeconds: 3\n    lifecycle:\n      postStart:\n        exec:\n          command: []\n"
        ));
        assert_eq!(
            errs,
            [
                "spec.initContainers[1].restartPolicy: unsupported value \"OnFailure\": only \"Always\" is allowed",
                "spec.containers[0].livenessProbe.successThreshold: must be 1",
                "spec.containers[0].readinessProbe.tcpSocket.port: no container port named \"web\"",
                "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: must not be set for readinessProbes",
                "spec.containers[0].lifecycle.postStart.exec.command: required",
            ]
        );
    }

    #[test]
    fn a_probe_or_hook_names_exactly_one_handler() {
        let errs = errors_of(&format!(
            "{HEAD}  containers:\n  - name: c\n    image: busybox\n    readinessProbe:\n      periodSeconds: 5\n    lifecycle:\n      preStop:\n        exec:\n          command: [\"true\"]\n        sleep:\n          seconds: 1\n"
        ));
        assert_eq!(
            errs,
            [
                "spec.containers[0].readinessProbe: must specify a handler type",
                "spec.containers[0].lifecycle.preStop: may not specify more than one handler type",
            ]
        );
    }

    #[test]
    fn behaviour_changing_fields_are_errors() {
        let errs = errors_of(&format!(
            "{HEAD}  hostPID: true\n  containers:\n  - name: c\n    image: busybox\n    tty: true\n    env:\n    - name: A\n      valueFrom:\n        fieldRef:\n          fieldPath: metadata.name\n"
        ));
        assert_eq!(errs[0], "spec.hostPID: not supported");
        assert_eq!(errs[1], "spec.containers[0].tty: not supported");
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn env_sources_and_api_volumes_are_checked_by_path() {
        let errs = errors_of(&format!(
            "{HEAD}  volumes:\n  - name: cfg\n    configMap:\n      name: app\n      items: [{{key: a, path: ../escape}}]\n  - name: info\n    downwardAPI:\n      items:\n      - path: ip\n        fieldRef: {{fieldPath: status.podIP}}\n      - path: mem\n        resourceFieldRef: {{resource: limits.memory}}\n  containers:\n  - name: c\n    image: busybox\n    env:\n    - name: A\n      value: x\n      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}\n    - name: B\n      valueFrom: {{fieldRef: {{fieldPath: spec.nope}}}}\n    - name: C\n      valueFrom: {{resourceFieldRef: {{resource: limits.gpu, containerName: other}}}}\n    - name: D\n      valueFrom: {{secretKeyRef: {{name: s, key: ''}}}}\n    - name: E\n      valueFrom: {{fieldRef: {{fieldPath: \"metadata.labels['app']\"}}}}\n    envFrom:\n    - configMapRef: {{name: a}}\n      secretRef: {{name: b}}\n"
        ));
        assert_eq!(
            errs,
            [
                "spec.volumes[0].configMap.items[0].path: \"../escape\" must not contain '..'",
                "spec.volumes[1].downwardAPI.items[0].fieldRef.fieldPath: unsupported value \"status.podIP\"",
                "spec.volumes[1].downwardAPI.items[1].resourceFieldRef.containerName: required",
                "spec.containers[0].env[0].valueFrom: may not be specified when `value` is not empty",
                "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: unsupported value \"spec.nope\"",
                "spec.containers[0].env[2].valueFrom.resourceFieldRef.resource: unsupported value \"limits.gpu\"",
                "spec.containers[0].env[2].valueFrom.resourceFieldRef.containerName: container \"other\" not found",
                "spec.containers[0].env[3].valueFrom.secretKeyRef.key: required",
                "spec.containers[0].envFrom[0]: must specify exactly one of configMapRef and secretRef",
            ]
        );
    }

    #[test]
    fn ports_and_mounts_are_checked() {
        let errs = errors_of(&format!(
            "{HEAD}  containers:\n  - name: c\n    image: busybox\n    ports:\n    - containerPort: 70000\n    - containerPort: 80\n      hostPort: 8080\n    volumeMounts:\n    - name: missing\n      mountPath: rel\n"
        ));
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("spec.containers[0].ports[0].containerPort"));
        assert!(errs[1].starts_with("spec.containers[0].ports[1].hostPort: not supported"));
        assert!(errs[2].starts_with("spec.containers[0].volumeMounts[0].name"));
        assert!(errs[3].starts_with("spec.containers[0].volumeMounts[0].mountPath"));
    }

    /// The attack strings of issue 13 and their neighbours.
    const HOSTILE: [&str; 6] = ["../../../tmp/x", "..", ".", "a/b", "a\0b", ""];

    #[test]
    fn a_pod_uid_is_one_safe_path_component() {
        for uid in HOSTILE.iter().copied().chain([
            "../../../../../../../../tmp/victim2",
            "/abs",
            "a_b",
            "a b",
        ]) {
            let e = pod_uid(uid).unwrap_err();
            assert!(e.contains("is not a valid pod UID"), "{uid:?}: {e}");
        }
        assert!(pod_uid(&"a".repeat(64)).is_err(), "64 bytes is too long");
        assert!(pod_uid(&"a".repeat(300)).is_err());
        for uid in [
            "0b0f4c5e-8d9a-4a56-9a4b-3f1a2c7d9e10",
            "9f86d081884c7d659a2feaa0c55ad015",
            "web-1",
            &"a".repeat(63),
        ] {
            assert_eq!(pod_uid(uid), Ok(()), "{uid:?}");
        }
    }

    #[test]
    fn a_manifest_uid_that_is_a_path_is_refused_by_field() {
        let errs = errors_of(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  uid: ../../../../../../../../tmp/victim2\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "metadata.uid: \"../../../../../../../../tmp/victim2\" is not a valid pod UID"
            ),
            "{errs:?}"
        );
        let errs = errors_of(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  uid: '..'\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
        );
        assert!(errs[0].starts_with("metadata.uid: \"..\""), "{errs:?}");
    }

    #[test]
    fn names_that_become_paths_are_labels_or_subdomains() {
        let long = "a".repeat(300);
        for name in HOSTILE.iter().copied().chain([long.as_str()]) {
            assert!(dns1123_label(name).is_err(), "{name:?}");
            assert!(dns1123_subdomain(name).is_err(), "{name:?}");
        }
        assert!(
            dns1123_subdomain(&"a".repeat(253)).is_err(),
            "253 a's: a label over 63"
        );
        assert_eq!(dns1123_subdomain("app.config-1"), Ok(()));
    }

    #[test]
    fn keys_are_config_map_keys() {
        for key in HOSTILE.iter().copied().chain(["a b", "k=v"]) {
            let e = config_map_key(key).unwrap_err();
            assert!(e.contains("is not a valid key"), "{key:?}: {e}");
        }
        assert!(config_map_key(&"k".repeat(254)).is_err());
        for key in ["app.properties", "..a", ".env", "K_1-x", &"k".repeat(253)] {
            assert_eq!(config_map_key(key), Ok(()), "{key:?}");
        }
    }

    #[test]
    fn descending_paths_stay_below_their_directory() {
        for (p, want) in [
            ("../../../tmp/x", "must not contain '..'"),
            ("..", "must not contain '..'"),
            ("a/../../b", "must not contain '..'"),
            ("/etc/passwd", "must be a relative path"),
            ("a\0b", "must not contain NUL"),
        ] {
            let e = local_descending_path(p).unwrap_err();
            assert!(e.ends_with(want), "{p:?}: {e}");
        }
        let e = local_descending_path(&format!("a/{}", "b".repeat(300))).unwrap_err();
        assert!(e.starts_with("is 302 bytes"), "{e}");
        for p in ["x", "a/b", "./x", "..x", "a/..b"] {
            assert_eq!(local_descending_path(p), Ok(()), "{p:?}");
        }
        assert_eq!(
            local_non_reserved_path("..data/x"),
            Err("\"..data/x\" must not start with '..'".to_string())
        );
    }

    #[test]
    fn identifiers_in_volumes_mounts_and_env_are_checked_by_path() {
        let errs = errors_of(&format!(
            "{HEAD}  volumes:\n  - name: cfg\n    configMap:\n      name: ../../x\n      defaultMode: 2541\n      items: [{{key: a, path: /etc/x, mode: 511}}]\n  - name: sec\n    secret:\n      secretName: A/B\n  - name: data\n    emptyDir: {{}}\n  containers:\n  - name: c\n    image: busybox\n    volumeMounts:\n    - name: data\n      mountPath: /d\n      subPath: ../../../tmp/x\n    - name: data\n      mountPath: /e\n      subPath: /abs\n    env:\n    - name: A\n      valueFrom: {{configMapKeyRef: {{name: '..', key: ../k}}}}\n    envFrom:\n    - secretRef: {{name: a/b}}\n"
        ));
        let fields: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            fields,
            [
                "spec.volumes[0].configMap.items[0].path",
                "spec.volumes[0].configMap.defaultMode",
                "spec.volumes[0].configMap.name",
                "spec.volumes[1].secret.secretName",
                "spec.containers[0].env[0].valueFrom.configMapKeyRef.name",
                "spec.containers[0].env[0].valueFrom.configMapKeyRef.key",
                "spec.containers[0].envFrom[0].name",
                "spec.containers[0].volumeMounts[0].subPath",
                "spec.containers[0].volumeMounts[1].subPath",
            ],
            "{errs:?}"
        );
        assert!(errs[0].ends_with("\"/etc/x\" must be a relative path"));
        assert!(errs[7].ends_with("\"../../../tmp/x\" must not contain '..'"));
    }

    #[test]
    fn capability_names() {
        assert_eq!(
            capability_name("NET_ADMIN").as_deref(),
            Some("CAP_NET_ADMIN")
        );
        assert_eq!(capability_name("CAP_chown").as_deref(), Some("CAP_CHOWN"));
        assert_eq!(capability_name("NOPE"), None);
    }
}

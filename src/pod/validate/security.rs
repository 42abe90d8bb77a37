//! Security contexts, pod and container: seccomp profiles, capabilities,
//! privilege, and the Linux security modules picolet does not implement.
//! Also the list of capability names, which the runtime maps to bits.

use super::error::{Errors, Fault};
use crate::pod::{PodSecurityContext, SeccompProfile, SecurityContext};

/// The pod's `spec.securityContext`.
pub(super) fn validate_pod_security(sc: &PodSecurityContext, errors: &mut Errors) {
    errors.unsupported_fields(
        "spec.securityContext",
        &[
            ("fsGroup", sc.fs_group.is_some()),
            ("sysctls", sc.sysctls.is_some()),
            ("seLinuxOptions", sc.se_linux_options.is_some()),
            ("appArmorProfile", sc.app_armor_profile.is_some()),
        ],
    );
    if let Some(p) = &sc.seccomp_profile {
        validate_seccomp(p, "spec.securityContext.seccompProfile", errors);
    }
}

/// A container's `securityContext`, at `path`.
pub(super) fn validate_container_security(sc: &SecurityContext, path: &str, errors: &mut Errors) {
    if let Some(p) = &sc.seccomp_profile {
        validate_seccomp(p, &format!("{path}.seccompProfile"), errors);
    }
    errors.unsupported_fields(
        path,
        &[
            ("seLinuxOptions", sc.se_linux_options.is_some()),
            ("appArmorProfile", sc.app_armor_profile.is_some()),
            (
                "procMount",
                sc.proc_mount.as_deref().is_some_and(|p| p != "Default"),
            ),
        ],
    );
    if let Some(caps) = &sc.capabilities {
        for (list, names) in [("add", &caps.add), ("drop", &caps.drop)] {
            for (i, name) in names.iter().enumerate() {
                if capability_name(name).is_none() {
                    errors.push(
                        format!("{path}.capabilities.{list}[{i}]"),
                        Fault::UnknownCapability(name.clone()),
                    );
                }
            }
        }
    }
    if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
        errors.invalid(
            path,
            "cannot set allowPrivilegeEscalation to false and privileged to true",
        );
    }
}

/// The API server's rules for a seccomp profile; `Localhost` (a profile
/// file on the node) is not implemented.
fn validate_seccomp(p: &SeccompProfile, path: &str, errors: &mut Errors) {
    match p.kind.as_str() {
        "RuntimeDefault" | "Unconfined" => {}
        "Localhost" => errors.invalid(
            format!("{path}.type"),
            "\"Localhost\" is not supported: use RuntimeDefault or Unconfined",
        ),
        "" => errors.required(format!("{path}.type")),
        other => errors.push(
            format!("{path}.type"),
            Fault::UnsupportedValue {
                value: other.to_string(),
                allowed: Some("RuntimeDefault, Unconfined or Localhost"),
            },
        ),
    }
    if p.localhost_profile.is_some() && p.kind != "Localhost" {
        errors.invalid(
            format!("{path}.localhostProfile"),
            "can only be set when the type is Localhost",
        );
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

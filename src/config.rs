//! The agent's configuration: a YAML file whose keys follow
//! KubeletConfiguration where one exists, overridden by command-line flags.
//! `configs/picolet.yaml` documents every key.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file as written. Every field is optional; defaults below.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub static_pod_path: Option<PathBuf>,
    pub node_name: Option<String>,
    pub root_dir: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub pod_logs_dir: Option<PathBuf>,
    pub runtime: Option<PathBuf>,
    pub cgroups: Option<CgroupMode>,
    pub container_log_max_size: Option<String>,
    pub container_log_max_files: Option<usize>,
    pub crash_loop_back_off: Option<CrashLoopBackOffConfig>,
    pub cgroup_root: Option<String>,
    pub pod_pids_limit: Option<i64>,
    pub system_reserved: Option<Reserved>,
    pub kube_reserved: Option<Reserved>,
    #[serde(rename = "staticPodURL")]
    pub static_pod_url: Option<String>,
    #[serde(rename = "staticPodURLHeader")]
    pub static_pod_url_header: Option<std::collections::BTreeMap<String, Vec<String>>>,
    #[serde(rename = "staticPodURLCAFile")]
    pub static_pod_url_ca_file: Option<PathBuf>,
    #[serde(rename = "staticPodURLAllowHTTP")]
    pub static_pod_url_allow_http: Option<bool>,
    pub http_check_frequency: Option<String>,
    /// Node mode: join the cluster this kubeconfig points at.
    pub kubeconfig: Option<PathBuf>,
    /// Node mode: accept a kubeconfig with `insecure-skip-tls-verify: true`.
    pub allow_insecure_kubeconfig: Option<bool>,
    /// What pods from the manifest URL and the API server may do here.
    pub node_policy: Option<crate::pod::policy::NodePolicy>,
    /// KubeletConfiguration `seccompDefault`: RuntimeDefault for
    /// containers that name no seccomp profile.
    pub seccomp_default: Option<bool>,
    /// The most bytes one image may unpack to, as a quantity.
    pub image_unpack_limit: Option<String>,
}

/// KubeletConfiguration's `systemReserved` / `kubeReserved`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserved {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrashLoopBackOffConfig {
    /// KubeletConfiguration's `crashLoopBackOff.maxContainerRestartPeriod`.
    pub max_container_restart_period: Option<String>,
    /// picolet's own: the first back-off (the kubelet's is fixed at 10s).
    pub initial_container_restart_period: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    V2,
    Off,
}

/// The resolved configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub static_pod_path: PathBuf,
    pub node_name: String,
    pub root_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_dir: PathBuf,
    pub runtime: Option<PathBuf>,
    pub cgroups: CgroupMode,
    pub log_max_size: u64,
    pub log_max_files: usize,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub cgroup_root: String,
    pub pod_pids_limit: i64,
    /// Millicores and bytes held back from pods (systemReserved + kubeReserved).
    pub reserved_cpu: u64,
    pub reserved_memory: u64,
    /// The manifest URL source, when `staticPodURL` is set.
    pub manifest_url: Option<crate::source::url::UrlConfig>,
    /// Node mode, when a kubeconfig is given.
    pub node: Option<crate::source::api::NodeConfig>,
    /// What pods from the manifest URL and the API server may do here.
    pub node_policy: crate::pod::policy::NodePolicy,
    pub seccomp_default: bool,
    /// `imageUnpackLimit` in bytes; `None`: half the free space of rootDir.
    pub image_unpack_limit: Option<u64>,
}

impl Config {
    /// Defaults, then the file (if any), then `flags` (already parsed).
    pub fn load(file: Option<&Path>, flags: &ConfigFile) -> Result<Config, String> {
        let from_file = match file {
            None => ConfigFile::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                crate::yaml::check(text.as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let de = serde_yaml::Deserializer::from_str(&text);
                serde_path_to_error::deserialize(de)
                    .map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner()))?
            }
        };
        let pick = |f: &ConfigFile| f.clone();
        let merged = merge(pick(&from_file), pick(flags));
        let node_name = merged
            .node_name
            .clone()
            .unwrap_or_else(|| {
                rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned()
            })
            .to_lowercase();
        crate::pod::validate::dns1123_subdomain(&node_name)
            .map_err(|m| format!("nodeName: {m}"))?;
        let backoff = merged.crash_loop_back_off.clone().unwrap_or_default();
        let duration =
            |field: &str, v: &Option<String>, default: u64| -> Result<Duration, String> {
                v.as_deref()
                    .map(|s| parse_duration(s).map_err(|m| format!("{field}: {m}")))
                    .unwrap_or(Ok(Duration::from_secs(default)))
            };
        let log_max_size = match &merged.container_log_max_size {
            Some(s) => crate::pod::quantity::parse_bytes(s)
                .map_err(|m| format!("containerLogMaxSize: {m}"))?,
            None => 10 << 20,
        };
        let image_unpack_limit = match &merged.image_unpack_limit {
            Some(s) => Some(
                crate::pod::quantity::parse_bytes(s)
                    .map_err(|m| format!("imageUnpackLimit: {m}"))?,
            ),
            None => None,
        };
        let mut reserved_cpu = 0;
        let mut reserved_memory = 0;
        for (field, r) in [
            ("systemReserved", &merged.system_reserved),
            ("kubeReserved", &merged.kube_reserved),
        ] {
            let Some(r) = r else { continue };
            if let Some(cpu) = &r.cpu {
                reserved_cpu = crate::pod::quantity::parse_millicores(cpu)
                    .map_err(|m| format!("{field}.cpu: {m}"))?
                    .saturating_add(reserved_cpu);
            }
            if let Some(memory) = &r.memory {
                reserved_memory = crate::pod::quantity::parse_bytes(memory)
                    .map_err(|m| format!("{field}.memory: {m}"))?
                    .saturating_add(reserved_memory);
            }
        }
        let manifest_url = match &merged.static_pod_url {
            None => None,
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(format!(
                    "staticPodURL: {url:?} is not an http:// or https:// URL"
                ))
            }
            Some(url)
                if url.starts_with("http://") && merged.static_pod_url_allow_http != Some(true) =>
            {
                return Err(format!(
                    "staticPodURL: {url:?} is plain HTTP: anyone on the way could read and change the pods and the staticPodURLHeader; use https://, or set staticPodURLAllowHTTP: true"
                ))
            }
            Some(url) => Some(crate::source::url::UrlConfig {
                allow_http: merged.static_pod_url_allow_http == Some(true),
                url: url.clone(),
                headers: merged.static_pod_url_header.clone().unwrap_or_default(),
                ca_file: merged.static_pod_url_ca_file.clone(),
                interval: duration("httpCheckFrequency", &merged.http_check_frequency, 20)?,
            }),
        };
        let node_policy = merged.node_policy.clone().unwrap_or_default();
        node_policy.check().map_err(|e| e.to_string())?;
        let node = merged
            .kubeconfig
            .clone()
            .map(|kubeconfig| crate::source::api::NodeConfig {
                kubeconfig,
                policy: node_policy.clone(),
                allow_insecure: merged.allow_insecure_kubeconfig == Some(true),
            });
        let config = Config {
            image_unpack_limit,
            node,
            node_policy,
            seccomp_default: merged.seccomp_default.unwrap_or(false),
            manifest_url,
            cgroup_root: merged
                .cgroup_root
                .clone()
                .unwrap_or_else(|| "/picolet".into()),
            pod_pids_limit: merged.pod_pids_limit.unwrap_or(-1),
            reserved_cpu,
            reserved_memory,
            static_pod_path: merged
                .static_pod_path
                .unwrap_or_else(|| "/etc/picolet/manifests".into()),
            node_name,
            root_dir: merged.root_dir.unwrap_or_else(|| "/var/lib/picolet".into()),
            run_dir: merged.run_dir.unwrap_or_else(|| "/run/picolet".into()),
            log_dir: merged
                .pod_logs_dir
                .unwrap_or_else(|| "/var/log/pods".into()),
            runtime: merged.runtime,
            cgroups: merged.cgroups.unwrap_or(CgroupMode::V2),
            log_max_size,
            log_max_files: merged.container_log_max_files.unwrap_or(5),
            backoff_initial: duration(
                "crashLoopBackOff.initialContainerRestartPeriod",
                &backoff.initial_container_restart_period,
                10,
            )?,
            backoff_max: duration(
                "crashLoopBackOff.maxContainerRestartPeriod",
                &backoff.max_container_restart_period,
                300,
            )?,
        };
        if config.log_max_files < 2 {
            return Err("containerLogMaxFiles: must be at least 2, as the kubelet requires".into());
        }
        if config.backoff_initial.is_zero() || config.backoff_initial > config.backoff_max {
            return Err(
                "crashLoopBackOff: the initial period must be positive and at most the maximum"
                    .into(),
            );
        }
        Ok(config)
    }
}

/// `over` wins field by field.
fn merge(base: ConfigFile, over: ConfigFile) -> ConfigFile {
    ConfigFile {
        api_version: over.api_version.or(base.api_version),
        kind: over.kind.or(base.kind),
        static_pod_path: over.static_pod_path.or(base.static_pod_path),
        node_name: over.node_name.or(base.node_name),
        root_dir: over.root_dir.or(base.root_dir),
        run_dir: over.run_dir.or(base.run_dir),
        pod_logs_dir: over.pod_logs_dir.or(base.pod_logs_dir),
        runtime: over.runtime.or(base.runtime),
        cgroups: over.cgroups.or(base.cgroups),
        container_log_max_size: over.container_log_max_size.or(base.container_log_max_size),
        container_log_max_files: over
            .container_log_max_files
            .or(base.container_log_max_files),
        crash_loop_back_off: over.crash_loop_back_off.or(base.crash_loop_back_off),
        cgroup_root: over.cgroup_root.or(base.cgroup_root),
        pod_pids_limit: over.pod_pids_limit.or(base.pod_pids_limit),
        system_reserved: over.system_reserved.or(base.system_reserved),
        kube_reserved: over.kube_reserved.or(base.kube_reserved),
        static_pod_url: over.static_pod_url.or(base.static_pod_url),
        static_pod_url_header: over.static_pod_url_header.or(base.static_pod_url_header),
        static_pod_url_ca_file: over.static_pod_url_ca_file.or(base.static_pod_url_ca_file),
        static_pod_url_allow_http: over
            .static_pod_url_allow_http
            .or(base.static_pod_url_allow_http),
        http_check_frequency: over.http_check_frequency.or(base.http_check_frequency),
        kubeconfig: over.kubeconfig.or(base.kubeconfig),
        node_policy: over.node_policy.or(base.node_policy),
        allow_insecure_kubeconfig: over
            .allow_insecure_kubeconfig
            .or(base.allow_insecure_kubeconfig),
        seccomp_default: over.seccomp_default.or(base.seccomp_default),
        image_unpack_limit: over.image_unpack_limit.or(base.image_unpack_limit),
    }
}

/// A Go duration: `300s`, `5m`, `1m30s`, `500ms`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
        };
        total = Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| total.checked_add(d))
            .filter(|t| *t <= MAX_DURATION)
            .ok_or_else(|| format!("{text:?}: out of range (Go's limit is about 292 years)"))?;
        rest = next;
    }
    Ok(total)
}

/// The longest Go duration (int64 nanoseconds); later sums and doublings
/// of a configured duration stay far from `Duration`'s own overflow.
const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_parses_with_the_defaults() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/picolet.yaml"));
        let c = Config::load(Some(path), &ConfigFile::default()).unwrap();
        assert_eq!(c.static_pod_path, PathBuf::from("/etc/picolet/manifests"));
        assert_eq!(c.root_dir, PathBuf::from("/var/lib/picolet"));
        assert_eq!(c.run_dir, PathBuf::from("/run/picolet"));
        assert_eq!(c.log_dir, PathBuf::from("/var/log/pods"));
        assert_eq!(c.cgroups, CgroupMode::V2);
        assert_eq!((c.log_max_size, c.log_max_files), (10 << 20, 5));
        assert_eq!(
            (c.backoff_initial, c.backoff_max),
            (Duration::from_secs(10), Duration::from_secs(300))
        );
        assert_eq!((c.cgroup_root.as_str(), c.pod_pids_limit), ("/picolet", -1));
        assert_eq!((c.reserved_cpu, c.reserved_memory), (100, 128 << 20));
        assert!(!c.seccomp_default);
        assert_eq!(c.node_policy, crate::pod::policy::NodePolicy::default());
    }

    #[test]
    fn seccomp_default_and_the_node_policy_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("picolet-config-p-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.yaml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), &ConfigFile::default())
        };
        let c = load("seccompDefault: true\nnodePolicy:\n  allowedHostPaths: [/data]\n  allowedCapabilities: [NET_ADMIN]\n  allowHostPID: true\n").unwrap();
        assert!(c.seccomp_default);
        assert_eq!(c.node_policy.allowed_host_paths, [PathBuf::from("/data")]);
        assert_eq!(c.node_policy.allowed_capabilities, ["NET_ADMIN"]);
        assert!(c.node_policy.allow_host_pid && !c.node_policy.allow_host_ipc);
        let err = load("nodePolicy:\n  allowedHostPaths: [/data, data]\n").unwrap_err();
        assert!(
            err.starts_with("nodePolicy.allowedHostPaths[1]: \"data\""),
            "{err}"
        );
        // The old boolean is gone: a config still using it says so.
        let err = load("nodePolicy:\n  allowHostPath: true\n").unwrap_err();
        assert!(err.contains("allowHostPath"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5d").is_err());
        // It panicked in Duration::from_secs_f64.
        let huge = format!("{}s", "9".repeat(400));
        assert_eq!(
            parse_duration(&huge),
            Err(format!(
                "{huge:?}: out of range (Go's limit is about 292 years)"
            ))
        );
        assert!(parse_duration("2562047h").is_ok());
        assert!(parse_duration("2562048h").is_err());
    }

    #[test]
    fn plain_http_urls_need_the_opt_in() {
        let url = |allow| ConfigFile {
            static_pod_url: Some("http://fleet.example/pods.yaml".into()),
            static_pod_url_allow_http: allow,
            ..ConfigFile::default()
        };
        let e = Config::load(None, &url(None)).unwrap_err();
        assert!(
            e.starts_with("staticPodURL: \"http://fleet.example/pods.yaml\" is plain HTTP")
                && e.ends_with("set staticPodURLAllowHTTP: true"),
            "{e}"
        );
        assert!(Config::load(None, &url(Some(false))).is_err());
        let c = Config::load(None, &url(Some(true))).unwrap();
        assert!(c.manifest_url.is_some_and(|u| u.allow_http));
    }

    #[test]
    fn flags_override_the_file_and_typos_are_errors() {
        let dir = std::env::temp_dir().join(format!("picolet-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.yaml");
        std::fs::write(&file, "staticPodPath: /a\nnodeName: Edge-1\ncontainerLogMaxSize: 1Mi\ncrashLoopBackOff:\n  maxContainerRestartPeriod: 20s\n  initialContainerRestartPeriod: 1s\n").unwrap();
        let flags = ConfigFile {
            static_pod_path: Some("/b".into()),
            ..ConfigFile::default()
        };
        let c = Config::load(Some(&file), &flags).unwrap();
        assert_eq!(c.static_pod_path, PathBuf::from("/b"));
        assert_eq!(c.node_name, "edge-1");
        assert_eq!(c.log_max_size, 1 << 20);
        assert_eq!(
            (c.backoff_initial, c.backoff_max),
            (Duration::from_secs(1), Duration::from_secs(20))
        );
        std::fs::write(&file, "staticPodPaht: /a\n").unwrap();
        let err = Config::load(Some(&file), &ConfigFile::default()).unwrap_err();
        assert!(err.contains("staticPodPaht"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_unpack_limit_is_a_quantity_of_bytes() {
        let limit = |value: &str| {
            let flags = ConfigFile {
                image_unpack_limit: Some(value.into()),
                ..ConfigFile::default()
            };
            Config::load(None, &flags).map(|c| c.image_unpack_limit)
        };
        assert_eq!(limit("2Gi"), Ok(Some(2 << 30)));
        assert_eq!(limit("500M"), Ok(Some(500_000_000)));
        let err = limit("lots").unwrap_err();
        assert!(err.starts_with("imageUnpackLimit: "), "{err}");
        let unset = Config::load(None, &ConfigFile::default()).unwrap();
        assert_eq!(unset.image_unpack_limit, None);
    }
}

//! The agent's configuration: a YAML file whose keys follow
//! KubeletConfiguration where one exists, overridden by command-line flags.
//! This module owns the file's schema ([`ConfigFile`]), the defaults, the
//! checks of each value, and the resolved [`Config`] the agent starts with;
//! `configs/picolet.yaml` documents every key.

use serde::Deserialize;
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file as written, and the flags as the same keys. Every field
/// is optional; [`Config::load`] fills in the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    /// KubeletConfiguration's header, accepted and not checked.
    pub api_version: Option<String>,
    /// KubeletConfiguration's header, accepted and not checked.
    pub kind: Option<String>,
    /// `staticPodPath` (`--manifests`): the directory of pod manifests.
    pub static_pod_path: Option<PathBuf>,
    /// `nodeName` (`--node-name`).
    pub node_name: Option<String>,
    /// `rootDir` (`--root`): durable state.
    pub root_dir: Option<PathBuf>,
    /// `runDir` (`--run-dir`): runtime state and the published files.
    pub run_dir: Option<PathBuf>,
    /// `podLogsDir` (`--log-dir`): container logs.
    pub pod_logs_dir: Option<PathBuf>,
    /// `runtime` (`--runtime`): the OCI runtime binary.
    pub runtime: Option<PathBuf>,
    /// `cgroups` (`--cgroups`): resource limits on or off.
    pub cgroups: Option<CgroupMode>,
    /// `containerLogMaxSize`: a quantity of bytes.
    pub container_log_max_size: Option<String>,
    /// `containerLogMaxFiles`: files per container, the live one included.
    pub container_log_max_files: Option<usize>,
    /// `crashLoopBackOff`: the restart back-off's periods.
    pub crash_loop_back_off: Option<CrashLoopBackOffConfig>,
    /// `cgroupRoot`: picolet's subtree of the cgroup v2 hierarchy.
    pub cgroup_root: Option<String>,
    /// `podPidsLimit`: the most processes per pod, -1 for no limit.
    pub pod_pids_limit: Option<i64>,
    /// `systemReserved`: resources held back from pods.
    pub system_reserved: Option<Reserved>,
    /// `kubeReserved`: resources held back from pods.
    pub kube_reserved: Option<Reserved>,
    /// `staticPodURL` (`--manifest-url`): the manifest URL.
    #[serde(rename = "staticPodURL")]
    pub static_pod_url: Option<String>,
    /// `staticPodURLHeader`: extra request headers, never logged.
    #[serde(rename = "staticPodURLHeader")]
    pub static_pod_url_header: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// `staticPodURLCAFile`: PEM roots for the manifest URL's server.
    #[serde(rename = "staticPodURLCAFile")]
    pub static_pod_url_ca_file: Option<PathBuf>,
    /// `staticPodURLAllowHTTP`: accept an http:// manifest URL.
    #[serde(rename = "staticPodURLAllowHTTP")]
    pub static_pod_url_allow_http: Option<bool>,
    /// `httpCheckFrequency`: how often the manifest URL is polled.
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
    /// `registryConfig` (`--registry-config`): k3s's registries.yaml.
    pub registry_config: Option<PathBuf>,
    /// `imageGCHighThresholdPercent`: disk use that starts image GC.
    #[serde(rename = "imageGCHighThresholdPercent")]
    pub image_gc_high_threshold_percent: Option<u8>,
    /// `imageGCLowThresholdPercent`: disk use image GC frees down to.
    #[serde(rename = "imageGCLowThresholdPercent")]
    pub image_gc_low_threshold_percent: Option<u8>,
    /// `imageMinimumGCAge`: an unused image younger than this stays.
    #[serde(rename = "imageMinimumGCAge")]
    pub image_minimum_gc_age: Option<String>,
    /// `imageMaximumGCAge`: an image unused this long goes; 0 never.
    #[serde(rename = "imageMaximumGCAge")]
    pub image_maximum_gc_age: Option<String>,
    /// picolet's own: archives imported at start (k3s's agent/images).
    pub image_import_dir: Option<PathBuf>,
}

/// Where images come from and when they go: the registries, the import
/// directory and image garbage collection's thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    /// registries.yaml; `/etc/picolet/registries.yaml` by default, and a
    /// missing file means no mirrors and no credentials.
    pub registry_config: PathBuf,
    /// Archives imported at start; `<rootDir>/import` by default.
    pub import_dir: PathBuf,
    /// Disk use (percent) at which GC starts; 85 by default, 100 never.
    pub gc_high_percent: u8,
    /// Disk use (percent) GC frees down to; 80 by default.
    pub gc_low_percent: u8,
    /// An unused image younger than this is kept; 2 minutes by default.
    pub gc_min_age: Duration,
    /// An image unused this long is removed; zero (the default): never.
    pub gc_max_age: Duration,
}

/// KubeletConfiguration's `systemReserved` / `kubeReserved`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserved {
    /// A quantity of CPU (`100m`).
    pub cpu: Option<String>,
    /// A quantity of bytes (`128Mi`).
    pub memory: Option<String>,
}

/// KubeletConfiguration's `crashLoopBackOff`, with picolet's initial period.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrashLoopBackOffConfig {
    /// KubeletConfiguration's `crashLoopBackOff.maxContainerRestartPeriod`.
    pub max_container_restart_period: Option<String>,
    /// picolet's own: the first back-off (the kubelet's is fixed at 10s).
    pub initial_container_restart_period: Option<String>,
}

/// Whether pods get resource limits (`cgroups: v2|off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Limits through cgroup v2; picolet refuses a v1 or hybrid host.
    V2,
    /// No limits at all, logged loudly and shown in `get pods -o wide`.
    Off,
}

/// The resolved configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the manifests are; `/etc/picolet/manifests` by default.
    pub static_pod_path: PathBuf,
    /// This node's name, lowercased; the hostname by default.
    pub node_name: String,
    /// Durable state; `/var/lib/picolet` by default.
    pub root_dir: PathBuf,
    /// Runtime state on tmpfs; `/run/picolet` by default.
    pub run_dir: PathBuf,
    /// Container logs; `/var/log/pods` by default.
    pub log_dir: PathBuf,
    /// The OCI runtime; `None`: the first of runc, crun, youki on PATH.
    pub runtime: Option<PathBuf>,
    /// Resource limits on (the default) or off.
    pub cgroups: CgroupMode,
    /// Bytes at which a container's log rotates; 10 MiB by default.
    pub log_max_size: u64,
    /// Log files kept per container, at least 2; 5 by default.
    pub log_max_files: usize,
    /// The first restart back-off; 10 s by default.
    pub backoff_initial: Duration,
    /// The longest restart back-off, at least the first; 300 s by default.
    pub backoff_max: Duration,
    /// picolet's cgroup subtree; `/picolet` by default.
    pub cgroup_root: String,
    /// The most processes per pod, -1 (the default) for no limit.
    pub pod_pids_limit: i64,
    /// Millicores held back from pods (systemReserved + kubeReserved).
    pub reserved_cpu: u64,
    /// Bytes held back from pods (systemReserved + kubeReserved).
    pub reserved_memory: u64,
    /// The manifest URL source, when `staticPodURL` is set.
    pub manifest_url: Option<crate::source::url::UrlConfig>,
    /// Node mode, when a kubeconfig is given.
    pub node: Option<crate::node::NodeConfig>,
    /// What pods from the manifest URL and the API server may do here.
    pub node_policy: crate::pod::policy::NodePolicy,
    /// RuntimeDefault seccomp for containers that name no profile.
    pub seccomp_default: bool,
    /// `imageUnpackLimit` in bytes; `None`: half the free space of rootDir.
    pub image_unpack_limit: Option<u64>,
    /// Registries, imports and image GC.
    pub images: ImageSettings,
}

impl Config {
    /// Defaults, then the file (if any), then `flags` (already parsed).
    pub fn load(file: Option<&Path>, flags: &ConfigFile) -> Result<Config, ConfigError> {
        let from_file = match file {
            None => ConfigFile::default(),
            Some(path) => ConfigFile::read(path)?,
        };
        let config = Config::resolve(merge(from_file, flags.clone()))?;
        config.check()?;
        Ok(config)
    }

    /// Every key parsed, its default where unset.
    fn resolve(merged: ConfigFile) -> Result<Config, ConfigError> {
        let node_name = node_name(merged.node_name.as_deref())?;
        let log_max_size = bytes("containerLogMaxSize", &merged.container_log_max_size)?;
        let image_unpack_limit = bytes("imageUnpackLimit", &merged.image_unpack_limit)?;
        let (reserved_cpu, reserved_memory) = reserved(&merged)?;
        let manifest_url = manifest_url(&merged)?;
        let node_policy = merged.node_policy.clone().unwrap_or_default();
        node_policy.check().map_err(ConfigError::NodePolicy)?;
        let node = merged
            .kubeconfig
            .clone()
            .map(|kubeconfig| crate::node::NodeConfig {
                kubeconfig,
                policy: node_policy.clone(),
                allow_insecure: merged.allow_insecure_kubeconfig == Some(true),
            });
        let backoff = merged.crash_loop_back_off.clone().unwrap_or_default();
        let root_dir = merged
            .root_dir
            .clone()
            .unwrap_or_else(|| "/var/lib/picolet".into());
        Ok(Config {
            images: image_settings(&merged, &root_dir)?,
            image_unpack_limit,
            node,
            node_policy,
            seccomp_default: merged.seccomp_default.unwrap_or(false),
            manifest_url,
            cgroup_root: merged.cgroup_root.unwrap_or_else(|| "/picolet".into()),
            pod_pids_limit: merged.pod_pids_limit.unwrap_or(-1),
            reserved_cpu,
            reserved_memory,
            static_pod_path: merged
                .static_pod_path
                .unwrap_or_else(|| "/etc/picolet/manifests".into()),
            node_name,
            root_dir,
            run_dir: merged.run_dir.unwrap_or_else(|| "/run/picolet".into()),
            log_dir: merged
                .pod_logs_dir
                .unwrap_or_else(|| "/var/log/pods".into()),
            runtime: merged.runtime,
            cgroups: merged.cgroups.unwrap_or(CgroupMode::V2),
            log_max_size: log_max_size.unwrap_or(10 << 20),
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
        })
    }

    /// The limits between keys, once each parsed.
    fn check(&self) -> Result<(), ConfigError> {
        if self.log_max_files < 2 {
            return Err(ConfigError::LogMaxFiles);
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            return Err(ConfigError::BackOffOrder);
        }
        let images = &self.images;
        if images.gc_high_percent > 100 || images.gc_low_percent >= images.gc_high_percent {
            return Err(ConfigError::ImageGcThresholds {
                high: images.gc_high_percent,
                low: images.gc_low_percent,
            });
        }
        Ok(())
    }
}

impl ConfigFile {
    /// The file at `path`: YAML that src/yaml.rs accepts, every key known.
    fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        crate::yaml::check(text.as_bytes()).map_err(|source| ConfigError::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        let de = serde_yaml::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Decode {
            path: path.to_path_buf(),
            key: e.path().to_string(),
            source: e.into_inner(),
        })
    }
}

/// `nodeName`, else this host's name, in lower case as the kubelet has it.
fn node_name(configured: Option<&str>) -> Result<String, ConfigError> {
    let name = match configured {
        Some(name) => name.to_lowercase(),
        None => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .to_lowercase(),
    };
    crate::pod::validate::dns1123_subdomain(&name).map_err(ConfigError::invalid("nodeName"))?;
    Ok(name)
}

/// A quantity of bytes (`10Mi`), if set.
fn bytes(key: &str, value: &Option<String>) -> Result<Option<u64>, ConfigError> {
    value
        .as_deref()
        .map(|s| crate::pod::quantity::parse_bytes(s).map_err(ConfigError::invalid(key)))
        .transpose()
}

/// A Go duration, `default` seconds if unset.
fn duration(
    key: &'static str,
    value: &Option<String>,
    default: u64,
) -> Result<Duration, ConfigError> {
    value
        .as_deref()
        .map(|s| parse_duration(s).map_err(|source| ConfigError::Duration { key, source }))
        .unwrap_or(Ok(Duration::from_secs(default)))
}

/// The image keys, with the kubelet's defaults for GC.
fn image_settings(merged: &ConfigFile, root_dir: &Path) -> Result<ImageSettings, ConfigError> {
    Ok(ImageSettings {
        registry_config: merged
            .registry_config
            .clone()
            .unwrap_or_else(|| "/etc/picolet/registries.yaml".into()),
        import_dir: merged
            .image_import_dir
            .clone()
            .unwrap_or_else(|| root_dir.join("import")),
        gc_high_percent: merged.image_gc_high_threshold_percent.unwrap_or(85),
        gc_low_percent: merged.image_gc_low_threshold_percent.unwrap_or(80),
        gc_min_age: duration("imageMinimumGCAge", &merged.image_minimum_gc_age, 120)?,
        gc_max_age: duration("imageMaximumGCAge", &merged.image_maximum_gc_age, 0)?,
    })
}

/// Millicores and bytes held back from pods: systemReserved + kubeReserved.
fn reserved(merged: &ConfigFile) -> Result<(u64, u64), ConfigError> {
    let mut cpu = 0;
    let mut memory = 0;
    for (key, r) in [
        ("systemReserved", &merged.system_reserved),
        ("kubeReserved", &merged.kube_reserved),
    ] {
        let Some(r) = r else { continue };
        if let Some(text) = &r.cpu {
            cpu = crate::pod::quantity::parse_millicores(text)
                .map_err(ConfigError::invalid(format!("{key}.cpu")))?
                .saturating_add(cpu);
        }
        if let Some(text) = &r.memory {
            memory = crate::pod::quantity::parse_bytes(text)
                .map_err(ConfigError::invalid(format!("{key}.memory")))?
                .saturating_add(memory);
        }
    }
    Ok((cpu, memory))
}

/// The manifest URL source, when `staticPodURL` is set: https, or plain
/// HTTP only with `staticPodURLAllowHTTP: true` (docs/security.md).
fn manifest_url(merged: &ConfigFile) -> Result<Option<crate::source::url::UrlConfig>, ConfigError> {
    let Some(url) = &merged.static_pod_url else {
        return Ok(None);
    };
    let allow_http = merged.static_pod_url_allow_http == Some(true);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::UrlScheme { url: url.clone() });
    }
    if url.starts_with("http://") && !allow_http {
        return Err(ConfigError::PlainHttp { url: url.clone() });
    }
    Ok(Some(crate::source::url::UrlConfig {
        allow_http,
        url: url.clone(),
        headers: merged.static_pod_url_header.clone().unwrap_or_default(),
        ca_file: merged.static_pod_url_ca_file.clone(),
        interval: duration("httpCheckFrequency", &merged.http_check_frequency, 20)?,
    }))
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
        registry_config: over.registry_config.or(base.registry_config),
        image_gc_high_threshold_percent: over
            .image_gc_high_threshold_percent
            .or(base.image_gc_high_threshold_percent),
        image_gc_low_threshold_percent: over
            .image_gc_low_threshold_percent
            .or(base.image_gc_low_threshold_percent),
        image_minimum_gc_age: over.image_minimum_gc_age.or(base.image_minimum_gc_age),
        image_maximum_gc_age: over.image_maximum_gc_age.or(base.image_maximum_gc_age),
        image_import_dir: over.image_import_dir.or(base.image_import_dir),
    }
}

/// A Go duration: `300s`, `5m`, `1m30s`, `500ms`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| DurationError::NotANumber { text: text.into() })?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => {
                return Err(DurationError::UnknownUnit {
                    text: text.into(),
                    unit: unit.into(),
                })
            }
        };
        total = Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| total.checked_add(d))
            .filter(|t| *t <= MAX_DURATION)
            .ok_or_else(|| DurationError::OutOfRange { text: text.into() })?;
        rest = next;
    }
    Ok(total)
}

/// The longest Go duration (int64 nanoseconds); later sums and doublings
/// of a configured duration stay far from `Duration`'s own overflow.
const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// Why the configuration cannot be used, named by the config file and its
/// key (a flag sets the same key as the file would).
#[derive(Debug)]
pub enum ConfigError {
    /// The config file cannot be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is YAML picolet refuses before decoding (src/yaml.rs).
    Yaml {
        path: PathBuf,
        source: crate::yaml::YamlError,
    },
    /// A key of the config file is unknown, or its value has the wrong type.
    Decode {
        path: PathBuf,
        /// Where in the file, as `crashLoopBackOff.maxContainerRestartPeriod`.
        key: String,
        source: serde_yaml::Error,
    },
    /// A value the pod layer's parsers refuse (a name, a quantity).
    Invalid {
        /// The key, as `systemReserved.cpu`.
        key: String,
        /// The parser's own error, whatever its type.
        source: Box<dyn Error + Send + Sync>,
    },
    /// A value that is not a Go duration.
    Duration {
        /// The key, as `httpCheckFrequency`.
        key: &'static str,
        source: DurationError,
    },
    /// `staticPodURL` is neither http:// nor https://.
    UrlScheme { url: String },
    /// `staticPodURL` is plain HTTP without `staticPodURLAllowHTTP: true`.
    PlainHttp { url: String },
    /// `nodePolicy` fails its own checks; the error names the key.
    NodePolicy(crate::pod::policy::PolicyError),
    /// `containerLogMaxFiles` below 2, which the kubelet refuses too.
    LogMaxFiles,
    /// The first back-off is zero or longer than the longest.
    BackOffOrder,
    /// imageGCHighThresholdPercent over 100, or the low one not below it.
    ImageGcThresholds { high: u8, low: u8 },
}

impl ConfigError {
    /// For `map_err`: the pod layer's error about the value of `key`.
    fn invalid<E: Into<Box<dyn Error + Send + Sync>>>(
        key: impl Into<String>,
    ) -> impl FnOnce(E) -> ConfigError {
        let key = key.into();
        move |source| ConfigError::Invalid {
            key,
            source: source.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(f, "{}: {source}", path.display()),
            ConfigError::Yaml { path, source } => write!(f, "{}: {source}", path.display()),
            ConfigError::Decode { path, key, source } => {
                write!(f, "{}: {key}: {source}", path.display())
            }
            ConfigError::Invalid { key, source } => write!(f, "{key}: {source}"),
            ConfigError::Duration { key, source } => write!(f, "{key}: {source}"),
            ConfigError::UrlScheme { url } => write!(
                f,
                "staticPodURL: {url:?} is not an http:// or https:// URL"
            ),
            ConfigError::PlainHttp { url } => write!(
                f,
                "staticPodURL: {url:?} is plain HTTP: anyone on the way could read and change the pods and the staticPodURLHeader; use https://, or set staticPodURLAllowHTTP: true"
            ),
            ConfigError::NodePolicy(source) => write!(f, "{source}"),
            ConfigError::LogMaxFiles => {
                f.write_str("containerLogMaxFiles: must be at least 2, as the kubelet requires")
            }
            ConfigError::BackOffOrder => f.write_str(
                "crashLoopBackOff: the initial period must be positive and at most the maximum",
            ),
            ConfigError::ImageGcThresholds { high, low } => write!(
                f,
                "imageGCLowThresholdPercent ({low}) must be below imageGCHighThresholdPercent ({high}), which is at most 100"
            ),
        }
    }
}

impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Decode { source, .. } => Some(source),
            ConfigError::NodePolicy(source) => Some(source),
            ConfigError::Invalid { source, .. } => Some(source.as_ref()),
            ConfigError::Duration { source, .. } => Some(source),
            // YamlError is not a std::error::Error; its text is in Display.
            ConfigError::Yaml { .. }
            | ConfigError::UrlScheme { .. }
            | ConfigError::PlainHttp { .. }
            | ConfigError::LogMaxFiles
            | ConfigError::BackOffOrder
            | ConfigError::ImageGcThresholds { .. } => None,
        }
    }
}

/// Why a text is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing but white space.
    Empty,
    /// A number that does not parse, as in `1.2.3s`.
    NotANumber { text: String },
    /// A unit other than ms, s, m and h, or none (`10`).
    UnknownUnit { text: String, unit: String },
    /// Longer than Go's duration allows ([`MAX_DURATION`]).
    OutOfRange { text: String },
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("empty duration"),
            DurationError::NotANumber { text } => write!(f, "{text:?} is not a duration"),
            DurationError::UnknownUnit { text, unit } => {
                write!(f, "{text:?}: unknown unit {unit:?} (ms, s, m, h)")
            }
            DurationError::OutOfRange { text } => {
                write!(f, "{text:?}: out of range (Go's limit is about 292 years)")
            }
        }
    }
}

impl Error for DurationError {}

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
        assert!(matches!(err, ConfigError::NodePolicy(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("nodePolicy.allowedHostPaths[1]: \"data\""),
            "{err}"
        );
        // The old boolean is gone: a config still using it says so.
        let err = load("nodePolicy:\n  allowHostPath: true\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Decode { key, .. } if key == "nodePolicy.allowHostPath"),
            "{err:?}"
        );
        assert!(err.to_string().contains("allowHostPath"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        let unknown_unit = |text: &str, unit: &str| {
            Err(DurationError::UnknownUnit {
                text: text.into(),
                unit: unit.into(),
            })
        };
        assert_eq!(parse_duration("10"), unknown_unit("10", ""));
        assert_eq!(parse_duration("5d"), unknown_unit("5d", "d"));
        // It panicked in Duration::from_secs_f64.
        let huge = format!("{}s", "9".repeat(400));
        let err = parse_duration(&huge).unwrap_err();
        assert_eq!(err, DurationError::OutOfRange { text: huge.clone() });
        assert_eq!(
            err.to_string(),
            format!("{huge:?}: out of range (Go's limit is about 292 years)")
        );
        assert!(parse_duration("2562047h").is_ok());
        assert_eq!(
            parse_duration("2562048h"),
            Err(DurationError::OutOfRange {
                text: "2562048h".into()
            })
        );
    }

    #[test]
    fn plain_http_urls_need_the_opt_in() {
        let url = |allow| ConfigFile {
            static_pod_url: Some("http://fleet.example/pods.yaml".into()),
            static_pod_url_allow_http: allow,
            ..ConfigFile::default()
        };
        let plain_http = |e: ConfigError| matches!(e, ConfigError::PlainHttp { url } if url == "http://fleet.example/pods.yaml");
        let e = Config::load(None, &url(None)).unwrap_err().to_string();
        assert!(
            e.starts_with("staticPodURL: \"http://fleet.example/pods.yaml\" is plain HTTP")
                && e.ends_with("set staticPodURLAllowHTTP: true"),
            "{e}"
        );
        assert!(plain_http(Config::load(None, &url(None)).unwrap_err()));
        assert!(plain_http(
            Config::load(None, &url(Some(false))).unwrap_err()
        ));
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
        assert!(matches!(err, ConfigError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("staticPodPaht"), "{err}");
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
        assert_eq!(limit("2Gi").unwrap(), Some(2 << 30));
        assert_eq!(limit("500M").unwrap(), Some(500_000_000));
        let err = limit("lots").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, .. } if key == "imageUnpackLimit"),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("imageUnpackLimit: "), "{err}");
        let unset = Config::load(None, &ConfigFile::default()).unwrap();
        assert_eq!(unset.image_unpack_limit, None);
    }

    #[test]
    fn image_keys_have_the_kubelets_names_and_defaults() {
        let dir = std::env::temp_dir().join(format!("picolet-config-img-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.yaml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), &ConfigFile::default())
        };
        let defaults = load("rootDir: /data\n").unwrap().images;
        assert_eq!(
            defaults,
            ImageSettings {
                registry_config: "/etc/picolet/registries.yaml".into(),
                import_dir: "/data/import".into(),
                gc_high_percent: 85,
                gc_low_percent: 80,
                gc_min_age: Duration::from_secs(120),
                gc_max_age: Duration::ZERO,
            }
        );
        let set = load("registryConfig: /r.yaml\nimageGCHighThresholdPercent: 60\nimageGCLowThresholdPercent: 50\nimageMinimumGCAge: 1s\nimageMaximumGCAge: 24h\nimageImportDir: /imp\n").unwrap().images;
        assert_eq!(
            (set.registry_config.to_str(), set.import_dir.to_str()),
            (Some("/r.yaml"), Some("/imp"))
        );
        assert_eq!((set.gc_high_percent, set.gc_low_percent), (60, 50));
        assert_eq!(
            (set.gc_min_age, set.gc_max_age),
            (Duration::from_secs(1), Duration::from_secs(86_400))
        );
        let err =
            load("imageGCHighThresholdPercent: 70\nimageGCLowThresholdPercent: 70\n").unwrap_err();
        assert!(
            matches!(err, ConfigError::ImageGcThresholds { high: 70, low: 70 }),
            "{err:?}"
        );
        let err = load("imageMinimumGCAge: soon\n").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Duration {
                    key: "imageMinimumGCAge",
                    ..
                }
            ),
            "{err:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

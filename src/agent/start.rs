//! [`Agent::start`]: the parts assembled in order. Signals are blocked
//! first, before anything could start a thread; the runtime recovers what an
//! earlier run left before the sources are read; node mode and the URL start
//! their threads only when configured (docs/design.md, decision 1).

use super::sources::{NodeMode, Sources};
use super::status_file::StatusWriter;
use super::{Agent, AgentError, Tokens};
use crate::apiserver::kubeconfig;
use crate::cgroup::Cgroups;
use crate::config::{CgroupMode, Config};
use crate::engine::{BackoffPolicy, Engine, EngineConfig};
use crate::node::{Node, NodeConfig, NodeInputs};
use crate::published::{AgentInfo, AGENT_FILE, CGROUP_MOUNT};
use crate::reactor::Reactor;
use crate::registry::RegistryConfig;
use crate::runtime::paths::Paths;
use crate::runtime::{oci, Runtime, RuntimeConfig};
use crate::signals::Signals;
use crate::source::api::ApiSource;
use crate::source::file::ManifestDir;
use crate::source::url::ManifestUrl;
use crate::state::write_json;
use crate::time::Time;
use std::path::Path;
use std::sync::Arc;

/// Millicores and bytes: the machine's, and what pods may use of them.
struct Capacity {
    cpu: u64,
    memory: u64,
    allocatable: (u64, u64),
}

impl Agent {
    /// Assemble the agent: directories, the published record, node mode,
    /// the runtime with what an earlier run left, the engine, the sources
    /// and their first desired pods.
    pub fn start(config: Config) -> Result<Agent, AgentError> {
        let signals = Signals::block().map_err(AgentError::Signals)?;
        let cgroups = open_cgroups(&config)?;
        let (cpu, memory) = crate::cgroup::capacity();
        let capacity = Capacity {
            cpu,
            memory,
            allocatable: (
                cpu.saturating_sub(config.reserved_cpu),
                memory.saturating_sub(config.reserved_memory),
            ),
        };
        let binary = match &config.runtime {
            Some(p) => p.clone(),
            None => oci::find_default().ok_or(AgentError::NoRuntime)?,
        };
        let paths = make_directories(&config)?;
        let info = publish(&config, &paths, &binary, cgroups.is_some())?;
        let node = start_node_mode(&config, &paths, &info, &capacity)?;
        // A pod's status.hostIP: the address the API server sees in node
        // mode, else the default route's.
        let host_ip = node
            .as_ref()
            .and_then(|n| n.reporter.host_ip())
            .map_or_else(crate::host::default_ip, str::to_string);
        let mut reactor = Reactor::new().map_err(AgentError::Epoll)?;
        let mut runtime = Runtime::new(RuntimeConfig {
            paths: paths.clone(),
            binary,
            self_exe: std::env::current_exe().map_err(AgentError::OwnBinary)?,
            log_max_size: config.log_max_size,
            log_max_files: config.log_max_files,
            cgroups,
            pod_pids_limit: config.pod_pids_limit,
            memory_capacity: capacity.memory,
            allocatable: capacity.allocatable,
            host_ip,
            seccomp_default: config.seccomp_default,
            image_unpack_limit: config.image_unpack_limit,
            registries: load_registries(&config.images.registry_config)?,
            images: config.images.clone(),
            allowed_host_paths: config.node_policy.allowed_host_paths.clone(),
        });
        let mut engine = Engine::new(EngineConfig {
            backoff: BackoffPolicy {
                initial: config.backoff_initial,
                max: config.backoff_max,
            },
            allocatable: Some(capacity.allocatable),
        });
        let now = Time::now();
        let recovered = runtime.recover(&mut reactor, now);
        if !recovered.is_empty() {
            log::info!("found {} pod(s) from an earlier run", recovered.len());
        }
        engine.restore(recovered, now);
        let mut sources = open_sources(&config, &paths, node, now)?;
        let tokens = register(&mut reactor, &signals, &sources)?;
        sources.files.scan(now);
        let desired = sources.desired(&runtime, &engine);
        let owners: Vec<&str> = desired
            .iter()
            .map(|d| d.pod.metadata.uid.as_str())
            .chain(
                engine
                    .snapshot()
                    .pods()
                    .map(|r| r.pod.metadata.uid.as_str()),
            )
            .collect();
        runtime.remove_orphans(&owners);
        engine.set_desired(desired, now);
        runtime.begin_upkeep(now, &mut reactor);
        Ok(Agent {
            paths,
            signals,
            reactor,
            tokens,
            runtime,
            engine,
            sources,
            status: StatusWriter::default(),
            ready: Vec::new(),
        })
    }
}

/// registries.yaml: a missing file is no registry configuration; a broken
/// one stops the start, naming the file and the key, as a broken config file
/// does, rather than pulling with mirrors or credentials silently dropped.
fn load_registries(path: &Path) -> Result<Arc<RegistryConfig>, AgentError> {
    RegistryConfig::load(path)
        .map(Arc::new)
        .map_err(AgentError::Registries)
}

fn open_cgroups(config: &Config) -> Result<Option<Cgroups>, AgentError> {
    match config.cgroups {
        CgroupMode::V2 => Cgroups::open(Path::new(CGROUP_MOUNT), &config.cgroup_root)
            .map(Some)
            .map_err(AgentError::Cgroups),
        CgroupMode::Off => {
            log::warn!(
                "--cgroups off: running WITHOUT resource limits; pod resources are not enforced"
            );
            Ok(None)
        }
    }
}

/// Root only: state and runtime dirs hold unpacked images and pod data;
/// logs may be given a group of readers.
fn make_directories(config: &Config) -> Result<Paths, AgentError> {
    let paths = Paths {
        root: config.root_dir.clone(),
        run: config.run_dir.clone(),
        logs: config.log_dir.clone(),
    };
    for (dir, mode) in [
        (&paths.root, 0o700),
        (&paths.run, 0o700),
        (&paths.logs, 0o750),
    ] {
        crate::runtime::fsutil::dir_with_mode(dir, mode)
            .map_err(|e| AgentError::Directory(dir.clone(), e))?;
    }
    Ok(paths)
}

/// `<run>/agent.json` for the client commands, and the start in the log.
fn publish(
    config: &Config,
    paths: &Paths,
    binary: &Path,
    cgroups: bool,
) -> Result<AgentInfo, AgentError> {
    let info = AgentInfo {
        node_name: config.node_name.clone(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        runtime: binary.to_path_buf(),
        cgroups: if cgroups { "v2" } else { "off" }.into(),
        log_dir: paths.logs.clone(),
    };
    let file = paths.run.join(AGENT_FILE);
    write_json(&file, &info).map_err(|e| AgentError::Publish(file, e))?;
    log::info!(
        "picolet {} on node {}: manifests {}, runtime {}",
        info.version,
        config.node_name,
        config.static_pod_path.display(),
        binary.display()
    );
    Ok(info)
}

/// A kubeconfig starts node mode and its two threads; what they receive
/// waits in their channel until the agent turns.
fn start_node_mode(
    config: &Config,
    paths: &Paths,
    info: &AgentInfo,
    capacity: &Capacity,
) -> Result<Option<NodeMode>, AgentError> {
    let Some(NodeConfig {
        kubeconfig: file,
        policy,
        allow_insecure,
    }) = &config.node
    else {
        return Ok(None);
    };
    let connection = kubeconfig::load(file, *allow_insecure).map_err(AgentError::Kubeconfig)?;
    let source = ApiSource::start(
        connection.clone(),
        &config.node_name,
        &paths.root,
        policy.clone(),
    )
    .map_err(AgentError::ApiSource)?;
    let inputs = NodeInputs {
        node_name: &config.node_name,
        cpu: (capacity.cpu, capacity.allocatable.0),
        memory: (capacity.memory, capacity.allocatable.1),
        root: &paths.root,
        runtime: &info.runtime,
    };
    let reporter = Node::start(connection, inputs).map_err(AgentError::Node)?;
    Ok(Some(NodeMode { source, reporter }))
}

fn open_sources(
    config: &Config,
    paths: &Paths,
    node: Option<NodeMode>,
    now: Time,
) -> Result<Sources, AgentError> {
    let files = ManifestDir::open(&config.static_pod_path, &config.node_name)
        .map_err(|e| AgentError::Manifests(config.static_pod_path.clone(), e))?;
    let url = match config.manifest_url.clone() {
        None => None,
        Some(url) => Some(
            ManifestUrl::start(url, &config.node_name, &paths.root, now)
                .map_err(AgentError::Url)?,
        ),
    };
    Ok(Sources {
        files,
        url,
        node,
        policy: config.node_policy.clone(),
    })
}

/// Put the signals' and the sources' fds in the epoll set.
fn register(
    reactor: &mut Reactor,
    signals: &Signals,
    sources: &Sources,
) -> Result<Tokens, AgentError> {
    let epoll = AgentError::Epoll;
    Ok(Tokens {
        manifests: reactor.register(sources.files.fd()).map_err(epoll)?,
        url: match &sources.url {
            Some(u) => Some(reactor.register(u.fd()).map_err(epoll)?),
            None => None,
        },
        api_server: match &sources.node {
            Some(n) => Some(reactor.register(n.source.fd()).map_err(epoll)?),
            None => None,
        },
        signal: reactor.register(signals.fd()).map_err(epoll)?,
    })
}

//! The agent loop: sources -> engine -> runtime, on one thread.
//!
//! The thread sleeps in epoll until a monitor ends, a start notice arrives,
//! the manifest directory changes, an image unpack ends, a signal comes, or
//! the engine's next deadline passes. Nothing wakes it otherwise: no
//! periodic sync.

use crate::cgroup::Cgroups;
use crate::config::{CgroupMode, Config};
use crate::engine::backoff::BackoffPolicy;
use crate::engine::{Desired, Engine, EngineConfig, EventType, PodEvent, PodReport, Snapshot};
use crate::pod::policy::{NodePolicy, FROM_URL};
use crate::pod::status::{PodList, PodObject};
use crate::published::{AgentInfo, ManifestError, AGENT_FILE, CGROUP_MOUNT, ERRORS_FILE};
use crate::reactor::Reactor;
use crate::runtime::oci;
use crate::runtime::paths::Paths;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::signals::Signals;
use crate::source::api::{Assigned, NodeInputs, NodeSync};
use crate::source::file::ManifestDir;
use crate::source::url::ManifestUrl;
use crate::state::{write_atomic, write_json};
use crate::time::Time;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Duration;

pub fn run(config: Config) -> Result<(), String> {
    // First, before anything could start a thread.
    let signals = Signals::block().map_err(|e| format!("blocking signals: {e}"))?;
    let cgroups = match config.cgroups {
        CgroupMode::V2 => Some(
            Cgroups::open(Path::new(CGROUP_MOUNT), &config.cgroup_root)
                .map_err(|e| e.to_string())?,
        ),
        CgroupMode::Off => {
            log::warn!(
                "--cgroups off: running WITHOUT resource limits; pod resources are not enforced"
            );
            None
        }
    };
    let (cpu_capacity, memory_capacity) = crate::cgroup::capacity();
    let binary = match &config.runtime {
        Some(p) => p.clone(),
        None => oci::find_default()
            .ok_or("no OCI runtime found: install runc or crun, or pass --runtime PATH")?,
    };
    let paths = Paths {
        root: config.root_dir.clone(),
        run: config.run_dir.clone(),
        logs: config.log_dir.clone(),
    };
    // Root only: state and runtime dirs hold unpacked images and pod data;
    // logs may be given a group of readers.
    for (dir, mode) in [
        (&paths.root, 0o700),
        (&paths.run, 0o700),
        (&paths.logs, 0o750),
    ] {
        crate::runtime::fsutil::dir_with_mode(dir, mode)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let self_exe =
        std::env::current_exe().map_err(|e| format!("finding picolet's own binary: {e}"))?;
    let info = AgentInfo {
        node_name: config.node_name.clone(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        runtime: binary.clone(),
        cgroups: if cgroups.is_some() {
            "v2".into()
        } else {
            "off".into()
        },
        log_dir: paths.logs.clone(),
    };
    write_json(&paths.run.join(AGENT_FILE), &info).map_err(|e| e.to_string())?;
    log::info!(
        "picolet {} on node {}: manifests {}, runtime {}",
        info.version,
        config.node_name,
        config.static_pod_path.display(),
        binary.display()
    );

    // Millicores and bytes pods may use.
    let allocatable = (
        cpu_capacity.saturating_sub(config.reserved_cpu),
        memory_capacity.saturating_sub(config.reserved_memory),
    );
    // A kubeconfig starts node mode and its two sync threads; what they
    // receive waits in their channel until the loop runs.
    let mut node_sync = match &config.node {
        None => None,
        Some(node) => Some(NodeSync::start(
            node,
            NodeInputs {
                node_name: &config.node_name,
                cpu: (cpu_capacity, allocatable.0),
                memory: (memory_capacity, allocatable.1),
                root: &paths.root,
                runtime: &info.runtime,
            },
        )?),
    };
    // A pod's status.hostIP: the address the API server sees in node mode,
    // else the default route's.
    let host_ip = node_sync
        .as_ref()
        .and_then(NodeSync::host_ip)
        .map_or_else(crate::host::default_ip, str::to_string);

    let mut reactor = Reactor::new().map_err(|e| format!("epoll: {e}"))?;
    let mut runtime = Runtime::new(RuntimeConfig {
        paths: paths.clone(),
        binary,
        self_exe,
        log_max_size: config.log_max_size,
        log_max_files: config.log_max_files,
        cgroups,
        pod_pids_limit: config.pod_pids_limit,
        memory_capacity,
        allocatable,
        host_ip,
        seccomp_default: config.seccomp_default,
        image_unpack_limit: config.image_unpack_limit,
        allowed_host_paths: config.node_policy.allowed_host_paths.clone(),
    });
    let mut engine = Engine::new(EngineConfig {
        backoff: BackoffPolicy {
            initial: config.backoff_initial,
            max: config.backoff_max,
        },
        allocatable: Some(allocatable),
    });
    let now = Time::now();
    let recovered = runtime.recover(&mut reactor, now);
    if !recovered.is_empty() {
        log::info!("found {} pod(s) from an earlier run", recovered.len());
    }
    engine.restore(recovered, now);

    let mut source =
        ManifestDir::open(&config.static_pod_path, &config.node_name).map_err(|e| e.to_string())?;
    let source_token = reactor.register(source.fd()).map_err(|e| e.to_string())?;
    // Only a configured URL starts the one extra thread (docs/design.md, decision 1).
    let mut url_source = match config.manifest_url.clone() {
        None => None,
        Some(url) => Some(
            ManifestUrl::start(url, &config.node_name, &paths.root, now)
                .map_err(|e| format!("staticPodURL: {e}"))?,
        ),
    };
    let url_token = match &url_source {
        Some(u) => Some(reactor.register(u.fd()).map_err(|e| e.to_string())?),
        None => None,
    };
    let node_token = match &node_sync {
        Some(n) => Some(reactor.register(n.fd()).map_err(|e| e.to_string())?),
        None => None,
    };
    let signal_token = reactor.register(signals.fd()).map_err(|e| e.to_string())?;
    source.scan(now);
    let sources = Sources {
        files: &mut source,
        url: url_source.as_ref(),
        node: node_sync.as_ref(),
        policy: &config.node_policy,
    };
    let wanted = desired(sources, &runtime, &engine);
    let owners: Vec<String> = wanted
        .iter()
        .map(|d| d.pod.metadata.uid.clone())
        .chain(engine.statuses().map(|(pod, _)| pod.metadata.uid.clone()))
        .collect();
    runtime.remove_orphans(&owners.iter().map(String::as_str).collect::<Vec<_>>());
    engine.set_desired(wanted, now);

    let mut status = StatusWriter::default();
    let mut ready = Vec::new();
    loop {
        while let Some(action) = engine.poll_action() {
            for observation in runtime.execute(action, &mut reactor) {
                engine.handle(observation, Time::now());
            }
        }
        while let Some(event) = engine.poll_event() {
            report_event(&engine, node_sync.as_mut(), &event);
        }
        let mut errors = source.errors();
        errors.extend(url_source.iter().flat_map(ManifestUrl::errors));
        status.write_if_changed(&paths, engine.snapshot(), &errors);
        if let Some(node) = node_sync.as_mut() {
            node.report(engine.snapshot());
        }

        runtime.prepare();

        // Round up: waking a millisecond early would find nothing due.
        let timeout = engine
            .poll_timeout()
            .map(|t| t.saturating_sub(Time::now()) + Duration::from_millis(1));
        ready.clear();
        reactor
            .wait(timeout, &mut ready)
            .map_err(|e| format!("epoll: {e}"))?;
        let now = Time::now();
        for &token in &ready {
            if token == signal_token {
                if let Some(signal) = signals.next() {
                    log::info!("signal {signal}: exiting; containers keep running");
                    return Ok(());
                }
            } else if token == source_token || Some(token) == url_token || Some(token) == node_token
            {
                let changed = if token == source_token {
                    let changed = source.drain_events();
                    if let Some(changed) = &changed {
                        source.rescan(changed, now);
                    }
                    changed.is_some()
                } else if Some(token) == url_token {
                    url_source.as_mut().is_some_and(|u| u.drain(now))
                } else {
                    node_sync.as_mut().is_some_and(NodeSync::drain)
                };
                if changed {
                    let sources = Sources {
                        files: &mut source,
                        url: url_source.as_ref(),
                        node: node_sync.as_ref(),
                        policy: &config.node_policy,
                    };
                    engine.set_desired(desired(sources, &runtime, &engine), now);
                    // A deleted pod's start still waiting for its image
                    // must not happen after this.
                    let deleting = |uid: &str| engine.deleting_since(uid).is_some();
                    for observation in runtime.abandon_starts(deleting) {
                        engine.handle(observation, now);
                    }
                }
            } else {
                for observation in runtime.on_ready(token, &mut reactor) {
                    engine.handle(observation, now);
                }
            }
        }
        engine.handle_timeout(now);
    }
}

/// Log an engine event, and post it to the API server in node mode.
fn report_event(engine: &Engine, node: Option<&mut NodeSync>, event: &PodEvent) {
    let Some(pod) = engine.pod(&event.pod_uid) else {
        return;
    };
    let container = event.container.as_deref().unwrap_or("-");
    let line = format!(
        "pod {}: {container}: {}: {}",
        pod.full_name(),
        event.reason,
        event.message
    );
    match event.kind {
        EventType::Normal => log::info!("{line}"),
        EventType::Warning => log::warn!("{line}"),
    }
    if let Some(node) = node {
        node.event(pod, event, Time::now());
    }
}

/// Where pods come from.
struct Sources<'a> {
    files: &'a mut ManifestDir,
    url: Option<&'a ManifestUrl>,
    node: Option<&'a NodeSync>,
    /// Applies to the URL's pods; the API server's come with it applied.
    policy: &'a NodePolicy,
}

/// The pods of every source; a name already taken by an earlier source is
/// ignored, as a later duplicate is. The directory's pods are
/// trusted; the URL's are subject to the node policy.
/// Log directories are read only for pods the engine does not hold yet: for
/// the others the starting restart counts are never used.
fn desired(sources: Sources<'_>, runtime: &Runtime, engine: &Engine) -> Vec<Desired> {
    let files = sources.files.pods().into_iter();
    let from_url = sources.url.map(ManifestUrl::pods).unwrap_or_default();
    let assigned = sources.node.map(NodeSync::pods).unwrap_or_default();
    let mut pods: Vec<Assigned> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    let all = files
        .map(|pod| Assigned { pod, refused: None })
        .chain(from_url.into_iter().map(|pod| Assigned {
            refused: sources.policy.refusal(&pod, FROM_URL),
            pod,
        }))
        .chain(assigned);
    for a in all {
        let name = a.pod.full_name();
        if names.contains(&name) {
            log::error!("pod {name} is defined by more than one source; the later one is ignored");
        } else {
            names.insert(name);
            pods.push(a);
        }
    }
    pods.into_iter()
        .map(|Assigned { pod, refused }| Desired {
            first_attempts: if engine.holds(&pod.metadata.uid) {
                Default::default()
            } else {
                runtime.first_attempts(&pod)
            },
            pod,
            refused,
        })
        .collect()
}

/// Writes the PodList and manifest errors to the run dir when they change,
/// and only then. Nothing is computed while the engine's generation and the
/// errors stay the same: the loop runs this after every wake-up.
#[derive(Default)]
struct StatusWriter {
    /// The PodList then the errors, serialized; kept between writes: with
    /// 50 pods it is about 100 KiB, which malloc would otherwise map, fault
    /// in and unmap at every change.
    buf: Vec<u8>,
    /// A hash of `buf` as last written.
    last: Option<u64>,
    seen: Option<(u64, Vec<ManifestError>)>,
}

impl StatusWriter {
    fn write_if_changed(&mut self, paths: &Paths, engine: Snapshot<'_>, errors: &[ManifestError]) {
        if self
            .seen
            .as_ref()
            .is_some_and(|(g, e)| *g == engine.generation() && e == errors)
        {
            return;
        }
        let items: Vec<PodObject> = engine
            .pods()
            .map(|report| {
                let PodReport {
                    pod,
                    mut status,
                    deleting_since,
                } = report;
                let mut metadata = pod.metadata.clone();
                metadata.creation_timestamp =
                    status.start_time.clone().map(serde_json::Value::String);
                metadata.deletion_timestamp = deleting_since.map(Time::rfc3339);
                let name = pod.full_name();
                if let Some(e) = errors.iter().find(|e| e.pods.contains(&name)) {
                    status.message = Some(format!(
                        "manifest {}: {}; running the last good version",
                        e.file.display(),
                        e.message
                    ));
                }
                PodObject {
                    api_version: "v1".into(),
                    kind: "Pod".into(),
                    metadata,
                    spec: pod.spec.clone(),
                    status,
                }
            })
            .collect();
        let list = PodList::new(items);
        self.buf.clear();
        let serialized = serde_json::to_writer(&mut self.buf, &list);
        let split = self.buf.len();
        let serialized = serialized.and_then(|()| serde_json::to_writer(&mut self.buf, errors));
        if let Err(e) = serialized {
            log::error!("writing status: {e}");
            return;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        split.hash(&mut hasher);
        self.buf.hash(&mut hasher);
        let hash = hasher.finish();
        if self.last == Some(hash) {
            self.seen = Some((engine.generation(), errors.to_vec()));
            return;
        }
        let (list, errors_json) = self.buf.split_at(split);
        // The errors first: a reader that sees the new PodList then finds
        // the errors that go with it.
        let written = write_atomic(&paths.run.join(ERRORS_FILE), errors_json)
            .and_then(|()| write_atomic(&paths.status_file(), list));
        match written {
            Ok(()) => {
                self.last = Some(hash);
                self.seen = Some((engine.generation(), errors.to_vec()));
            }
            Err(e) => log::error!("writing status: {e}"),
        }
    }
}

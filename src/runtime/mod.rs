//! The runtime shell: carries the engine's actions out against the real
//! system (images, sandboxes, bundles, the OCI runtime, monitors) and turns
//! what it sees (start notices, monitor exits) into observations.
//!
//! Each verb lives in its own file: `start.rs`, `stop.rs`, `recover.rs`;
//! lower layers in `bundle.rs`, `sandbox.rs`, `monitor.rs`, `logs.rs`, `oci.rs`.

pub mod bundle;
pub mod cgroup_removal;
pub mod fsutil;
pub mod handler;
pub mod history;
pub mod host_path;
pub mod layer;
pub mod logs;
pub mod monitor;
pub mod objects;
pub mod oci;
pub mod paths;
mod pending;
pub mod process;
mod pull_secrets;
pub mod records;
pub mod recover;
pub mod sandbox;
pub mod seccomp;
pub mod spare;
pub mod start;
pub mod startup_pages;
pub mod stop;
pub mod subpath;
mod upkeep;

use crate::cgroup::CgroupError;
use crate::engine::{Action, InstanceRef, Observation, StopSignal};
use crate::image::worker::Worker;
use crate::image::ImageStore;
use crate::pod::Pod;
use crate::reactor::{Reactor, Token};
use crate::time::Time;
use cgroup_removal::{CgroupRemovals, Retry};
use oci::OciRuntime;
use paths::{container_id, Paths};
use rustix::fd::OwnedFd;
use spare::Spare;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;

/// What the runtime needs from the agent's configuration.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where state, run files and logs go.
    pub paths: Paths,
    /// runc, crun or youki.
    pub binary: PathBuf,
    /// This executable, started again as `picolet monitor`.
    pub self_exe: PathBuf,
    /// `containerLogMaxSize` in bytes.
    pub log_max_size: u64,
    /// `containerLogMaxFiles`.
    pub log_max_files: usize,
    /// `None` with `--cgroups off`.
    pub cgroups: Option<crate::cgroup::Cgroups>,
    /// `podPidsLimit`; 0 or less: no limit.
    pub pod_pids_limit: i64,
    /// Bytes of memory on the node, for oom_score_adj.
    pub memory_capacity: u64,
    /// Millicores and bytes pods may use: limits a container leaves unset,
    /// as the downward API reports them.
    pub allocatable: (u64, u64),
    /// This host's address, a pod's `status.hostIP`.
    pub host_ip: String,
    /// KubeletConfiguration `seccompDefault`.
    pub seccomp_default: bool,
    /// `imageUnpackLimit` in bytes; `None`: half the free space.
    pub image_unpack_limit: Option<u64>,
    /// registries.yaml, loaded at start.
    pub registries: Arc<crate::registry::RegistryConfig>,
    /// The import directory and image GC's settings.
    pub images: crate::config::ImageSettings,
    /// `nodePolicy.allowedHostPaths`: where the hostPath volumes of pods
    /// the policy applies to are resolved from (`host_path.rs`).
    pub allowed_host_paths: Vec<PathBuf>,
}

/// A monitor the agent watches.
struct Watched {
    instance: InstanceRef,
    pidfd: OwnedFd,
    /// The start-notice pipe, until the notice came or the monitor ended.
    notify: Option<(OwnedFd, Token)>,
    /// Set when this agent spawned the monitor and must reap it.
    child: Option<Child>,
    /// The pod, while it is not recorded on disk: recorded once this
    /// instance's monitor reports the start or the end, so that the
    /// record's fsyncs (flash on a device) do not compete with the runtime
    /// starting the container.
    unrecorded: Option<Arc<Pod>>,
}

/// The runtime shell: carries out the engine's actions and watches what they started.
pub struct Runtime {
    config: RuntimeConfig,
    oci: OciRuntime,
    images: ImageStore,
    /// The unpack worker, while an image unpacks.
    unpacker: Worker<crate::image::UnpackJob>,
    /// The pull worker, while an image is pulled.
    puller: Worker<crate::image::PullJob>,
    /// The store's upkeep worker, while it imports or collects.
    upkeep_worker: Worker<crate::image::upkeep::Upkeep>,
    upkeep: upkeep::UpkeepState,
    /// Container starts waiting for a pull or an unpack.
    pending: pending::Pending,
    /// Keyed by the pidfd's token.
    watched: BTreeMap<Token, Watched>,
    /// Notice-pipe token to pidfd token.
    notices: BTreeMap<Token, Token>,
    /// Probe and hook handlers in progress, by token, with their run id.
    handlers: BTreeMap<Token, (u64, handler::Running)>,
    handler_tokens: BTreeMap<u64, Token>,
    /// cpu requests of Burstable pods with a cgroup, for the tier's weight.
    burstable: BTreeMap<String, u64>,
    /// Pod cgroups whose removal is retried later (`cgroup_removal.rs`).
    cgroup_removals: CgroupRemovals,
    /// A network namespace, lo up, for the next pod's sandbox.
    spare_network: Spare<OwnedFd>,
    /// A writable layer's directories for the next container.
    spare_layer: Spare<PathBuf>,
    /// Instances found at recovery under an id other than `container_id`'s
    /// (an older agent's `<uid>-<container>-<attempt>`), with that id.
    found_ids: BTreeMap<InstanceRef, String>,
}

impl Runtime {
    /// What the pod's env and volumes take from outside its spec.
    fn pod_facts<'a>(&'a self, pod: &'a crate::pod::Pod) -> objects::PodFacts<'a> {
        objects::PodFacts {
            paths: &self.config.paths,
            pod,
            host_ip: &self.config.host_ip,
            allocatable: self.config.allocatable,
        }
    }

    /// A runtime with nothing running yet: `recover` finds what an earlier agent left.
    pub fn new(config: RuntimeConfig) -> Runtime {
        let oci = OciRuntime {
            binary: config.binary.clone(),
            root: config.paths.runc_root(),
        };
        let images = ImageStore::new(
            &config.paths.root,
            config.image_unpack_limit,
            Arc::new(crate::registry::Registries::new(Arc::clone(
                &config.registries,
            ))),
        );
        Runtime {
            config,
            oci,
            images,
            unpacker: Worker::default(),
            puller: Worker::default(),
            upkeep_worker: Worker::default(),
            upkeep: upkeep::UpkeepState::default(),
            pending: pending::Pending::default(),
            watched: BTreeMap::new(),
            notices: BTreeMap::new(),
            handlers: BTreeMap::new(),
            handler_tokens: BTreeMap::new(),
            burstable: BTreeMap::new(),
            cgroup_removals: CgroupRemovals::default(),
            spare_network: Spare::Unwanted,
            spare_layer: Spare::Unwanted,
            found_ids: BTreeMap::new(),
        }
    }

    /// The runtime's id of an instance: the one recovery found it under,
    /// else `container_id`'s.
    fn runtime_id(&self, instance: &InstanceRef) -> String {
        self.found_ids
            .get(instance)
            .cloned()
            .unwrap_or_else(|| container_id(instance))
    }

    /// Record the pod on disk (`sandbox::record_durably`), or say loudly
    /// what a reboot would lose.
    fn record_durably(&self, pod: &Pod) {
        if let Err(e) = sandbox::record_durably(&self.config.paths, pod) {
            log::error!(
                "pod {}: recording it on disk: {e}; a reboot would forget it ran",
                pod.full_name()
            );
        }
    }

    /// `runc://<id>`: the runtime's name and the container id, as a
    /// containerID in status.
    fn status_id(&self, id: &str) -> String {
        let name = self
            .config
            .binary
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("oci");
        format!("{name}://{id}")
    }

    /// Carry out one action. Immediate results come back at once; the rest
    /// arrive later through `on_ready`.
    pub fn execute(&mut self, action: Action, reactor: &mut Reactor) -> Vec<Observation> {
        match action {
            Action::CreateSandbox { pod, created_at } => {
                let pod_uid = pod.metadata.uid.clone();
                let spare = if pod.spec.host_network {
                    None
                } else {
                    self.spare_network.take()
                };
                let facts = self.pod_facts(&pod);
                match sandbox::create(&self.config.paths, &pod, &facts, created_at, spare)
                    .and_then(|()| self.create_pod_cgroup(&pod).map_err(std::io::Error::other))
                {
                    Ok(()) => vec![Observation::SandboxReady { pod_uid }],
                    Err(e) => {
                        log::error!("pod {}: sandbox: {e}", pod.full_name());
                        vec![Observation::SandboxFailed {
                            pod_uid,
                            message: e.to_string(),
                        }]
                    }
                }
            }
            Action::StartContainer {
                pod,
                container,
                attempt,
            } => {
                let instance = InstanceRef {
                    pod_uid: pod.metadata.uid.clone(),
                    container,
                    attempt,
                };
                self.start_container(pod, instance, reactor)
            }
            Action::Signal { instance, signal } => {
                let sig = match signal {
                    StopSignal::Term => "TERM",
                    StopSignal::Kill => "KILL",
                };
                if let Err(e) = self.oci.kill(&self.runtime_id(&instance), sig) {
                    log::warn!("{e}");
                }
                vec![]
            }
            Action::StopSandbox { pod_uid } => {
                // A sandbox going away takes any start still waiting with it.
                self.pending.remove_pods(|uid| uid == pod_uid);
                if let Err(e) = sandbox::stop(&self.config.paths, &pod_uid) {
                    log::error!("pod {pod_uid}: stopping sandbox: {e}");
                }
                self.remove_pod_cgroup(&pod_uid);
                vec![]
            }
            Action::ForgetPod { pod_uid } => {
                self.pending.remove_pods(|uid| uid == pod_uid);
                self.forget_pod(&pod_uid);
                self.images_may_be_unused(Time::now());
                vec![]
            }
            Action::RunHandler {
                run,
                pod,
                instance,
                handler,
            } => self.run_handler(run, &pod, &instance, &handler, reactor),
            Action::CancelHandler { run } => {
                self.cancel_handler(run, reactor);
                vec![]
            }
        }
    }

    /// The pod's cgroup with its values; the Burstable tier's weight follows.
    fn create_pod_cgroup(&mut self, pod: &crate::pod::Pod) -> Result<(), CgroupError> {
        use crate::pod::resources::{pod_cpu_request, qos_class, QosClass};
        let Some(cgroups) = &self.config.cgroups else {
            return Ok(());
        };
        self.cgroup_removals.cancel(&pod.metadata.uid);
        cgroups.create_pod(pod, self.config.pod_pids_limit)?;
        if qos_class(pod) == QosClass::Burstable {
            self.burstable
                .insert(pod.metadata.uid.clone(), pod_cpu_request(pod));
            cgroups.set_burstable_requests(self.burstable.values().sum())?;
        }
        Ok(())
    }

    /// Remove the pod's cgroup, or schedule a retry if it is still busy;
    /// the Burstable tier's weight follows.
    fn remove_pod_cgroup(&mut self, uid: &str) {
        self.try_removing_pod_cgroup(uid, None, Time::now());
        let Some(cgroups) = &self.config.cgroups else {
            return;
        };
        if self.burstable.remove(uid).is_some() {
            if let Err(e) = cgroups.set_burstable_requests(self.burstable.values().sum()) {
                log::error!("{e}");
            }
        }
    }

    /// One attempt at removing the pod's cgroup at `now`; `previous` is the
    /// retry this attempt is, `None` for the first. A busy cgroup is tried
    /// again later until the retries are spent.
    fn try_removing_pod_cgroup(&mut self, uid: &str, previous: Option<Retry>, now: Time) {
        let Some(cgroups) = &self.config.cgroups else {
            return;
        };
        match cgroups.remove_pod(uid) {
            Ok(()) => {}
            Err(e @ CgroupError::Busy { .. }) => match previous.map(|r| r.next(now)) {
                None => self.cgroup_removals.schedule_first(uid, now),
                Some(Some(retry)) => self.cgroup_removals.schedule(uid, retry),
                Some(None) => log::error!("pod {uid}: removing its cgroup: {e}"),
            },
            Err(e) => log::error!("pod {uid}: removing its cgroup: {e}"),
        }
    }

    /// The earliest time the runtime has work of its own: a cgroup removal
    /// to retry. The agent wakes by then and calls `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Time> {
        [self.cgroup_removals.poll_timeout(), self.upkeep_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Do the timed work due at `now`: retry the cgroup removals due;
    /// image GC's periodic look with `imageMaximumGCAge`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.upkeep_handle_timeout(now);
        for (uid, retry) in self.cgroup_removals.take_due(now) {
            self.try_removing_pod_cgroup(&uid, Some(retry), now);
        }
    }

    /// Work for quiet moments, run before the agent waits: when images
    /// were last used, published; the spares (`spare.rs`), once no
    /// container start is pending, so that making them delays no runtime
    /// at work.
    pub fn prepare(&mut self) {
        self.publish_images_used();
        if self.notices.is_empty() {
            self.spare_network
                .refill("network namespace", sandbox::new_network_namespace);
            let paths = &self.config.paths;
            self.spare_layer
                .refill("writable layer", || layer::make_spare(&paths.spare_layer()));
        }
    }

    /// A watched fd became readable.
    pub fn on_ready(&mut self, token: Token, reactor: &mut Reactor) -> Vec<Observation> {
        if self.unpacker.owns(token) {
            return self.on_unpacked(reactor);
        }
        if self.puller.owns(token) {
            return self.on_pulled(reactor);
        }
        if self.upkeep_worker.owns(token) {
            return self.on_upkeep(reactor);
        }
        if let Some(pid_token) = self.notices.remove(&token) {
            return self.on_notice(pid_token, reactor).into_iter().collect();
        }
        if self.handlers.contains_key(&token) {
            return self.on_handler_ready(token, reactor).into_iter().collect();
        }
        match self.watched.remove(&token) {
            Some(w) => vec![self.on_monitor_exit(w, reactor)],
            None => vec![],
        }
    }
}

//! Start-up: find what a previous run left, re-attach to live monitors,
//! and clean up whatever no pod owns.

use super::fsutil::remove_tree;
use super::logs::{last_attempt, pod_log_dir};
use super::paths::container_id;
use super::paths::Paths;
use super::records::{process_start_time, InstanceRecord, SandboxRecord, StartedRecord};
use super::stop::{exit_from_records, instance_dirs, remove_instance_files};
use super::{sandbox, Runtime, Watched};
use crate::engine::{Exit, InstanceRef, Recovered, RecoveredInstance, RecoveredSandbox};
use crate::pod::Pod;
use crate::reactor::Reactor;
use crate::state::read_json;
use crate::time::Time;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

impl Runtime {
    /// Every pod a previous run left, with its instances; live monitors are
    /// watched again. Leftovers no pod owns are removed.
    pub fn recover(&mut self, reactor: &mut Reactor, now: Time) -> Vec<Recovered> {
        let mut pods = recover_sandboxes(&self.config.paths);
        self.recover_instances(&mut pods, reactor, now);
        recover_lost_pods(&self.config.paths, &mut pods);
        self.remove_stray_runtime_containers();
        pods.into_values()
            .map(|mut r| {
                r.first_attempts = self.first_attempts(&r.pod);
                r
            })
            .collect()
    }

    /// Each instance directory joins its pod; one no recovered pod owns is
    /// removed with its runtime container.
    fn recover_instances(
        &mut self,
        pods: &mut BTreeMap<String, Recovered>,
        reactor: &mut Reactor,
        now: Time,
    ) {
        let paths = self.config.paths.clone();
        for (id, dir, record) in instance_dirs(&paths.containers_run()) {
            let owner = record.as_ref().and_then(|r| pods.get_mut(&r.pod_uid));
            let (Some(record), Some(pod)) = (record, owner) else {
                log::warn!("removing leftover container {id}");
                remove_instance_files(&self.oci, &paths, &id);
                if let Err(e) = remove_tree(&dir) {
                    log::error!("{e}");
                }
                continue;
            };
            // The agent before may have gone between the start and the
            // record: an instance exists, so the pod ran.
            self.record_durably(&pod.pod);
            let recovered = self.recover_instance(&id, &dir, &record, reactor, now);
            pod.instances.push(recovered);
        }
    }

    /// One instance of a recovered pod: re-attached to its monitor if that
    /// still runs, else ended with what its records say.
    fn recover_instance(
        &mut self,
        id: &str,
        dir: &Path,
        record: &InstanceRecord,
        reactor: &mut Reactor,
        now: Time,
    ) -> RecoveredInstance {
        let instance = InstanceRef {
            pod_uid: record.pod_uid.clone(),
            container: record.container.clone(),
            attempt: record.attempt,
        };
        if id != container_id(&instance) {
            self.found_ids.insert(instance.clone(), id.to_string());
        }
        let exited = dir.join("exit.json").exists();
        let alive = process_start_time(record.monitor_pid) == Some(record.monitor_start);
        let started = read_json::<StartedRecord>(&dir.join("started.json"))
            .ok()
            .flatten();
        if !exited && alive {
            match self.reattach(&instance, record.monitor_pid, reactor) {
                Ok(()) => {
                    return RecoveredInstance {
                        container: instance.container.clone(),
                        attempt: instance.attempt,
                        container_id: self.status_id(id),
                        image_id: record.image_id.clone(),
                        started_at: Some(started.as_ref().map_or(now, |s| Time(s.started_at))),
                        exit: None,
                    }
                }
                Err(e) => log::error!("container {id}: re-attaching to its monitor: {e}"),
            }
        }
        // Ended while we were away, or its monitor is gone.
        let (started_at, exit) = if exited {
            exit_from_records(dir, now)
        } else {
            (started.map(|s| Time(s.started_at)), Exit::unknown(now))
        };
        self.record_end(&instance, dir, started_at, &exit);
        remove_instance_files(&self.oci, &self.config.paths, id);
        RecoveredInstance {
            container: instance.container.clone(),
            attempt: instance.attempt,
            container_id: self.status_id(id),
            image_id: record.image_id.clone(),
            started_at,
            exit: Some(exit),
        }
    }

    /// Runtime containers without a directory of ours.
    fn remove_stray_runtime_containers(&self) {
        let known: Vec<String> = instance_dirs(&self.config.paths.containers_run())
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        for id in self.oci.list().unwrap_or_default() {
            if !known.contains(&id) {
                log::warn!("removing leftover runtime container {id}");
                if let Err(e) = self.oci.delete(&id, true) {
                    log::error!("{e}");
                }
            }
        }
    }

    /// Remove durable leftovers no pod owns: writable layers of containers
    /// with no instance directory, volumes of pods neither recovered nor
    /// wanted (after a reboot the run dir is gone, the disk is not).
    pub fn remove_orphans(&mut self, pods: &[&str]) {
        let paths = &self.config.paths.clone();
        let live: Vec<String> = instance_dirs(&paths.containers_run())
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        let disk = paths.root.join("containers");
        for entry in fs::read_dir(&disk).into_iter().flatten().flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !live.contains(&id) {
                log::warn!("removing the leftover writable layer of container {id}");
                if let Err(e) = remove_tree(&entry.path()) {
                    log::error!("{e}");
                }
            }
        }
        let cgroup_uids = self
            .config
            .cgroups
            .as_ref()
            .map(crate::cgroup::Cgroups::pod_uids)
            .unwrap_or_default();
        for uid in cgroup_uids {
            if !pods.contains(&uid.as_str()) {
                log::warn!("removing the leftover cgroup of pod {uid}");
                self.try_removing_pod_cgroup(&uid, None, Time::now());
            }
        }
        for entry in fs::read_dir(paths.root.join("pods"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let uid = entry.file_name().to_string_lossy().into_owned();
            if !pods.contains(&uid.as_str()) {
                log::warn!("removing the leftover volumes of pod {uid}");
                if let Err(e) = sandbox::remove(paths, &uid) {
                    log::error!("{e}");
                }
            }
        }
    }

    fn reattach(
        &mut self,
        instance: &InstanceRef,
        pid: i32,
        reactor: &mut Reactor,
    ) -> std::io::Result<()> {
        let pid =
            rustix::process::Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("bad pid"))?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
        let token = reactor.register(&pidfd)?;
        self.watched.insert(
            token,
            Watched {
                instance: instance.clone(),
                pidfd,
                notify: None,
                child: None,
                unrecorded: None,
            },
        );
        log::info!("adopted container {}", self.runtime_id(instance));
        Ok(())
    }

    /// The restart count each container of a new pod starts from: one past the
    /// highest `<n>.log` already in its log directory.
    pub fn first_attempts(&self, pod: &Pod) -> BTreeMap<String, u32> {
        let m = &pod.metadata;
        let Ok(dir) = pod_log_dir(&self.config.paths.logs, &m.namespace, &m.name, &m.uid) else {
            return BTreeMap::new();
        };
        pod.spec
            .init_containers
            .iter()
            .chain(&pod.spec.containers)
            .filter_map(|c| {
                let container_dir = super::paths::join(&dir, &c.name).ok()?;
                Some((c.name.clone(), last_attempt(&container_dir)? + 1))
            })
            .collect()
    }
}

/// The pods whose sandbox is in the run dir, complete (pod and sandbox
/// records of the same uid); an incomplete one is removed.
fn recover_sandboxes(paths: &Paths) -> BTreeMap<String, Recovered> {
    let mut pods = BTreeMap::new();
    for entry in fs::read_dir(paths.run.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = entry.path();
        let uid = entry.file_name().to_string_lossy().into_owned();
        let pod = read_json::<Pod>(&dir.join("pod.json")).ok().flatten();
        let record = read_json::<SandboxRecord>(&dir.join("sandbox.json"))
            .ok()
            .flatten();
        match (pod, record) {
            (Some(pod), Some(record)) if pod.metadata.uid == uid => {
                pods.insert(
                    uid,
                    Recovered {
                        pod: Arc::new(pod),
                        created_at: Time(record.created_at),
                        sandbox: if record.ready {
                            RecoveredSandbox::Ready
                        } else {
                            RecoveredSandbox::Stopped
                        },
                        instances: vec![],
                        first_attempts: BTreeMap::new(),
                    },
                );
            }
            _ => {
                log::warn!("removing an incomplete pod sandbox {}", dir.display());
                if let Err(e) = sandbox::remove(paths, &uid) {
                    log::error!("{e}");
                }
            }
        }
    }
    pods
}

/// Pods on disk whose sandbox went with the run dir: a reboot.
fn recover_lost_pods(paths: &Paths, pods: &mut BTreeMap<String, Recovered>) {
    for entry in fs::read_dir(paths.root.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let uid = entry.file_name().to_string_lossy().into_owned();
        if pods.contains_key(&uid) {
            continue;
        }
        if let Some((pod, created_at, instances)) = super::history::load(paths, &uid) {
            log::info!("pod {}: its sandbox was lost (reboot)", pod.full_name());
            pods.insert(
                uid,
                Recovered {
                    pod: Arc::new(pod),
                    created_at,
                    sandbox: RecoveredSandbox::Lost,
                    instances,
                    first_attempts: BTreeMap::new(),
                },
            );
        }
    }
}

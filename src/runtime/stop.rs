//! The end of instances and pods: a monitor's exit becomes an observation and
//! the instance's runtime state, overlay and writable layer are removed (the
//! small records stay for adoption and `lastState`); a forgotten pod loses
//! everything but its logs. All of it is safe to repeat.

use super::fsutil::{remove_tree, unmount};
use super::oci::OciRuntime;
use super::paths::Paths;
use super::records::{ExitRecord, InstanceRecord, StartedRecord};
use super::{sandbox, Runtime, Watched};
use crate::engine::{Exit, ExitKind, InstanceRef, Observation};
use crate::reactor::Reactor;
use crate::state::read_json;
use crate::time::Time;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How many instances of one container keep their records: the newest
/// (`state`) and the one before (`lastState`).
const KEPT_INSTANCES: u32 = 2;

/// An instance's run and disk directories.
pub fn instance_paths(paths: &Paths, id: &str) -> io::Result<(PathBuf, PathBuf)> {
    Ok((paths.container_run(id)?, paths.container_disk(id)?))
}

/// Remove an instance's runtime container, overlay and writable layer.
pub fn remove_instance_files(oci: &OciRuntime, paths: &Paths, id: &str) {
    if let Err(e) = oci.delete(id, true) {
        log::warn!("{e}");
    }
    let result = instance_paths(paths, id).and_then(|(dir, disk)| {
        let rootfs = dir.join("rootfs");
        let removed = unmount(&rootfs)
            .and_then(|()| remove_tree(&rootfs))
            .and_then(|()| remove_tree(&disk));
        let _ = fs::remove_file(dir.join("config.json"));
        removed
    });
    if let Err(e) = result {
        log::error!("container {id}: removing its files: {e}");
    }
}

/// The observed end of an instance from its records.
pub fn exit_from_records(dir: &Path, now: Time) -> (Option<Time>, Exit) {
    let started = read_json::<StartedRecord>(&dir.join("started.json"))
        .ok()
        .flatten();
    let started_at = started.map(|s| Time(s.started_at));
    let exit = match read_json::<ExitRecord>(&dir.join("exit.json")) {
        Ok(Some(ExitRecord {
            start_error: Some(message),
            finished_at,
            ..
        })) => Exit {
            code: 128,
            signal: None,
            kind: ExitKind::StartError,
            finished_at: Time(finished_at),
            message: Some(message),
        },
        Ok(Some(r)) => Exit {
            code: r.code,
            signal: r.signal,
            kind: if r.oom_killed {
                ExitKind::OomKilled
            } else {
                ExitKind::Normal
            },
            finished_at: Time(r.finished_at),
            message: None,
        },
        Ok(None) | Err(_) => Exit::unknown(now),
    };
    (started_at, exit)
}

impl Runtime {
    /// A monitor ended: its instance ended too; the observation says how.
    pub(super) fn on_monitor_exit(&mut self, mut w: Watched, reactor: &mut Reactor) -> Observation {
        reactor.deregister(&w.pidfd);
        if let Some((fd, token)) = w.notify.take() {
            reactor.deregister(&fd);
            self.notices.remove(&token);
        }
        if let Some(mut child) = w.child.take() {
            let _ = child.wait();
        }
        // Ended before its start notice was read: the end needs the record.
        if let Some(pod) = w.unrecorded.take() {
            self.record_durably(&pod);
        }
        let id = self.runtime_id(&w.instance);
        let (started_at, exit) = match self.config.paths.container_run(&id) {
            Ok(dir) => {
                let (started_at, exit) = exit_from_records(&dir, Time::now());
                self.record_end(&w.instance, &dir, started_at, &exit);
                (started_at, exit)
            }
            Err(e) => {
                log::error!("container {id}: {e}");
                (None, Exit::unknown(Time::now()))
            }
        };
        remove_instance_files(&self.oci, &self.config.paths, &id);
        self.prune_old_instances(&w.instance);
        Observation::Exited {
            instance: w.instance,
            started_at,
            exit,
        }
    }

    /// Add an ended instance to the pod's durable history.
    pub(super) fn record_end(
        &self,
        instance: &InstanceRef,
        dir: &Path,
        started_at: Option<Time>,
        exit: &Exit,
    ) {
        let image_id = read_json::<InstanceRecord>(&dir.join("instance.json"))
            .ok()
            .flatten()
            .map(|r| r.image_id)
            .unwrap_or_default();
        let container_id = self.status_id(&self.runtime_id(instance));
        let result = super::history::record_end(
            &self.config.paths,
            instance,
            &container_id,
            &image_id,
            started_at,
            exit,
        );
        if let Err(e) = result {
            log::error!(
                "pod {}: recording the end of {}: {e}",
                instance.pod_uid,
                instance.container
            );
        }
    }

    /// Drop records of instances older than the last `KEPT_INSTANCES`.
    fn prune_old_instances(&self, newest: &InstanceRef) {
        let Some(oldest_kept) = (newest.attempt + 1).checked_sub(KEPT_INSTANCES) else {
            return;
        };
        for attempt in 0..oldest_kept {
            let old = InstanceRef {
                attempt,
                ..newest.clone()
            };
            let Ok(dir) = self.config.paths.container_run(&self.runtime_id(&old)) else {
                continue;
            };
            if dir.exists() {
                if let Err(e) = remove_tree(&dir) {
                    log::warn!("removing {}: {e}", dir.display());
                }
            }
        }
    }

    /// Remove every trace of a pod but its logs.
    pub(super) fn forget_pod(&mut self, uid: &str) {
        let paths = self.config.paths.clone();
        for (id, dir, _) in instance_dirs(&paths.containers_run()) {
            let owned = read_json::<InstanceRecord>(&dir.join("instance.json"))
                .ok()
                .flatten()
                .is_some_and(|r| r.pod_uid == uid);
            if owned {
                remove_instance_files(&self.oci, &paths, &id);
                if let Err(e) = remove_tree(&dir) {
                    log::error!("removing {}: {e}", dir.display());
                }
            }
        }
        self.found_ids.retain(|instance, _| instance.pod_uid != uid);
        if let Err(e) = sandbox::remove(&paths, uid) {
            log::error!("pod {uid}: removing sandbox: {e}");
        }
        self.remove_pod_cgroup(uid);
    }
}

/// (id, run dir, record) of every instance directory under `containers`.
pub fn instance_dirs(
    containers: &Path,
) -> Vec<(String, std::path::PathBuf, Option<InstanceRecord>)> {
    fs::read_dir(containers)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_string();
            let dir = e.path();
            let record = read_json::<InstanceRecord>(&dir.join("instance.json"))
                .ok()
                .flatten();
            Some((id, dir, record))
        })
        .collect()
}

//! The durable part of a pod's record (`<root>/pods/<uid>/`): its spec,
//! written once, when a monitor first reports its container started or
//! ended (`sandbox::record_durably`), and `history.json`, updated
//! when an instance ends. A reboot empties the run dir; this is what tells
//! the next agent that a pod ran, how its containers ended and how far their
//! restart counts went.

use super::paths::Paths;
use super::records::{EndedInstance, ExitRecord, PodHistory};
use crate::engine::{Exit, ExitKind, InstanceRef, RecoveredInstance};
use crate::pod::Pod;
use crate::state::{read_json, write_json};
use crate::time::Time;
use std::io;

/// Instances kept per container: the newest and the one before (`lastState`).
const KEPT: usize = 2;

/// Whether the pod was recorded already.
pub fn begun(paths: &Paths, uid: &str) -> bool {
    paths
        .pod_disk(uid)
        .is_ok_and(|dir| dir.join("history.json").exists())
}

/// Record the pod at its first container start (when not `begun`).
pub fn begin(paths: &Paths, pod: &Pod, created_at: Time) -> io::Result<()> {
    let dir = paths.pod_disk(&pod.metadata.uid)?;
    std::fs::create_dir_all(&dir)?;
    write_json(&dir.join("pod.json"), pod)?;
    write_json(
        &dir.join("history.json"),
        &PodHistory {
            created_at: created_at.0,
            ended: vec![],
        },
    )
}

/// Add an ended instance, keeping the last `KEPT` of its container.
pub fn record_end(
    paths: &Paths,
    instance: &InstanceRef,
    container_id: &str,
    image_id: &str,
    started_at: Option<Time>,
    exit: &Exit,
) -> io::Result<()> {
    let path = paths.pod_disk(&instance.pod_uid)?.join("history.json");
    let Some(mut history) = read_json::<PodHistory>(&path)? else {
        return Ok(());
    };
    history
        .ended
        .retain(|e| !(e.container == instance.container && e.attempt == instance.attempt));
    history.ended.push(EndedInstance {
        container: instance.container.clone(),
        attempt: instance.attempt,
        container_id: container_id.to_string(),
        image_id: image_id.to_string(),
        started_at: started_at.map(|t| t.0),
        exit: ExitRecord {
            code: exit.code,
            signal: exit.signal,
            start_error: (exit.kind == ExitKind::StartError)
                .then(|| exit.message.clone().unwrap_or_default()),
            oom_killed: exit.kind == ExitKind::OomKilled,
            finished_at: exit.finished_at.0,
        },
        unknown: exit.kind == ExitKind::Unknown,
    });
    let mut mine: Vec<u32> = history
        .ended
        .iter()
        .filter(|e| e.container == instance.container)
        .map(|e| e.attempt)
        .collect();
    mine.sort_unstable();
    if mine.len() > KEPT {
        let cut = mine[mine.len() - KEPT];
        history
            .ended
            .retain(|e| e.container != instance.container || e.attempt >= cut);
    }
    write_json(&path, &history)
}

/// The pod and its ended instances, if it has a durable record made for
/// the UID it is found under.
pub fn load(paths: &Paths, uid: &str) -> Option<(Pod, Time, Vec<RecoveredInstance>)> {
    let dir = paths.pod_disk(uid).ok()?;
    let pod: Pod = read_json(&dir.join("pod.json")).ok()??;
    if pod.metadata.uid != uid {
        log::warn!("{}: a pod with another UID; ignored", dir.display());
        return None;
    }
    let history: PodHistory = read_json(&dir.join("history.json")).ok()??;
    let instances = history
        .ended
        .into_iter()
        .map(|e| {
            let finished_at = Time(e.exit.finished_at);
            let exit = if e.unknown {
                Exit::unknown(finished_at)
            } else if let Some(message) = e.exit.start_error {
                Exit {
                    code: 128,
                    signal: None,
                    kind: ExitKind::StartError,
                    finished_at,
                    message: Some(message),
                }
            } else {
                Exit {
                    code: e.exit.code,
                    signal: e.exit.signal,
                    kind: if e.exit.oom_killed {
                        ExitKind::OomKilled
                    } else {
                        ExitKind::Normal
                    },
                    finished_at,
                    message: None,
                }
            };
            RecoveredInstance {
                container: e.container,
                attempt: e.attempt,
                container_id: e.container_id,
                image_id: e.image_id,
                started_at: e.started_at.map(Time),
                exit: Some(exit),
            }
        })
        .collect();
    Some((pod, Time(history.created_at), instances))
}

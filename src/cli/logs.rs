//! `picolet logs POD [-c CONTAINER] [-p] [--timestamps] [-f]`, like kubectl logs.

use super::args::{parse, ArgsError};
use super::{client_paths, read_pods, ClientError};
use crate::pod::status::PodObject;
use crate::runtime::logs::{print_from, print_log};
use crate::runtime::paths::Paths;
use std::fmt;
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `picolet logs ARGS`: print one container's log, and with `-f` follow it.
pub fn run(args: &[String]) -> Result<(), LogsError> {
    let p = parse(
        args,
        &["container", "run-dir"],
        &["previous", "timestamps", "follow"],
        &[('c', "container"), ('p', "previous"), ('f', "follow")],
    )?;
    let name = p.positional.first().ok_or(LogsError::Usage)?;
    let (paths, _) = client_paths(p.value("run-dir"))?;
    let list = read_pods(&paths)?;
    let pod = list
        .items
        .iter()
        .find(|i| &i.metadata.name == name)
        .ok_or_else(|| ClientError::PodNotFound { pod: name.clone() })?;
    let container = match p.value("container") {
        Some(c) => c.to_string(),
        None => {
            let names: Vec<&str> = pod
                .spec
                .containers
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            if names.len() > 1 {
                eprintln!(
                    "Defaulted container {:?} out of: {}",
                    names[0],
                    names.join(", ")
                );
            }
            names.first().ok_or(LogsError::NoContainers)?.to_string()
        }
    };
    let path = log_path(&paths, pod, &container, p.switch("previous"))?;
    let mut out = std::io::stdout().lock();
    let timestamps = p.switch("timestamps");
    let offset = print_log(&path, timestamps, &mut out).map_err(|source| LogsError::Read {
        path: path.clone(),
        source,
    })?;
    if p.switch("follow") && !p.switch("previous") {
        follow(
            &paths, name, &container, &path, offset, timestamps, &mut out,
        )?;
    }
    Ok(())
}

/// The log file of the newest instance (or, while none runs, of the last
/// one), or with `-p` of the one before. Instances are named by their
/// container ID, `<runtime>://<pod uid>_<container>_<attempt>`.
fn log_path(
    paths: &Paths,
    pod: &PodObject,
    container: &str,
    previous: bool,
) -> Result<PathBuf, LogsError> {
    let s = &pod.status;
    let in_pod = || InPod {
        pod: pod.metadata.name.clone(),
        container: container.to_string(),
    };
    let status = s
        .container_statuses
        .iter()
        .chain(&s.init_container_statuses)
        .find(|c| c.name == container)
        .ok_or_else(|| LogsError::UnknownContainer(in_pod()))?;
    let last = status
        .last_state
        .terminated
        .as_ref()
        .and_then(|t| t.container_id.as_deref());
    let current = status
        .state
        .running
        .as_ref()
        .and(status.container_id.as_deref())
        .or(status
            .state
            .terminated
            .as_ref()
            .and_then(|t| t.container_id.as_deref()));
    let id = if previous {
        last.ok_or_else(|| LogsError::NoPrevious(in_pod()))?
    } else {
        current.or(last).ok_or_else(|| LogsError::Waiting {
            at: in_pod(),
            reason: status
                .state
                .waiting
                .as_ref()
                .map(|w| w.reason.clone())
                .unwrap_or_default(),
        })?
    };
    // `<uid>_<container>_<attempt>`, or `-` from an agent before
    // (src/runtime/paths.rs): the attempt follows the last separator.
    let attempt: u32 = id
        .rsplit(['_', '-'])
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| LogsError::ContainerId { id: id.into() })?;
    let m = &pod.metadata;
    paths
        .container_log(&m.namespace, &m.name, &m.uid, container, attempt)
        .map_err(LogsError::LogPath)
}

/// Print what the instance writes until it ends (as `kubectl logs -f`).
fn follow(
    paths: &Paths,
    pod: &str,
    container: &str,
    path: &Path,
    mut offset: u64,
    timestamps: bool,
    out: &mut impl Write,
) -> Result<(), LogsError> {
    loop {
        let mut file = std::fs::File::open(path).map_err(LogsError::Follow)?;
        let len = file.metadata().map_err(LogsError::Follow)?.len();
        if len < offset {
            offset = 0; // rotated
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(LogsError::Follow)?;
        offset += print_from(BufReader::new(file), timestamps, out).map_err(LogsError::Follow)?;
        out.flush().map_err(LogsError::Follow)?;
        let list = read_pods(paths)?;
        let still_running = list
            .items
            .iter()
            .filter(|i| i.metadata.name == pod)
            .flat_map(|i| {
                i.status
                    .container_statuses
                    .iter()
                    .chain(&i.status.init_container_statuses)
            })
            .any(|c| c.name == container && c.state.running.is_some());
        if !still_running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A container of a pod, which a [`LogsError`] concerns.
#[derive(Debug)]
pub struct InPod {
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
}

/// Why `picolet logs` printed no (or not all of the) log.
#[derive(Debug)]
pub enum LogsError {
    /// The flags do not parse.
    Args(ArgsError),
    /// No pod named.
    Usage,
    /// The agent's published files, or the pod in them.
    Client(ClientError),
    /// The pod's spec names no container to default to.
    NoContainers,
    /// `-c` names a container the pod does not have.
    UnknownContainer(InPod),
    /// `-p`, but the container has not terminated before.
    NoPrevious(InPod),
    /// No instance has run yet; `reason` is the waiting reason.
    Waiting { at: InPod, reason: String },
    /// A container ID without the attempt at its end.
    ContainerId { id: String },
    /// The log file's path could not be made (src/runtime/paths.rs).
    LogPath(io::Error),
    /// Reading the log file failed.
    Read { path: PathBuf, source: io::Error },
    /// Following the log file failed.
    Follow(io::Error),
}

impl From<ArgsError> for LogsError {
    fn from(e: ArgsError) -> LogsError {
        LogsError::Args(e)
    }
}

impl From<ClientError> for LogsError {
    fn from(e: ClientError) -> LogsError {
        LogsError::Client(e)
    }
}

impl fmt::Display for LogsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogsError::Args(e) => write!(f, "{e}"),
            LogsError::Usage => {
                f.write_str("usage: picolet logs POD [-c CONTAINER] [-p] [--timestamps] [-f]")
            }
            LogsError::Client(e) => write!(f, "{e}"),
            LogsError::NoContainers => f.write_str("the pod has no containers"),
            LogsError::UnknownContainer(InPod { pod, container }) => {
                write!(f, "container {container:?} is not valid for pod {pod:?}")
            }
            LogsError::NoPrevious(InPod { pod, container }) => write!(
                f,
                "previous terminated container {container:?} in pod {pod:?} not found"
            ),
            LogsError::Waiting {
                at: InPod { pod, container },
                reason,
            } => write!(
                f,
                "container {container:?} in pod {pod:?} is waiting to start: {reason}"
            ),
            LogsError::ContainerId { id } => write!(f, "unexpected container ID {id:?}"),
            LogsError::LogPath(e) | LogsError::Follow(e) => write!(f, "{e}"),
            LogsError::Read { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for LogsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogsError::Args(e) => Some(e),
            LogsError::Client(e) => Some(e),
            LogsError::LogPath(e) | LogsError::Read { source: e, .. } | LogsError::Follow(e) => {
                Some(e)
            }
            LogsError::Usage
            | LogsError::NoContainers
            | LogsError::UnknownContainer(_)
            | LogsError::NoPrevious(_)
            | LogsError::Waiting { .. }
            | LogsError::ContainerId { .. } => None,
        }
    }
}

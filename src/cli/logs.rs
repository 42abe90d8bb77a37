//! `picolet logs POD [-c CONTAINER] [-p] [--timestamps] [-f]`, like kubectl logs.

use super::args::parse;
use super::{client_paths, read_pods};
use crate::pod::status::PodObject;
use crate::runtime::logs::{print_from, print_log};
use crate::runtime::paths::Paths;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::time::Duration;

pub fn run(args: &[String]) -> Result<(), String> {
    let p = parse(
        args,
        &["container", "run-dir"],
        &["previous", "timestamps", "follow"],
        &[('c', "container"), ('p', "previous"), ('f', "follow")],
    )?;
    let name = p
        .positional
        .first()
        .ok_or("usage: picolet logs POD [-c CONTAINER] [-p] [--timestamps] [-f]")?;
    let (paths, _) = client_paths(p.value("run-dir"))?;
    let list = read_pods(&paths)?;
    let pod = list
        .items
        .iter()
        .find(|i| &i.metadata.name == name)
        .ok_or_else(|| format!("pods {name:?} not found"))?;
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
            names
                .first()
                .ok_or("the pod has no containers")?
                .to_string()
        }
    };
    let path = log_path(&paths, pod, &container, p.switch("previous"))?;
    let mut out = std::io::stdout().lock();
    let timestamps = p.switch("timestamps");
    let offset =
        print_log(&path, timestamps, &mut out).map_err(|e| format!("{}: {e}", path.display()))?;
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
) -> Result<std::path::PathBuf, String> {
    let s = &pod.status;
    let status = s
        .container_statuses
        .iter()
        .chain(&s.init_container_statuses)
        .find(|c| c.name == container)
        .ok_or_else(|| {
            format!(
                "container {container:?} is not valid for pod {:?}",
                pod.metadata.name
            )
        })?;
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
        last.ok_or_else(|| {
            format!(
                "previous terminated container {container:?} in pod {:?} not found",
                pod.metadata.name
            )
        })?
    } else {
        current.or(last).ok_or_else(|| {
            let waiting = status
                .state
                .waiting
                .as_ref()
                .map(|w| w.reason.clone())
                .unwrap_or_default();
            format!(
                "container {container:?} in pod {:?} is waiting to start: {waiting}",
                pod.metadata.name
            )
        })?
    };
    // `<uid>_<container>_<attempt>`, or `-` from an agent before
    // (src/runtime/paths.rs): the attempt follows the last separator.
    let attempt: u32 = id
        .rsplit(['_', '-'])
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("unexpected container ID {id:?}"))?;
    let m = &pod.metadata;
    paths
        .container_log(&m.namespace, &m.name, &m.uid, container, attempt)
        .map_err(|e| e.to_string())
}

/// Print what the instance writes until it ends (as `kubectl logs -f`).
fn follow(
    paths: &Paths,
    pod: &str,
    container: &str,
    path: &std::path::Path,
    mut offset: u64,
    timestamps: bool,
    out: &mut impl Write,
) -> Result<(), String> {
    loop {
        let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        if len < offset {
            offset = 0; // rotated
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        offset += print_from(BufReader::new(file), timestamps, out).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
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

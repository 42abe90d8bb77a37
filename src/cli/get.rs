//! `picolet get pods`: the table a kubectl user expects, or the PodList as
//! JSON or YAML.

use super::args::{parse, ArgsError};
use super::{client_paths, read_pods, ClientError};
use crate::pod::status::{PodList, PodObject};
use crate::published::{ManifestError, ERRORS_FILE};
use crate::time::Time;
use std::fmt;
use std::io::Write;

/// `picolet get ARGS`: print the pods, then the manifest errors on stderr.
pub fn run(args: &[String]) -> Result<(), GetError> {
    let p = parse(args, &["output", "run-dir"], &[], &[('o', "output")])?;
    match p.positional.first().map(String::as_str) {
        Some("pods" | "pod" | "po") => {}
        Some(other) => {
            return Err(GetError::UnknownResource {
                resource: other.into(),
            })
        }
        None => return Err(GetError::Usage),
    }
    let (paths, info) = client_paths(p.value("run-dir"))?;
    let mut list = read_pods(&paths)?;
    if let Some(name) = p.positional.get(1) {
        list.items.retain(|i| &i.metadata.name == name);
        if list.items.is_empty() {
            return Err(ClientError::PodNotFound { pod: name.clone() }.into());
        }
    }
    let errors: Vec<ManifestError> = crate::state::read_json(&paths.run.join(ERRORS_FILE))
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let text = match p.value("output") {
        Some("json") => serde_json::to_string_pretty(&list).map_err(GetError::Json)? + "\n",
        Some("yaml") => serde_yaml::to_string(&list).map_err(GetError::Yaml)?,
        Some("name") => list
            .items
            .iter()
            .map(|i| format!("pod/{}\n", i.metadata.name))
            .collect(),
        Some("wide") => table(&list, Some(&info.cgroups), Time::now()),
        None => table(&list, None, Time::now()),
        Some(other) => {
            return Err(GetError::UnknownOutput {
                format: other.into(),
            })
        }
    };
    out.write_all(text.as_bytes()).map_err(GetError::Write)?;
    for e in errors {
        eprintln!("manifest {}: {}", e.file.display(), e.message);
    }
    Ok(())
}

/// Why `picolet get` printed no pods.
#[derive(Debug)]
pub enum GetError {
    /// The flags do not parse.
    Args(ArgsError),
    /// No resource type named.
    Usage,
    /// A resource type other than pods.
    UnknownResource { resource: String },
    /// An `-o` format other than wide, json, yaml and name.
    UnknownOutput { format: String },
    /// The agent's published files, or the pod in them.
    Client(ClientError),
    /// `-o json` could not encode the list.
    Json(serde_json::Error),
    /// `-o yaml` could not encode the list.
    Yaml(serde_yaml::Error),
    /// Writing to stdout failed.
    Write(std::io::Error),
}

impl From<ArgsError> for GetError {
    fn from(e: ArgsError) -> GetError {
        GetError::Args(e)
    }
}

impl From<ClientError> for GetError {
    fn from(e: ClientError) -> GetError {
        GetError::Client(e)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Args(e) => write!(f, "{e}"),
            GetError::Usage => f.write_str("usage: picolet get pods [NAME] [-o wide|json|yaml|name]"),
            GetError::UnknownResource { resource } => write!(
                f,
                "the server doesn't have a resource type {resource:?}; picolet knows \"pods\""
            ),
            GetError::UnknownOutput { format } => write!(
                f,
                "unable to match a printer suitable for the output format {format:?}: json, yaml, name, wide"
            ),
            GetError::Client(e) => write!(f, "{e}"),
            GetError::Json(e) => write!(f, "{e}"),
            GetError::Yaml(e) => write!(f, "{e}"),
            GetError::Write(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Args(e) => Some(e),
            GetError::Client(e) => Some(e),
            GetError::Json(e) => Some(e),
            GetError::Yaml(e) => Some(e),
            GetError::Write(e) => Some(e),
            GetError::Usage | GetError::UnknownResource { .. } | GetError::UnknownOutput { .. } => {
                None
            }
        }
    }
}

/// kubectl's columns; `-o wide` adds the node and the resource-limit mode.
pub fn table(list: &PodList, cgroups: Option<&str>, now: Time) -> String {
    if list.items.is_empty() {
        return "No resources found.\n".into();
    }
    let mut rows = vec![vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()];
    if cgroups.is_some() {
        rows[0].extend(["IP", "NODE", "LIMITS"].map(String::from));
    }
    for pod in &list.items {
        let s = &pod.status;
        let ready = s.container_statuses.iter().filter(|c| c.ready).count();
        let restarts: u32 = s
            .container_statuses
            .iter()
            .chain(&s.init_container_statuses)
            .map(|c| c.restart_count)
            .sum();
        let age = s
            .start_time
            .as_deref()
            .and_then(Time::parse_rfc3339)
            .map_or("<unknown>".into(), |t| {
                human_age(now.saturating_sub(t).as_secs())
            });
        let mut row = vec![
            pod.metadata.name.clone(),
            format!("{ready}/{}", pod.spec.containers.len()),
            status_column(pod),
            restarts.to_string(),
            age,
        ];
        if let Some(mode) = cgroups {
            row.push(s.pod_ip.clone().unwrap_or_else(|| "<none>".into()));
            row.push(
                pod.spec
                    .node_name
                    .clone()
                    .unwrap_or_else(|| "<none>".into()),
            );
            row.push(if mode == "off" {
                "OFF(--cgroups off)".into()
            } else {
                mode.to_string()
            });
        }
        rows.push(row);
    }
    columns(&rows)
}

/// Rows in columns three spaces apart, each as wide as its widest cell,
/// as kubectl prints its tables; `picolet images` prints the same way.
pub(super) fn columns<R: AsRef<[String]>>(rows: &[R]) -> String {
    let width_of = |i: usize| {
        rows.iter()
            .map(|r| r.as_ref().get(i).map_or(0, String::len))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..rows.first().map_or(0, |r| r.as_ref().len()))
        .map(width_of)
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .as_ref()
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("   ").trim_end().to_string() + "\n"
        })
        .collect()
}

/// kubectl's STATUS column (printPod in kubectl's printers).
pub fn status_column(pod: &PodObject) -> String {
    let s = &pod.status;
    let mut reason = s.reason.clone().unwrap_or_else(|| format!("{:?}", s.phase));
    let mut initializing = false;
    let total_init = pod.spec.init_containers.len();
    for (i, c) in s.init_container_statuses.iter().enumerate() {
        if let Some(t) = &c.state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = if !t.reason.is_empty() {
                format!("Init:{}", t.reason)
            } else if let Some(sig) = t.signal {
                format!("Init:Signal:{sig}")
            } else {
                format!("Init:ExitCode:{}", t.exit_code)
            };
        } else if let Some(w) = c
            .state
            .waiting
            .as_ref()
            .filter(|w| !w.reason.is_empty() && w.reason != "PodInitializing")
        {
            reason = format!("Init:{}", w.reason);
        } else {
            reason = format!("Init:{i}/{total_init}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in s.container_statuses.iter().rev() {
            if let Some(w) = c.state.waiting.as_ref().filter(|w| !w.reason.is_empty()) {
                reason = w.reason.clone();
            } else if let Some(t) = &c.state.terminated {
                reason = if !t.reason.is_empty() {
                    t.reason.clone()
                } else if let Some(sig) = t.signal {
                    format!("Signal:{sig}")
                } else {
                    format!("ExitCode:{}", t.exit_code)
                };
            } else if c.ready && c.state.running.is_some() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = "Terminating".into();
    }
    reason
}

/// kubectl's HumanDuration.
pub fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, s / 60 % 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => format!("{}d{}h", s / 86400, s / 3600 % 24),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(150), "2m30s");
        assert_eq!(human_age(3600), "60m");
        assert_eq!(human_age(4 * 3600 + 60), "4h1m");
        assert_eq!(human_age(3 * 86400), "3d0h");
    }
}

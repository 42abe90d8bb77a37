//! The command line: argument parsing ([`args`]), the client commands
//! (`get`, `logs`, `top`, `images`, `image`, `version`), which read what the agent publishes in
//! its run dir (src/published.rs), and `run`'s flags ([`run`]), which give
//! the agent its configuration. The CLI imports neither the agent nor the
//! engine; src/lib.rs hands `run` over to the agent and `monitor` to the
//! monitor.

pub mod args;
pub mod get;
pub mod images;
pub mod logs;
pub mod run;
pub mod top;

use crate::published::{AgentInfo, AGENT_FILE};
use crate::runtime::paths::Paths;
use std::fmt;
use std::path::PathBuf;

/// `picolet help`, and what follows an unknown command.
pub const USAGE: &str = "\
picolet: a Kubernetes node agent for small devices

Usage:
  picolet run [--config FILE] [--manifests DIR] [--manifest-url URL] [--kubeconfig FILE]
              [--node-name NAME] [--root DIR] [--run-dir DIR] [--log-dir DIR] [--runtime PATH]
              [--cgroups v2|off] [--registry-config FILE]
  picolet get pods [NAME] [-o wide|json|yaml|name] [--run-dir DIR]
  picolet logs POD [-c CONTAINER] [-p] [--timestamps] [-f] [--run-dir DIR]
  picolet top pods [--containers] [--run-dir DIR] [--cgroup-root PATH]
  picolet images [--root DIR] [--run-dir DIR]
  picolet image pull REF... [--root DIR] [--registry-config FILE]
  picolet image import FILE|DIR... [--root DIR]
  picolet image rm REF... [--root DIR] [--run-dir DIR]
  picolet version
";

/// `picolet version`: this binary's version and the OCI runtime's.
pub fn version() {
    println!("picolet version v{}", env!("CARGO_PKG_VERSION"));
    let runtime = crate::runtime::oci::find_default().and_then(|binary| {
        crate::runtime::oci::OciRuntime {
            binary,
            root: PathBuf::new(),
        }
        .version()
    });
    println!(
        "runtime: {}",
        runtime.unwrap_or_else(|| "none found on PATH (runc, crun, youki)".into())
    );
}

/// The agent's directories as a client finds them: the run dir, and the rest
/// from the agent's own record there.
pub fn client_paths(run_dir: Option<&str>) -> Result<(Paths, AgentInfo), ClientError> {
    let run = PathBuf::from(run_dir.unwrap_or("/run/picolet"));
    let info_path = run.join(AGENT_FILE);
    let info: AgentInfo = match crate::state::read_json(&info_path) {
        Ok(Some(info)) => info,
        Ok(None) => return Err(ClientError::NoAgent { run_dir: run }),
        Err(e) => return Err(ClientError::AgentFile(e)),
    };
    let paths = Paths {
        root: PathBuf::new(),
        run,
        logs: info.log_dir.clone(),
    };
    Ok((paths, info))
}

/// The pods the agent last reported.
pub fn read_pods(paths: &Paths) -> Result<crate::pod::status::PodList, ClientError> {
    let path = paths.status_file();
    match crate::state::read_json(&path) {
        Ok(Some(list)) => Ok(list),
        Ok(None) => Err(ClientError::NoStatus { path }),
        Err(e) => Err(ClientError::StatusFile(e)),
    }
}

/// Why a client command cannot read what the agent published in its run dir.
#[derive(Debug)]
pub enum ClientError {
    /// No agent record in the run dir: no agent, or one with another --run-dir.
    NoAgent { run_dir: PathBuf },
    /// The agent record is there but cannot be read or decoded; the error
    /// names the file (crate::state::read_json).
    AgentFile(std::io::Error),
    /// The agent has not written the pods' status yet.
    NoStatus { path: PathBuf },
    /// The pods' status is there but cannot be read or decoded; the error
    /// names the file.
    StatusFile(std::io::Error),
    /// The agent reports no pod of this name.
    PodNotFound { pod: String },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoAgent { run_dir } => write!(
                f,
                "no picolet agent state in {} (is `picolet run` using another --run-dir?)",
                run_dir.display()
            ),
            ClientError::AgentFile(e) | ClientError::StatusFile(e) => write!(f, "{e}"),
            ClientError::NoStatus { path } => {
                write!(f, "{}: no pod status yet", path.display())
            }
            ClientError::PodNotFound { pod } => write!(f, "pods {pod:?} not found"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::AgentFile(e) | ClientError::StatusFile(e) => Some(e),
            ClientError::NoAgent { .. }
            | ClientError::NoStatus { .. }
            | ClientError::PodNotFound { .. } => None,
        }
    }
}

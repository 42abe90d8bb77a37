//! The command line: argument parsing and the client commands (`get`,
//! `logs`, `version`). `run` and `monitor` hand over to the agent and the
//! monitor.

pub mod args;
pub mod get;
pub mod logs;
pub mod top;

use crate::published::{AgentInfo, AGENT_FILE};
use crate::runtime::paths::Paths;
use std::path::PathBuf;

pub const USAGE: &str = "\
picolet: a Kubernetes node agent for small devices

Usage:
  picolet run [--config FILE] [--manifests DIR] [--manifest-url URL] [--node-name NAME] [--root DIR]
              [--run-dir DIR] [--log-dir DIR] [--runtime PATH] [--cgroups v2|off]
  picolet get pods [NAME] [-o wide|json|yaml|name] [--run-dir DIR]
  picolet logs POD [-c CONTAINER] [-p] [--timestamps] [-f] [--run-dir DIR]
  picolet top pods [--containers] [--run-dir DIR] [--cgroup-root PATH]
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
pub fn client_paths(run_dir: Option<&str>) -> Result<(Paths, AgentInfo), String> {
    let run = PathBuf::from(run_dir.unwrap_or("/run/picolet"));
    let info_path = run.join(AGENT_FILE);
    let info: AgentInfo = crate::state::read_json(&info_path)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no picolet agent state in {} (is `picolet run` using another --run-dir?)",
                run.display()
            )
        })?;
    let paths = Paths {
        root: PathBuf::new(),
        run,
        logs: info.log_dir.clone(),
    };
    Ok((paths, info))
}

/// The pods the agent last reported.
pub fn read_pods(paths: &Paths) -> Result<crate::pod::status::PodList, String> {
    crate::state::read_json(&paths.status_file())
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: no pod status yet", paths.status_file().display()))
}

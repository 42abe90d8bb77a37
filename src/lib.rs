//! picolet: a Kubernetes node agent for small edge devices.
//!
//! One binary, several modes: `run` (the agent), `monitor` (the per-container
//! supervisor, started by the agent), and the client commands. The binary
//! (src/main.rs) only calls [`main`]; the library exists so that the fuzz
//! targets (fuzz/) reach the parsers through [`fuzz`], and nothing else is
//! public: the compiler still finds dead code.

mod agent;
mod apiserver;
mod base64;
mod cgroup;
mod cli;
mod config;
mod engine;
mod fs_remove;
mod host;
mod image;
mod jitter;
mod json;
mod logger;
mod node;
mod pod;
mod published;
mod reactor;
mod redirect;
pub mod registry;
mod runtime;
mod safe_path;
mod signals;
mod source;
mod state;
mod time;
mod tls;
mod yaml;

pub mod fuzz;

use std::ffi::OsString;

/// The whole program: dispatch on the first argument.
pub fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // The monitor dispatches first and touches nothing else: it stays small.
    if argv.get(1).is_some_and(|a| a == "monitor") {
        let code = match runtime::monitor::MonitorArgs::parse(&argv[2..]) {
            Ok(args) => runtime::monitor::run(&args),
            Err(e) => {
                eprintln!("picolet monitor: {e}");
                2
            }
        };
        std::process::exit(code);
    }
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("get") => cli::get::run(&args[1..]).map_err(CommandError::Get),
        Some("logs") => cli::logs::run(&args[1..]).map_err(CommandError::Logs),
        Some("top") => cli::top::run(&args[1..]).map_err(CommandError::Top),
        Some("images") => cli::images::images(&args[1..]).map_err(CommandError::Images),
        Some("image") => cli::images::image(&args[1..]).map_err(CommandError::Images),
        Some("version" | "--version") => {
            cli::version();
            Ok(())
        }
        Some("help" | "--help" | "-h") => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        _ => Err(CommandError::Unknown),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `picolet run`: the agent, with the configuration its flags ask for.
fn run(args: &[String]) -> Result<(), CommandError> {
    logger::init();
    let config = cli::run::config(args).map_err(CommandError::Run)?;
    agent::run(config).map_err(CommandError::Agent)
}

/// Why a command failed; [`main`] prints it after `error: ` and exits 1.
#[derive(Debug)]
enum CommandError {
    /// The first argument names no command.
    Unknown,
    /// `run`'s flags or configuration.
    Run(cli::run::RunError),
    /// The agent could not start, or stopped.
    Agent(agent::AgentError),
    /// `picolet get`.
    Get(cli::get::GetError),
    /// `picolet logs`.
    Logs(cli::logs::LogsError),
    /// `picolet top`.
    Top(cli::top::TopError),
    /// `picolet images`, `picolet image`.
    Images(cli::images::ImagesError),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Unknown => write!(f, "unknown command\n\n{}", cli::USAGE),
            CommandError::Run(e) => write!(f, "{e}"),
            CommandError::Agent(e) => write!(f, "{e}"),
            CommandError::Get(e) => write!(f, "{e}"),
            CommandError::Logs(e) => write!(f, "{e}"),
            CommandError::Top(e) => write!(f, "{e}"),
            CommandError::Images(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Unknown => None,
            CommandError::Run(e) => Some(e),
            CommandError::Agent(e) => Some(e),
            CommandError::Get(e) => Some(e),
            CommandError::Logs(e) => Some(e),
            CommandError::Top(e) => Some(e),
            CommandError::Images(e) => Some(e),
        }
    }
}

//! picolet: a Kubernetes node agent for small edge devices.
//!
//! One binary, several modes: `run` (the agent), `monitor` (the per-container
//! supervisor, started by the agent), and the client commands. The binary
//! (src/main.rs) only calls [`main`]; the library exists so that the fuzz
//! targets (fuzz/) reach the parsers through [`fuzz`], and nothing else is
//! public: the compiler still finds dead code.

mod agent;
mod base64;
mod cgroup;
mod cli;
mod config;
mod engine;
mod fs_remove;
mod host;
mod image;
mod json;
mod logger;
mod pod;
mod published;
mod reactor;
mod runtime;
mod safe_path;
mod signals;
mod source;
mod state;
mod time;
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
        Some("get") => cli::get::run(&args[1..]),
        Some("logs") => cli::logs::run(&args[1..]),
        Some("top") => cli::top::run(&args[1..]),
        Some("version" | "--version") => {
            cli::version();
            Ok(())
        }
        Some("help" | "--help" | "-h") => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        _ => Err(format!("unknown command\n\n{}", cli::USAGE)),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<(), String> {
    logger::init();
    let p = cli::args::parse(
        args,
        &[
            "config",
            "manifests",
            "manifest-url",
            "kubeconfig",
            "node-name",
            "root",
            "run-dir",
            "log-dir",
            "runtime",
            "cgroups",
        ],
        &[],
        &[],
    )?;
    if let Some(extra) = p.positional.first() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    let cgroups = match p.value("cgroups") {
        None => None,
        Some("v2") => Some(config::CgroupMode::V2),
        Some("off") => Some(config::CgroupMode::Off),
        Some(other) => return Err(format!("--cgroups: {other:?} is not v2 or off")),
    };
    let flags = config::ConfigFile {
        static_pod_path: p.value("manifests").map(Into::into),
        static_pod_url: p.value("manifest-url").map(Into::into),
        kubeconfig: p.value("kubeconfig").map(Into::into),
        node_name: p.value("node-name").map(Into::into),
        root_dir: p.value("root").map(Into::into),
        run_dir: p.value("run-dir").map(Into::into),
        pod_logs_dir: p.value("log-dir").map(Into::into),
        runtime: p.value("runtime").map(Into::into),
        cgroups,
        ..config::ConfigFile::default()
    };
    let config = config::Config::load(p.value("config").map(std::path::Path::new), &flags)
        .map_err(|e| e.to_string())?;
    agent::run(config)
}

//! `picolet run`'s flags: each overrides one key of the config file, and
//! together they give the [`Config`] the agent starts with.

use super::args::{parse, ArgsError};
use crate::config::{CgroupMode, Config, ConfigError, ConfigFile};
use std::fmt;
use std::path::Path;

/// The configuration `picolet run ARGS` asks for: the file `--config`
/// names (if any), overridden by the other flags.
pub fn config(args: &[String]) -> Result<Config, RunError> {
    let p = parse(
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
            "registry-config",
        ],
        &[],
        &[],
    )?;
    if let Some(extra) = p.positional.first() {
        return Err(RunError::UnexpectedArgument {
            argument: extra.clone(),
        });
    }
    let cgroups = match p.value("cgroups") {
        None => None,
        Some("v2") => Some(CgroupMode::V2),
        Some("off") => Some(CgroupMode::Off),
        Some(other) => {
            return Err(RunError::Cgroups {
                value: other.into(),
            })
        }
    };
    let flags = ConfigFile {
        static_pod_path: p.value("manifests").map(Into::into),
        static_pod_url: p.value("manifest-url").map(Into::into),
        kubeconfig: p.value("kubeconfig").map(Into::into),
        node_name: p.value("node-name").map(Into::into),
        root_dir: p.value("root").map(Into::into),
        run_dir: p.value("run-dir").map(Into::into),
        pod_logs_dir: p.value("log-dir").map(Into::into),
        runtime: p.value("runtime").map(Into::into),
        cgroups,
        registry_config: p.value("registry-config").map(Into::into),
        ..ConfigFile::default()
    };
    Ok(Config::load(p.value("config").map(Path::new), &flags)?)
}

/// Why `picolet run` has no configuration to start with.
#[derive(Debug)]
pub enum RunError {
    /// The flags do not parse.
    Args(ArgsError),
    /// `run` takes flags only.
    UnexpectedArgument { argument: String },
    /// `--cgroups` other than v2 or off.
    Cgroups { value: String },
    /// The config file, or a value the flags set.
    Config(ConfigError),
}

impl From<ArgsError> for RunError {
    fn from(e: ArgsError) -> RunError {
        RunError::Args(e)
    }
}

impl From<ConfigError> for RunError {
    fn from(e: ConfigError) -> RunError {
        RunError::Config(e)
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Args(e) => write!(f, "{e}"),
            RunError::UnexpectedArgument { argument } => {
                write!(f, "unexpected argument {argument:?}")
            }
            RunError::Cgroups { value } => write!(f, "--cgroups: {value:?} is not v2 or off"),
            RunError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Args(e) => Some(e),
            RunError::Config(e) => Some(e),
            RunError::UnexpectedArgument { .. } | RunError::Cgroups { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_flags_override_the_defaults_and_bad_ones_are_named() {
        let c = config(&argv("--manifests /m --node-name Edge --cgroups off")).unwrap();
        assert_eq!(c.static_pod_path, Path::new("/m"));
        assert_eq!((c.node_name.as_str(), c.cgroups), ("edge", CgroupMode::Off));
        let err = config(&argv("--cgroups v1")).unwrap_err();
        assert!(matches!(&err, RunError::Cgroups { value } if value == "v1"));
        assert_eq!(err.to_string(), "--cgroups: \"v1\" is not v2 or off");
        let err = config(&argv("extra")).unwrap_err();
        assert_eq!(err.to_string(), "unexpected argument \"extra\"");
        let err = config(&argv("--manifest-url ftp://x")).unwrap_err();
        assert!(matches!(
            err,
            RunError::Config(ConfigError::UrlScheme { .. })
        ));
    }
}

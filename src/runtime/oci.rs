//! The OCI runtime's command line (runc, crun, youki all speak it): the short
//! verbs the agent runs itself. `run` is the monitor's (monitor.rs).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An OCI runtime (runc, crun, youki) driven by its command line.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    /// The runtime's executable.
    pub binary: PathBuf,
    /// `--root`: picolet's own state directory for the runtime.
    pub root: PathBuf,
}

impl OciRuntime {
    fn run(&self, args: &[&str]) -> io::Result<Output> {
        Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.binary.display())))
    }

    fn check(&self, verb: &str, id: &str, out: Output, gone_is_ok: bool) -> io::Result<()> {
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A container that already stopped or vanished is what teardown wants.
        let gone = [
            "not running",
            "does not exist",
            "not found",
            "container not running",
        ]
        .iter()
        .any(|m| stderr.contains(m));
        if gone_is_ok && gone {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "{} {verb} {id}: {}",
            self.binary.display(),
            stderr.trim()
        )))
    }

    /// Send `signal` (`TERM`, `KILL`) to the container's init.
    pub fn kill(&self, id: &str, signal: &str) -> io::Result<()> {
        let out = self.run(&["kill", id, signal])?;
        self.check("kill", id, out, true)
    }

    /// Remove a stopped container's runtime state; `force` kills it first.
    /// A container the runtime never knew costs nothing: runc, crun and
    /// youki all keep one directory per container under `--root`, and a
    /// runtime process is some 15 ms on a start's path.
    pub fn delete(&self, id: &str, force: bool) -> io::Result<()> {
        if !self.root.join(id).exists() {
            return Ok(());
        }
        let args: &[&str] = if force {
            &["delete", "--force", id]
        } else {
            &["delete", id]
        };
        let out = self.run(args)?;
        self.check("delete", id, out, true)
    }

    /// Ids of every container under our root.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let out = self.run(&["list", "-q"])?;
        self.check("list", "", out.clone(), false)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// The runtime's version line, for `picolet version` and node info.
    pub fn version(&self) -> Option<String> {
        let out = Command::new(&self.binary).arg("--version").output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string)
    }
}

/// The first of runc, crun, youki found on PATH.
pub fn find_default() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["runc", "crun", "youki"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

//! The image config (image-spec `config.md`) and how Kubernetes merges it with
//! a container: `command` replaces Entrypoint, `args` replaces Cmd, env merges
//! by name, workingDir and user fall back to the image's.

use crate::pod::Container;
use crate::safe_path;
use rustix::fs::{fstat, FileType, Mode, OFlags};
use serde::Deserialize;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// The most bytes read of the image's /etc/passwd or /etc/group: real ones
/// have a few KiB.
const MAX_ID_FILE: u64 = 1024 * 1024;

/// Why a container's process or user cannot be had from its image.
#[derive(Debug)]
pub enum ProcessError {
    /// Neither the container nor the image names a command.
    NoCommand,
    /// A user name absent from the image's /etc/passwd.
    UnknownUser { user: String },
    /// A group name absent from the image's /etc/group.
    UnknownGroup { group: String },
    /// The image's rootfs could not be opened.
    Rootfs { path: PathBuf, source: io::Error },
    /// The image's `/etc/<file>` could not be read.
    IdFile {
        /// `passwd` or `group`.
        file: &'static str,
        source: io::Error,
    },
    /// The image's `/etc/<file>` is a FIFO, device, directory, ...
    IdFileNotRegular { file: &'static str },
    /// The image's `/etc/<file>` is over [`MAX_ID_FILE`] bytes.
    IdFileTooLarge { file: &'static str },
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::NoCommand => {
                f.write_str("no command specified: neither the container nor the image has one")
            }
            ProcessError::UnknownUser { user } => {
                write!(f, "user {user:?} not found in the image's /etc/passwd")
            }
            ProcessError::UnknownGroup { group } => {
                write!(f, "group {group:?} not found in the image's /etc/group")
            }
            ProcessError::Rootfs { path, source } => write!(f, "{}: {source}", path.display()),
            ProcessError::IdFile { file, source } => {
                write!(f, "the image's /etc/{file}: {source}")
            }
            ProcessError::IdFileNotRegular { file } => {
                write!(f, "the image's /etc/{file}: not a regular file")
            }
            ProcessError::IdFileTooLarge { file } => {
                write!(
                    f,
                    "the image's /etc/{file}: larger than {MAX_ID_FILE} bytes"
                )
            }
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Rootfs { source, .. } | ProcessError::IdFile { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// An image's config blob: how to run it and what its layers hold.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    /// The process defaults (`config` in the blob).
    #[serde(default)]
    pub config: RunConfig,
    /// The layers' diff ids.
    #[serde(default)]
    pub rootfs: RootFs,
}

/// The layers' uncompressed digests, which unpacking checks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    /// `sha256:...` of each layer's uncompressed tar, in order.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// The image's defaults for its containers' process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `Entrypoint`, replaced by a container's `command`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`, replaced by a container's `args` (or dropped with `command`).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `Env` as `NAME=value`, below the container's own.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `WorkingDir`, unless the container sets `workingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `User`: a name or id, with an optional `:group`.
    #[serde(default)]
    pub user: Option<String>,
}

/// The process a container runs, after merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The command line: entrypoint then arguments.
    pub args: Vec<String>,
    /// The environment as `NAME=value`.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// The image's `User`, still to be resolved against the rootfs.
    pub image_user: Option<String>,
}

/// Merge a container's spec with its image config, Kubernetes' way. `extra_env`
/// (HOSTNAME, ...) goes between the image's and `env`, the container's own,
/// resolved.
pub fn merge(
    image: &ImageConfig,
    c: &Container,
    extra_env: &[(String, String)],
    env_of_container: &[(String, String)],
) -> Result<Process, ProcessError> {
    let cfg = &image.config;
    let (entrypoint, cmd) = if !c.command.is_empty() {
        (c.command.clone(), c.args.clone())
    } else if !c.args.is_empty() {
        (cfg.entrypoint.clone().unwrap_or_default(), c.args.clone())
    } else {
        (
            cfg.entrypoint.clone().unwrap_or_default(),
            cfg.cmd.clone().unwrap_or_default(),
        )
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(ProcessError::NoCommand);
    }
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(name, _)| name == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    for entry in cfg.env.iter().flatten() {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        set(k, v);
    }
    for (k, v) in extra_env {
        set(k, v);
    }
    for (k, v) in env_of_container {
        set(k, v);
    }
    let cwd = c
        .working_dir
        .clone()
        .or_else(|| cfg.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    Ok(Process {
        args,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd,
        image_user: cfg.user.clone().filter(|u| !u.is_empty()),
    })
}

/// Resolve an image `User` (`1000`, `1000:1000`, `nobody`, `app:staff`) to
/// numeric ids with the rootfs' /etc/passwd and /etc/group, as runc does.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32), ProcessError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_id_file(rootfs, "passwd")?;
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(uid) => {
            let gid = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[2] == u)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(0);
            (uid, gid)
        }
        Err(_) => passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == u)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .ok_or_else(|| ProcessError::UnknownUser { user: u.into() })?,
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read_id_file(rootfs, "group")?
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| ProcessError::UnknownGroup { group: g.into() })?,
        },
    };
    Ok((uid, gid))
}

/// `/etc/<name>` of the image, read as the container would see it: opened
/// inside the rootfs (its symlinks resolve there, never to the host's
/// files), a regular file only, at most [`MAX_ID_FILE`] bytes, and without
/// blocking (O_NONBLOCK: a FIFO there must not stop the agent). A missing
/// file reads as empty, as runc takes it.
fn read_id_file(rootfs: &Path, file: &'static str) -> Result<String, ProcessError> {
    let failed = |source: io::Error| ProcessError::IdFile { file, source };
    let root = safe_path::open_dir(rootfs).map_err(|source| ProcessError::Rootfs {
        path: rootfs.to_path_buf(),
        source,
    })?;
    let rel = Path::new("etc").join(file);
    let flags = OFlags::RDONLY | OFlags::NONBLOCK;
    let fd = match safe_path::open_in_root(root.as_fd(), &rel, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(failed(e)),
    };
    let st = fstat(&fd).map_err(|e| failed(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(ProcessError::IdFileNotRegular { file });
    }
    let mut data = Vec::new();
    File::from(fd)
        .take(MAX_ID_FILE + 1)
        .read_to_end(&mut data)
        .map_err(failed)?;
    if data.len() as u64 > MAX_ID_FILE {
        return Err(ProcessError::IdFileTooLarge { file });
    }
    Ok(String::from_utf8_lossy(&data).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `resolve_user` with its error as the text the start failure shows.
    fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32), String> {
        super::resolve_user(rootfs, user).map_err(|e| e.to_string())
    }

    fn image() -> ImageConfig {
        serde_json::from_str(
            r#"{"config":{"Entrypoint":["/entry"],"Cmd":["serve","--port=80"],"Env":["PATH=/bin","A=image"],"WorkingDir":"/app","User":"1000"}}"#,
        )
        .unwrap()
    }

    fn container(command: &[&str], args: &[&str]) -> Container {
        Container {
            name: "c".into(),
            image: "i".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Container::default()
        }
    }

    #[test]
    fn command_and_args_follow_kubernetes_rules() {
        let img = image();
        let m = |c: &[&str], a: &[&str]| merge(&img, &container(c, a), &[], &[]).unwrap().args;
        assert_eq!(m(&[], &[]), ["/entry", "serve", "--port=80"]);
        assert_eq!(m(&[], &["x"]), ["/entry", "x"]);
        assert_eq!(
            m(&["/bin/sh"], &[]),
            ["/bin/sh"],
            "command drops the image's Cmd too"
        );
        assert_eq!(m(&["/bin/sh"], &["-c", "true"]), ["/bin/sh", "-c", "true"]);
    }

    #[test]
    fn env_merges_by_name_and_cwd_falls_back() {
        let extra = [("HOSTNAME".to_string(), "web".to_string())];
        let own = [("A".to_string(), "pod".to_string())];
        let p = merge(&image(), &container(&[], &[]), &extra, &own).unwrap();
        assert_eq!(p.env, ["PATH=/bin", "A=pod", "HOSTNAME=web"]);
        assert_eq!(p.cwd, "/app");
        assert_eq!(p.image_user.as_deref(), Some("1000"));
        let empty = ImageConfig::default();
        assert!(matches!(
            merge(&empty, &container(&[], &[]), &[], &[]),
            Err(ProcessError::NoCommand)
        ));
    }

    #[test]
    fn users_resolve_against_the_rootfs() {
        let dir = std::env::temp_dir().join(format!("picolet-user-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user(&dir, "app"), Ok((1000, 1001)));
        assert_eq!(resolve_user(&dir, "1000"), Ok((1000, 1001)));
        assert_eq!(resolve_user(&dir, "app:staff"), Ok((1000, 50)));
        assert_eq!(resolve_user(&dir, "42:43"), Ok((42, 43)));
        assert_eq!(
            resolve_user(&dir, "ghost"),
            Err("user \"ghost\" not found in the image's /etc/passwd".into())
        );
        assert!(matches!(
            super::resolve_user(&dir, "app:wheel"),
            Err(ProcessError::UnknownGroup { group }) if group == "wheel"
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A rootfs for one test, removed after it.
    struct Rootfs(std::path::PathBuf);

    impl Rootfs {
        fn new(tag: &str) -> Rootfs {
            let dir =
                std::env::temp_dir().join(format!("picolet-user-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
            Rootfs(dir)
        }

        fn path(&self) -> std::path::PathBuf {
            self.0.join("rootfs")
        }
    }

    impl Drop for Rootfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn passwd_symlinks_resolve_inside_the_image() {
        let r = Rootfs::new("link");
        let host = r.0.join("host-passwd");
        std::fs::write(&host, "hostuser:x:4242:4242::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(&host, r.path().join("etc/passwd")).unwrap();
        assert_eq!(
            resolve_user(&r.path(), "hostuser"),
            Err("user \"hostuser\" not found in the image's /etc/passwd".into()),
            "the host's file was read"
        );
        // A link that stays in the image is followed, as in the container.
        std::fs::create_dir_all(r.path().join("lib")).unwrap();
        std::fs::write(r.path().join("lib/passwd"), "app:x:7:8::/:/bin/sh\n").unwrap();
        std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../lib/passwd", r.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(&r.path(), "app"), Ok((7, 8)));
    }

    #[test]
    fn a_fifo_passwd_is_an_error_at_once() {
        let r = Rootfs::new("fifo");
        let fifo = r.path().join("etc/passwd");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        // Without O_NONBLOCK the open waits for a writer forever.
        let (tx, rx) = std::sync::mpsc::channel();
        let rootfs = r.path();
        std::thread::spawn(move || tx.send(super::resolve_user(&rootfs, "app")));
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("resolve_user blocked");
        assert!(
            matches!(got, Err(ProcessError::IdFileNotRegular { file: "passwd" })),
            "{got:?}"
        );
    }

    #[test]
    fn a_huge_passwd_is_an_error() {
        let r = Rootfs::new("huge");
        let line = "app:x:1:1::/:/bin/sh\n";
        let data = line.repeat(MAX_ID_FILE as usize / line.len() + 1);
        std::fs::write(r.path().join("etc/passwd"), data).unwrap();
        assert!(matches!(
            super::resolve_user(&r.path(), "app"),
            Err(ProcessError::IdFileTooLarge { file: "passwd" })
        ));
        assert_eq!(
            resolve_user(&r.path(), "app"),
            Err(format!(
                "the image's /etc/passwd: larger than {MAX_ID_FILE} bytes"
            ))
        );
        std::fs::remove_file(r.path().join("etc/passwd")).unwrap();
        std::fs::create_dir(r.path().join("etc/passwd")).unwrap();
        assert_eq!(
            resolve_user(&r.path(), "app"),
            Err("the image's /etc/passwd: not a regular file".into())
        );
    }
}

//! hostPath volumes of pods the node policy applies to (the manifest URL's
//! and the API server's, src/pod/policy.rs). Admission checked the path
//! once, but the pod may change what lies under its allowed prefix (make
//! `allowed/x` a link to `/etc`), so at every container start the path is
//! resolved again from an fd of its allowed prefix: links that stay below
//! are followed, one leading out is an error, what `DirectoryOrCreate` or
//! `FileOrCreate` makes is made below the prefix, the type is checked on
//! what was found, and that very file is pinned by a bind mount of its fd
//! at `<run>/pods/<uid>/host-paths/<volume>`, the path the runtime then
//! mounts (as `subpath.rs` does for subPath). The pins go with the sandbox.
//! Static pods from the directory are the operator's: their paths are used
//! as written (`sandbox::check_host_path`).

use super::bundle::VolumePaths;
use super::paths::{join, Paths};
use super::subpath::pin;
use crate::pod::policy::{host_path_root, trusted};
use crate::pod::Pod;
use crate::safe_path;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The pod run dir's directory of hostPath pins.
pub const HOST_PATHS: &str = "host-paths";

/// Why a hostPath volume cannot be mounted; the container cannot be created.
#[derive(Debug)]
pub struct HostPathError {
    /// The volume's name.
    pub volume: String,
    /// The hostPath as the pod wrote it.
    pub path: String,
    /// What is wrong.
    pub cause: Cause,
}

/// Why a hostPath cannot be mounted.
#[derive(Debug)]
pub enum Cause {
    /// Under no allowed prefix (the policy changed since admission).
    NotAllowed,
    /// A link on the way leads outside the allowed prefix.
    Outside(PathBuf),
    /// What is there is not what the volume's `type` asks for.
    NotA(String),
    /// Resolving, creating or pinning the path failed.
    Io(io::Error),
}

impl fmt::Display for HostPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hostPath volume {:?} at {:?}: ", self.volume, self.path)?;
        match &self.cause {
            Cause::NotAllowed => write!(f, "not under nodePolicy.allowedHostPaths"),
            Cause::Outside(prefix) => write!(
                f,
                "leads outside the allowed prefix {} (nodePolicy.allowedHostPaths)",
                prefix.display()
            ),
            Cause::NotA(kind) => write!(f, "hostPath type check failed: not a {kind}"),
            Cause::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Resolve, check and pin every hostPath volume of `pod` unless it is
/// trusted, and point `volumes` at the pins. Again at each start: the
/// allowed directory may have changed.
pub fn prepare(
    paths: &Paths,
    allowed: &[PathBuf],
    pod: &Pod,
    volumes: &mut VolumePaths,
) -> Result<(), HostPathError> {
    if trusted(pod) {
        return Ok(());
    }
    for v in &pod.spec.volumes {
        let Some(h) = &v.host_path else { continue };
        let error = |cause| HostPathError {
            volume: v.name.clone(),
            path: h.path.clone(),
            cause,
        };
        let (prefix, rest) =
            host_path_root(allowed, Path::new(&h.path)).ok_or_else(|| error(Cause::NotAllowed))?;
        let found = resolve(&prefix, &rest, &h.kind).map_err(error)?;
        check_type(&found, &h.kind).map_err(error)?;
        let at = paths
            .pod_run(&pod.metadata.uid)
            .and_then(|run| join(&run.join(HOST_PATHS), &v.name))
            .map_err(|e| error(Cause::Io(e)))?;
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).map_err(|e| error(Cause::Io(e)))?;
        }
        pin(&found, &at).map_err(|e| error(Cause::Io(e)))?;
        volumes.insert(v.name.clone(), at);
    }
    Ok(())
}

/// `rest` below the directory `prefix`, made first if missing and the type
/// says so.
fn resolve(prefix: &Path, rest: &Path, kind: &str) -> Result<OwnedFd, Cause> {
    let root = safe_path::open_dir(prefix).map_err(Cause::Io)?;
    let outside = |e: io::Error| match e.raw_os_error() {
        Some(libc::EXDEV) => Cause::Outside(prefix.to_path_buf()),
        _ => Cause::Io(e),
    };
    let open = || {
        safe_path::open_beneath(root.as_fd(), rest, OFlags::PATH, Mode::empty()).map_err(outside)
    };
    let missing = |r: &Result<OwnedFd, Cause>| matches!(r, Err(Cause::Io(e)) if e.kind() == io::ErrorKind::NotFound);
    let found = open();
    if !missing(&found) {
        return found;
    }
    match kind {
        "DirectoryOrCreate" => {
            safe_path::mkdir_all_beneath(root.as_fd(), rest, Mode::from_raw_mode(0o755))
                .map_err(outside)?;
        }
        // As the kubelet: the file, not its parent directories.
        "FileOrCreate" => {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
            match safe_path::open_beneath(root.as_fd(), rest, flags, Mode::from_raw_mode(0o644)) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(outside(e)),
                _ => {}
            }
        }
        _ => return found,
    }
    // Opened again as above: what was made is checked like the rest.
    open()
}

/// The kubelet's hostPath `type` checks, on the file found.
fn check_type(found: &OwnedFd, kind: &str) -> Result<(), Cause> {
    let st = rustix::fs::fstat(found).map_err(|e| Cause::Io(e.into()))?;
    let is = FileType::from_raw_mode(st.st_mode);
    let fits = match kind {
        "" => true,
        "Directory" | "DirectoryOrCreate" => is == FileType::Directory,
        "File" | "FileOrCreate" => is == FileType::RegularFile,
        "Socket" => is == FileType::Socket,
        "CharDevice" => is == FileType::CharacterDevice,
        "BlockDevice" => is == FileType::BlockDevice,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(Cause::NotA(kind.to_string()))
    }
}

/// Unmount every pin below `pins` (`<volume>`) and remove the directory.
pub fn remove_all(pins: &Path) -> io::Result<()> {
    super::subpath::remove_pins(pins, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::decode::decode_manifest;
    use std::os::unix::fs::symlink;

    /// An allowed directory, a host directory outside it and a pod run
    /// dir in a temporary directory, pins unmounted on drop. Needs root
    /// (bind mounts), as the agent.
    struct Fixture {
        dir: PathBuf,
    }

    impl Fixture {
        fn new(tag: &str) -> Fixture {
            let dir = std::env::temp_dir()
                .join(format!("picolet-host-path-{tag}-{}", std::process::id()));
            let f = Fixture { dir };
            f.clean();
            fs::create_dir_all(f.allowed()).unwrap();
            fs::create_dir_all(f.host()).unwrap();
            f
        }
        fn allowed(&self) -> PathBuf {
            self.dir.join("allowed")
        }
        fn host(&self) -> PathBuf {
            self.dir.join("host")
        }
        fn paths(&self) -> Paths {
            Paths {
                root: self.dir.join("root"),
                run: self.dir.join("run"),
                logs: self.dir.join("logs"),
            }
        }
        fn pins(&self) -> PathBuf {
            self.paths().pod_run("u").unwrap().join(HOST_PATHS)
        }
        /// `prepare` for a pod from `source` with one hostPath volume `v`.
        fn prepare(&self, source: &str, path: &Path, kind: &str) -> Result<PathBuf, HostPathError> {
            let yaml = format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  uid: u\n  annotations: {{kubernetes.io/config.source: {source}}}\nspec:\n  volumes:\n  - name: v\n    hostPath: {{path: '{}', type: '{kind}'}}\n  containers:\n  - name: c\n    image: busybox\n",
                path.display()
            );
            let pod = decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod;
            let mut volumes = VolumePaths::from([("v".to_string(), path.to_path_buf())]);
            prepare(&self.paths(), &[self.allowed()], &pod, &mut volumes)?;
            Ok(volumes["v"].clone())
        }
        fn clean(&self) {
            let _ = remove_all(&self.pins());
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.clean();
        }
    }

    fn cause(r: Result<PathBuf, HostPathError>) -> Cause {
        r.expect_err("refused").cause
    }

    #[test]
    fn a_link_out_of_the_allowed_prefix_is_refused_and_nothing_is_made_outside() {
        let f = Fixture::new("out");
        symlink(f.host(), f.allowed().join("x")).unwrap();
        symlink("../host", f.allowed().join("up")).unwrap();
        for (rel, kind) in [
            ("x", ""),
            ("up", "Directory"),
            ("x/new/dir", "DirectoryOrCreate"),
            ("up/new-file", "FileOrCreate"),
        ] {
            let path = f.allowed().join(rel);
            let e = f.prepare("http", &path, kind).expect_err(rel);
            assert!(matches!(e.cause, Cause::Outside(_)), "{rel}: {e}");
            assert!(
                e.to_string().starts_with("hostPath volume \"v\" at "),
                "{e}"
            );
        }
        assert!(
            fs::read_dir(f.host()).unwrap().next().is_none(),
            "made outside"
        );
        // Nor inside, as if the prefix were `/` (in-root semantics).
        let mut left: Vec<_> = fs::read_dir(f.allowed())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["up", "x"]);
        assert!(!f.pins().join("v").exists(), "nothing pinned");
        // Under no allowed prefix (the policy changed since admission).
        let e = cause(f.prepare("api", &f.host(), ""));
        assert!(matches!(e, Cause::NotAllowed), "{e:?}");
    }

    #[test]
    fn what_is_found_or_made_below_the_prefix_is_pinned_and_checked() {
        let f = Fixture::new("in");
        fs::create_dir_all(f.allowed().join("real")).unwrap();
        fs::write(f.allowed().join("real/data"), "inside").unwrap();
        symlink("real", f.allowed().join("alias")).unwrap();
        let pinned = f
            .prepare("http", &f.allowed().join("alias"), "Directory")
            .unwrap();
        assert_eq!(pinned, f.pins().join("v"));
        assert_eq!(fs::read_to_string(pinned.join("data")).unwrap(), "inside");
        // Made below the prefix, then pinned.
        let made = f.allowed().join("alias/new/dir");
        let pinned = f.prepare("http", &made, "DirectoryOrCreate").unwrap();
        assert!(f.allowed().join("real/new/dir").is_dir());
        fs::write(pinned.join("written"), "x").unwrap();
        assert!(f.allowed().join("real/new/dir/written").exists());
        let file = f.allowed().join("real/new-file");
        let pinned = f.prepare("http", &file, "FileOrCreate").unwrap();
        assert!(file.is_file() && pinned.is_file());
        // The type is checked on what was found.
        let e = cause(f.prepare("http", &file, "Directory"));
        assert!(matches!(&e, Cause::NotA(k) if k == "Directory"), "{e:?}");
        let e = cause(f.prepare("http", &f.allowed().join("real"), "Socket"));
        assert!(matches!(&e, Cause::NotA(k) if k == "Socket"), "{e:?}");
        let e = cause(f.prepare("http", &f.allowed().join("missing"), "Directory"));
        assert!(matches!(&e, Cause::Io(e) if e.kind() == io::ErrorKind::NotFound));
    }

    #[test]
    fn a_static_pod_keeps_its_path_and_pins_go_with_their_content_kept() {
        let f = Fixture::new("static");
        let path = f.host().join("anywhere");
        assert_eq!(f.prepare("file", &path, "").unwrap(), path);
        fs::write(f.allowed().join("kept"), "x").unwrap();
        let pinned = f.prepare("http", &f.allowed(), "").unwrap();
        // A second start stacks no second mount.
        f.prepare("http", &f.allowed(), "").unwrap();
        remove_all(&f.pins()).unwrap();
        assert!(!pinned.exists() && !f.pins().exists());
        assert!(f.allowed().join("kept").exists());
    }
}

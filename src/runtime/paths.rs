//! Where everything lives, split by durability (docs/design.md, decision 5):
//! `run` (tmpfs) holds runtime state, `root` what must survive a reboot,
//! `logs` the CRI logs.
//!
//! Pod UIDs, names, namespaces, container names and API object names come
//! from outside: each is joined as one path component through
//! `safe_path::join`, which refuses `..`, `/` and NUL, whatever validation
//! let through.

use crate::engine::InstanceRef;
use crate::safe_path::{self, NameError};
use std::io;
use std::path::{Path, PathBuf};

/// picolet's three directories, and every path below them it uses.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `rootDir`: durable state (images, pod specs and volumes, writable layers).
    pub root: PathBuf,
    /// `runDir`: state of this boot (sandboxes, instance records, runc's root).
    pub run: PathBuf,
    /// `podLogsDir`: the pods' CRI logs.
    pub logs: PathBuf,
}

/// A name from outside (a uid, a container or object name) that cannot be
/// one path component: inside the `InvalidInput` error of [`join`].
#[derive(Debug)]
pub struct BadName {
    /// The name as given.
    pub name: String,
    /// Which rule it breaks.
    pub reason: NameError,
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} cannot name a file: it {}", self.name, self.reason)
    }
}

impl std::error::Error for BadName {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}

/// `base/name`, `name` being one component, or an `InvalidInput` error
/// holding a [`BadName`].
pub fn join(base: &Path, name: &str) -> io::Result<PathBuf> {
    safe_path::join(base, name).map_err(|reason| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            BadName {
                name: name.to_string(),
                reason,
            },
        )
    })
}

impl Paths {
    /// runc's state directory: ours alone, so `runc list` shows only picolet's.
    pub fn runc_root(&self) -> PathBuf {
        self.run.join("runc")
    }

    /// The PodList `picolet get pods` reads.
    pub fn status_file(&self) -> PathBuf {
        self.run.join(crate::published::STATUS_FILE)
    }

    /// The pod's sandbox directory of this boot: records, namespace pins, /etc files.
    pub fn pod_run(&self, uid: &str) -> io::Result<PathBuf> {
        join(&self.run.join("pods"), uid)
    }

    /// The pod's durable directory: its spec, history and volumes.
    pub fn pod_disk(&self, uid: &str) -> io::Result<PathBuf> {
        join(&self.root.join("pods"), uid)
    }

    /// A ConfigMap or Secret as the API sync last fetched it (root only).
    pub fn api_object(&self, plural: &str, namespace: &str, name: &str) -> io::Result<PathBuf> {
        let dir = join(&self.root.join("api/objects"), plural)?;
        join(&join(&dir, namespace)?, &format!("{name}.json"))
    }

    /// The directory of the pod's volumes.
    pub fn pod_volumes(&self, uid: &str) -> io::Result<PathBuf> {
        Ok(self.pod_disk(uid)?.join("volumes"))
    }

    /// The directory of the instance directories.
    pub fn containers_run(&self) -> PathBuf {
        self.run.join("containers")
    }

    /// An instance's directory of this boot: its bundle and records.
    pub fn container_run(&self, id: &str) -> io::Result<PathBuf> {
        join(&self.containers_run(), id)
    }

    /// An instance's durable directory: its writable layer.
    pub fn container_disk(&self, id: &str) -> io::Result<PathBuf> {
        join(&self.root.join("containers"), id)
    }

    /// A writable layer's empty directories, made ahead for the next start.
    pub fn spare_layer(&self) -> PathBuf {
        self.root.join("spare-layer")
    }

    /// The CRI log of one instance: `<logs>/<ns>_<name>_<uid>/<container>/<attempt>.log`.
    pub fn container_log(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        attempt: u32,
    ) -> io::Result<PathBuf> {
        let dir = super::logs::pod_log_dir(&self.logs, namespace, name, uid)?;
        Ok(join(&dir, container)?.join(format!("{attempt}.log")))
    }
}

/// The runtime's id of one instance: `<pod uid>_<container>_<attempt>`.
/// `_` is in neither a uid nor a container name (src/pod/validate/names.rs), so
/// two instances never share an id; with `-`, pod `aaaa`'s container `b-c`
/// and pod `aaaa-b`'s container `c` did, and one's start deleted the other.
/// Agents before this one used `-`: recovery keeps the ids it finds
/// (`Runtime::runtime_id`).
pub fn container_id(instance: &InstanceRef) -> String {
    format!(
        "{}_{}_{}",
        instance.pod_uid, instance.container, instance.attempt
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        Paths {
            root: "/var/lib/picolet".into(),
            run: "/run/picolet".into(),
            logs: "/var/log/pods".into(),
        }
    }

    #[test]
    fn ids_of_different_instances_differ_even_when_names_hold_dashes() {
        let instance = |uid: &str, container: &str, attempt| InstanceRef {
            pod_uid: uid.into(),
            container: container.into(),
            attempt,
        };
        let a = container_id(&instance("aaaa", "b-c", 0));
        let b = container_id(&instance("aaaa-b", "c", 0));
        assert_eq!(a, "aaaa_b-c_0");
        assert_eq!(b, "aaaa-b_c_0");
        assert_ne!(
            container_id(&instance("u-1", "c", 10)),
            container_id(&instance("u", "1-c", 10))
        );
        assert_ne!(
            container_id(&instance("u", "c-1", 0)),
            container_id(&instance("u", "c", 10))
        );
    }

    #[test]
    fn no_identifier_leaves_its_directory() {
        let p = paths();
        for bad in ["..", ".", "../../../tmp/x", "a/b", "a\0b", ""] {
            let refused = |r: io::Result<PathBuf>| {
                let e = r.expect_err(bad);
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {e}");
                assert!(e
                    .to_string()
                    .starts_with(&format!("{bad:?} cannot name a file")));
            };
            refused(p.pod_run(bad));
            refused(p.pod_disk(bad));
            refused(p.pod_volumes(bad));
            refused(p.container_run(bad));
            refused(p.container_disk(bad));
            refused(p.api_object("configmaps", bad, "app"));
            refused(p.container_log("default", "web", "u1", bad, 0));
        }
        // The name refused, and why.
        let refusal = |r: io::Result<PathBuf>| {
            let e = r.expect_err("a bad name");
            let bad = e.get_ref().and_then(|e| e.downcast_ref::<BadName>());
            bad.map(|b| (b.name.clone(), b.reason.clone()))
        };
        for (bad, reason) in [
            ("../../x", NameError::Slash),
            ("a/b", NameError::Slash),
            ("x\0", NameError::Nul),
        ] {
            assert_eq!(
                refusal(p.api_object("secrets", "default", bad)),
                Some((format!("{bad}.json"), reason))
            );
        }
        let long = "a".repeat(300);
        assert_eq!(
            refusal(p.pod_run(&long)),
            Some((long.clone(), NameError::TooLong(300)))
        );
        assert_eq!(
            refusal(p.container_log("default", &long, "u1", "c", 0)),
            Some((format!("default_{long}_u1"), NameError::TooLong(311)))
        );
        assert_eq!(
            p.pod_volumes("u1").unwrap(),
            Path::new("/var/lib/picolet/pods/u1/volumes")
        );
        assert_eq!(
            p.api_object("secrets", "default", "creds").unwrap(),
            Path::new("/var/lib/picolet/api/objects/secrets/default/creds.json")
        );
        assert_eq!(
            p.container_log("default", "web", "u1", "c", 2).unwrap(),
            Path::new("/var/log/pods/default_web_u1/c/2.log")
        );
    }
}

//! Where everything lives, split by durability (docs/design.md, decision 5):
//! `run` (tmpfs) holds runtime state, `root` what must survive a reboot,
//! `logs` the CRI logs.
//!
//! Pod UIDs, names, namespaces, container names and API object names come
//! from outside: each is joined as one path component through
//! `safe_path::join`, which refuses `..`, `/` and NUL, whatever validation
//! let through.

use crate::engine::InstanceRef;
use crate::safe_path;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub run: PathBuf,
    pub logs: PathBuf,
}

/// `base/name`, `name` being one component, or an error naming it.
pub fn join(base: &Path, name: &str) -> io::Result<PathBuf> {
    safe_path::join(base, name).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} cannot name a file: it {e}"),
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

    pub fn pod_volumes(&self, uid: &str) -> io::Result<PathBuf> {
        Ok(self.pod_disk(uid)?.join("volumes"))
    }

    pub fn containers_run(&self) -> PathBuf {
        self.run.join("containers")
    }

    pub fn container_run(&self, id: &str) -> io::Result<PathBuf> {
        join(&self.containers_run(), id)
    }

    pub fn container_disk(&self, id: &str) -> io::Result<PathBuf> {
        join(&self.root.join("containers"), id)
    }

    /// A writable layer's empty directories, made ahead for the next start.
    pub fn spare_layer(&self) -> PathBuf {
        self.root.join("spare-layer")
    }

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
/// `_` is in neither a uid nor a container name (src/pod/validate.rs), so
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
        for bad in ["../../x", "a/b", "x\0"] {
            assert!(p.api_object("secrets", "default", bad).is_err(), "{bad:?}");
        }
        let long = "a".repeat(300);
        assert!(p.pod_run(&long).is_err());
        assert!(p.container_log("default", &long, "u1", "c", 0).is_err());
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

//! Where everything lives, split by durability (DESIGN.md decision 5):
//! `run` (tmpfs) holds runtime state, `root` what must survive a reboot,
//! `logs` the CRI logs.

use crate::engine::InstanceRef;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub run: PathBuf,
    pub logs: PathBuf,
}

impl Paths {
    /// runc's state directory: ours alone, so `runc list` shows only picolet's.
    pub fn runc_root(&self) -> PathBuf {
        self.run.join("runc")
    }

    /// The PodList `picolet get pods` reads.
    pub fn status_file(&self) -> PathBuf {
        self.run.join("pods.json")
    }

    pub fn pod_run(&self, uid: &str) -> PathBuf {
        self.run.join("pods").join(uid)
    }

    /// The pod's durable directory: its spec, history and volumes.
    pub fn pod_disk(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    /// A ConfigMap or Secret as the API sync last fetched it (root only).
    pub fn api_object(&self, plural: &str, namespace: &str, name: &str) -> PathBuf {
        self.root
            .join("api/objects")
            .join(plural)
            .join(namespace)
            .join(format!("{name}.json"))
    }

    pub fn pod_volumes(&self, uid: &str) -> PathBuf {
        self.pod_disk(uid).join("volumes")
    }

    pub fn containers_run(&self) -> PathBuf {
        self.run.join("containers")
    }

    pub fn container_run(&self, id: &str) -> PathBuf {
        self.containers_run().join(id)
    }

    pub fn container_disk(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
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
    ) -> PathBuf {
        super::logs::pod_log_dir(&self.logs, namespace, name, uid)
            .join(container)
            .join(format!("{attempt}.log"))
    }
}

/// The runtime's id of one instance: `<pod uid>-<container>-<attempt>`.
pub fn container_id(instance: &InstanceRef) -> String {
    format!(
        "{}-{}-{}",
        instance.pod_uid, instance.container, instance.attempt
    )
}

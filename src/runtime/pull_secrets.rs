//! The credentials a pod's `imagePullSecrets` give for one registry, read
//! from the copies the API sync keeps (`objects.rs`), so that a pull after
//! a reboot offline has them too. As the kubelet does, a secret that is
//! missing, of another type or unreadable is skipped with a warning and the
//! pull goes on with what remains (the registries.yaml credentials, or
//! none): the registry's answer then says what was wrong.

use super::objects::PodFacts;
use crate::pod::refs::ObjectKind;
use crate::registry::{from_docker_config_json, Credentials};

/// The key of a `kubernetes.io/dockerconfigjson` Secret.
const DOCKER_CONFIG_JSON: &str = ".dockerconfigjson";

impl PodFacts<'_> {
    /// The pod's pull secrets' credentials for `registry`, in the order the
    /// pod lists them.
    pub fn pull_credentials(&self, registry: &str) -> Vec<Credentials> {
        let pod = &self.pod.metadata.name;
        let mut found = Vec::new();
        for secret in &self.pod.spec.image_pull_secrets {
            let name = &secret.name;
            let keys = match self.object(ObjectKind::Secret, name) {
                Ok(Some(keys)) => keys,
                Ok(None) => {
                    log::warn!("pod {pod}: image pull secret {name:?} is not known here; pulling without it");
                    continue;
                }
                Err(e) => {
                    log::warn!("pod {pod}: image pull secret {name:?}: {e}; pulling without it");
                    continue;
                }
            };
            let Some(json) = keys.get(DOCKER_CONFIG_JSON) else {
                log::warn!("pod {pod}: image pull secret {name:?} has no {DOCKER_CONFIG_JSON} key; pulling without it");
                continue;
            };
            match from_docker_config_json(json, registry) {
                Ok(Some(credentials)) => found.push(credentials),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("pod {pod}: image pull secret {name:?}: {e}; pulling without it")
                }
            }
        }
        found
    }
}

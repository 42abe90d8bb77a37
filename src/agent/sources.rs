//! The agent's sources of pods, merged into the engine's desired set: the
//! manifest directory, the manifest URL and, in node mode, the API server.

use crate::engine::{Desired, Engine};
use crate::node::Node;
use crate::pod::policy::{NodePolicy, FROM_URL};
use crate::published::ManifestError;
use crate::runtime::Runtime;
use crate::source::api::{ApiSource, Assigned};
use crate::source::file::ManifestDir;
use crate::source::url::ManifestUrl;
use crate::time::Time;
use std::collections::BTreeSet;

/// Node mode: the pods the API server binds here, and the reporter that
/// tells it what became of them.
pub struct NodeMode {
    /// The pods the API server binds here.
    pub source: ApiSource,
    /// What is reported back to it.
    pub reporter: Node,
}

/// Where pods come from.
pub struct Sources {
    /// The manifest directory: always there.
    pub files: ManifestDir,
    /// The manifest URL, when configured.
    pub url: Option<ManifestUrl>,
    /// Node mode, when a kubeconfig is configured.
    pub node: Option<NodeMode>,
    /// Applies to the URL's pods; the API server's come with it applied.
    pub policy: NodePolicy,
}

impl Sources {
    /// The problems of the manifests the directory and the URL hold.
    pub fn errors(&self) -> Vec<ManifestError> {
        let mut errors = self.files.errors();
        errors.extend(self.url.iter().flat_map(ManifestUrl::errors));
        errors
    }

    /// Take what the API server's watch sent; true if its pods changed. The
    /// rest of its list goes to the reporter.
    pub fn drain_api_server(&mut self) -> bool {
        let Some(node) = self.node.as_mut() else {
            return false;
        };
        let changed = node.source.drain();
        if let Some(listing) = node.source.take_listing() {
            node.reporter.observe(listing);
        }
        changed
    }

    /// Take what the URL's poller fetched; true if its pods may have changed.
    pub fn drain_url(&mut self, now: Time) -> bool {
        self.url.as_mut().is_some_and(|u| u.drain(now))
    }

    /// The pods of every source; a name already taken by an earlier source
    /// is ignored, as a later duplicate is. The directory's pods are
    /// trusted; the URL's are subject to the node policy. Log directories
    /// are read only for pods the engine does not hold yet: for the others
    /// the starting restart counts are never used.
    pub fn desired(&mut self, runtime: &Runtime, engine: &Engine) -> Vec<Desired> {
        let files = self.files.pods().into_iter();
        let from_url = self.url.as_ref().map(ManifestUrl::pods).unwrap_or_default();
        let assigned = self
            .node
            .as_ref()
            .map(|n| n.source.pods())
            .unwrap_or_default();
        let all = files
            .map(|pod| Assigned { pod, refused: None })
            .chain(from_url.into_iter().map(|pod| Assigned {
                refused: self.policy.refusal(&pod, FROM_URL),
                pod,
            }))
            .chain(assigned);
        let mut names = BTreeSet::new();
        all.filter(|a| {
            let name = a.pod.full_name();
            let first = names.insert(name.clone());
            if !first {
                log::error!(
                    "pod {name} is defined by more than one source; the later one is ignored"
                );
            }
            first
        })
        .map(|Assigned { pod, refused }| Desired {
            first_attempts: if engine.holds(&pod.metadata.uid) {
                Default::default()
            } else {
                runtime.first_attempts(&pod)
            },
            pod,
            refused,
        })
        .collect()
    }
}

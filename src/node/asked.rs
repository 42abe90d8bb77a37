//! What the core has asked the writer to send, so that nothing goes out
//! twice: the last status of each pod, and the deletions under way. Kept
//! only for pods the server still lists, so that a node that runs for months
//! holds nothing of the pods it ran before.

use crate::apiserver::PodKey;
use crate::source::api::Listing;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What was asked of the writer, by pod.
#[derive(Default)]
pub struct Asked {
    /// By pod: the UID and the status last sent.
    statuses: BTreeMap<PodKey, (String, Value)>,
    /// UIDs of pods and mirror pods whose deletion was asked.
    deletions: BTreeSet<String>,
}

impl Asked {
    /// Record `status` as sent for the pod; false if it was sent already.
    pub fn status(&mut self, key: &PodKey, uid: &str, status: &Value) -> bool {
        if self
            .statuses
            .get(key)
            .is_some_and(|(u, s)| u == uid && s == status)
        {
            return false;
        }
        self.statuses
            .insert(key.clone(), (uid.to_string(), status.clone()));
        true
    }

    /// Record the deletion of the pod `uid` as asked; false if it was already.
    pub fn deletion(&mut self, uid: &str) -> bool {
        self.deletions.insert(uid.to_string())
    }

    /// Was the deletion of the pod `uid` asked?
    pub fn deletion_asked(&self, uid: &str) -> bool {
        self.deletions.contains(uid)
    }

    /// Forget the pods the server no longer lists.
    pub fn keep_only(&mut self, listed: &Listing) {
        self.statuses.retain(|key, _| listed.keys.contains(key));
        self.deletions.retain(|uid| listed.uids.contains(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> PodKey {
        PodKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_status_goes_out_once_per_change_and_per_uid() {
        let mut asked = Asked::default();
        let running = json!({"phase": "Running"});
        assert!(asked.status(&key("a"), "u1", &running));
        assert!(!asked.status(&key("a"), "u1", &running));
        assert!(asked.status(&key("a"), "u1", &json!({"phase": "Failed"})));
        assert!(asked.status(&key("a"), "u2", &json!({"phase": "Failed"})));
        assert!(asked.deletion("u2"));
        assert!(!asked.deletion("u2"));
        assert!(asked.deletion_asked("u2"));
    }

    #[test]
    fn pods_the_server_no_longer_lists_are_forgotten() {
        let mut asked = Asked::default();
        let running = json!({"phase": "Running"});
        for (name, uid) in [("a", "ua"), ("b", "ub")] {
            asked.status(&key(name), uid, &running);
            asked.deletion(uid);
        }
        let mut listed = Listing::default();
        listed.keys.insert(key("a"));
        listed.uids.insert("ua".into());
        asked.keep_only(&listed);
        assert!(!asked.status(&key("a"), "ua", &running), "still listed");
        assert!(asked.deletion_asked("ua"));
        assert!(!asked.deletion_asked("ub"));
        assert_eq!(asked.statuses.len(), 1);
        // Listed again later (the same name, a new pod), it is sent afresh.
        assert!(asked.status(&key("b"), "ub2", &running));
    }
}

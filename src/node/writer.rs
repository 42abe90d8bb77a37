//! Everything picolet writes to the API server, on its own thread: the Node
//! (registered once, its status on change and every 5 minutes), the Lease
//! (renewed every 10 s), pod status patches (coalesced: only the latest of
//! each pod is sent), deletions with a UID precondition, mirror pods, and
//! rate-limited events. What fails stays queued and is retried with back-off;
//! the core never waits for any of it.

use super::facts::{self, Condition, NodeFacts, Pressures};
use super::ToServer;
use crate::apiserver::client::{ApiClient, Patch, Reply, RequestError};
use crate::apiserver::PodKey;
use crate::jitter::RetryBackoff;
use crate::time::Time;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Events per pod: a burst of 25, then one per 5 minutes (client-go's
/// EventSourceObjectSpamFilter).
const EVENT_BURST: u32 = 25;
const EVENT_REFILL: Duration = Duration::from_secs(300);

/// Events waiting for the server, at most: past it the oldest are dropped,
/// so that a long outage costs bounded memory (client-go drops an event
/// after 12 failed tries and queues at most 1,000).
const QUEUED_EVENTS: usize = 100;

/// Why a step of the writer's sync failed; it is retried with back-off.
#[derive(Debug)]
enum SyncError {
    /// No answer.
    Request(RequestError),
    /// The server answered with an error status.
    Refused(Reply),
    /// The Node the server answered with has no uid.
    NoUid,
}

impl From<RequestError> for SyncError {
    fn from(e: RequestError) -> SyncError {
        SyncError::Request(e)
    }
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Request(e) => e.fmt(f),
            SyncError::Refused(reply) => f.write_str(&reply.message()),
            SyncError::NoUid => f.write_str("the server's Node has no uid"),
        }
    }
}

/// The writer thread: its client, this node's facts, and the core's
/// messages.
pub struct Writer {
    /// Its own client: the watch thread holds the other.
    pub client: ApiClient,
    /// What describes this node.
    pub facts: NodeFacts,
    /// The state directory, whose filesystem the disk pressure is read of.
    pub root: PathBuf,
    /// The core's messages.
    pub from_core: Receiver<ToServer>,
}

#[derive(Default)]
struct Queue {
    statuses: BTreeMap<PodKey, (String, Value)>,
    deletes: BTreeMap<PodKey, String>,
    mirror_creates: BTreeMap<PodKey, Value>,
    mirror_deletes: BTreeMap<PodKey, String>,
    events: VecDeque<Value>,
}

impl Queue {
    fn take(&mut self, message: ToServer) {
        match message {
            ToServer::Status { key, uid, status } => {
                self.statuses.insert(key, (uid, status));
            }
            ToServer::Delete { key, uid } => {
                self.deletes.insert(key, uid);
            }
            ToServer::CreateMirror { key, pod } => {
                self.mirror_deletes.remove(&key);
                self.mirror_creates.insert(key, pod);
            }
            ToServer::DeleteMirror { key, uid } => {
                self.mirror_creates.remove(&key);
                self.mirror_deletes.insert(key, uid);
            }
            ToServer::Event(event) => {
                if self.events.len() == QUEUED_EVENTS {
                    self.events.pop_front();
                }
                self.events.push_back(event);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.statuses.is_empty()
            && self.deletes.is_empty()
            && self.mirror_creates.is_empty()
            && self.mirror_deletes.is_empty()
            && self.events.is_empty()
    }
}

/// What the writer knows of the server's view of this node.
struct NodeState {
    uid: Option<String>,
    conditions: Vec<Condition>,
    status_sent: Option<Time>,
    lease: Option<Value>,
    lease_due: Time,
}

/// How long the API server keeps an event (kube-apiserver's `--event-ttl`
/// default): a repeat after that cannot count up on the one posted before.
const EVENT_TTL: Duration = Duration::from_secs(3600);

/// An event on the server that a repeat counts up on.
struct PostedEvent {
    name: String,
    namespace: String,
    count: u64,
    last: Time,
}

/// Per-pod event budget and the events already posted, for counting repeats.
/// Both forget what no longer changes anything, so that a node that runs
/// for months keeps only its recent pods' entries.
#[derive(Default)]
struct EventBudget {
    tokens: BTreeMap<String, (u32, Time)>,
    /// By pod UID, reason, and where and what (field path and message).
    posted: BTreeMap<(String, String, String), PostedEvent>,
}

impl EventBudget {
    /// Drop budgets that are full again (as good as none) and events the
    /// server has let expire.
    fn forget_stale(&mut self, now: Time) {
        self.tokens.retain(|_, (tokens, refilled)| {
            now.saturating_sub(*refilled) < EVENT_REFILL * (EVENT_BURST - *tokens)
        });
        self.posted
            .retain(|_, event| now.saturating_sub(event.last) < EVENT_TTL);
    }

    /// Take one event's token of this pod's budget; false when spent.
    fn spend(&mut self, pod_uid: &str, now: Time) -> bool {
        let (tokens, refilled) = self
            .tokens
            .entry(pod_uid.to_string())
            .or_insert((EVENT_BURST, now));
        let earned = (now.saturating_sub(*refilled).as_secs() / EVENT_REFILL.as_secs()) as u32;
        if earned > 0 {
            *tokens = (*tokens + earned).min(EVENT_BURST);
            *refilled = *refilled + EVENT_REFILL * earned;
        }
        if *tokens == 0 {
            return false;
        }
        *tokens -= 1;
        true
    }
}

impl Writer {
    /// The thread's loop: take the core's messages, sync, retry failures
    /// with back-off; ends when the core is gone.
    pub fn run(self) {
        let mut queue = Queue::default();
        let mut node = NodeState {
            uid: None,
            conditions: Vec::new(),
            status_sent: None,
            lease: None,
            lease_due: Time::now(),
        };
        let mut budget = EventBudget::default();
        let mut backoff = RetryBackoff::new();
        let mut retry_at: Option<Time> = None;
        loop {
            let now = Time::now();
            // After a failure nothing is sent before the retry time, the
            // lease included: the server is failing as a whole.
            let due = retry_at.unwrap_or(node.lease_due);
            match self.from_core.recv_timeout(due.saturating_sub(now)) {
                Ok(message) => {
                    queue.take(message);
                    while let Ok(message) = self.from_core.try_recv() {
                        queue.take(message);
                    }
                    if retry_at.is_some_and(|t| Time::now() < t) {
                        continue;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let failed = !self.sync(&mut node, &mut queue, &mut budget);
            retry_at = if failed {
                Some(Time::now() + backoff.failed())
            } else {
                backoff.reset();
                None
            };
        }
    }

    /// Register, heartbeat, report, flush the queue. False if something
    /// failed and must be retried.
    fn sync(&self, node: &mut NodeState, queue: &mut Queue, budget: &mut EventBudget) -> bool {
        let now = Time::now();
        if node.uid.is_none() {
            match self.register(node, now) {
                Ok(uid) => {
                    log::info!(
                        "node {} registered with {}",
                        self.facts.name,
                        self.client.server()
                    );
                    node.uid = Some(uid);
                }
                Err(message) => {
                    log::warn!("registering node {}: {message}", self.facts.name);
                    return false;
                }
            }
        }
        let mut ok = true;
        if now >= node.lease_due {
            match self.renew_lease(node, now) {
                Ok(()) => node.lease_due = now + facts::LEASE_RENEW,
                Err(message) => {
                    log::warn!("renewing the node lease: {message}");
                    ok = false;
                    node.lease_due = now + Duration::from_secs(1);
                }
            }
            if let Err(message) = self.report_node(node, now) {
                log::warn!("updating the node status: {message}");
                ok = false;
            }
        }
        if !queue.is_empty() {
            ok &= self.flush(node, queue, budget, now);
        }
        ok
    }

    fn register(&self, node: &mut NodeState, now: Time) -> Result<String, SyncError> {
        node.conditions = Pressures::read(&self.root).conditions(&node.conditions, now);
        let object = self.facts.node(&node.conditions, now);
        let reply = self.client.post("/api/v1/nodes", &object)?;
        let uid = match reply.status {
            200 | 201 => reply.body["metadata"]["uid"].as_str().map(str::to_string),
            409 => {
                // Registered before: make the server's Node ours again.
                let path = format!("/api/v1/nodes/{}", self.facts.name);
                let patch = json!({"metadata": {"labels": object["metadata"]["labels"]}});
                let reply = self.client.patch(&path, Patch::Merge, &patch)?;
                if !reply.ok() {
                    return Err(SyncError::Refused(reply));
                }
                let status = self.client.patch(
                    &format!("{path}/status"),
                    Patch::Merge,
                    &json!({"status": object["status"]}),
                )?;
                if !status.ok() {
                    return Err(SyncError::Refused(status));
                }
                reply.body["metadata"]["uid"].as_str().map(str::to_string)
            }
            _ => return Err(SyncError::Refused(reply)),
        };
        node.status_sent = Some(now);
        uid.ok_or(SyncError::NoUid)
    }

    fn renew_lease(&self, node: &mut NodeState, now: Time) -> Result<(), SyncError> {
        let path = format!(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
            self.facts.name
        );
        let mut lease = match node.lease.take() {
            Some(lease) => lease,
            None => {
                let reply = self.client.get(&path)?;
                match reply.status {
                    200 => reply.body,
                    404 => {
                        let fresh = facts::lease(&self.facts.name, node.uid.as_deref(), now);
                        let created = self.client.post(
                            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                            &fresh,
                        )?;
                        if !created.ok() {
                            return Err(SyncError::Refused(created));
                        }
                        node.lease = Some(created.body);
                        return Ok(());
                    }
                    _ => return Err(SyncError::Refused(reply)),
                }
            }
        };
        lease["spec"]["renewTime"] = json!(now.rfc3339_micros());
        lease["spec"]["holderIdentity"] = json!(self.facts.name);
        lease["spec"]["leaseDurationSeconds"] = json!(facts::LEASE_DURATION_SECONDS);
        let reply = self.client.put(&path, &lease)?;
        if !reply.ok() {
            // A conflict or a vanished lease: read it again next time.
            return Err(SyncError::Refused(reply));
        }
        node.lease = Some(reply.body);
        Ok(())
    }

    /// PATCH the Node status when a condition changed, or every 5 minutes.
    fn report_node(&self, node: &mut NodeState, now: Time) -> Result<(), SyncError> {
        let conditions = Pressures::read(&self.root).conditions(&node.conditions, now);
        let stale = node
            .status_sent
            .is_none_or(|t| now.saturating_sub(t) >= facts::STATUS_REPORT);
        if conditions == node.conditions && !stale {
            return Ok(());
        }
        let path = format!("/api/v1/nodes/{}/status", self.facts.name);
        let patch = json!({"status": self.facts.status(&conditions, now)});
        let reply = self.client.patch(&path, Patch::Merge, &patch)?;
        if !reply.ok() {
            return Err(SyncError::Refused(reply));
        }
        node.conditions = conditions;
        node.status_sent = Some(now);
        Ok(())
    }

    /// Send what is queued; what fails for a reason that may pass stays.
    fn flush(
        &self,
        node: &NodeState,
        queue: &mut Queue,
        budget: &mut EventBudget,
        now: Time,
    ) -> bool {
        let mut ok = true;
        let mut done = |result: Result<Reply, RequestError>, what: &str| -> bool {
            match result {
                Ok(r) if r.ok() => true,
                // Gone, or another object by now: nothing left to do.
                Ok(r) if r.status == 404 || r.status == 409 => {
                    log::info!("{what}: {}", r.message());
                    true
                }
                // Refused for what it is (malformed, invalid): sending it
                // again would not help. Credentials (401, 403), 429 and 5xx
                // may pass: those are retried.
                Ok(r) if matches!(r.status, 400 | 405 | 413 | 415 | 422) => {
                    log::warn!("{what}: {}; dropped", r.message());
                    true
                }
                Ok(r) => {
                    log::warn!("{what}: {}", r.message());
                    ok = false;
                    false
                }
                Err(e) => {
                    log::warn!("{what}: {e}");
                    ok = false;
                    false
                }
            }
        };
        queue.statuses.retain(|key, (uid, status)| {
            let patch = json!({"metadata": {"uid": uid}, "status": status});
            let result = self
                .client
                .patch(&format!("{}/status", key.path()), Patch::Merge, &patch);
            !done(result, &format!("status of pod {key}"))
        });
        let delete_options = |uid: &str| {
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                   "preconditions": {"uid": uid}})
        };
        queue.deletes.retain(|key, uid| {
            let result = self.client.delete(&key.path(), &delete_options(uid));
            !done(result, &format!("deleting pod {key}"))
        });
        queue.mirror_deletes.retain(|key, uid| {
            let result = self.client.delete(&key.path(), &delete_options(uid));
            !done(result, &format!("deleting mirror pod {key}"))
        });
        queue.mirror_creates.retain(|key, pod| {
            if let Some(uid) = &node.uid {
                pod["metadata"]["ownerReferences"] = json!([{
                    "apiVersion": "v1", "kind": "Node", "name": self.facts.name,
                    "uid": uid, "controller": true,
                }]);
            }
            let result = self
                .client
                .post(&format!("/api/v1/namespaces/{}/pods", key.namespace), pod);
            !done(result, &format!("creating mirror pod {key}"))
        });
        while let Some(event) = queue.events.front() {
            if let Err(e) = self.post_event(event.clone(), budget, now) {
                log::warn!("posting an event: {e}");
                ok = false;
                break;
            }
            queue.events.pop_front();
        }
        ok
    }

    /// Post an event, or count a repeat of one already posted; dropped
    /// quietly when its pod spent its budget.
    fn post_event(
        &self,
        mut event: Value,
        budget: &mut EventBudget,
        now: Time,
    ) -> Result<(), SyncError> {
        budget.forget_stale(now);
        let object = &event["involvedObject"];
        let pod_uid = object["uid"].as_str().unwrap_or("").to_string();
        if !budget.spend(&pod_uid, now) {
            return Ok(());
        }
        let namespace = object["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let repeat_key = (
            pod_uid,
            event["reason"].as_str().unwrap_or("").to_string(),
            format!("{}{}", object["fieldPath"], event["message"]),
        );
        if let Some(posted) = budget.posted.get_mut(&repeat_key) {
            let patch = json!({"count": posted.count + 1, "lastTimestamp": now.rfc3339()});
            let reply = self.client.patch(
                &format!(
                    "/api/v1/namespaces/{}/events/{}",
                    posted.namespace, posted.name
                ),
                Patch::Merge,
                &patch,
            )?;
            if reply.ok() {
                posted.count += 1;
                posted.last = now;
                return Ok(());
            }
        }
        let name = format!(
            "{}.{:x}",
            object["name"].as_str().unwrap_or("pod"),
            now.0 * 1_000_000 + budget.posted.len() as u64
        );
        event["metadata"] = json!({"name": name, "namespace": namespace});
        let reply = self
            .client
            .post(&format!("/api/v1/namespaces/{namespace}/events"), &event)?;
        if !reply.ok() && reply.status != 409 {
            return Err(SyncError::Refused(reply));
        }
        budget.posted.insert(
            repeat_key,
            PostedEvent {
                name,
                namespace,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_burst_to_25_per_pod_then_one_per_five_minutes() {
        let mut budget = EventBudget::default();
        let t0 = Time::from_secs(1_000_000);
        let spent = (0..40).filter(|_| budget.spend("a", t0)).count();
        assert_eq!(spent, 25);
        assert!(budget.spend("b", t0), "another pod has its own budget");
        assert!(!budget.spend("a", t0 + Duration::from_secs(299)));
        assert!(budget.spend("a", t0 + Duration::from_secs(300)));
        assert!(!budget.spend("a", t0 + Duration::from_secs(301)));
        let later = t0 + Duration::from_secs(3600);
        // 3300 s since the last refill: 11 more tokens.
        assert_eq!((0..40).filter(|_| budget.spend("a", later)).count(), 11);
    }

    #[test]
    fn the_queue_keeps_each_pods_latest_status_and_the_newest_events() {
        let mut queue = Queue::default();
        let key = PodKey {
            namespace: "default".into(),
            name: "a".into(),
        };
        for phase in ["Pending", "Running"] {
            queue.take(ToServer::Status {
                key: key.clone(),
                uid: "u".into(),
                status: json!({ "phase": phase }),
            });
        }
        assert_eq!(queue.statuses.len(), 1);
        assert_eq!(queue.statuses[&key].1["phase"], "Running");
        for n in 0..QUEUED_EVENTS + 5 {
            queue.take(ToServer::Event(json!({ "n": n })));
        }
        assert_eq!(queue.events.len(), QUEUED_EVENTS);
        assert_eq!(queue.events[0]["n"], 5);
    }

    #[test]
    fn pods_quiet_long_enough_are_forgotten() {
        let mut budget = EventBudget::default();
        let t0 = Time::from_secs(1_000_000);
        let posted = |count| PostedEvent {
            name: "p.1".into(),
            namespace: "default".into(),
            count,
            last: t0,
        };
        let key = |uid: &str| (uid.to_string(), "BackOff".to_string(), String::new());
        for _ in 0..3 {
            budget.spend("a", t0);
        }
        budget.spend("b", t0);
        budget.posted.insert(key("a"), posted(3));
        budget.forget_stale(t0 + Duration::from_secs(300));
        assert!(budget.tokens.contains_key("a"), "3 spent, 1 refilled");
        assert!(!budget.tokens.contains_key("b"), "full again");
        assert!(budget.posted.contains_key(&key("a")));
        budget.forget_stale(t0 + Duration::from_secs(900));
        assert!(budget.tokens.is_empty());
        assert!(budget.posted.contains_key(&key("a")), "not yet expired");
        budget.forget_stale(t0 + EVENT_TTL);
        assert!(budget.posted.is_empty());
        // Forgotten, a pod starts again with a full budget.
        let spent = (0..40)
            .filter(|_| budget.spend("a", t0 + EVENT_TTL))
            .count();
        assert_eq!(spent, 25);
    }
}

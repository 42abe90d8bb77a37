//! CrashLoopBackOff bookkeeping, as client-go's `flowcontrol.Backoff` keeps it
//! for the kubelet (docs/lifecycle.md, "CrashLoopBackOff"): per (pod, container, image)
//! entries, doubling from `initial` to `max`, no jitter, and an entry expires
//! when the latest exit is more than 2 x max after the last restart decision.

use crate::time::Time;
use std::collections::BTreeMap;
use std::time::Duration;

/// Initial and maximum back-off; the kubelet's are 10 s and 300 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The first wait.
    pub initial: Duration,
    /// The cap the waits double up to.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
        }
    }
}

/// Identifies one back-off sequence: an image change starts a new one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackoffKey {
    pub pod_uid: String,
    /// The container's name; empty for the pod's sandbox.
    pub container: String,
    /// The container's image; empty where a change must not reset it.
    pub image: String,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Time,
}

/// The back-off entries of every sequence, under one policy.
#[derive(Debug, Default)]
pub struct CrashLoopBackoff {
    policy: BackoffPolicy,
    entries: BTreeMap<BackoffKey, Entry>,
}

impl CrashLoopBackoff {
    /// No entries yet: every first restart is immediate.
    pub fn new(policy: BackoffPolicy) -> Self {
        CrashLoopBackoff {
            policy,
            entries: BTreeMap::new(),
        }
    }

    fn expired(&self, event_time: Time, entry: &Entry) -> bool {
        event_time.saturating_sub(entry.last_update) > self.policy.max * 2
    }

    /// If a restart of a container that finished at `finished_at` must wait,
    /// the time it may start and the current back-off.
    pub fn in_backoff(
        &self,
        key: &BackoffKey,
        finished_at: Time,
        now: Time,
    ) -> Option<(Time, Duration)> {
        let entry = self.entries.get(key)?;
        if self.expired(finished_at, entry) {
            return None;
        }
        (now.saturating_sub(finished_at) < entry.backoff)
            .then_some((finished_at + entry.backoff, entry.backoff))
    }

    /// Record a restart decision taken at `now` for an exit at `finished_at`.
    pub fn advance(&mut self, key: BackoffKey, finished_at: Time, now: Time) {
        let policy = self.policy;
        let fresh = Entry {
            backoff: policy.initial,
            last_update: now,
        };
        let next = match self.entries.get(&key) {
            Some(e) if !self.expired(finished_at, e) => Entry {
                backoff: (e.backoff * 2).min(policy.max),
                last_update: now,
            },
            _ => fresh,
        };
        self.entries.insert(key, next);
    }

    /// flowcontrol's `IsInBackOffSinceUpdate`: if the sequence's latest
    /// advance was less than its back-off before `now`, the time the wait
    /// ends and the back-off. The image manager asks this before a pull.
    pub fn in_backoff_since_update(&self, key: &BackoffKey, now: Time) -> Option<(Time, Duration)> {
        let entry = self.entries.get(key)?;
        if self.expired(now, entry) {
            return None;
        }
        (now.saturating_sub(entry.last_update) < entry.backoff)
            .then_some((entry.last_update + entry.backoff, entry.backoff))
    }

    /// Start a sequence over: its next advance waits `initial` again.
    pub fn reset(&mut self, key: &BackoffKey) {
        self.entries.remove(key);
    }

    /// Drop every sequence of a pod that is gone.
    pub fn forget_pod(&mut self, pod_uid: &str) {
        self.entries.retain(|k, _| k.pod_uid != pod_uid);
    }
}

/// A duration the way Go's `time.Duration.String` prints it (`10s`, `2m40s`,
/// `5m0s`, `1.234s`, `850ms`), as kubelet messages do, truncated to the
/// millisecond as the image manager truncates its pull times.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    let frac = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}").trim_end_matches('0').to_string()
    };
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) if s == 0 && millis > 0 => format!("{millis}ms"),
        (0, 0, s) => format!("{s}{frac}s"),
        (0, m, s) => format!("{m}m{s}{frac}s"),
        (h, m, s) => format!("{h}h{m}m{s}{frac}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BackoffKey {
        BackoffKey {
            pod_uid: "u".into(),
            container: "c".into(),
            image: "i".into(),
        }
    }

    #[test]
    fn doubles_to_the_cap_then_resets_after_a_long_run() {
        let mut b = CrashLoopBackoff::new(BackoffPolicy::default());
        let mut now = Time::from_secs(1000);
        assert!(
            b.in_backoff(&key(), now, now).is_none(),
            "first restart is immediate"
        );
        let mut seen = vec![];
        for _ in 0..8 {
            b.advance(key(), now, now);
            let (until, d) = b.in_backoff(&key(), now, now).unwrap();
            seen.push(d.as_secs());
            now = until;
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
        // A container that ran for more than 600 s after the last decision.
        let finished = now + Duration::from_secs(601);
        assert!(b.in_backoff(&key(), finished, finished).is_none());
        b.advance(key(), finished, finished);
        assert_eq!(
            b.in_backoff(&key(), finished, finished)
                .unwrap()
                .1
                .as_secs(),
            10
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(160)), "2m40s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_millis(1234)), "1.234s");
        assert_eq!(go_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_millis(60_500)), "1m0.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(3_723_040)), "1h2m3.04s");
        // Below the millisecond: truncated, as `Truncate(time.Millisecond)`.
        assert_eq!(go_duration(Duration::from_nanos(1_234_567_890)), "1.234s");
        assert_eq!(go_duration(Duration::from_micros(999)), "0s");
    }

    #[test]
    fn since_update_waits_from_the_last_advance() {
        // flowcontrol's IsInBackOffSinceUpdate, as the image manager uses it.
        let mut b = CrashLoopBackoff::new(BackoffPolicy::default());
        let t0 = Time::from_secs(1000);
        assert!(b.in_backoff_since_update(&key(), t0).is_none());
        b.advance(key(), t0, t0);
        let ten = Duration::from_secs(10);
        assert_eq!(b.in_backoff_since_update(&key(), t0), Some((t0 + ten, ten)));
        assert!(b.in_backoff_since_update(&key(), t0 + ten).is_none());
        b.advance(key(), t0 + ten, t0 + ten);
        let twenty = Duration::from_secs(20);
        assert_eq!(
            b.in_backoff_since_update(&key(), t0 + twenty),
            Some((t0 + ten + twenty, twenty))
        );
        b.reset(&key());
        assert!(b.in_backoff_since_update(&key(), t0 + twenty).is_none());
    }
}

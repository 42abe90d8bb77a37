//! Pod cgroups still to remove, retried on a timer instead of on a
//! sleeping core thread: the kernel empties a killed cgroup asynchronously,
//! so its `rmdir` may fail for a few milliseconds (`cgroup.rs`,
//! `Cgroups::remove_pod`). The agent waits no longer than
//! [`CgroupRemovals::poll_timeout`] and then hands the due ones back.

use crate::time::Time;
use std::collections::BTreeMap;
use std::time::Duration;

/// The pause before each retry after a failed first attempt: short ones
/// first, since a killed cgroup is usually empty within milliseconds, then
/// longer ones; about one second in all before picolet gives up.
const RETRY_DELAYS_MS: [u64; 9] = [10, 10, 10, 20, 50, 100, 200, 300, 300];

/// When a busy cgroup is tried again, and how many retries are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Index in `RETRY_DELAYS_MS` of the pause before `due`.
    used: usize,
    /// The next attempt's time.
    due: Time,
}

impl Retry {
    /// The first retry, after the first attempt failed at `now`.
    pub fn first(now: Time) -> Retry {
        Retry {
            used: 0,
            due: now + Duration::from_millis(RETRY_DELAYS_MS[0]),
        }
    }

    /// The retry after this one failed at `now`; `None` once the budget is
    /// spent.
    pub fn next(self, now: Time) -> Option<Retry> {
        let used = self.used + 1;
        RETRY_DELAYS_MS.get(used).map(|&ms| Retry {
            used,
            due: now + Duration::from_millis(ms),
        })
    }

    /// When this retry is due.
    pub fn due(&self) -> Time {
        self.due
    }
}

/// The pods whose cgroup is waiting for another removal attempt, by uid.
#[derive(Debug, Default)]
pub struct CgroupRemovals {
    retries: BTreeMap<String, Retry>,
}

impl CgroupRemovals {
    /// A first attempt failed: retry from the first delay, unless a retry
    /// is pending already (a pod's cgroup is removed when its sandbox stops
    /// and again when it is forgotten: the second keeps the first's budget).
    pub fn schedule_first(&mut self, pod_uid: &str, now: Time) {
        self.retries
            .entry(pod_uid.to_string())
            .or_insert_with(|| Retry::first(now));
    }

    /// Try the pod's cgroup again at `retry`'s time.
    pub fn schedule(&mut self, pod_uid: &str, retry: Retry) {
        self.retries.insert(pod_uid.to_string(), retry);
    }

    /// Stop retrying: the pod's cgroup is wanted again (a pod with the same
    /// uid gets a sandbox), and removing it later would kill the new pod.
    pub fn cancel(&mut self, pod_uid: &str) {
        self.retries.remove(pod_uid);
    }

    /// The earliest retry due, if any.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.retries.values().map(Retry::due).min()
    }

    /// The retries due at `now`, taken out: the caller schedules again
    /// those that fail.
    pub fn take_due(&mut self, now: Time) -> Vec<(String, Retry)> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|(_, r)| r.due <= now);
        self.retries = later.into_iter().collect();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_short_and_stop_after_about_a_second() {
        let start = Time(1_000);
        let mut retry = Retry::first(start);
        assert_eq!(retry.due(), Time(1_010));
        let mut attempts = 1;
        // Each retry fails at the moment it is due.
        while let Some(next) = retry.next(retry.due()) {
            assert!(next.due() > retry.due());
            retry = next;
            attempts += 1;
        }
        assert_eq!(attempts, RETRY_DELAYS_MS.len());
        assert_eq!(
            retry.due(),
            Time(2_000),
            "one second after the first attempt"
        );
    }

    #[test]
    fn the_first_retries_are_ten_milliseconds_apart() {
        let first = Retry::first(Time(0));
        let second = first.next(Time(10)).unwrap();
        let third = second.next(Time(20)).unwrap();
        assert_eq!(
            [first.due(), second.due(), third.due()],
            [Time(10), Time(20), Time(30)]
        );
    }

    #[test]
    fn a_late_failure_counts_its_pause_from_when_it_failed() {
        let retry = Retry::first(Time(0)).next(Time(500)).unwrap();
        assert_eq!(retry.due(), Time(510));
    }

    #[test]
    fn only_due_removals_are_taken_and_the_earliest_sets_the_timeout() {
        let mut removals = CgroupRemovals::default();
        assert_eq!(removals.poll_timeout(), None);
        removals.schedule("a", Retry::first(Time(100)));
        removals.schedule("b", Retry::first(Time(50)));
        assert_eq!(removals.poll_timeout(), Some(Time(60)));
        assert_eq!(removals.take_due(Time(59)), vec![]);
        let due = removals.take_due(Time(60));
        assert_eq!(due, vec![("b".to_string(), Retry::first(Time(50)))]);
        assert_eq!(removals.poll_timeout(), Some(Time(110)));
    }

    #[test]
    fn a_second_removal_of_a_pending_pod_keeps_the_first_budget() {
        let mut removals = CgroupRemovals::default();
        removals.schedule_first("a", Time(0));
        // Stopped, then forgotten: the second first-failure comes later.
        let later = Retry::first(Time(0)).next(Time(10)).unwrap();
        removals.schedule("a", later);
        removals.schedule_first("a", Time(15));
        assert_eq!(
            removals.take_due(Time(1_000)),
            vec![("a".to_string(), later)]
        );
    }

    #[test]
    fn a_cancelled_removal_is_never_due() {
        let mut removals = CgroupRemovals::default();
        removals.schedule("a", Retry::first(Time(0)));
        removals.cancel("a");
        assert_eq!(removals.poll_timeout(), None);
        assert_eq!(removals.take_due(Time(1_000)), vec![]);
    }
}

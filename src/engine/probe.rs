//! Probe workers (docs/lifecycle.md, "Probes"): one per (container
//! instance, probe type), with the kubelet's initial results, thresholds and
//! timing. A worker only decides *when* to probe and what a result means;
//! running the probe is the runtime's.

use crate::pod::Probe;
use crate::time::Time;
use std::time::Duration;

/// The three probes a container may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// Its name in messages: `startup`, `liveness`, `readiness`.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
        }
    }
}

impl ProbeKind {
    /// Does this probe run now? Startup until the container started;
    /// liveness and readiness once it started; only readiness while the pod
    /// terminates.
    pub fn active(self, started: bool, pod_stopping: bool) -> bool {
        match self {
            ProbeKind::Startup => !started && !pod_stopping,
            ProbeKind::Liveness => started && !pod_stopping,
            ProbeKind::Readiness => started,
        }
    }
}

/// One probe of one container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeWorker {
    /// Which of the container's probes it runs.
    pub kind: ProbeKind,
    /// `None` is Unknown (the startup probe's initial result).
    pub result: Option<bool>,
    /// Consecutive results equal to `last`.
    run_length: u32,
    last: Option<bool>,
    /// When the next attempt is due; `None` while gated or finished.
    pub next_at: Option<Time>,
    /// The attempt in flight: its run id and when it times out.
    pub in_flight: Option<(u64, Time)>,
    /// A final startup result or a liveness failure: nothing more for this
    /// instance.
    pub finished: bool,
    period: Duration,
    timeout: Duration,
    initial_delay: Duration,
    success_threshold: u32,
    failure_threshold: u32,
}

fn secs(v: Option<i64>, default: i64) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

impl ProbeWorker {
    /// A worker for the probe of `kind` of a new instance, with the
    /// kubelet's initial result and the spec's timing, not yet armed.
    pub fn new(kind: ProbeKind, probe: &Probe) -> ProbeWorker {
        ProbeWorker {
            kind,
            result: match kind {
                ProbeKind::Startup => None,
                ProbeKind::Liveness => Some(true),
                ProbeKind::Readiness => Some(false),
            },
            run_length: 0,
            last: None,
            next_at: None,
            in_flight: None,
            finished: false,
            period: secs(probe.period_seconds, 10),
            timeout: secs(probe.timeout_seconds, 1),
            initial_delay: secs(probe.initial_delay_seconds, 0),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
        }
    }

    /// After an agent restart the kubelet's workers first wait a random time
    /// in [0, period), spreading probes of adopted containers. The
    /// engine has no randomness of its own: the spread is derived from the
    /// container ID, so that it is stable and testable.
    pub fn spread_first_attempt(&mut self, now: Time, container_id: &str) {
        // FNV-1a: small, and good enough to spread a handful of workers.
        let hash = container_id
            .bytes()
            .chain([self.kind as u8])
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let period = u64::try_from(self.period.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.next_at = Some(Time(now.0.saturating_add(hash % period)));
    }

    /// Begin probing at `now` (container running, or started for liveness
    /// and readiness).
    pub fn arm(&mut self, now: Time) {
        if !self.finished && self.next_at.is_none() && self.in_flight.is_none() {
            self.next_at = Some(now);
        }
    }

    /// Is an attempt due now? Attempts before `initialDelaySeconds` after
    /// the container's start are skipped, one period at a time.
    pub fn due(&mut self, now: Time, started_at: Time) -> bool {
        let Some(at) = self.next_at else { return false };
        if self.finished || self.in_flight.is_some() || now < at {
            return false;
        }
        if now < started_at + self.initial_delay {
            self.next_at = Some(at + self.period);
            return false;
        }
        true
    }

    /// An attempt was handed to the runtime as run `run`: it times out
    /// after `timeoutSeconds`, and the next is due a period later.
    pub fn launched(&mut self, run: u64, now: Time) {
        self.in_flight = Some((run, now + self.timeout));
        self.next_at = Some(now + self.period);
    }

    /// Record an attempt's outcome; returns the new result if it flipped.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        self.in_flight = None;
        if self.last == Some(success) {
            self.run_length += 1;
        } else {
            self.last = Some(success);
            self.run_length = 1;
        }
        let threshold = if success {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run_length >= threshold && self.result != Some(success) {
            self.result = Some(success);
            return Some(success);
        }
        None
    }

    /// The next time this worker needs attention.
    pub fn deadline(&self) -> Option<Time> {
        if self.finished {
            return None;
        }
        match self.in_flight {
            Some((_, timeout_at)) => Some(timeout_at),
            None => self.next_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(success: i64, failure: i64) -> Probe {
        Probe {
            period_seconds: Some(10),
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            ..Probe::default()
        }
    }

    #[test]
    fn initial_results_are_the_kubelets() {
        let p = probe(1, 3);
        assert_eq!(ProbeWorker::new(ProbeKind::Startup, &p).result, None);
        assert_eq!(ProbeWorker::new(ProbeKind::Liveness, &p).result, Some(true));
        assert_eq!(
            ProbeWorker::new(ProbeKind::Readiness, &p).result,
            Some(false)
        );
    }

    #[test]
    fn results_flip_only_after_their_threshold() {
        let mut w = ProbeWorker::new(ProbeKind::Readiness, &probe(2, 3));
        assert_eq!(w.record(true), None);
        assert_eq!(w.record(true), Some(true));
        assert_eq!(w.record(false), None);
        assert_eq!(w.record(true), None, "a success resets the failure run");
        assert_eq!(w.record(false), None);
        assert_eq!(w.record(false), None);
        assert_eq!(w.record(false), Some(false));
    }

    #[test]
    fn attempts_before_the_initial_delay_are_skipped() {
        let mut w = ProbeWorker::new(
            ProbeKind::Liveness,
            &Probe {
                initial_delay_seconds: Some(15),
                ..probe(1, 3)
            },
        );
        let t0 = Time::from_secs(100);
        w.arm(t0);
        assert!(!w.due(t0, t0), "skipped at 0 s");
        assert_eq!(w.next_at, Some(t0 + Duration::from_secs(10)));
        let t10 = t0 + Duration::from_secs(10);
        assert!(!w.due(t10, t0), "skipped at 10 s");
        let t20 = t0 + Duration::from_secs(20);
        assert!(w.due(t20, t0), "first attempt at 20 s");
    }

    #[test]
    fn a_period_whose_milliseconds_pass_u64_spreads_without_panicking() {
        // 2^61 s is 2^64 * 125 ms: truncated to u64, the period was 0 and
        // the spread a remainder by zero.
        let p = Probe {
            period_seconds: Some(1 << 61),
            ..probe(1, 3)
        };
        let mut w = ProbeWorker::new(ProbeKind::Liveness, &p);
        let t0 = Time::from_secs(100);
        w.spread_first_attempt(t0, "runc://uid-c-0");
        assert!(w.next_at.is_some_and(|at| at >= t0));
    }
}

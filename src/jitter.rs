//! Randomised waits for the sync threads, so that a fleet of devices does
//! not poll or reconnect in step: ±10% around a poll interval, and the
//! client-go style exponential back-off with full jitter for retries.

use crate::time::Time;
use std::time::Duration;

/// A small xorshift generator: no dependency, no shared state.
pub struct Jitter(u64);

impl Jitter {
    /// A generator seeded from the clock and the pid: nodes started
    /// together spread apart.
    pub fn seeded() -> Jitter {
        Jitter(Time::now().0 ^ u64::from(std::process::id()) << 20 | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// ±10% around `interval`.
    pub fn around(&mut self, interval: Duration) -> Duration {
        let spread = interval.as_millis() as u64 / 5;
        let offset = if spread == 0 { 0 } else { self.next() % spread };
        interval - Duration::from_millis(spread / 2) + Duration::from_millis(offset)
    }

    /// Between `d` and `2d`.
    pub fn up_to_double(&mut self, d: Duration) -> Duration {
        let ms = d.as_millis() as u64;
        d + Duration::from_millis(if ms == 0 { 0 } else { self.next() % ms })
    }
}

/// Retries after failures: 0.8 s doubling to 30 s, each wait jittered up to
/// double (client-go's reflector back-off); a success starts it over.
pub struct RetryBackoff {
    next: Duration,
    jitter: Jitter,
}

impl RetryBackoff {
    const INITIAL: Duration = Duration::from_millis(800);
    const MAX: Duration = Duration::from_secs(30);

    /// A back-off at its first, shortest delay.
    pub fn new() -> RetryBackoff {
        RetryBackoff {
            next: Self::INITIAL,
            jitter: Jitter::seeded(),
        }
    }

    /// After a success: the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.next = Self::INITIAL;
    }

    /// How long to wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let wait = self.jitter.up_to_double(self.next);
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let mut j = Jitter(12345);
        for _ in 0..1000 {
            let d = j.around(Duration::from_secs(20));
            assert!(
                d >= Duration::from_secs(18) && d < Duration::from_secs(22),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retries_double_up_to_the_cap_and_start_over_after_success() {
        let mut b = RetryBackoff {
            next: RetryBackoff::INITIAL,
            jitter: Jitter(99),
        };
        let waits: Vec<Duration> = (0..8).map(|_| b.failed()).collect();
        assert!(waits[0] >= Duration::from_millis(800) && waits[0] < Duration::from_millis(1600));
        assert!(waits[7] >= Duration::from_secs(30) && waits[7] < Duration::from_secs(60));
        b.reset();
        assert!(b.failed() < Duration::from_millis(1600));
    }
}

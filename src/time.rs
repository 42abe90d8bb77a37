//! Wall-clock instants as plain numbers, and their RFC 3339 form.
//!
//! The engine never reads a clock: the agent hands it a `Time`. Kubernetes
//! status (startedAt, finishedAt) and CRI log lines are wall-clock, so one
//! type serves both; it is milliseconds since the Unix epoch.

use std::time::Duration;

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// The current wall-clock time. Only the shell calls this.
    pub fn now() -> Time {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Time(since.as_millis() as u64)
    }

    /// `secs` seconds after the epoch (saturating).
    pub fn from_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1000))
    }

    /// How long after `earlier` this is; zero if it is not after.
    pub fn saturating_sub(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `2026-11-29T06:04:55Z`, the form of Kubernetes status timestamps.
    pub fn rfc3339(self) -> String {
        let (date, time) = civil(self.0 / 1000);
        format!("{date}T{time}Z")
    }

    /// `2026-11-29T06:04:55.123000Z`, the MicroTime of a Lease's renewTime.
    pub fn rfc3339_micros(self) -> String {
        let (date, time) = civil(self.0 / 1000);
        format!("{date}T{time}.{:06}Z", self.0 % 1000 * 1000)
    }

    /// Parse the `rfc3339` form back (fractions of a second are ignored).
    pub fn parse_rfc3339(text: &str) -> Option<Time> {
        let b = text.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let days = days_from_civil(y, mo, d);
        let secs = days * 86400 + h * 3600 + mi * 60 + s;
        u64::try_from(secs).ok().map(Time::from_secs)
    }
}

/// Saturating: a duration from a spec (`terminationGracePeriodSeconds:
/// 9223372036854775807`) ends at the end of time, not in a wrapped past or
/// an overflow panic.
impl std::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(millis))
    }
}

/// `2026-11-29T06:04:55.123456789Z` for a time in nanoseconds, as CRI log lines
/// carry it.
pub fn rfc3339_nanos(nanos: u128) -> String {
    let (date, time) = civil((nanos / 1_000_000_000) as u64);
    format!("{date}T{time}.{:09}Z", nanos % 1_000_000_000)
}

/// (`YYYY-MM-DD`, `HH:MM:SS`) of seconds since the epoch, UTC.
fn civil(secs: u64) -> (String, String) {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's
/// days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        assert_eq!(Time(0).rfc3339(), "1970-01-01T00:00:00Z");
        let t = Time::from_secs(1_795_932_295); // 2026-11-29T06:04:55Z
        assert_eq!(t.rfc3339(), "2026-11-29T06:04:55Z");
        assert_eq!(Time::parse_rfc3339("2026-11-29T06:04:55Z"), Some(t));
        assert_eq!(
            Time::parse_rfc3339("2000-02-29T23:59:59Z")
                .map(Time::rfc3339)
                .as_deref(),
            Some("2000-02-29T23:59:59Z")
        );
        assert_eq!(Time::parse_rfc3339("garbage"), None);
    }

    #[test]
    fn adding_a_huge_duration_saturates() {
        let grace = Duration::from_secs(i64::MAX as u64);
        assert_eq!(Time(1_795_932_295_000) + grace, Time(u64::MAX));
        assert_eq!(Time(5) + Duration::MAX, Time(u64::MAX));
        assert_eq!(Time::from_secs(u64::MAX), Time(u64::MAX));
        assert_eq!(Time(5) + Duration::from_millis(7), Time(12));
    }

    #[test]
    fn nanosecond_form() {
        assert_eq!(
            rfc3339_nanos(1_500_000_000_123),
            "1970-01-01T00:25:00.000000123Z"
        );
    }
}

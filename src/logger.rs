//! A logger for `log` that writes `<time> <LEVEL> <message>` lines to stderr:
//! the service manager or the firmware's syslog collects them.

use crate::time::Time;
use std::io::Write;

/// The `log` backend: one line per record on stderr.
struct StderrLogger {
    /// The least severe level written.
    level: log::LevelFilter,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let line = format!(
                "{} {:<5} {}\n",
                Time::now().rfc3339(),
                record.level(),
                record.args()
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Install the logger; `PICOLET_LOG=debug|info|warn|error` sets the level.
pub fn init() {
    let level = std::env::var("PICOLET_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}

//! Sources turn the outside world into a set of desired pods. They never
//! start anything.

pub mod api;
pub mod file;
pub mod jitter;
pub mod static_pod;
pub mod url;

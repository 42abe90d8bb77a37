//! Sources turn the outside world into a set of desired pods. They never
//! start anything.

pub mod file;
pub mod static_pod;
pub mod url;

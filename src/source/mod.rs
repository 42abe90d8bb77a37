//! Sources turn the outside world into a set of desired pods: the manifest
//! directory (file.rs), the manifest URL (url.rs), and the pods the API
//! server binds to this node (api/). They never start anything and never
//! report: the agent hands their pods to the engine.

pub mod api;
pub mod file;
pub mod static_pod;
pub mod url;

//! picolet: a Kubernetes node agent for small edge devices.

mod engine;
mod pod;
mod time;

fn main() {}

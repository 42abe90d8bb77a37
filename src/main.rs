//! picolet: a Kubernetes node agent for small edge devices.

mod engine;
mod image;
mod pod;
mod time;

fn main() {}

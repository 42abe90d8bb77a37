//! picolet: a Kubernetes node agent for small edge devices.

mod config;
mod engine;
mod image;
mod pod;
mod reactor;
mod runtime;
mod source;
mod state;
mod time;

fn main() {}

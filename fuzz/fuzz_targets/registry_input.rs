#![no_main]
//! registries.yaml, a pull secret, a WWW-Authenticate value or an image reference, by the first byte (src/fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::registry_input(data));

#![no_main]
//! A manifest file's bytes through the manifest directory's decoder (src/fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::manifest(data));

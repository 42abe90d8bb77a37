#![no_main]
//! An API server's list or watch body through node mode's pod decoder (src/fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::api_object(data));

#![no_main]
//! A name from outside through the safe-join rules (src/fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::safe_join(data));

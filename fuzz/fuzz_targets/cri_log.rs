#![no_main]
//! A container log file as `picolet logs` reads it (src/fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::cri_log(data));

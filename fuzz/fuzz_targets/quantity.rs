#![no_main]
//! A resource quantity, of memory and of cpu (src/fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::quantity(data));

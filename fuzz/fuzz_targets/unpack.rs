#![no_main]
//! A layer from outside applied on a root whose links point out of it: nothing outside may change (src/fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::unpack(data));

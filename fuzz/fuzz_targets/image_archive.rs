#![no_main]
//! A docker-archive or oci-archive imported into a fresh layout: it stays sound and in its directory (src/fuzz/archive.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| picolet::fuzz::image_archive(data));

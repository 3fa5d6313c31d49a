//! Crafted sync messages through the server's ingest path, against a real lab board; see
//! `labboard_tests::crafted`. Found inputs are replayed by `tests/tests/fuzz_regressions.rs`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| labboard_tests::crafted::run_case(data));

#![no_main]
// Body and invariants: pinstream::fuzzing::clean_user (CI replays fuzz/corpus/clean_user through it).
libfuzzer_sys::fuzz_target!(|data: &[u8]| pinstream::fuzzing::clean_user(data));

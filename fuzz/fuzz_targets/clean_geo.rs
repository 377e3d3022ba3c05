#![no_main]
// Body and invariants: pinstream::fuzzing::clean_geo (CI replays fuzz/corpus/clean_geo through it).
libfuzzer_sys::fuzz_target!(|data: &[u8]| pinstream::fuzzing::clean_geo(data));

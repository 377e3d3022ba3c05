#![no_main]
// Body and invariants: pinstream::fuzzing::clean_pin (CI replays fuzz/corpus/clean_pin through it).
libfuzzer_sys::fuzz_target!(|data: &[u8]| pinstream::fuzzing::clean_pin(data));

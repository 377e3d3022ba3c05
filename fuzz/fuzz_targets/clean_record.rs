#![no_main]
// Body and invariants: pinstream::fuzzing::clean_record (CI replays fuzz/corpus/clean_record through it).
libfuzzer_sys::fuzz_target!(|data: &[u8]| pinstream::fuzzing::clean_record(data));

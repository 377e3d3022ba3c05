#![no_main]
// Body and invariants: pinstream::fuzzing::ingest_body (CI replays fuzz/corpus/ingest_body through it).
libfuzzer_sys::fuzz_target!(|data: &[u8]| pinstream::fuzzing::ingest_body(data));

#![no_main]
// Body and invariants: pinstream::fuzzing::object_name (CI replays fuzz/corpus/object_name through it).
libfuzzer_sys::fuzz_target!(|data: &[u8]| pinstream::fuzzing::object_name(data));

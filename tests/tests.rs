//! Integration tests: one binary, modules by behaviour. They run the real `pinstream` binary
//! on real files and read the Delta tables back with Python `deltalake` and `polars`
//! (installed by scripts/python-env.sh), against a reference written from the SPEC.

mod support;

mod aggregates;
mod analytics;
mod archive;
mod batching;
mod cli;
mod cluster;
mod dashboard;
mod exactly_once;
mod faults;
mod flood;
mod fuzz_corpus;
mod ingest;
mod kafka;
mod kinesis;
mod maintain;
mod message_stream;
mod replay;
mod s3;
mod soak;

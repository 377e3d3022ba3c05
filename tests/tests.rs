//! Integration tests: one binary, modules by behaviour. They run the real `pinstream` binary
//! on real files and read the Delta tables back with Python `deltalake` and `polars`
//! (installed by scripts/python-env.sh), against a reference written from the SPEC.

mod support;

mod aggregates;
mod analytics;
mod archive;
mod cli;
mod cluster;
mod dashboard;
mod exactly_once;
mod faults;
mod flood;
mod ingest;
mod kafka;
mod kinesis;
mod maintain;
mod replay;
mod s3;
mod soak;

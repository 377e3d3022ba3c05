//! The `pinstream` command: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use pinstream::commands;
use pinstream::config::{Cli, Command};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    quiet_caught_upload_panics();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Emulate(args) => commands::emulate::emulate(args),
        Command::Bench(args) => commands::bench::bench(args),
        Command::Maintain(args) => commands::maintain::maintain(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pinstream: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// delta-rs cleans up a data file upload that failed at completion (a full disk, a lake gone)
/// with object_store's `BufWriter::abort`, which panics by design in that state ("Already shut
/// down"); delta-rs catches the panic (deltalake-core `datafile/writer.rs`,
/// `upload_parquet_file`) and returns the upload's error, which pinstream reports in its one
/// line. The default hook would still print the caught panic, as if the engine had crashed:
/// that one panic is kept to a debug line, every other goes to the default hook.
fn quiet_caught_upload_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let in_object_store_buffered = info.location().is_some_and(|location| {
            location.file().contains("object_store") && location.file().ends_with("buffered.rs")
        });
        if in_object_store_buffered && message == Some("Already shut down") {
            tracing::debug!(
                "a failed upload's abort panicked, as object_store does; delta-rs caught it"
            );
            return;
        }
        default(info)
    }));
}

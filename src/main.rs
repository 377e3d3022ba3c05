//! The `pinstream` command: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use pinstream::commands;
use pinstream::config::{Cli, Command};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
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

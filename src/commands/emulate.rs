//! `pinstream emulate`: the posting emulator as a command, to files, Kafka, Kinesis or HTTP.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::Error;
use crate::config::EmulateArgs;
use crate::connectors::emulator::EmulatorSpec;
use crate::connectors::{Produce, SourceError, connector_for, no_producer};

/// Writes the events with the producer of the `--to` value's connector.
pub fn emulate(args: &EmulateArgs) -> Result<(), Error> {
    let spec = EmulatorSpec {
        seed: args.seed,
        events: Some(args.events),
        universe: args.universe,
        ..EmulatorSpec::default()
    };
    // Every target paces by it (`http://` would panic on a negative one).
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(
            SourceError::Config(format!("--rate must be a positive number, not {rate}")).into(),
        );
    }
    let bar = progress_bar(args.events);
    bar.set_message(args.to.clone());
    let started = Instant::now();
    let progress = |done: u64| bar.set_position(done);
    let target = Produce {
        to: &args.to,
        events: &spec,
        rate: args.rate,
        partitions: args.partitions,
        key: args.key,
        properties: &args.properties,
        http_format: args.http_format,
        concurrency: args.concurrency,
        progress: &progress,
    };
    let produced = connector_for(&args.to).and_then(|connector| connector.produce(&target));
    bar.finish_and_clear();
    let Some(produced) = produced else {
        return Err(no_producer(&args.to).into());
    };
    log_sent(args, produced?, started);
    Ok(())
}

/// Logs a finished send: how many events (3 messages each) went where, and how fast.
fn log_sent(args: &EmulateArgs, events: u64, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        events,
        messages = events * 3,
        seconds = format!("{seconds:.1}"),
        per_second = format!("{:.0}", events as f64 / seconds.max(1e-9)),
        to = args.to,
        "emulated events sent"
    );
}

/// The progress bar of a send (drawn only on a terminal), ticking on its own.
fn progress_bar(events: u64) -> ProgressBar {
    let bar = ProgressBar::new(events).with_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {human_pos}/{human_len} events, {per_sec}, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

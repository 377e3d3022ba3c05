//! `pinstream emulate`: the posting emulator as a command, to files, Kafka, Kinesis or HTTP.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::Error;
use crate::config::{EmulateArgs, HttpFormat};
use crate::connectors::SourceError;
use crate::connectors::emulator::{self, EmulatorSpec};
use crate::connectors::kafka::{self, KafkaSpec, Topics};
use crate::connectors::kinesis::{self, KinesisSpec};

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
    if args.to.starts_with("kafka://") {
        return to_kafka(args, &spec);
    }
    if args.to.starts_with("kinesis://") {
        return to_kinesis(args, &spec);
    }
    if args.to.starts_with("http://") {
        return to_http(args, &spec);
    }
    let Some(dir) = args.to.strip_prefix("file:") else {
        return Err(SourceError::Config(format!(
            "emulate --to `{}`: expected file:<dir>, kafka://<host:port>/<topic-prefix>, kinesis://<prefix> or http://<host:port>[/<prefix>]",
            args.to
        ))
        .into());
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        context: dir.to_owned(),
        source,
    })?;
    let written = emulator::write_files(&spec, dir.as_ref()).map_err(|source| Error::Io {
        context: format!("writing to {dir}"),
        source,
    })?;
    tracing::info!(events = written, dir, "emulated events written");
    Ok(())
}

/// Produces the events to `<prefix>.pin/.geo/.user` with a progress bar (on a terminal).
fn to_kafka(args: &EmulateArgs, spec: &EmulatorSpec) -> Result<(), Error> {
    let mut target = KafkaSpec::parse(&args.to)?;
    if args.partitions < 1 {
        return Err(SourceError::Config(format!(
            "--partitions must be at least 1, not {}",
            args.partitions
        ))
        .into());
    }
    for property in &args.properties {
        let Some((key, value)) = property.split_once('=') else {
            return Err(SourceError::Config(format!(
                "--property `{property}`: expected key=value"
            ))
            .into());
        };
        target.properties.insert(key.to_owned(), value.to_owned());
    }
    let bar = progress_bar(args.events);
    if let Topics::Prefix(prefix) = &target.topics {
        bar.set_message(format!("{prefix}.{{pin,geo,user}}"));
    }
    let started = Instant::now();
    let produced = kafka::produce_events(&target, spec, args.partitions, args.rate, |done| {
        bar.set_position(done)
    });
    bar.finish_and_clear();
    log_sent(args, produced?, started);
    Ok(())
}

/// Shards of each Kinesis stream `emulate --to kinesis://` creates.
const KINESIS_SHARDS: i32 = 2;

/// Puts the events to `streaming-<prefix>-pin/-geo/-user` (created with 2 shards when
/// missing) with a progress bar (on a terminal).
fn to_kinesis(args: &EmulateArgs, spec: &EmulatorSpec) -> Result<(), Error> {
    let target = KinesisSpec::parse(&args.to)?;
    let bar = progress_bar(args.events);
    bar.set_message(args.to.clone());
    let started = Instant::now();
    let put = kinesis::put_events(&target, spec, KINESIS_SHARDS, args.rate, |done| {
        bar.set_position(done)
    });
    bar.finish_and_clear();
    log_sent(args, put?, started);
    Ok(())
}

/// Sends the events as the original posting emulators do over HTTP: one message per request,
/// REST-proxy or API-Gateway bodies, `--concurrency` requests in flight (each is answered
/// only after its commit), paced to `--rate` events/s.
fn to_http(args: &EmulateArgs, spec: &EmulatorSpec) -> Result<(), Error> {
    let rest = args.to.trim_start_matches("http://");
    let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = if prefix.is_empty() {
        "pinterest"
    } else {
        prefix.trim_end_matches('/')
    };
    let base = format!("http://{authority}");
    let emulator = emulator::Emulator::new(spec);
    let bar = progress_bar(args.events);
    bar.set_message(base.clone());
    let next = std::sync::atomic::AtomicU64::new(0);
    let failed: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.concurrency.max(1) {
            scope.spawn(|| {
                let agent = ureq::Agent::new_with_defaults();
                loop {
                    let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seq >= args.events || failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    if let Some(rate) = args.rate {
                        let due = Duration::from_secs_f64(seq as f64 / rate);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let event = emulator.event(seq);
                    for stream in crate::stream::Stream::ALL {
                        let message = String::from_utf8_lossy(event.message(stream)).into_owned();
                        let sent = match args.http_format {
                            HttpFormat::Proxy => agent
                                .post(&format!("{base}/topics/{prefix}.{stream}"))
                                .header("Content-Type", "application/vnd.kafka.json.v2+json")
                                .send(format!(r#"{{"records": [{{"value": {message}}}]}}"#)),
                            HttpFormat::Kinesis => {
                                let name = format!("streaming-{prefix}-{stream}");
                                agent.put(&format!("{base}/streams/{name}/record")).send(format!(
                                    r#"{{"StreamName": "{name}", "Data": {message}, "PartitionKey": "{}"}}"#,
                                    event.index
                                ))
                            }
                        };
                        if let Err(error) = sent {
                            let mut failed = failed.lock().unwrap_or_else(|p| p.into_inner());
                            failed.get_or_insert_with(|| format!("event {seq} ({stream}): {error}"));
                            return;
                        }
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(error) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(Error::Io {
            context: format!("sending to {base}"),
            source: std::io::Error::other(error),
        });
    }
    log_sent(args, args.events, started);
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

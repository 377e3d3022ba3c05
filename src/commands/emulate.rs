//! `pinstream emulate`: the posting emulator as a command, to files or to Kafka.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::Error;
use crate::config::EmulateArgs;
use crate::source::SourceError;
use crate::source::emulator::{self, EmulatorSpec};
use crate::source::kafka::{self, KafkaSpec, Topics};

pub fn emulate(args: &EmulateArgs) -> Result<(), Error> {
    let spec = EmulatorSpec {
        seed: args.seed,
        events: Some(args.events),
        universe: args.universe,
        ..EmulatorSpec::default()
    };
    if args.to.starts_with("kafka://") {
        return to_kafka(args, &spec);
    }
    let Some(dir) = args.to.strip_prefix("file:") else {
        return Err(SourceError::Config(format!(
            "emulate --to `{}`: expected file:<dir> or kafka://<host:port>/<topic-prefix>",
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
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(
            SourceError::Config(format!("--rate must be a positive number, not {rate}")).into(),
        );
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
    let bar = ProgressBar::new(args.events).with_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {human_pos}/{human_len} events, {per_sec}, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    if let Topics::Prefix(prefix) = &target.topics {
        bar.set_message(format!("{prefix}.{{pin,geo,user}}"));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let produced = kafka::produce_events(&target, spec, args.partitions, args.rate, |done| {
        bar.set_position(done)
    });
    bar.finish_and_clear();
    let produced = produced?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        events = produced,
        messages = produced * 3,
        seconds = format!("{seconds:.1}"),
        per_second = format!("{:.0}", produced as f64 / seconds.max(1e-9)),
        to = args.to,
        "emulated events produced"
    );
    Ok(())
}

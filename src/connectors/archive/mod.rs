//! The archive connector: a Kafka Connect S3 sink archive (or any JSON Lines objects named by
//! stream) in a bucket. `--from s3://bucket/prefix[?interval=10s]`, or `[[source]] type =
//! "s3"` (or `"archive"`) with `url = "s3://bucket/prefix"` and optional `interval = "10s"`
//! and `gap_wait = "1m"`.
//!
//! The objects are read with the same AWS settings as `s3://` lakes (the object store
//! delta-rs builds for a lake: credential chain, `AWS_ENDPOINT_URL[_S3]`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`, the same retries). See [`source`] for positions and follow mode,
//! [`name`] for which objects are read.

pub mod name;
mod producer;
pub mod source;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub use producer::ConnectWriter;
pub use source::ArchiveSource;

use crate::connectors::{
    DEFAULT_LIST_INTERVAL, JobContext, JobSettings, Produce, Source, SourceError, SourceSettings,
    SourceSpec, StartedSource, parse_list_interval,
};

pub struct Connector;

/// The archive source's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveSettings {
    /// `s3://bucket/prefix/` (always ending in `/`): every object under it is a candidate.
    pub url: Url,
    /// How often the prefix is listed again while following.
    pub interval: Duration,
    /// While following, how long a topic-partition waits for the object holding its next
    /// offset when a later object is already there (one still being uploaded or copied),
    /// before it logs the missing offsets and reads on.
    pub gap_wait: Duration,
    /// Keep listing for objects the connector adds (a run without `--until-done`); otherwise
    /// read what the first listing found and end.
    pub follow: bool,
}

/// The job file's `[[source]]` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    url: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    gap_wait: Option<String>,
}

/// How long a followed topic-partition waits for missing offsets, unless its settings say.
pub const DEFAULT_GAP_WAIT: Duration = Duration::from_secs(60);

impl ArchiveSettings {
    /// Parses `s3://bucket/prefix[?interval=<duration>&gap_wait=<duration>]`.
    pub fn parse(text: &str) -> Result<ArchiveSettings, SourceError> {
        let error = |reason: String| {
            SourceError::Config(format!(
                "archive source `{text}`: {reason} (expected s3://bucket/prefix)"
            ))
        };
        let mut url = Url::parse(text).map_err(|e| error(e.to_string()))?;
        if url.scheme() != "s3" || url.host_str().is_none_or(str::is_empty) {
            return Err(error("needs a bucket".into()));
        }
        let mut interval = DEFAULT_LIST_INTERVAL;
        let mut gap_wait = DEFAULT_GAP_WAIT;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "interval" => interval = parse_list_interval(&value).map_err(error)?,
                "gap_wait" => gap_wait = parse_gap_wait(&value).map_err(error)?,
                other => return Err(error(format!("unknown option `{other}`"))),
            }
        }
        url.set_query(None);
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(ArchiveSettings {
            url,
            interval,
            gap_wait,
            follow: true,
        })
    }
}

/// `gap_wait` as written in a URL or a job file: a duration, `0s` to read on at once.
fn parse_gap_wait(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|_| format!("gap_wait `{text}`: expected a duration (`1m`, `0s`)"))
}

impl super::Connector for Connector {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["archive"]
    }

    fn url_form(&self) -> &'static str {
        "s3://bucket/prefix"
    }

    fn producer_form(&self) -> Option<&'static str> {
        Some("s3://bucket/prefix")
    }

    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError> {
        Ok(SourceSpec::new(ArchiveSettings::parse(url)?))
    }

    fn parse_section(&self, section: toml::Table) -> Result<SourceSpec, SourceError> {
        let section: Section = super::section("s3", section)?;
        let mut settings = ArchiveSettings::parse(&section.url)?;
        if let Some(interval) = section.interval {
            settings.interval = parse_list_interval(&interval)
                .map_err(|reason| SourceError::Config(format!("s3 source: {reason}")))?;
        }
        if let Some(gap_wait) = section.gap_wait {
            settings.gap_wait = parse_gap_wait(&gap_wait)
                .map_err(|reason| SourceError::Config(format!("s3 source: {reason}")))?;
        }
        Ok(SourceSpec::new(settings))
    }

    fn produce(&self, target: &Produce<'_>) -> Option<Result<u64, SourceError>> {
        Some(producer::produce(target))
    }
}

impl SourceSettings for ArchiveSettings {
    fn is_bounded(&self) -> bool {
        true
    }

    fn for_job(&mut self, job: &JobSettings<'_>) {
        self.follow = !job.until_done;
    }

    fn start(&self, job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        let (store, runtime) = open_store(&self.url)?;
        Ok(Box::new(StartedArchive {
            settings: self.clone(),
            listing: Arc::new(source::Listing::new(store, runtime, &self.url)),
            stats: job.stats.clone(),
            handover: job.handover.clone(),
        }))
    }
}

/// A bucket prefix as an object store rooted at it (the lake's configuration), and a small
/// runtime to drive it from the timely worker threads (`Handle::block_on` needs a runtime
/// whose own threads drive the I/O: a one-thread multi-thread runtime).
pub(crate) fn open_store(
    url: &Url,
) -> Result<
    (
        Arc<dyn object_store::ObjectStore>,
        Arc<tokio::runtime::Runtime>,
    ),
    SourceError,
> {
    let store = deltalake::logstore::store_for(url, crate::sink::delta::storage_options(url))
        .map_err(|source| SourceError::Client {
            connector: "s3",
            at: url.to_string(),
            source: Box::new(source),
        })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("pinstream-s3")
        .enable_all()
        .build()
        .map_err(|source| SourceError::Runtime {
            purpose: "the s3 client",
            source,
        })?;
    Ok((store, Arc::new(runtime)))
}

/// The source started for a run: one store, runtime and listing shared by the workers.
struct StartedArchive {
    settings: ArchiveSettings,
    listing: Arc<source::Listing>,
    stats: Arc<crate::stats::Stats>,
    handover: crate::connectors::Handover,
}

impl StartedSource for StartedArchive {
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(ArchiveSource::open(
            &self.settings,
            self.listing.clone(),
            self.stats.clone(),
            self.handover.clone(),
            worker,
            peers,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_settings_from_flags_and_job_files() {
        let spec = SourceSpec::parse("s3://bucket/some/topics").unwrap();
        let settings = spec.settings::<ArchiveSettings>().unwrap();
        assert_eq!(settings.url.as_str(), "s3://bucket/some/topics/");
        assert_eq!(settings.interval, DEFAULT_LIST_INTERVAL);
        assert_eq!(settings.gap_wait, DEFAULT_GAP_WAIT);
        let spec = SourceSpec::parse("s3://bucket?interval=250ms&gap_wait=0s").unwrap();
        let settings = spec.settings::<ArchiveSettings>().unwrap();
        assert_eq!(settings.url.as_str(), "s3://bucket/");
        assert_eq!(settings.interval, Duration::from_millis(250));
        assert_eq!(settings.gap_wait, Duration::ZERO);
        for bad in [
            "s3://",
            "s3:///prefix",
            "s3://b/p?speed=2",
            "s3://b/p?interval=0s",
            "s3://b/p?gap_wait=soon",
        ] {
            assert!(SourceSpec::parse(bad).is_err(), "{bad}");
        }
        for kind in ["s3", "archive"] {
            let section: toml::Table = toml::from_str(&format!(
                "type = \"{kind}\"\nurl = \"s3://b/topics/\"\ninterval = \"2s\"\ngap_wait = \"5s\""
            ))
            .unwrap();
            let spec = SourceSpec::from_section(section).unwrap();
            let settings = spec.settings::<ArchiveSettings>().unwrap();
            assert_eq!(settings.url.as_str(), "s3://b/topics/");
            assert_eq!(settings.interval, Duration::from_secs(2));
            assert_eq!(settings.gap_wait, Duration::from_secs(5));
        }
        let section: toml::Table = toml::from_str("type = \"s3\"\ndir = \"x\"").unwrap();
        assert!(SourceSpec::from_section(section).is_err());
    }

    #[test]
    fn until_done_stops_following() {
        let mut spec = SourceSpec::parse("s3://bucket/p").unwrap();
        assert!(spec.settings::<ArchiveSettings>().unwrap().follow);
        spec.for_job(&JobSettings {
            name: "j",
            until_done: true,
        });
        assert!(!spec.settings::<ArchiveSettings>().unwrap().follow);
    }
}

//! The file connector: `file:<dir>[?interval=<duration>]` or `[[source]] type = "file"`,
//! `dir = "<dir>"`, optional `interval = "10s"`. Without `--until-done` it follows the
//! directory: files added while the job runs are read too (listed every `interval`).

mod producer;
mod source;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use source::*;

use crate::connectors::DEFAULT_LIST_INTERVAL;
use crate::connectors::{
    JobContext, JobSettings, Produce, Source, SourceError, SourceSettings, SourceSpec,
    StartedSource,
};

pub struct Connector;

/// The file source's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Every file under it whose path carries a stream token is read.
    pub dir: PathBuf,
    /// How often the directory is listed again while following.
    #[serde(default = "default_interval", with = "humantime_serde_duration")]
    pub interval: Duration,
    /// Read files added while the job runs (a run without `--until-done`); set from the job,
    /// never from the section.
    #[serde(skip)]
    pub follow: bool,
}

fn default_interval() -> Duration {
    DEFAULT_LIST_INTERVAL
}

/// `interval = "10s"` in a job file.
mod humantime_serde_duration {
    use serde::Deserialize;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<std::time::Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::connectors::parse_list_interval(&text).map_err(serde::de::Error::custom)
    }
}

impl FileSettings {
    /// Reads what `dir` holds when the job starts (follows it once [`SourceSettings::for_job`]
    /// says the job runs without `--until-done`).
    pub fn new(dir: impl Into<PathBuf>) -> FileSettings {
        FileSettings {
            dir: dir.into(),
            interval: DEFAULT_LIST_INTERVAL,
            follow: false,
        }
    }
}

impl super::Connector for Connector {
    fn name(&self) -> &'static str {
        "file"
    }

    fn url_form(&self) -> &'static str {
        "file:<dir>"
    }

    fn producer_form(&self) -> Option<&'static str> {
        Some("file:<dir>")
    }

    fn parse_url(&self, url: &str) -> Result<SourceSpec, SourceError> {
        let Some(dir) = url.strip_prefix("file:").filter(|dir| !dir.is_empty()) else {
            return Err(SourceError::Config(
                "file source needs a directory: file:<dir>".into(),
            ));
        };
        // `?interval=<duration>` when it parses as one (a directory may hold a `?`).
        if let Some((dir, interval)) = dir.rsplit_once("?interval=")
            && let Ok(interval) = super::parse_list_interval(interval)
            && !dir.is_empty()
        {
            let mut settings = FileSettings::new(dir);
            settings.interval = interval;
            return Ok(SourceSpec::new(settings));
        }
        Ok(SourceSpec::new(FileSettings::new(dir)))
    }

    fn parse_section(&self, section: toml::Table) -> Result<SourceSpec, SourceError> {
        // Relative directories are relative to the working directory, like the flags: job
        // files are run from the project root.
        Ok(SourceSpec::new(super::section::<FileSettings>(
            "file", section,
        )?))
    }

    fn produce(&self, target: &Produce<'_>) -> Option<Result<u64, SourceError>> {
        Some(producer::write_files(target))
    }
}

impl SourceSettings for FileSettings {
    fn is_bounded(&self) -> bool {
        true
    }

    fn for_job(&mut self, job: &JobSettings<'_>) {
        self.follow = !job.until_done;
    }

    fn start(&self, _job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        Ok(Box::new(self.clone()))
    }
}

impl StartedSource for FileSettings {
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        let source = FileSource::new(&self.dir, worker, peers)?;
        Ok(Box::new(if self.follow {
            source.following(self.interval)
        } else {
            source
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_settings_from_flags_and_job_files() {
        let spec = SourceSpec::parse("file:/data").unwrap();
        assert_eq!(
            spec.settings::<FileSettings>().unwrap().dir,
            PathBuf::from("/data")
        );
        assert!(SourceSpec::parse("file:").is_err());
        let section: toml::Table = toml::from_str("type = \"file\"\ndir = \"in\"").unwrap();
        let spec = SourceSpec::from_section(section).unwrap();
        assert_eq!(
            spec.settings::<FileSettings>().unwrap().dir,
            PathBuf::from("in")
        );
        let section: toml::Table =
            toml::from_str("type = \"file\"\ndir = \"in\"\ninterval = \"2s\"").unwrap();
        let spec = SourceSpec::from_section(section).unwrap();
        assert_eq!(
            spec.settings::<FileSettings>().unwrap().interval,
            Duration::from_secs(2)
        );
        let spec = SourceSpec::parse("file:/data?interval=250ms").unwrap();
        let settings = spec.settings::<FileSettings>().unwrap();
        assert_eq!(settings.dir, PathBuf::from("/data"));
        assert_eq!(settings.interval, Duration::from_millis(250));
        let mut spec = SourceSpec::parse("file:/data?x").unwrap();
        assert_eq!(
            spec.settings::<FileSettings>().unwrap().dir,
            PathBuf::from("/data?x")
        );
        assert!(!spec.settings::<FileSettings>().unwrap().follow);
        spec.for_job(&JobSettings {
            name: "j",
            until_done: false,
        });
        assert!(spec.settings::<FileSettings>().unwrap().follow);
        let section: toml::Table = toml::from_str("type = \"file\"\npath = \"in\"").unwrap();
        let error = SourceSpec::from_section(section).unwrap_err().to_string();
        assert!(error.contains("unknown field `path`"), "{error}");
    }
}

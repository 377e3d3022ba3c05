//! The file connector: `file:<dir>` or `[[source]] type = "file"`, `dir = "<dir>"`.

mod producer;
mod source;

use std::path::PathBuf;

use serde::Deserialize;

pub use source::*;

use crate::connectors::{
    JobContext, Produce, Source, SourceError, SourceSettings, SourceSpec, StartedSource,
};

pub struct Connector;

/// The file source's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Every file under it whose path carries a stream token is read.
    pub dir: PathBuf,
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
        match url.strip_prefix("file:") {
            Some(dir) if !dir.is_empty() => Ok(SourceSpec::new(FileSettings { dir: dir.into() })),
            _ => Err(SourceError::Config(
                "file source needs a directory: file:<dir>".into(),
            )),
        }
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

    fn start(&self, _job: &JobContext) -> Result<Box<dyn StartedSource>, SourceError> {
        Ok(Box::new(self.clone()))
    }
}

impl StartedSource for FileSettings {
    fn open(&self, worker: usize, peers: usize) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(FileSource::new(&self.dir, worker, peers)?))
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
        let section: toml::Table = toml::from_str("type = \"file\"\npath = \"in\"").unwrap();
        let error = SourceSpec::from_section(section).unwrap_err().to_string();
        assert!(error.contains("unknown field `path`"), "{error}");
    }
}

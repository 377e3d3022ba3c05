//! The Delta Lake sink (SPEC §4): one table per stream plus `quarantine`, appended once per
//! micro-batch with the source positions the batch covers.

pub mod delta;
pub mod maintain;
pub mod schema;
pub mod store;

pub use delta::Lake;

use serde::{Deserialize, Serialize};

use crate::table::Table;

/// A data file's Delta `Add` action, passed from the worker that wrote the file to the
/// committer as a value. Between processes of a cluster it travels as its JSON text, the Delta
/// log's own form: timely encodes exchanged data with bincode, which cannot decode the
/// action's optional fields (`skip_serializing_if`) or its percent-encoded path.
#[derive(Clone, Debug)]
pub struct AddAction(pub deltalake::kernel::Add);

impl Serialize for AddAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&json)
    }
}

impl<'de> Deserialize<'de> for AddAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = String::deserialize(deserializer)?;
        serde_json::from_str(&json)
            .map(AddAction)
            .map_err(serde::de::Error::custom)
    }
}

/// A data file written for a table and not yet committed: its `Add` action and row count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WrittenFile {
    pub table: Table,
    pub add: AddAction,
    pub rows: u64,
}

/// Wraps a delta-rs error with the table (or aggregate table path) it happened on.
pub(crate) fn delta_error(
    table: &str,
) -> impl FnOnce(deltalake::DeltaTableError) -> SinkError + '_ {
    move |source| SinkError::Delta {
        table: table.to_owned(),
        source: Box::new(source),
    }
}

/// The Arrow batches of one Parquet data file of `table`, 8,192 rows at a time.
fn parquet_batches<T: deltalake::parquet::file::reader::ChunkReader + 'static>(
    table: &str,
    data: T,
) -> Result<deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReader, SinkError> {
    deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|builder| builder.with_batch_size(8192).build())
        .map_err(|source| SinkError::Parquet {
            table: table.to_owned(),
            source,
        })
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("table {table}: {}", one_line(source))]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    #[error("table {table}: {source}")]
    Arrow {
        table: String,
        #[source]
        source: deltalake::arrow::error::ArrowError,
    },
    #[error("table {table}: {source}")]
    Parquet {
        table: String,
        #[source]
        source: deltalake::parquet::errors::ParquetError,
    },
    /// Another process committed positions of these partitions since this batch started
    /// (a consumer-group rebalance moved them): the batch must be dropped and the dataflow
    /// restarted from the tables, not committed.
    #[error(
        "table {table}: another process committed some of these partitions meanwhile: {}",
        partitions.join(", ")
    )]
    Fenced {
        table: String,
        partitions: Vec<String>,
    },
    #[error("{task} stopped: {reason}")]
    Task { task: &'static str, reason: String },
    #[error("lake location `{location}`: {reason}")]
    Location { location: String, reason: String },
    #[error(
        "table {table}: its schema does not match what pinstream writes ({detail}); point --lake elsewhere or migrate the table"
    )]
    SchemaMismatch { table: String, detail: String },
}

/// An error's message on one line: object stores quote S3's XML error bodies whole, which
/// say what matters in `<Code>` and `<Message>`.
fn one_line(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let tag = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].to_owned())
    };
    let text = match (
        text.find("<?xml").or_else(|| text.find("<Error>")),
        tag("Code"),
    ) {
        (Some(xml), Some(code)) => {
            let message = tag("Message").unwrap_or_default();
            format!("{}{code}: {message}", &text[..xml])
        }
        _ => text,
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn add_actions_cross_processes_as_their_json() {
        let add = deltalake::kernel::Add {
            path: "part-00001 with space.parquet".into(),
            size: 42,
            modification_time: 7,
            data_change: true,
            stats: Some("{\"numRecords\":3}".into()),
            ..Default::default()
        };
        let file = super::WrittenFile {
            table: super::Table::Geo,
            add: super::AddAction(add.clone()),
            rows: 3,
        };
        let json = serde_json::to_string(&file).unwrap();
        let back: super::WrittenFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back.add.0, add);
        assert_eq!((back.table, back.rows), (super::Table::Geo, 3));
    }

    #[test]
    fn s3_error_bodies_become_code_and_message_on_one_line() {
        let error = "list failed - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><RequestId>x</RequestId></Error>";
        assert_eq!(
            super::one_line(&error),
            "list failed - Server returned non-2xx status code: 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(super::one_line(&"a\n  b"), "a b");
    }
}

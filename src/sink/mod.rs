//! The Delta Lake sink (SPEC §4): one table per stream plus `quarantine`, appended once per
//! micro-batch with the source positions the batch covers.

pub mod aggregates;
pub mod delta;
pub mod schema;

pub use delta::Lake;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("table {table}: {source}")]
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

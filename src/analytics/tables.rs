//! Aggregate tables: each analytics output as a Delta table `<lake>/aggregates/<name>`, a full
//! snapshot replaced (one overwrite commit) when it changed, so Databricks dashboards can read
//! them like any table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use deltalake::DeltaTable;
use deltalake::arrow::array::{ArrayRef, Float64Builder, Int64Builder, StringBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TableProperty;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::StreamExt;
use url::Url;

use super::{AGGREGATES, Aggregate, AggregateRow, AggregateStore, Cell, CellType, Snapshot};
use crate::sink::schema::{self, Codec};
use crate::sink::{SinkError, delta};
use crate::stats::Stats;

fn delta_error(name: &str) -> impl FnOnce(deltalake::DeltaTableError) -> SinkError + '_ {
    move |source| SinkError::Delta {
        table: format!("aggregates/{name}"),
        source: Box::new(source),
    }
}

/// The Arrow schema of an aggregate's table.
pub fn arrow_schema(spec: &Aggregate) -> SchemaRef {
    let fields: Vec<Field> = spec
        .columns
        .iter()
        .map(|column| match column.kind {
            CellType::Text => Field::new(column.name, DataType::Utf8, true),
            CellType::Long => Field::new(column.name, DataType::Int64, true),
            CellType::Double => Field::new(column.name, DataType::Float64, true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn encode(
    snapshot: &Snapshot,
    schema: &SchemaRef,
) -> Result<RecordBatch, deltalake::arrow::error::ArrowError> {
    let columns: Vec<ArrayRef> = snapshot
        .spec
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| -> ArrayRef {
            let cells = snapshot.rows.iter().map(|row| &row[i]);
            match column.kind {
                CellType::Text => {
                    let mut builder = StringBuilder::new();
                    for cell in cells {
                        builder.append_option(match cell {
                            Cell::Text(text) => text.as_deref(),
                            _ => None,
                        });
                    }
                    Arc::new(builder.finish())
                }
                CellType::Long => {
                    let mut builder = Int64Builder::new();
                    for cell in cells {
                        builder.append_option(match cell {
                            Cell::Long(n) => Some(*n),
                            _ => None,
                        });
                    }
                    Arc::new(builder.finish())
                }
                CellType::Double => {
                    let mut builder = Float64Builder::new();
                    for cell in cells {
                        builder.append_option(match cell {
                            Cell::Double(x) => Some(*x),
                            _ => None,
                        });
                    }
                    Arc::new(builder.finish())
                }
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns)
}

/// Commit attempts of one snapshot replacement racing other writers.
const REPLACE_ATTEMPTS: usize = 5;

/// The commit-info key under which each replacement records its rows' digest.
const DIGEST_KEY: &str = "pinstreamRowsDigest";

/// A digest of a snapshot's rows, recorded in each replacement's commit info. A restart
/// rebuilds every aggregate from the clean tables (new versions, mostly the same rows): a
/// table whose last replacement holds the same rows is not replaced again (on the 1M-post
/// lake that was 11 overwrite commits, ~110 ms, and 11 new table versions per restart).
fn rows_digest(rows: &[AggregateRow]) -> String {
    let mut bytes = Vec::new();
    for cell in rows.iter().flat_map(|row| row.iter()) {
        match cell {
            Cell::Text(None) => bytes.push(0),
            Cell::Text(Some(text)) => {
                bytes.push(1);
                bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
                bytes.extend_from_slice(text.as_bytes());
            }
            Cell::Long(n) => {
                bytes.push(2);
                bytes.extend_from_slice(&n.to_le_bytes());
            }
            Cell::Double(x) => {
                bytes.push(3);
                bytes.extend_from_slice(&x.to_bits().to_le_bytes());
            }
        }
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

/// The rows digest the last commit of `table` recorded (none when that commit was not a
/// replacement by pinstream, e.g. the table's creation or a compaction).
async fn held_digest(table: &DeltaTable) -> Option<String> {
    let last = table.history(Some(1)).next().await?.ok()?;
    last.info.get(DIGEST_KEY)?.as_str().map(str::to_owned)
}

/// The aggregate tables, the snapshot version each holds and the digest of its rows.
pub struct AggregateTables {
    tables: BTreeMap<&'static str, DeltaTable>,
    /// The codec of the snapshots' files.
    codec: Codec,
    written: BTreeMap<&'static str, u64>,
    held: BTreeMap<&'static str, String>,
}

impl AggregateTables {
    /// Opens (creating) `<lake>/aggregates/<name>` for every aggregate, whose snapshots are
    /// then written with `codec`.
    pub async fn open(lake: &Url, codec: Codec) -> Result<AggregateTables, SinkError> {
        let mut tables = BTreeMap::new();
        let mut held = BTreeMap::new();
        for spec in AGGREGATES {
            let url = lake
                .join(&format!("aggregates/{}/", spec.name))
                .map_err(|e| SinkError::Location {
                    location: lake.to_string(),
                    reason: e.to_string(),
                })?;
            if url.scheme() == "file"
                && let Ok(path) = url.to_file_path()
            {
                let _ = std::fs::create_dir_all(path);
            }
            let schema: StructType = {
                use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
                arrow_schema(spec).as_ref().try_into_kernel().map_err(|e| {
                    SinkError::SchemaMismatch {
                        table: format!("aggregates/{}", spec.name),
                        detail: e.to_string(),
                    }
                })?
            };
            let table = deltalake::operations::create::CreateBuilder::new()
                .with_location(url.as_str())
                .with_table_name(spec.name)
                .with_columns(schema.fields().cloned())
                .with_configuration_property(
                    TableProperty::CheckpointInterval,
                    Some(delta::CHECKPOINT_INTERVAL.to_string()),
                )
                .with_storage_options(delta::storage_options(&url))
                .with_save_mode(SaveMode::Ignore)
                // As for the clean tables: a lost creation race loads the winner's table.
                .with_commit_properties(CommitProperties::default().with_max_retries(0))
                .await;
            // Another process may have created it first: use theirs.
            let table = match table {
                Ok(table) => table,
                Err(error) => delta::load_table(&url)
                    .await
                    .map_err(|_| delta_error(spec.name)(error))?,
            };
            if let Some(digest) = held_digest(&table).await {
                held.insert(spec.name, digest);
            }
            tables.insert(spec.name, table);
        }
        Ok(AggregateTables {
            tables,
            codec,
            written: BTreeMap::new(),
            held,
        })
    }

    /// Replaces the table of every aggregate whose snapshot changed since it was last written
    /// and whose rows differ from what the table holds, the tables concurrently. Returns how
    /// many tables were written.
    pub async fn write_changed(&mut self, store: &AggregateStore) -> Result<usize, SinkError> {
        let mut changed = BTreeMap::new();
        for snapshot in store.all() {
            let name = snapshot.spec.name;
            if self.written.get(name) == Some(&snapshot.version) {
                continue;
            }
            let digest = rows_digest(&snapshot.rows);
            if self.held.get(name) == Some(&digest) {
                self.written.insert(name, snapshot.version);
                continue;
            }
            changed.insert(name, (snapshot, digest));
        }
        let codec = self.codec;
        let replacing = self.tables.iter_mut().filter_map(|(&name, table)| {
            let (snapshot, digest) = changed.remove(name)?;
            Some(async move {
                let result = replace(table, &snapshot, &digest, codec).await;
                (name, snapshot.version, digest, result)
            })
        });
        let mut written = 0;
        let mut failed = None;
        for (name, version, digest, result) in futures::future::join_all(replacing).await {
            match result {
                Ok(()) => {
                    self.written.insert(name, version);
                    self.held.insert(name, digest);
                    written += 1;
                }
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        failed.map_or(Ok(written), Err)
    }
}

/// One overwrite commit of `table`: remove every current file, add the snapshot's, and record
/// the rows' `digest` in the commit info.
async fn replace(
    table: &mut DeltaTable,
    snapshot: &Snapshot,
    digest: &str,
    codec: Codec,
) -> Result<(), SinkError> {
    let name = snapshot.spec.name;
    table.update_state().await.map_err(delta_error(name))?;
    let mut writer = RecordBatchWriter::for_table(table)
        .map_err(delta_error(name))?
        .with_writer_properties(schema::aggregate_writer_properties(codec));
    let schema = writer.arrow_schema();
    let batch = encode(snapshot, &schema).map_err(|source| SinkError::Arrow {
        table: format!("aggregates/{name}"),
        source,
    })?;
    writer.write(batch).await.map_err(delta_error(name))?;
    let adds: Vec<Action> = writer
        .flush()
        .await
        .map_err(delta_error(name))?
        .into_iter()
        .map(Action::Add)
        .collect();
    // Another writer (a second process on the lake) may replace the snapshot between our
    // read and our commit; the conflict checker then refuses ours (both remove the same
    // files). Read the table again and replace what is there now: the last writer wins,
    // and the table always holds exactly one snapshot.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut actions = adds.clone();
        let state = table.snapshot().map_err(delta_error(name))?;
        let log_store = table.log_store();
        let mut files = state.snapshot().file_views(log_store.as_ref(), None);
        while let Some(file) = files.next().await {
            actions.push(Action::Remove(
                file.map_err(delta_error(name))?.remove_action(true),
            ));
        }
        drop(files);
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: None,
            predicate: None,
        };
        let properties = CommitProperties::default()
            .with_metadata([(DIGEST_KEY.to_owned(), serde_json::Value::from(digest))]);
        match CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(state), log_store, operation)
            .await
        {
            Ok(finalized) => {
                table.state = Some(finalized.snapshot());
                return Ok(());
            }
            Err(error) if attempt < REPLACE_ATTEMPTS => {
                tracing::debug!(table = name, "aggregate table replaced again: {error}");
                table.update_state().await.map_err(delta_error(name))?;
            }
            Err(error) => return Err(delta_error(name)(error)),
        }
    }
}

/// Writes the changed aggregates every `interval` until `stop` turns true, then once more (so
/// the tables hold the final results at shutdown).
///
/// A failed write is retried at the next interval and counted in
/// `stats.aggregate_table_failures`. It is logged as a warning only when the retry fails too:
/// a lake that fails once (a full disk, an outage) fails the clean tables' commits as well,
/// and those say it, once, where the run stops or waits. The live results are unaffected.
pub async fn keep_written(
    lake: Url,
    codec: Codec,
    store: AggregateStore,
    interval: std::time::Duration,
    stats: Arc<Stats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), SinkError> {
    let mut tables = AggregateTables::open(&lake, codec).await?;
    let mut failing = 0u32;
    loop {
        let stopping = tokio::time::timeout(interval, stop.wait_for(|stop| *stop))
            .await
            .is_ok();
        match tables.write_changed(&store).await {
            Ok(written) => {
                if failing >= 2 {
                    tracing::info!(
                        "aggregate tables written again after {failing} failed attempts"
                    );
                }
                failing = 0;
                if written > 0 {
                    tracing::debug!(written, "aggregate tables replaced");
                }
            }
            Err(error) if stopping => return Err(error),
            Err(error) => {
                stats
                    .aggregate_table_failures
                    .fetch_add(1, Ordering::Relaxed);
                failing += 1;
                if failing == 2 {
                    tracing::warn!(
                        "writing aggregate tables (retried every {interval:?}): {error}"
                    );
                } else {
                    tracing::debug!(failing, "writing aggregate tables: {error}");
                }
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(country: &str, count: i64) -> Vec<AggregateRow> {
        vec![AggregateRow::from([
            Cell::Text(Some(country.into())),
            Cell::Text(Some("travel".into())),
            Cell::Long(count),
        ])]
    }

    const Q1: &str = "q1_popular_category_by_country";

    /// A lake in a directory removed with the guard.
    fn temporary_lake() -> (tempfile::TempDir, Url) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Url::from_directory_path(dir.path()).unwrap();
        (dir, lake)
    }

    async fn version(lake: &Url, name: &str) -> Option<deltalake::kernel::Version> {
        let url = lake.join(&format!("aggregates/{name}/")).unwrap();
        delta::load_table(&url).await.unwrap().version()
    }

    /// A restart publishes every aggregate again (new versions) with the rows the tables
    /// hold: no table gets a new version then; a changed aggregate does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_tables_whose_rows_differ_from_the_last_replacement_are_replaced() {
        let (_dir, lake) = temporary_lake();
        let first = AggregateStore::new();
        assert!(first.publish(Q1, rows("Fiji", 3)));
        let mut tables = AggregateTables::open(&lake, Codec::default())
            .await
            .unwrap();
        assert_eq!(
            tables.write_changed(&first).await.unwrap(),
            AGGREGATES.len()
        );
        assert_eq!(tables.write_changed(&first).await.unwrap(), 0);
        let before = version(&lake, Q1).await;

        // As after a restart: the same rows, rebuilt into a fresh store.
        let rebuilt = AggregateStore::new();
        assert!(rebuilt.publish(Q1, rows("Fiji", 3)));
        let mut reopened = AggregateTables::open(&lake, Codec::default())
            .await
            .unwrap();
        assert_eq!(reopened.write_changed(&rebuilt).await.unwrap(), 0);
        assert_eq!(version(&lake, Q1).await, before);

        assert!(rebuilt.publish(Q1, rows("Fiji", 4)));
        assert_eq!(reopened.write_changed(&rebuilt).await.unwrap(), 1);
        assert_eq!(version(&lake, Q1).await, before.map(|v| v + 1));
    }

    /// A write that fails is counted and retried at every interval while the run goes on;
    /// the one at shutdown fails the run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_is_counted_retried_and_fails_the_shutdown() {
        let (dir, lake) = temporary_lake();
        let store = AggregateStore::new();
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = tokio::spawn(keep_written(
            lake.clone(),
            Codec::default(),
            store.clone(),
            std::time::Duration::from_millis(20),
            stats.clone(),
            stopped,
        ));
        // Once q1 is written, its directory becomes a file: no data file can be written.
        assert!(store.publish(Q1, rows("Fiji", 3)));
        let table = dir.path().join("aggregates").join(Q1);
        let written = table.join("_delta_log/00000000000000000001.json");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !written.exists() {
            assert!(std::time::Instant::now() < deadline, "q1 was not written");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        std::fs::remove_dir_all(&table).unwrap();
        std::fs::write(&table, b"not a directory").unwrap();
        assert!(store.publish(Q1, rows("Fiji", 4)));
        while Stats::get(&stats.aggregate_table_failures) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "no failed write was counted"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        let error = writer.await.unwrap().unwrap_err();
        assert!(error.to_string().contains(Q1), "{error}");
    }
}

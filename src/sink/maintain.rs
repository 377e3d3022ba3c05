//! Table maintenance, online (`run` with `[maintenance] compact_every`) and one-off
//! (`pinstream maintain`): compaction of small files, a log checkpoint when one is due, and
//! vacuum. Works on local and S3 lakes alike, for the clean, quarantine and aggregate tables.
//!
//! Compaction never loses or doubles a row, whoever else writes the table:
//! - it runs on a `DeltaTable` handle of its own and commits `remove` + `add` actions with
//!   `dataChange = false` (operation OPTIMIZE), which delta-rs's conflict checker lets any
//!   concurrent blind append pass (streaming readers and Databricks skip such commits too);
//! - it commits with no automatic retry: when the table moved on, it reloads the log and
//!   commits again only if **every** file it rewrote is still in the table. delta-rs does not
//!   count two `dataChange = false` removals of one file as a conflict, so without this check
//!   two compactions racing over the same files would both add their rows;
//! - files it wrote but could not commit are left for vacuum, never deleted (a commit whose
//!   reply was lost may still have landed).

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use deltalake::DeltaTable;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use url::Url;

use super::delta::{CHECKPOINT_INTERVAL, load_table};
use super::schema::{self, Codec};
use super::{SinkError, delta_error, parquet_batches};
use crate::table::Table;

/// The default size compaction packs small files up to (and below which a file is small).
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 128 * 1024 * 1024;
/// The default least number of small files worth one rewrite.
pub const DEFAULT_MIN_FILES: usize = 10;
/// Input files fetched ahead of the one being decoded.
const FETCH_AHEAD: usize = 16;
/// Commit attempts of one compaction bin before it gives up (the table keeps moving).
const COMPACT_ATTEMPTS: usize = 10;

/// What compaction rewrites, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactionPolicy {
    /// Files below this size are small; they are packed into files of about this size.
    pub target_file_size: u64,
    /// A group of small files is rewritten only when it has at least this many.
    pub min_files: usize,
    /// The codec of the rewritten files.
    pub codec: Codec,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            target_file_size: DEFAULT_TARGET_FILE_SIZE,
            min_files: DEFAULT_MIN_FILES,
            codec: Codec::default(),
        }
    }
}

/// What maintenance did to one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub table: String,
    /// The table version after maintenance.
    pub version: i64,
    pub files_removed: usize,
    pub bytes_removed: u64,
    pub files_added: usize,
    pub bytes_added: u64,
    pub rows_rewritten: u64,
    /// Groups left as they were because another writer removed one of their files first.
    pub groups_skipped: usize,
    /// An aggregate snapshot table: never compacted (see [`is_snapshot_table`]).
    pub snapshot_table: bool,
    /// The version a checkpoint was written for, when one was missing.
    pub checkpoint: Option<i64>,
    pub vacuumed_files: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: version {}, ", self.table, self.version)?;
        if self.snapshot_table {
            write!(f, "a snapshot table, not compacted")?;
        } else if self.files_removed == 0 {
            write!(f, "no small files to compact")?;
        } else {
            write!(
                f,
                "compacted {} files ({}) into {} ({}, {} rows)",
                self.files_removed,
                bytes(self.bytes_removed),
                self.files_added,
                bytes(self.bytes_added),
                self.rows_rewritten,
            )?;
        }
        if self.groups_skipped > 0 {
            write!(
                f,
                ", {} groups skipped (rewritten by another writer)",
                self.groups_skipped
            )?;
        }
        match self.checkpoint {
            Some(version) => write!(f, ", checkpoint written at version {version}")?,
            None => write!(f, ", checkpoint up to date")?,
        }
        write!(f, ", vacuumed {} files", self.vacuumed_files)
    }
}

fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / (1 << 10) as f64)
    } else {
        format!("{n} B")
    }
}

/// Aggregate tables are snapshots replaced whole by an overwrite commit (one file each). They
/// are never compacted: an overwrite planned before a compaction commits would remove the
/// compacted files' inputs, not the compacted file, and delta-rs's checker lets that pass
/// (the compaction's removals have `dataChange = false`), leaving the old rows in the table.
pub fn is_snapshot_table(name: &str) -> bool {
    name.starts_with("aggregates/")
}

/// Opens the table `name` under `root`; `None` when there is no table there (yet).
pub async fn open(root: &Url, name: &str) -> Result<Option<DeltaTable>, SinkError> {
    let url = root
        .join(&format!("{name}/"))
        .map_err(|e| SinkError::Location {
            location: root.to_string(),
            reason: e.to_string(),
        })?;
    if url.scheme() == "file" && url.to_file_path().is_ok_and(|path| !path.exists()) {
        return Ok(None);
    }
    let unloaded = deltalake::DeltaTableBuilder::from_url(url.clone())
        .and_then(|builder| {
            builder
                .with_storage_options(super::delta::storage_options(&url))
                .build()
        })
        .map_err(delta_error(name))?;
    let exists = unloaded
        .log_store()
        .is_delta_table_location()
        .await
        .map_err(delta_error(name))?;
    if !exists {
        return Ok(None);
    }
    load_table(&url).await.map(Some).map_err(delta_error(name))
}

/// Parquet settings for rewritten files: the clean tables' own (dictionaries where values
/// repeat), the aggregates' for any other table.
fn writer_properties(name: &str, codec: Codec) -> WriterProperties {
    Table::ALL
        .into_iter()
        .find(|table| table.name() == name)
        .map_or_else(
            || schema::aggregate_writer_properties(codec),
            |table| schema::writer_properties(table, codec),
        )
}

/// One live data file.
#[derive(Clone, Debug)]
struct DataFile {
    path: String,
    location: object_store::path::Path,
    size: u64,
    modification_time: i64,
    remove: Remove,
}

/// Packs the table's small files (below the target size) into files of about the target
/// size, oldest first; each group of at least `min_files` files is one OPTIMIZE commit.
pub async fn compact(
    table: &mut DeltaTable,
    name: &str,
    policy: &CompactionPolicy,
    report: &mut Report,
) -> Result<(), SinkError> {
    table.update_state().await.map_err(delta_error(name))?;
    let snapshot = table.snapshot().map_err(delta_error(name))?;
    let mut small: Vec<DataFile> = snapshot
        .log_data()
        .into_iter()
        .filter(|file| (file.size().max(0) as u64) < policy.target_file_size)
        .map(|file| DataFile {
            path: file.path().into_owned(),
            location: file.object_store_path(),
            size: file.size().max(0) as u64,
            modification_time: file.modification_time(),
            remove: file.remove_action(false),
        })
        .collect();
    small.sort_by(|a, b| (a.modification_time, &a.path).cmp(&(b.modification_time, &b.path)));
    for group in pack(small, policy) {
        rewrite(table, name, &group, policy, report).await?;
    }
    report.version = table.version().map_or(-1, |v| v as i64);
    Ok(())
}

/// Groups files (in order) so that each group's size stays within the target; groups of
/// fewer than `min_files` are left alone.
fn pack(files: Vec<DataFile>, policy: &CompactionPolicy) -> Vec<Vec<DataFile>> {
    let mut groups = Vec::new();
    let mut group: Vec<DataFile> = Vec::new();
    let mut size = 0;
    for file in files {
        if !group.is_empty() && size + file.size > policy.target_file_size {
            groups.push(std::mem::take(&mut group));
            size = 0;
        }
        size += file.size;
        group.push(file);
    }
    groups.push(group);
    groups.retain(|group| group.len() >= policy.min_files.max(2));
    groups
}

/// Rewrites one group of files as one (or, past the target size, a few) new files and
/// commits the swap.
async fn rewrite(
    table: &mut DeltaTable,
    name: &str,
    group: &[DataFile],
    policy: &CompactionPolicy,
    report: &mut Report,
) -> Result<(), SinkError> {
    let arrow_error = |source| SinkError::Arrow {
        table: name.to_owned(),
        source,
    };
    let object_error = |e: object_store::Error| delta_error(name)(e.into());
    let mut writer = RecordBatchWriter::for_table(table)
        .map_err(delta_error(name))?
        .with_writer_properties(writer_properties(name, policy.codec))
        .with_target_file_size(policy.target_file_size);
    let schema = writer.arrow_schema();
    let store = table.object_store();
    let mut rows = 0u64;
    // Inputs are fetched a few at a time ahead of the decoder (each is one round trip on S3)
    // and decoded in order; the writer streams its output.
    let locations: Vec<object_store::path::Path> =
        group.iter().map(|file| file.location.clone()).collect();
    let mut fetched = futures::stream::iter(locations.into_iter().map(move |location| {
        let store = store.clone();
        async move { store.get(&location).await?.bytes().await }
    }))
    .buffered(FETCH_AHEAD);
    while let Some(data) = fetched.next().await {
        let data = data.map_err(object_error)?;
        let batches = parquet_batches(name, data)?;
        for batch in batches {
            let batch = batch.map_err(arrow_error)?;
            rows += batch.num_rows() as u64;
            let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                .map_err(arrow_error)?;
            writer.write(batch).await.map_err(delta_error(name))?;
        }
    }
    // The rows keep the latest time of their files: the dedup rebuild takes a file's time
    // as its rows' arrival.
    let modified = group.iter().map(|f| f.modification_time).max().unwrap_or(0);
    let adds: Vec<Add> = writer
        .flush()
        .await
        .map_err(delta_error(name))?
        .into_iter()
        .map(|add| Add {
            data_change: false,
            modification_time: modified,
            ..add
        })
        .collect();
    let written: u64 = adds.iter().map(|add| add.size.max(0) as u64).sum();
    let mut actions: Vec<Action> = group
        .iter()
        .map(|file| Action::Remove(file.remove.clone()))
        .collect();
    actions.extend(adds.iter().cloned().map(Action::Add));
    let operation = DeltaOperation::Optimize {
        predicate: None,
        target_size: policy.target_file_size as i64,
    };
    let inputs: HashSet<&str> = group.iter().map(|f| f.path.as_str()).collect();
    for attempt in 1..=COMPACT_ATTEMPTS {
        let snapshot = table.snapshot().map_err(delta_error(name))?;
        let live = snapshot
            .log_data()
            .into_iter()
            .filter(|file| inputs.contains(file.path().as_ref()))
            .count();
        if live != inputs.len() {
            // Another compaction (or our own commit whose reply was lost) got there first.
            tracing::info!(
                table = name,
                "compaction skipped a group: its files were rewritten meanwhile"
            );
            report.groups_skipped += 1;
            return Ok(());
        }
        let committed = CommitBuilder::from(CommitProperties::default())
            .with_max_retries(0)
            .with_actions(actions.clone())
            .build(Some(snapshot), table.log_store(), operation.clone())
            .await;
        match committed {
            Ok(finalized) => {
                table.state = Some(finalized.snapshot());
                report.files_removed += group.len();
                report.bytes_removed += group.iter().map(|f| f.size).sum::<u64>();
                report.files_added += adds.len();
                report.bytes_added += written;
                report.rows_rewritten += rows;
                return Ok(());
            }
            Err(error) if attempt < COMPACT_ATTEMPTS => {
                tracing::debug!(table = name, attempt, "compaction commit retried: {error}");
                table.update_state().await.map_err(delta_error(name))?;
            }
            Err(error) => return Err(delta_error(name)(error)),
        }
    }
    Ok(())
}

/// Writes a checkpoint at the current version when the last one is [`CHECKPOINT_INTERVAL`]
/// or more commits behind (the engine's commits write them themselves; this covers tables
/// written by an older version, or a checkpoint lost to a crash). Returns its version.
pub async fn checkpoint_if_due(
    table: &mut DeltaTable,
    name: &str,
) -> Result<Option<i64>, SinkError> {
    table.update_state().await.map_err(delta_error(name))?;
    let version = table.version().map_or(-1, |v| v as i64);
    let last = last_checkpoint(table).await;
    let due = match last {
        Some(last) => version - last >= CHECKPOINT_INTERVAL as i64,
        None => version + 1 >= CHECKPOINT_INTERVAL as i64,
    };
    if !due {
        return Ok(None);
    }
    deltalake::checkpoints::create_checkpoint(table, None)
        .await
        .map_err(delta_error(name))?;
    Ok(Some(version))
}

/// The version of the table's last checkpoint, from `_delta_log/_last_checkpoint`.
pub async fn last_checkpoint(table: &DeltaTable) -> Option<i64> {
    let path = object_store::path::Path::from("_delta_log/_last_checkpoint");
    let data = table
        .object_store()
        .get(&path)
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    let last: serde_json::Value = serde_json::from_slice(&data).ok()?;
    last["version"].as_i64()
}

/// Deletes the files no version within `retention` needs: removed files whose removal is
/// older, and files no commit ever referenced (a crash between writing and committing)
/// older than it. `force` allows a retention below the table's
/// `delta.deletedFileRetentionDuration` (7 days by default).
pub async fn vacuum(
    table: &mut DeltaTable,
    name: &str,
    retention: Duration,
    force: bool,
    report: &mut Report,
) -> Result<(), SinkError> {
    use deltalake::operations::vacuum::VacuumMode;
    table.update_state().await.map_err(delta_error(name))?;
    let retention = chrono::Duration::from_std(retention).map_err(|e| SinkError::Location {
        location: name.to_owned(),
        reason: format!("retention: {e}"),
    })?;
    // Full mode: also the files no commit references (Lite only deletes removed ones).
    let (vacuumed, metrics) = table
        .clone()
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(!force)
        .with_mode(VacuumMode::Full)
        .await
        .map_err(delta_error(name))?;
    report.vacuumed_files += metrics.files_deleted.len();
    *table = vacuumed;
    report.version = table.version().map_or(-1, |v| v as i64);
    Ok(())
}

/// One pass over one table: compaction, vacuum, then a checkpoint if one is due.
pub async fn maintain_table(
    table: &mut DeltaTable,
    name: &str,
    compaction: Option<&CompactionPolicy>,
    vacuum_retention: Option<(Duration, bool)>,
) -> Result<Report, SinkError> {
    let mut report = Report {
        table: name.to_owned(),
        ..Report::default()
    };
    if let Some(policy) = compaction {
        if is_snapshot_table(name) {
            report.snapshot_table = true;
        } else {
            compact(table, name, policy, &mut report).await?;
        }
    }
    if let Some((retention, force)) = vacuum_retention {
        vacuum(table, name, retention, force, &mut report).await?;
    }
    report.checkpoint = checkpoint_if_due(table, name).await?;
    report.version = table.version().map_or(-1, |v| v as i64);
    Ok(report)
}

/// Compacts every table of the lake every `every` until `stop` turns true (the `run`
/// command's online maintenance). A failed pass is logged and tried again next time: it
/// never stops the stream.
pub async fn keep_compacted(
    root: Url,
    policy: CompactionPolicy,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tables: Vec<(String, DeltaTable)> = Vec::new();
    loop {
        if tokio::time::timeout(every, stop.wait_for(|stop| *stop))
            .await
            .is_ok()
        {
            return;
        }
        // The aggregate tables are snapshots, never compacted (see `is_snapshot_table`).
        for name in Table::ALL.map(|table| table.name().to_owned()) {
            if !tables.iter().any(|(n, _)| *n == name) {
                match open(&root, &name).await {
                    Ok(Some(table)) => tables.push((name.clone(), table)),
                    Ok(None) => continue,
                    Err(error) => {
                        tracing::warn!("compaction: {error}");
                        continue;
                    }
                }
            }
            let Some((_, table)) = tables.iter_mut().find(|(n, _)| *n == name) else {
                continue;
            };
            let mut report = Report {
                table: name.clone(),
                ..Report::default()
            };
            match compact(table, &name, &policy, &mut report).await {
                Ok(()) if report.files_removed > 0 => tracing::info!(
                    table = %name,
                    files_removed = report.files_removed,
                    files_added = report.files_added,
                    bytes_added = report.bytes_added,
                    version = report.version,
                    "compacted"
                ),
                Ok(()) => {}
                Err(error) => tracing::warn!("compaction: {error}"),
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64) -> DataFile {
        DataFile {
            path: path.to_owned(),
            location: object_store::path::Path::from(path),
            size,
            modification_time: 0,
            remove: Remove {
                path: path.to_owned(),
                data_change: false,
                deletion_timestamp: None,
                extended_file_metadata: None,
                partition_values: None,
                size: None,
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            },
        }
    }

    fn paths(groups: &[Vec<DataFile>]) -> Vec<Vec<&str>> {
        groups
            .iter()
            .map(|g| g.iter().map(|f| f.path.as_str()).collect())
            .collect()
    }

    #[test]
    fn groups_stay_within_the_target_and_small_groups_are_left_alone() {
        let policy = CompactionPolicy {
            target_file_size: 100,
            min_files: 2,
            ..CompactionPolicy::default()
        };
        let files = vec![
            file("a", 40),
            file("b", 40),
            file("c", 40),
            file("d", 10),
            file("e", 90),
        ];
        // a+b (80); c+d (50), e alone would pass 100 with c+d; e alone is one file: left.
        assert_eq!(
            paths(&pack(files, &policy)),
            vec![vec!["a", "b"], vec!["c", "d"]]
        );
    }

    #[test]
    fn min_files_holds_back_a_rewrite_until_enough_small_files_gather() {
        let policy = CompactionPolicy {
            target_file_size: 1000,
            min_files: 4,
            ..CompactionPolicy::default()
        };
        let three = vec![file("a", 1), file("b", 1), file("c", 1)];
        assert!(pack(three.clone(), &policy).is_empty());
        let mut four = three;
        four.push(file("d", 1));
        assert_eq!(pack(four, &policy).len(), 1);
    }

    #[test]
    fn a_report_is_one_line() {
        let report = Report {
            table: "pin".into(),
            version: 12,
            files_removed: 30,
            bytes_removed: 3 << 20,
            files_added: 1,
            bytes_added: 2 << 20,
            rows_rewritten: 5000,
            checkpoint: Some(12),
            ..Report::default()
        };
        let line = report.to_string();
        assert!(!line.contains('\n'));
        assert!(line.contains("compacted 30 files (3.0 MiB) into 1 (2.0 MiB, 5000 rows)"));
        assert!(line.contains("checkpoint written at version 12"));
    }
}

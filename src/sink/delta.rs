//! The lake: opening (creating) the tables, reading positions and rows back, writing data
//! files and committing them.
//!
//! Exactly once rests on one rule: **positions share the rows' commit**. Every micro-batch is
//! one commit per table holding the batch's data files *and* a `txn` action per source
//! partition (appId = partition id, version = position). Committed apart, a kill -9 between
//! the two would lose or duplicate a batch. The four tables commit one after the other, so a
//! crash can leave some tables one batch ahead: on start each partition resumes from the
//! *least* position over the tables, and the rows replayed into tables that already hold them
//! are dropped by deduplication, whose state is rebuilt from the tables themselves.

use std::collections::BTreeMap;

use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TransactionError,
};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TableProperty;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use object_store::ObjectStoreExt;
use url::Url;

use super::schema::{self, Codec};
use super::{SinkError, delta_error, parquet_batches};
use crate::connectors::{CursorLookup, Cursors, PartitionId, Position, Positions};
use crate::table::{Table, TableRow};

/// Commits per checkpoint: SPEC §4 asks for one at least every 10 commits.
pub const CHECKPOINT_INTERVAL: u32 = 10;

/// Worker `worker`'s share of `sized` items (size, item) among `peers`: largest first, each to
/// the worker with the least size so far (ties to the lower index; equal sizes in item order),
/// so every worker computes the same split.
fn share_by_size<T: Ord>(mut sized: Vec<(i64, T)>, worker: usize, peers: usize) -> Vec<T> {
    sized.sort_by(|(a_size, a), (b_size, b)| b_size.cmp(a_size).then_with(|| a.cmp(b)));
    let mut loads = vec![0i64; peers.max(1)];
    let mut mine = Vec::new();
    for (size, item) in sized {
        let (least, _) = loads
            .iter()
            .enumerate()
            .min_by_key(|&(index, load)| (*load, index))
            .expect("at least one worker");
        loads[least] += size;
        if least == worker {
            mine.push(item);
        }
    }
    mine
}

/// A data file a worker reads back at start ([`Lake::held_files`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldFile {
    pub table: Table,
    pub path: object_store::path::Path,
    /// When its rows were first committed (micros): the nearest there is to their arrival.
    pub modified: i64,
}

/// The tables under one lake root.
#[derive(Clone)]
pub struct Lake {
    root: Url,
    tables: BTreeMap<Table, DeltaTable>,
    /// The codec of the data files written.
    codec: Codec,
}

/// Turns `--lake` (a local directory, `file://…` or `s3://bucket/prefix`) into a URL ending
/// in `/`, creating a local directory.
pub fn lake_url(location: &str) -> Result<Url, SinkError> {
    let error = |reason: String| SinkError::Location {
        location: location.to_owned(),
        reason,
    };
    let mut url = if location.contains("://") {
        let url = Url::parse(location).map_err(|e| error(e.to_string()))?;
        match url.scheme() {
            "file" => {}
            "s3" | "s3a" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(error(
                        "an S3 lake needs a bucket: s3://bucket/prefix".into(),
                    ));
                }
            }
            scheme => {
                return Err(error(format!(
                    "{scheme}:// lakes are not supported: use a local directory or s3://bucket/prefix"
                )));
            }
        }
        url
    } else {
        std::fs::create_dir_all(location).map_err(|e| error(e.to_string()))?;
        let path = std::fs::canonicalize(location).map_err(|e| error(e.to_string()))?;
        Url::from_directory_path(&path).map_err(|()| error("not an absolute path".into()))?
    };
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        std::fs::create_dir_all(&path).map_err(|e| error(e.to_string()))?;
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// Seconds an S3 request is retried (with backoff) before the error is reported: an
/// unreachable endpoint fails the run within about this long instead of hanging.
const S3_RETRY_SECONDS: u64 = 30;

/// Seconds one S3 request attempt may take, connecting to the end of its body.
const S3_REQUEST_SECONDS: u64 = 30;

/// Storage options for every handle on a table under `url` (empty for local lakes). The rest
/// of the S3 configuration comes from the standard AWS variables (`AWS_ENDPOINT_URL[_S3]`,
/// `AWS_REGION`, the credential chain, `AWS_ALLOW_HTTP`), which delta-rs reads itself.
///
/// Why S3 commits are safe without a DynamoDB lock: delta-rs 1.x writes each commit file
/// `_delta_log/<version>.json` with a conditional put (`If-None-Match: *`), so of two
/// writers racing for one version exactly one wins and the other gets "already exists",
/// re-reads the log, runs the conflict checker and tries the next version. `conditional_put
/// = etag` is set here so that a stray `AWS_CONDITIONAL_PUT=disabled` cannot turn that off
/// (commits would then fail, not overwrite each other). `AWS_S3_LOCKING_PROVIDER` is not
/// needed (delta-rs 1.x ignores `dynamodb` apart from a warning and still commits this way).
pub fn storage_options(url: &Url) -> std::collections::HashMap<String, String> {
    let mut options = std::collections::HashMap::new();
    if matches!(url.scheme(), "s3" | "s3a") {
        // Every S3 handle of this process gets the patient store (outages waited out).
        super::store::install();
        options.insert("conditional_put".to_owned(), "etag".to_owned());
        // Each attempt's bounds, said here rather than left to object_store's defaults: a
        // request that gets no answer fails after `timeout`, one that cannot connect after
        // `connect_timeout`, and one is retried at most `max_retries` times within
        // `retry_timeout`.
        options.insert("timeout".to_owned(), format!("{S3_REQUEST_SECONDS}s"));
        options.insert("connect_timeout".to_owned(), "5s".to_owned());
        options.insert("max_retries".to_owned(), "5".to_owned());
        options.insert("retry_timeout".to_owned(), format!("{S3_RETRY_SECONDS}s"));
    }
    options
}

/// Loads the table at `url` (which must exist), with [`storage_options`].
pub async fn load_table(url: &Url) -> Result<DeltaTable, DeltaTableError> {
    DeltaTableBuilder::from_url(url.clone())?
        .with_storage_options(storage_options(url))
        .load()
        .await
}

impl Lake {
    /// Opens every table under `location`, creating the missing ones (protocol (1,2), a
    /// checkpoint every [`CHECKPOINT_INTERVAL`] commits); data files are written with `codec`.
    pub async fn open(location: &str, codec: Codec) -> Result<Lake, SinkError> {
        let root = lake_url(location)?;
        let mut tables = BTreeMap::new();
        for table in Table::ALL {
            tables.insert(table, open_table(&root, table).await?);
        }
        Ok(Lake {
            root,
            tables,
            codec,
        })
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn table(&self, table: Table) -> &DeltaTable {
        &self.tables[&table]
    }

    /// Where each partition resumes: the least version its appId has over the tables. A
    /// partition some table has never committed starts at its beginning (it is left out).
    pub async fn positions(&self, partitions: &[PartitionId]) -> Result<Positions, SinkError> {
        let mut positions = Positions::new();
        'partition: for partition in partitions {
            let mut least: Option<i64> = None;
            for (&table, delta) in &self.tables {
                let snapshot = delta.snapshot().map_err(delta_error(table.name()))?;
                match snapshot
                    .transaction_version(delta.log_store().as_ref(), partition.as_ref())
                    .await
                    .map_err(delta_error(table.name()))?
                {
                    Some(version) => least = Some(least.map_or(version, |l| l.min(version))),
                    None => continue 'partition,
                }
            }
            if let Some(version) = least {
                positions.insert(partition.clone(), Position::new(version));
            }
        }
        Ok(positions)
    }

    /// The exact cursor of each partition in `lookup.positions` (the least versions over the
    /// tables, as [`Lake::positions`] returns them), read from the `commitInfo` of the newest
    /// commits (each commit carries the cursors of every partition its process committed, see
    /// [`Lake::commit`]). A cursor counts only when stored for exactly that position, so the
    /// one of the table a crash left behind is the one used. Walks back at most
    /// `lookup.commits` commits per table; partitions not found are left out (their source
    /// falls back to counting).
    pub async fn cursors(&self, lookup: &CursorLookup) -> Result<Cursors, SinkError> {
        let positions = &lookup.positions;
        let mut found = Cursors::new();
        for (&table, delta) in &self.tables {
            if found.len() == positions.len() {
                break;
            }
            let Some(latest) = delta.version() else {
                continue;
            };
            let oldest = latest.saturating_sub(lookup.commits);
            for version in (oldest..=latest).rev() {
                let entry = delta
                    .log_store()
                    .read_commit_entry(version)
                    .await
                    .map_err(delta_error(table.name()))?;
                // Log files older than the retention are gone: nothing further back either.
                let Some(bytes) = entry else { break };
                for (partition, cursor) in commit_cursors(&bytes) {
                    if positions.get(&partition) == Some(&cursor.position) {
                        found.entry(partition).or_insert(cursor);
                    }
                }
                if found.len() == positions.len() {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The data files of every table that worker `worker` of `peers` reads back at start
    /// (together the workers cover every table), each with its modification time.
    ///
    /// Split by size, not by count: largest first, each to the worker with the fewest bytes
    /// so far (ties to the lower index). Compaction leaves a few large files beside many small
    /// ones, and dealing them round-robin per table gave one worker of two a quarter more rows
    /// on a 3M-row lake, which the restart then waited for. Every worker computes the same
    /// split from the same file list.
    pub fn held_files(&self, worker: usize, peers: usize) -> Result<Vec<HeldFile>, SinkError> {
        let mut files = Vec::new();
        for table in Table::ALL {
            let snapshot = self.tables[&table]
                .snapshot()
                .map_err(delta_error(table.name()))?;
            files.extend(snapshot.log_data().into_iter().map(|file| {
                let held = HeldFile {
                    table,
                    path: file.object_store_path(),
                    modified: file.modification_time() * 1000,
                };
                (file.size(), held)
            }));
        }
        Ok(share_by_size(files, worker, peers))
    }

    /// The rows `table` holds, by its files' statistics (a file without them counts none): how
    /// large the state seeded from the tables will be, so it is made that large at once.
    pub fn held_rows(&self, table: Table) -> Result<usize, SinkError> {
        let snapshot = self.tables[&table]
            .snapshot()
            .map_err(delta_error(table.name()))?;
        Ok(snapshot
            .log_data()
            .into_iter()
            .filter_map(|file| file.num_records())
            .sum())
    }

    /// Reads one data file of `table` and hands its rows to `each`, one Arrow batch at a time
    /// (so rebuilding state at start holds one batch of rows, not the table).
    pub async fn read_file(
        &self,
        table: Table,
        path: &object_store::path::Path,
        mut each: impl FnMut(&TableRow),
    ) -> Result<(), SinkError> {
        let arrow_error = |source| SinkError::Arrow {
            table: table.name().to_owned(),
            source,
        };
        // Data files are written one per batch and worker, so whole-file reads stay small.
        let object_error = |e: object_store::Error| delta_error(table.name())(e.into());
        let store = self.tables[&table].object_store();
        let file = store.get(path).await.map_err(object_error)?;
        let bytes = file.bytes().await.map_err(object_error)?;
        for batch in parquet_batches(table.name(), bytes)? {
            schema::decode(table, &batch.map_err(arrow_error)?, &mut each).map_err(arrow_error)?;
        }
        Ok(())
    }

    /// A writer of data files for `table` (files only: the commit is [`Lake::commit`]'s).
    pub fn writer(&self, table: Table) -> Result<RecordBatchWriter, SinkError> {
        let writer = RecordBatchWriter::for_table(&self.tables[&table])
            .map_err(delta_error(table.name()))?;
        Ok(writer.with_writer_properties(schema::writer_properties(table, self.codec)))
    }

    /// Appends `adds` to `table` with `positions` as `txn` actions, in one commit. Returns the
    /// new table version.
    ///
    /// Other writers (another process, compaction) may have committed since this handle's
    /// snapshot: delta-rs then reads their commits, runs the conflict checker (a blind append
    /// conflicts with none of them unless one stores the same appIds, i.e. two processes run
    /// the same sources) and commits at the next free version, with a conditional put on S3.
    /// The snapshot it returns is at our version *with* the others' commits applied, so the
    /// next commit and the positions read back stay right.
    pub async fn commit(
        &mut self,
        table: Table,
        adds: Vec<Add>,
        positions: &Positions,
        cursors: &Cursors,
        batch: u64,
    ) -> Result<i64, SinkError> {
        let delta = self.tables.get_mut(&table).expect("every table is opened");
        let transactions = positions
            .iter()
            .map(|(partition, position)| Transaction::new(partition.as_ref(), position.value()))
            .collect();
        let mut metadata = vec![("pinstream.batch".to_owned(), serde_json::json!(batch))];
        if !cursors.is_empty() {
            metadata.push((CURSORS_KEY.to_owned(), serde_json::json!(cursors)));
        }
        let properties = CommitProperties::default()
            .with_application_transactions(transactions)
            .with_metadata(metadata);
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: None,
            predicate: None,
        };
        // The read snapshot is the one the batch started from (the table as loaded, then as
        // this process last committed it): Delta refuses the commit if any commit since then
        // wrote one of these appIds. That is the fence between two processes that both think
        // they own a partition (a rebalance): only one of them can commit its offsets.
        let snapshot = delta.snapshot().map_err(delta_error(table.name()))?;
        let finalized = CommitBuilder::from(properties)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(snapshot), delta.log_store(), operation)
            .await
            .map_err(|error| match error {
                DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction),
                } => SinkError::Fenced {
                    table: table.name().to_owned(),
                    partitions: positions.keys().map(|p| p.to_string()).collect(),
                },
                error => delta_error(table.name())(error),
            })?;
        let version = finalized.version();
        delta.state = Some(finalized.snapshot());
        Ok(version as i64)
    }
}

/// The `commitInfo` key holding the cursors of a commit (`{appId: {position, cursor}}`).
const CURSORS_KEY: &str = "pinstream.cursors";

/// The cursors in one commit file's `commitInfo` (none when absent or unreadable: the
/// source then counts, which is slower but exact while the stream keeps its records).
fn commit_cursors(commit: &[u8]) -> Cursors {
    commit
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"{\"commitInfo\""))
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter_map(|mut action| action["commitInfo"][CURSORS_KEY].take().into())
        .filter_map(|cursors: serde_json::Value| serde_json::from_value::<Cursors>(cursors).ok())
        .next()
        .unwrap_or_default()
}

/// Rows encoded per Arrow batch: small enough that buffers are reused, large enough for
/// Parquet to compress well.
pub const CHUNK_ROWS: usize = 8192;

/// One data file of one table being written. Rows are encoded to Arrow and Parquet in chunks
/// as they arrive, so a batch costs its compressed size in memory, not its rows'.
pub struct FileWriter {
    table: Table,
    writer: RecordBatchWriter,
    schema: deltalake::arrow::datatypes::SchemaRef,
    buffer: Vec<TableRow>,
    rows: u64,
}

impl FileWriter {
    pub fn new(lake: &Lake, table: Table) -> Result<FileWriter, SinkError> {
        let writer = lake.writer(table)?;
        Ok(FileWriter {
            table,
            schema: writer.arrow_schema(),
            writer,
            buffer: Vec::with_capacity(CHUNK_ROWS),
            rows: 0,
        })
    }

    /// Adds a row; true when a chunk is full and [`FileWriter::write_chunk`] should run.
    pub fn push(&mut self, row: TableRow) -> bool {
        self.buffer.push(row);
        self.rows += 1;
        self.buffer.len() >= CHUNK_ROWS
    }

    /// Encodes the buffered rows into the file.
    pub async fn write_chunk(&mut self) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let table = self.table;
        let batch = schema::encode(table, &self.buffer, &self.schema).map_err(|source| {
            SinkError::Arrow {
                table: table.name().to_owned(),
                source,
            }
        })?;
        self.buffer.clear();
        self.writer
            .write(batch)
            .await
            .map_err(delta_error(table.name()))
    }

    /// Completes the file: its `Add` actions and its row count.
    pub async fn finish(mut self) -> Result<(Vec<Add>, u64), SinkError> {
        self.write_chunk().await?;
        let adds = self
            .writer
            .flush()
            .await
            .map_err(delta_error(self.table.name()))?;
        Ok((adds, self.rows))
    }
}

async fn open_table(root: &Url, table: Table) -> Result<DeltaTable, SinkError> {
    let url = root
        .join(&format!("{}/", table.name()))
        .map_err(|e| SinkError::Location {
            location: root.to_string(),
            reason: e.to_string(),
        })?;
    // Create-if-missing loads the table when it exists.
    let delta = create_table(&url, table).await?;
    check_schema(&delta, table)?;
    Ok(delta)
}

async fn create_table(url: &Url, table: Table) -> Result<DeltaTable, SinkError> {
    use deltalake::kernel::StructType;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

    let arrow = schema::arrow_schema(table);
    let columns: StructType =
        arrow
            .as_ref()
            .try_into_kernel()
            .map_err(|e| SinkError::SchemaMismatch {
                table: table.name().to_owned(),
                detail: e.to_string(),
            })?;
    let created = deltalake::operations::create::CreateBuilder::new()
        .with_location(url.as_str())
        .with_table_name(table.name())
        .with_columns(columns.fields().cloned())
        .with_configuration_property(
            TableProperty::CheckpointInterval,
            Some(CHECKPOINT_INTERVAL.to_string()),
        )
        .with_storage_options(storage_options(url))
        .with_save_mode(SaveMode::Ignore)
        // No retry: when another process creates the table at the same moment, delta-rs would
        // otherwise commit our create again as version 1, a metadata change that fails every
        // append planned on version 0. Losing the race, we load theirs below.
        .with_commit_properties(CommitProperties::default().with_max_retries(0))
        .await;
    match created {
        Ok(delta) => Ok(delta),
        // Another process created it first: use theirs. When that fails too, the creation's
        // error says why (no bucket, no permission), not "not a Delta table".
        Err(create_error) => load_table(url)
            .await
            .map_err(|_| delta_error(table.name())(create_error)),
    }
}

/// Refuses a table whose columns differ from what this version writes (a clear error at start
/// instead of a failed commit later).
fn check_schema(delta: &DeltaTable, table: Table) -> Result<(), SinkError> {
    let snapshot = delta.snapshot().map_err(delta_error(table.name()))?;
    let found: Vec<String> = snapshot
        .schema()
        .fields()
        .map(|f| f.name().clone())
        .collect();
    let expected: Vec<String> = schema::arrow_schema(table)
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if found != expected {
        return Err(SinkError::SchemaMismatch {
            table: table.name().to_owned(),
            detail: format!("columns {found:?}, expected {expected:?}"),
        });
    }
    Ok(())
}

/// Scheduling priority (nice) of the data file encoders' threads where `SCHED_IDLE` is refused.
const ENCODER_NICE: i32 = 10;

/// The runtime that encodes data files (Parquet with Snappy) and uploads them
/// ([`BackgroundFile`]), its threads scheduled after the timely workers (see
/// [`lower_priority`]). Encoding a batch is the heaviest work of a run after cleaning, and it
/// is not in any aggregate's path: sharing the cores at the workers' priority, it pushed the
/// freshness p99 at 100k events/s on 2 cores from ~75 to ~150 ms. A batch's files are still
/// done before its commit, which waits for them either way.
pub fn encoder_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("pinstream-encode")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
}

/// Puts the calling thread in `SCHED_IDLE` (it runs when no worker wants the core), or, where
/// that is refused, at nice [`ENCODER_NICE`] (best effort; on Linux both are per thread).
///
/// At nice 10 a waking worker still waited behind an encoder's slice: the encoders write out
/// the last batch's files at the start of each batch, and the late ticks of a 100k events/s
/// run clustered there. `SCHED_IDLE`, 12 alternated pairs at 100k events/s on 2 cores: p99
/// median 43 ms (27-103) against 74 ms (52-160) at nice 10 (nice 19: 66 ms over 5). The
/// encoders still run whenever a worker waits, and a worker waits when they fall behind (a
/// file's queue of chunks is bounded, and reading stops `BATCHES_IN_FLIGHT` batches past the
/// last commit), so a saturated replay holds more rows in memory rather than stalling: the
/// 3M-record first pass peaked at 701-808 MiB against 601-660 MiB, in 5.3-6.0 s against
/// 5.5-6.3 s.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` only; on Linux, pid 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
        let refused = std::io::Error::last_os_error();
        // SAFETY: setpriority has no memory effects; on Linux, PRIO_PROCESS with id 0 is the
        // calling thread.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, ENCODER_NICE) };
        if result != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                %refused,
                "data file encoder thread left at its priority"
            );
        }
    }
}

/// A [`FileWriter`] run on the encoder runtime ([`encoder_runtime`]): the caller hands over
/// rows in chunks and is not held up while they are encoded (a timely worker blocked on
/// Parquet would hold back every live aggregate's frontier), except when [`CHUNKS_QUEUED`]
/// chunks already wait.
pub struct BackgroundFile {
    buffer: Vec<TableRow>,
    chunks: Option<tokio::sync::mpsc::Sender<Vec<TableRow>>>,
    task: tokio::task::JoinHandle<Result<(Vec<Add>, u64), SinkError>>,
}

/// Chunks waiting for the encoder before the sender waits too (backpressure, bounded memory).
const CHUNKS_QUEUED: usize = 4;

impl BackgroundFile {
    pub fn start(
        lake: &Lake,
        table: Table,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, SinkError> {
        let mut file = FileWriter::new(lake, table)?;
        let (chunks, mut receive) = tokio::sync::mpsc::channel::<Vec<TableRow>>(CHUNKS_QUEUED);
        let task = runtime.spawn(async move {
            while let Some(chunk) = receive.recv().await {
                for row in chunk {
                    file.push(row);
                }
                file.write_chunk().await?;
            }
            file.finish().await
        });
        Ok(BackgroundFile {
            buffer: Vec::with_capacity(CHUNK_ROWS),
            chunks: Some(chunks),
            task,
        })
    }

    pub fn push(&mut self, row: TableRow, runtime: &tokio::runtime::Handle) {
        self.buffer.push(row);
        if self.buffer.len() >= CHUNK_ROWS {
            self.send(runtime);
        }
    }

    fn send(&mut self, runtime: &tokio::runtime::Handle) {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_ROWS));
        if let Some(chunks) = &self.chunks
            && let Err(tokio::sync::mpsc::error::TrySendError::Full(chunk)) = chunks.try_send(chunk)
        {
            // The encoder is behind: wait for room (a failed encoder reports at finish).
            let _ = runtime.block_on(chunks.send(chunk));
        }
    }

    /// Encodes what is left and completes the file: its `Add` actions and row count. Async,
    /// so a worker hands the file over and goes on stepping the dataflow meanwhile.
    pub async fn finish(mut self) -> Result<(Vec<Add>, u64), SinkError> {
        // The sender is dropped after the last chunk: the encoder ends once the queue is
        // drained. A failed encoder has hung up; it reports its error below.
        if let Some(chunks) = self.chunks.take()
            && !self.buffer.is_empty()
        {
            let _ = chunks.send(std::mem::take(&mut self.buffer)).await;
        }
        self.task.await.unwrap_or_else(|error| {
            Err(SinkError::Task {
                task: "the data file encoder",
                reason: error.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Cursor;

    /// The encoders' threads are in SCHED_IDLE: a worker that wakes takes the core at once.
    #[cfg(target_os = "linux")]
    #[test]
    fn encoder_threads_yield_to_every_other_thread() {
        let runtime = encoder_runtime().unwrap();
        // SAFETY: sched_getscheduler only reads the calling thread's policy.
        let on_encoder = runtime
            .block_on(runtime.spawn(async { unsafe { libc::sched_getscheduler(0) } }))
            .unwrap();
        assert_eq!(on_encoder, libc::SCHED_IDLE);
        // SAFETY: as above.
        assert_ne!(
            unsafe { libc::sched_getscheduler(0) },
            libc::SCHED_IDLE,
            "the caller is left as it was"
        );
    }

    #[test]
    fn held_files_are_shared_by_size_and_covered_once() {
        let sized: Vec<(i64, u32)> = [90, 10, 10, 10, 40, 40, 5, 5]
            .into_iter()
            .zip(0..)
            .collect();
        let shares: Vec<Vec<u32>> = (0..2)
            .map(|worker| share_by_size(sized.clone(), worker, 2))
            .collect();
        let mut all: Vec<u32> = shares.concat();
        all.sort_unstable();
        assert_eq!(all, (0..8).collect::<Vec<_>>(), "each file once");
        let load = |share: &[u32]| -> i64 { share.iter().map(|i| sized[*i as usize].0).sum() };
        // Round-robin by index would give 90+10+40+5 = 145 against 65.
        assert_eq!((load(&shares[0]), load(&shares[1])), (105, 105));
        assert_eq!(share_by_size(sized, 0, 1).len(), 8);
    }

    #[test]
    fn cursors_are_read_from_the_commit_info_of_a_commit_file() {
        let commit = br#"{"commitInfo":{"timestamp":1,"operation":"WRITE","pinstream.batch":3,"pinstream.cursors":{"kinesis:s-pin/shardId-000000000000":{"position":12,"cursor":"49658012345678901234567890123456789012345678901234567890"}}}}
{"txn":{"appId":"kinesis:s-pin/shardId-000000000000","version":12}}
{"add":{"path":"part-0.parquet"}}
"#;
        let cursors = commit_cursors(commit);
        assert_eq!(
            cursors.get("kinesis:s-pin/shardId-000000000000"),
            Some(&Cursor {
                position: Position::new(12),
                cursor: "49658012345678901234567890123456789012345678901234567890".into()
            })
        );
        // No cursors, or a commit info this version did not write: none.
        assert!(commit_cursors(br#"{"commitInfo":{"timestamp":1}}"#).is_empty());
        assert!(commit_cursors(b"not json\n").is_empty());
        assert!(commit_cursors(br#"{"commitInfo":{"pinstream.cursors":[1,2]}}"#).is_empty());
    }

    #[test]
    fn s3_lakes_are_urls_ending_in_a_slash_with_conditional_put_forced() {
        let url = lake_url("s3://bucket/some/prefix").unwrap();
        assert_eq!(url.as_str(), "s3://bucket/some/prefix/");
        assert_eq!(lake_url("s3://bucket").unwrap().as_str(), "s3://bucket/");
        let options = storage_options(&url);
        assert_eq!(
            options.get("conditional_put").map(String::as_str),
            Some("etag")
        );
        assert!(options.contains_key("retry_timeout"));
        let local = lake_url(&std::env::temp_dir().display().to_string()).unwrap();
        assert!(storage_options(&local).is_empty());
    }

    #[test]
    fn other_schemes_and_bucketless_urls_are_refused_in_one_line() {
        for (location, needle) in [
            ("gs://bucket/lake", "not supported"),
            ("s3:///lake", "needs a bucket"),
        ] {
            let error = lake_url(location).unwrap_err().to_string();
            assert!(error.contains(needle), "{location}: {error}");
            assert!(!error.contains('\n'));
        }
    }
}

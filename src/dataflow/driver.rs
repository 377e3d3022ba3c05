//! The driver of one worker: resume its share of the sources from the tables, seed the
//! deduplication with the rows the tables hold, then read, close micro-batches and step the
//! dataflow until the sources end or the job stops.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use timely::worker::Worker;

use super::control::Control;
use super::profile::OperatorTimes;
use super::sink::{ReportedPosition, Stored};
use super::{Context, EngineError, Handles, time};
use crate::analytics::facts::fact_fields;
use crate::connectors::{PartitionId, PollStatus, Positions, RawRecord, Source};
use crate::stats::Stats;
use crate::table::KeyedRow;

/// Records taken from one source per poll (a multiple of 3: an emulator event is 3 records).
const POLL_CHUNK: usize = 4095;
/// Batches read ahead of the last commit before the sources pause (backpressure: a slow
/// sink slows reading, and memory stays bounded). This is the one bound on what the engine
/// holds while the lake is down (src/sink/store.rs waits the outage out): at most this many
/// batches past the last commit, plus the one being committed, each of at most
/// `--batch-records` records per worker; then reading stops until a commit lands. Batches
/// closed early count as any other: each close takes the next batch number (a number a worker
/// skips, hearing of a close as its interval ends, only makes the bound tighter).
///
/// 3, not 2: at 100k events/s on 2 cores the encoders (which yield the cores to the workers)
/// fall behind in the first seconds, while nearly every post is new; with 2, reading was held
/// 94-415 ms in 4 of 5 runs on a slow host and the freshness p99 median was 79.8 ms; with 3,
/// held 180-188 ms in 2 of 5, p99 median 39.8 ms (alternated). The 3M-record first pass
/// peaked at 607-735 MiB against 575-657 MiB. 4 did not fix a slower host (83-98% busy):
/// p99 median 58 ms against 140 ms over 6 pairs, still held 161-179 ms in 3 of them.
pub const BATCHES_IN_FLIGHT: u64 = 3;

/// One worker: resume, seed, read until stopped, then let everything read reach the tables.
pub(super) fn drive(worker: &mut Worker, context: &Context) -> Result<(), EngineError> {
    let mut sources = Sources::resume(context, worker.index(), worker.peers())?;
    let profile = OperatorTimes::register(worker);
    let mut handles = worker.dataflow::<u64, _, _>(|scope| super::build(scope, context));
    seed_history(worker, context, &mut handles)?;
    let ended = read(worker, context, &mut handles, &mut sources)?;
    if ended == Ended::Done {
        drain(worker, context, handles, &mut sources)?;
    }
    if let Some(profile) = profile {
        profile.log(worker.index());
    }
    let closing = std::time::Instant::now();
    drop(sources);
    tracing::debug!(worker = worker.index(), elapsed = ?closing.elapsed(), "sources closed");
    Ok(())
}

/// Why a phase of the driver ended.
#[derive(PartialEq)]
enum Ended {
    /// As planned: the sources are done or the job was asked to stop.
    Done,
    /// The dataflow must start again from the tables: what is in flight is dropped, and the
    /// next epoch reads it again from the stored positions.
    Restart,
}

/// Whether the job may go on: an error once any stage failed, `Restart` once a restart was
/// asked for.
fn check(context: &Context) -> Result<Option<Ended>, EngineError> {
    if let Some(reason) = context.fatal.get() {
        return Err(EngineError::Stopped(reason));
    }
    Ok(context.restart.get().map(|_| Ended::Restart))
}

/// Sends the rows the tables hold into the deduplication (and the analytics), a data file at
/// a time, letting each flow before the next is read; then closes that input. Each row goes
/// with its identity and only the fields the analytics read ([`fact_fields`]).
fn seed_history(
    worker: &mut Worker,
    context: &Context,
    handles: &mut Handles,
) -> Result<(), EngineError> {
    let (index, peers) = (worker.index(), worker.peers());
    let Some(mut history) = handles.history.take() else {
        return Ok(()); // seeded already
    };
    let started = Instant::now();
    let mut held = 0;
    for file in context.lake.held_files(index, peers)? {
        let read = context.lake.read_file(file.table, &file.path, |row| {
            held += 1;
            history.send(KeyedRow {
                identity: row.identity(),
                row: fact_fields(row),
                arrival: file.modified,
            });
        });
        context.runtime.block_on(read)?;
        worker.step();
    }
    tracing::debug!(worker = index, rows = held, elapsed = ?started.elapsed(), "rows the tables hold, read back");
    history.close();
    Ok(())
}

/// Reads the sources into the dataflow until they are exhausted (`--until-done`) or the job
/// is asked to stop, closing a micro-batch at every interval, and at once for every worker
/// when one has read `--batch-records` in it.
///
/// Times come from the wall clock and the job's shift (see [`time`]), so all workers agree on
/// them and a record is never held back by a worker whose loop was busy.
fn read(
    worker: &mut Worker,
    context: &Context,
    handles: &mut Handles,
    sources: &mut Sources,
) -> Result<Ended, EngineError> {
    let (config, stats) = (&context.config, &context.stats);
    let clock = time::Clock::new(
        config.batch.interval,
        config.batch.tick,
        context.shift.clone(),
    );
    let mut current = clock.time();
    handles.raw.advance_to(current);
    handles.positions.advance_to(current);
    handles.control.advance_to(current);
    let mut batch_records = 0;
    let mut stop_sent = false;
    // The first worker of each process: it tells the other processes of a cluster its totals,
    // and times this process's backpressure (every worker is held by the same commits).
    let first_local = worker.index().is_multiple_of(config.workers);
    let reports_totals = context.processes > 1 && first_local;
    let mut held = Backpressure::default();
    loop {
        if let Some(ended) = check(context)? {
            return Ok(ended);
        }
        let signalled = context.shutdown.load(Ordering::Relaxed);
        if signalled && !stop_sent && context.processes > 1 {
            handles.control.send(Control::Stop);
            stop_sent = true;
        }
        let stopping = signalled
            || context.stop.load(Ordering::Relaxed)
            || (config.until_done && sources.all_exhausted());
        let batch = time::batch_of(current);
        // Backpressure: read only while the commits keep up.
        let caught_up = !handles
            .committed
            .less_than(&time::batch_start(batch.saturating_sub(BATCHES_IN_FLIGHT)));
        let mut busy = false;
        if first_local {
            held.observe(!stopping && !caught_up, batch, stats);
        }
        if !stopping && caught_up {
            let room = config
                .batch
                .max_records
                .saturating_sub(batch_records)
                .max(1);
            sources.seek_new_partitions(context)?;
            let read = sources.poll(room, &mut |record| handles.raw.send(record), stats)?;
            busy = read.busy;
            batch_records += read.records;
            if context.processes > 1 {
                sources.take_finished(&mut |partition| {
                    handles.control.send(Control::Finished(partition))
                });
            }
        }
        // A full batch closes now, for every worker: the shift puts the clock's time in the
        // next batch, at the current tick. (Moving to the next batch's start instead held
        // everything read meanwhile at that future time, unpublished, up to an interval.)
        if batch_records >= config.batch.max_records
            && let Some(shift) = clock.close(batch)
            && context.processes > 1
        {
            handles.control.send(Control::Shift(shift));
        }
        let next = clock.time().max(current);
        // Stopping closes the batch too, with no later time: the drain drops the inputs,
        // which closes every time at once.
        if stopping || time::batch_of(next) > batch {
            // Leaving the batch: it covers the sources' positions as of now.
            sources.report_positions(&mut |reported| handles.positions.send(reported));
            if reports_totals {
                handles.control.send(Control::Counters {
                    process: context.process,
                    counters: stats.counters(),
                });
            }
            batch_records = 0;
        }
        if next > current {
            current = next;
            handles.raw.advance_to(current);
            handles.positions.advance_to(current);
            handles.control.advance_to(current);
        }
        sources.pass_on_commits(context);
        if sources.reassigned() {
            context
                .restart
                .set("the consumer group changed this process's partitions");
            continue;
        }
        if stopping {
            return Ok(Ended::Done);
        }
        if busy {
            worker.step();
        } else {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
    }
}

/// How long reading has been held by the commits ([`BATCHES_IN_FLIGHT`]), added to
/// [`Stats::backpressure_micros`] as it goes (a hold through a long lake outage shows in
/// `/metrics` while it lasts), and each hold logged at debug once it ends. A freshness p99 far
/// above its median with reading held tells a sink (or machine) that cannot keep up from a
/// slow dataflow.
#[derive(Default)]
struct Backpressure {
    /// The hold in progress: when it began, and up to when it is counted.
    hold: Option<(Instant, Instant)>,
}

impl Backpressure {
    /// Called on every pass of the read loop; reads the clock only while holding.
    fn observe(&mut self, holding: bool, batch: u64, stats: &Stats) {
        if !holding && self.hold.is_none() {
            return;
        }
        let now = Instant::now();
        let (began, counted) = self.hold.get_or_insert((now, now));
        Stats::add(
            &stats.backpressure_micros,
            now.duration_since(*counted).as_micros() as u64,
        );
        *counted = now;
        if !holding {
            let held = now.duration_since(*began);
            tracing::debug!(?held, batch, "reading held until the commits caught up");
            self.hold = None;
        }
    }
}

/// Closes the inputs and steps until everything read has been committed and published.
fn drain(
    worker: &mut Worker,
    context: &Context,
    handles: Handles,
    sources: &mut Sources,
) -> Result<(), EngineError> {
    drop(handles.raw);
    drop(handles.positions);
    drop(handles.control);
    while !handles.committed.done() || !handles.published.done() {
        if check(context)?.is_some() {
            return Ok(());
        }
        worker.step_or_park(Some(Duration::from_millis(5)));
    }
    sources.pass_on_commits(context);
    Ok(())
}

/// This worker's share of every source of the job, with what the driver tracks about them.
struct Sources {
    open: Vec<OpenSource>,
    /// Positions already in the tables or reported: only those that move are reported again.
    reported: Positions,
    /// Positions were reported once since the start: the sources whose partitions another
    /// process may read too have reported all theirs (see [`Sources::report_positions`]).
    reported_once: bool,
    /// The position at which each partition's cursor was last reported.
    cursors_reported: Positions,
    /// Commits already passed on to the sources ([`super::sink::Committed::since`]).
    commits_seen: u64,
    buffer: Vec<RawRecord>,
}

struct OpenSource {
    source: Box<dyn Source>,
    exhausted: bool,
}

/// What one round of polls read.
struct Read {
    records: usize,
    /// Whether any source may have more at once.
    busy: bool,
}

impl Sources {
    /// Opens worker `index`'s share (of `peers`) of every source and seeks each to the
    /// positions (and exact cursors) the tables hold.
    fn resume(context: &Context, index: usize, peers: usize) -> Result<Sources, EngineError> {
        let (lake, runtime) = (&context.lake, &context.runtime);
        let mut open = Vec::new();
        let mut reported = Positions::new();
        for started in context.sources.iter() {
            let mut source = started.open(index, peers)?;
            let from = runtime.block_on(lake.positions(&source.partitions()))?;
            let lookup = source.cursors_to_look_up(&from);
            if !lookup.positions.is_empty() {
                let cursors = runtime.block_on(lake.cursors(&lookup))?;
                source.seek_exact(&from, &cursors)?;
            } else {
                source.seek(&from)?;
            }
            reported.extend(from);
            open.push(OpenSource {
                source,
                exhausted: false,
            });
        }
        Ok(Sources {
            open,
            reported,
            reported_once: false,
            cursors_reported: Positions::new(),
            commits_seen: 0,
            buffer: Vec::with_capacity(POLL_CHUNK),
        })
    }

    /// Looks up in the tables where the partitions the sources found since the start stand,
    /// and resumes them there (a partition an earlier run read part of and that is listed
    /// again only now).
    fn seek_new_partitions(&mut self, context: &Context) -> Result<(), EngineError> {
        for open in &mut self.open {
            let new = open.source.take_new_partitions();
            if new.is_empty() {
                continue;
            }
            let from = context.runtime.block_on(context.lake.positions(&new))?;
            open.source.seek_new(&from)?;
            self.reported.extend(from);
        }
        Ok(())
    }

    fn all_exhausted(&self) -> bool {
        self.open.iter().all(|open| open.exhausted)
    }

    /// Polls every source not yet exhausted once, for at most `room` records each, handing
    /// the records to `send`.
    fn poll(
        &mut self,
        room: usize,
        send: &mut dyn FnMut(RawRecord),
        stats: &Stats,
    ) -> Result<Read, EngineError> {
        let mut read = Read {
            records: 0,
            busy: false,
        };
        for open in self.open.iter_mut().filter(|open| !open.exhausted) {
            match open.source.poll(POLL_CHUNK.min(room), &mut self.buffer)? {
                PollStatus::Ready => read.busy = true,
                PollStatus::Idle => {}
                PollStatus::Exhausted => open.exhausted = true,
            }
            read.records += self.buffer.len();
            Stats::add(&stats.records_in, self.buffer.len() as u64);
            if let Some(first) = self.buffer.first() {
                let slot = Stats::source_slot(&first.partition);
                Stats::add(&stats.records_by_source[slot], self.buffer.len() as u64);
            }
            self.buffer.drain(..).for_each(&mut *send);
        }
        Ok(read)
    }

    /// Hands `send` every position that moved since it was last reported, each with its
    /// exact cursor when the source has one at that very position (same moment, same
    /// commit). A source whose partitions another process may read too
    /// ([`Source::may_be_shared`]) reports all its positions the first time, moved or not,
    /// each to be stored by every commit from then on ([`Stored`]). A cursor the source has
    /// at a position that did not move is reported once by itself ([`Stored::Cursor`]): the
    /// one it resumed from (every later commit must keep naming it, or a partition that no
    /// longer moves, a drained shard or a file read to its end, loses it), or one it counted
    /// its way to because the tables held none.
    fn report_positions(&mut self, send: &mut dyn FnMut(ReportedPosition)) {
        let first = !self.reported_once;
        self.reported_once = true;
        for open in &self.open {
            let shared = open.source.may_be_shared();
            let mut cursors = open.source.cursors();
            for (partition, position) in open.source.positions() {
                let moved = self.reported.get(&partition) != Some(&position);
                let cursor = cursors
                    .remove(&partition)
                    .filter(|cursor| cursor.position == position)
                    .filter(|_| self.cursors_reported.get(&partition) != Some(&position))
                    .map(|cursor| cursor.cursor);
                let stored = match (shared, moved) {
                    (false, true) => Stored::InBatch,
                    (true, true) => Stored::FromBatch,
                    (true, false) if first => Stored::Held,
                    (_, false) if cursor.is_some() => Stored::Cursor,
                    (_, false) => continue,
                };
                if cursor.is_some() {
                    self.cursors_reported.insert(partition.clone(), position);
                }
                self.reported.insert(partition.clone(), position);
                send(ReportedPosition {
                    partition,
                    position,
                    cursor,
                    stored,
                });
            }
        }
    }

    /// Tells the sources what the tables now hold, when a commit landed since the last call.
    fn pass_on_commits(&mut self, context: &Context) {
        if let Some(positions) = context.committed.since(&mut self.commits_seen) {
            for open in &mut self.open {
                open.source.committed(&positions);
            }
        }
    }

    /// Hands `send` the partitions that reached their end since the last call.
    fn take_finished(&mut self, send: &mut dyn FnMut(PartitionId)) {
        for open in &mut self.open {
            open.source.take_finished().into_iter().for_each(&mut *send);
        }
    }

    fn reassigned(&self) -> bool {
        self.open.iter().any(|open| open.source.reassigned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hold is counted while it lasts, not only once it ends; passes without one count
    /// nothing.
    #[test]
    fn a_hold_is_counted_as_it_goes_and_once() {
        let stats = Stats::default();
        let mut held = Backpressure::default();
        held.observe(false, 1, &stats);
        assert_eq!(Stats::get(&stats.backpressure_micros), 0);
        held.observe(true, 1, &stats);
        std::thread::sleep(Duration::from_millis(30));
        held.observe(true, 1, &stats);
        let during = Stats::get(&stats.backpressure_micros);
        assert!(during >= 30_000, "{during} µs counted during the hold");
        std::thread::sleep(Duration::from_millis(10));
        held.observe(false, 1, &stats);
        let after = Stats::get(&stats.backpressure_micros);
        assert!(after >= during + 10_000, "{after} µs after it");
        std::thread::sleep(Duration::from_millis(10));
        held.observe(false, 2, &stats);
        assert_eq!(Stats::get(&stats.backpressure_micros), after);
    }
}

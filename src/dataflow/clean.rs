//! The `clean` stage: raw messages -> clean rows or quarantine rows.

use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::Exchange;
use timely::dataflow::operators::generic::Operator;

use crate::clean;
use crate::connectors::RawRecord;
use crate::stats::{STREAMS, Stats};
use crate::table::{KeyedRow, QuarantineRow, TableRow};

/// One raw message -> the row it lands as. Never fails: a bad message is a quarantine row.
pub fn clean_record(record: RawRecord) -> TableRow {
    let reason = match record.stream {
        None => {
            "unknown stream: the source does not say whether this is pin, geo or user".to_owned()
        }
        Some(stream) => match clean::clean(stream, &record.payload) {
            Ok(row) => return TableRow::Clean(row),
            Err(reason) => reason.to_string(),
        },
    };
    TableRow::from(QuarantineRow {
        stream: record.stream,
        source: record.origin(),
        received_at: record.arrival,
        raw: QuarantineRow::raw_text(&record.payload),
        reason,
    })
}

/// Cleans every record of `raw`, counting clean and quarantined messages. Records are first
/// spread over the `workers` of this process by offset: one worker may read a large file
/// alone, and parsing is the costly part. They never leave the process (timely numbers
/// process `p`'s workers from `p * workers`): in a cluster, sending raw messages to another
/// process would cost the network what a local thread does better.
pub fn clean<'scope>(
    raw: Stream<'scope, u64, Vec<RawRecord>>,
    workers: usize,
    stats: Arc<Stats>,
) -> Stream<'scope, u64, Vec<KeyedRow>> {
    let first = (raw.scope().index() / workers * workers) as u64;
    let workers = workers as u64;
    raw.exchange(move |record: &RawRecord| first + record.offset.value() as u64 % workers)
        .unary(Pipeline, "clean", move |_, _| {
            move |input, output| {
                // Counted here and added once per call: an atomic add per record, on counters
                // every worker shares, cost more than some of the cleaning.
                let mut counts = Counts::default();
                input.for_each_stamp(|capability, batches| {
                    let mut session = output.session(&capability);
                    for record in batches.flat_map(|b| b.drain(..)) {
                        let (stream, arrival) = (Stats::stream_slot(record.stream), record.arrival);
                        let row = clean_record(record);
                        match &row {
                            TableRow::Clean(_) => counts.clean[stream] += 1,
                            TableRow::Quarantine(_) => counts.quarantined[stream] += 1,
                        }
                        session.give(row.keyed(arrival));
                    }
                });
                counts.add_to(&stats);
            }
        })
}

/// Clean and quarantined messages by stream slot ([`Stats::stream_slot`]; the last slot is
/// "no stream", which only quarantined messages have).
#[derive(Default)]
struct Counts {
    clean: [u64; STREAMS + 1],
    quarantined: [u64; STREAMS + 1],
}

impl Counts {
    fn add_to(&self, stats: &Stats) {
        for (slot, (&clean, &quarantined)) in self.clean.iter().zip(&self.quarantined).enumerate() {
            if clean > 0 && slot < STREAMS {
                Stats::add(&stats.clean, clean);
                Stats::add(&stats.clean_by_stream[slot], clean);
            }
            if quarantined > 0 {
                Stats::add(&stats.quarantined, quarantined);
                Stats::add(&stats.quarantined_by_stream[slot], quarantined);
            }
        }
    }
}

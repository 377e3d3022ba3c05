//! The emulator as a [`Source`]: a thin adapter that hands out the generator's events, split
//! into partitions, paced by an optional rate, with positions the sink can store.
//!
//! Event `seq` belongs to partition `seq % partitions`, as its `k`-th event
//! (`k = seq / partitions`); the position of a partition is how many of its events were handed
//! out whole. Because the generator is a pure function of the event number, resuming at a
//! stored position re-sends exactly the events after it, whatever the worker count.

use std::collections::VecDeque;

use crate::connectors::emulator::EmulatorSpec;
use crate::connectors::{
    Offset, PartitionId, PollStatus, Position, Positions, RawRecord, Source, SourceError,
};
use crate::emulator::{Emulator, Event};
use crate::stream::Stream;

/// One emulator partition read by this instance.
struct Partition {
    id: PartitionId,
    /// The partition number `p`.
    p: u64,
    /// Events of this partition emitted so far (the `k` of the next one).
    next: u64,
    /// Events this partition has (`None` = endless).
    len: Option<u64>,
}

impl Partition {
    fn done(&self) -> bool {
        self.len.is_some_and(|len| self.next >= len)
    }
}

/// The emulator as a [`Source`]: one instance per timely worker, reading the partitions `p`
/// with `p % peers == worker`.
pub struct EmulatorSource {
    emulator: Emulator,
    partitions_total: u64,
    parts: Vec<Partition>,
    /// Round-robin cursor into `parts`.
    cursor: usize,
    /// Records of the last event not yet handed out (when `max` cut an event), and the index
    /// in `parts` of their partition: its position does not count that event yet.
    pending: VecDeque<RawRecord>,
    pending_part: usize,
    /// This instance's share of the rate, events per second, and its schedule.
    pace: Option<Pace>,
}

/// When each event of a rate-limited instance is due: event `n` counted from `start` (wall
/// clock, micros) at `start + n / rate`. An event arrives when it is due, as a broker's record
/// is stamped when it is produced: a poll that comes later counts the wait as the engine's
/// latency, whether the worker was busy or parked.
#[derive(Debug)]
struct Pace {
    /// Events per second.
    rate: f64,
    /// Micros, UTC: when event 0 of the schedule was due (the first poll: the engine may
    /// read its tables for seconds before, and those events would all be late).
    start: Option<i64>,
    /// Events handed out since `start`.
    sent: u64,
}

/// At most this many micros' worth of events may be released at once after a stall; older
/// ones are due again from then on. A wall clock that steps back by more restarts the schedule
/// too.
const MAX_BURST_MICROS: i64 = 1_000_000;

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            rate,
            start: None,
            sent: 0,
        }
    }

    /// The due time of the next event if it is due by `now` (and counts it as sent).
    fn take(&mut self, now: i64) -> Option<i64> {
        let start = *self.start.get_or_insert(now);
        let mut due = start + (self.sent as f64 * 1e6 / self.rate) as i64;
        if due.abs_diff(now) > MAX_BURST_MICROS.unsigned_abs() {
            // Stalled: a second's worth is owed. The clock stepped back: due now.
            due = if due < now {
                now - MAX_BURST_MICROS
            } else {
                now
            };
            (self.start, self.sent) = (Some(due), 0);
        }
        (due <= now).then(|| {
            self.sent += 1;
            due
        })
    }
}

impl EmulatorSource {
    pub fn new(spec: &EmulatorSpec, worker: usize, peers: usize) -> Self {
        let peers = peers.max(1) as u64;
        let total = u64::from(spec.partitions.max(1));
        let parts: Vec<Partition> = (0..total)
            .filter(|p| p % peers == worker as u64)
            .map(|p| Partition {
                id: format!("emulator:seed={}:p{p}/{total}", spec.seed).into(),
                p,
                next: 0,
                len: spec.events.map(|n| n.saturating_sub(p).div_ceil(total)),
            })
            .collect();
        let pace = spec
            .rate
            .map(|r| Pace::new(r * parts.len() as f64 / total as f64));
        EmulatorSource {
            emulator: Emulator::new(spec),
            partitions_total: total,
            parts,
            cursor: 0,
            pending: VecDeque::new(),
            pending_part: 0,
            pace,
        }
    }

    fn all_done(&self) -> bool {
        self.pending.is_empty() && self.parts.iter().all(Partition::done)
    }
}

impl Source for EmulatorSource {
    fn partitions(&self) -> Vec<PartitionId> {
        self.parts.iter().map(|p| p.id.clone()).collect()
    }

    fn seek(&mut self, from: &Positions) -> Result<(), SourceError> {
        for part in &mut self.parts {
            part.next = match from.get(&part.id) {
                None => 0,
                Some(&k) => u64::try_from(k.value()).map_err(|_| {
                    SourceError::Config(format!("{}: negative position {k}", part.id))
                })?,
            };
        }
        self.pending.clear();
        self.cursor = 0;
        Ok(())
    }

    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        let mut room = max;
        let mut rate_limited = false;
        // The schedule is read against one clock reading per poll.
        let mut now = None;
        loop {
            while room > 0 {
                let Some(record) = self.pending.pop_front() else {
                    break;
                };
                out.push(record);
                room -= 1;
            }
            if room == 0 || self.all_done() {
                break;
            }
            // Next partition with events left, round-robin.
            let n = self.parts.len();
            let Some(i) = (0..n)
                .map(|step| (self.cursor + step) % n)
                .find(|&i| !self.parts[i].done())
            else {
                break;
            };
            // Without a rate an event arrives once it is made: stamped before making a whole
            // chunk (thousands of records, milliseconds), the chunk's last events counted their
            // own making as the engine's latency.
            let arrival = match &mut self.pace {
                None => crate::now_micros(),
                Some(pace) => {
                    let now = *now.get_or_insert_with(crate::now_micros);
                    let Some(due) = pace.take(now) else {
                        rate_limited = true;
                        break;
                    };
                    due
                }
            };
            let part = &mut self.parts[i];
            let k = part.next;
            part.next += 1;
            self.cursor = (i + 1) % n;
            let Event { pin, geo, user, .. } =
                self.emulator.event(k * self.partitions_total + part.p);
            for (stream, payload) in [(Stream::Pin, pin), (Stream::Geo, geo), (Stream::User, user)]
            {
                self.pending.push_back(RawRecord {
                    stream: Some(stream),
                    payload: payload.into(),
                    partition: part.id.clone(),
                    offset: Offset::new(k as i64),
                    arrival,
                });
            }
            self.pending_part = i;
        }
        Ok(if self.all_done() {
            PollStatus::Exhausted
        } else if rate_limited {
            PollStatus::Idle
        } else {
            PollStatus::Ready
        })
    }

    fn positions(&self) -> Positions {
        self.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let partial = !self.pending.is_empty() && i == self.pending_part;
                (
                    part.id.clone(),
                    Position::new((part.next - u64::from(partial)) as i64),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    fn spec(s: &str) -> EmulatorSpec {
        EmulatorSpec::parse(s).unwrap()
    }

    /// Polls a source to the end, `max` records at a time.
    fn drain(source: &mut EmulatorSource, max: usize) -> Vec<RawRecord> {
        let mut out = Vec::new();
        for _ in 0..1_000_000 {
            if source.poll(max, &mut out).unwrap() == PollStatus::Exhausted {
                return out;
            }
        }
        panic!("source never exhausted");
    }

    fn partition_number(id: &str) -> u64 {
        let p = id.rsplit_once(":p").unwrap().1;
        p.split_once('/').unwrap().0.parse().unwrap()
    }

    #[test]
    fn partitions_split_the_stream_exactly_once() {
        let spec = spec("events=1000,seed=5,partitions=4");
        let emulator = Emulator::new(&spec);
        let mut expected: Vec<(u64, Stream, Vec<u8>)> = (0..1000)
            .flat_map(|seq| {
                let ev = emulator.event(seq);
                [
                    (seq, Stream::Pin, ev.pin),
                    (seq, Stream::Geo, ev.geo),
                    (seq, Stream::User, ev.user),
                ]
            })
            .collect();
        expected.sort();
        for peers in 1..=3 {
            let mut got = Vec::new();
            let mut ids = Vec::new();
            for worker in 0..peers {
                let mut source = EmulatorSource::new(&spec, worker, peers);
                ids.extend(source.partitions());
                // 7 is not a multiple of 3: events get split across polls.
                let records = drain(&mut source, 7);
                let positions = source.positions();
                for id in source.partitions() {
                    let p = partition_number(&id);
                    assert_eq!(positions[&id].value(), 250, "{id}");
                    assert_eq!(p % peers as u64, worker as u64);
                }
                for r in records {
                    let seq = r.offset.value() as u64 * 4 + partition_number(&r.partition);
                    got.push((seq, r.stream.unwrap(), r.payload.to_vec()));
                }
            }
            ids.sort();
            let want: Vec<PartitionId> = (0..4)
                .map(|p| format!("emulator:seed=5:p{p}/4").into())
                .collect();
            assert_eq!(ids, want);
            got.sort();
            assert_eq!(got.len(), expected.len(), "peers={peers}");
            assert!(got == expected, "peers={peers}: different records");
        }
        // More workers than partitions, or no events: nothing to read, exhausted at once.
        let mut idle = EmulatorSource::new(&spec, 5, 8);
        assert!(idle.partitions().is_empty());
        let mut out = Vec::new();
        assert_eq!(idle.poll(10, &mut out).unwrap(), PollStatus::Exhausted);
        let mut none = EmulatorSource::new(&EmulatorSpec::parse("events=0").unwrap(), 0, 1);
        assert_eq!(none.poll(10, &mut out).unwrap(), PollStatus::Exhausted);
        assert!(out.is_empty());
    }

    #[test]
    fn round_robin_keeps_partitions_even() {
        let spec = spec("seed=2,partitions=4");
        let mut source = EmulatorSource::new(&spec, 0, 1);
        let mut out = Vec::new();
        assert_eq!(source.poll(3 * 40, &mut out).unwrap(), PollStatus::Ready);
        assert_eq!(out.len(), 120);
        assert!(source.positions().values().all(|&k| k.value() == 10));
        // The three records of an event are adjacent, in pin/geo/user order, same offset.
        for chunk in out.chunks(3) {
            let streams: Vec<_> = chunk.iter().map(|r| r.stream.unwrap()).collect();
            assert_eq!(streams, Stream::ALL);
            assert!(chunk.iter().all(|r| r.offset == chunk[0].offset));
            assert!(chunk.iter().all(|r| r.partition == chunk[0].partition));
        }
    }

    #[test]
    fn seek_resumes_right_after_stored_positions() {
        let spec = spec("events=401,seed=9,partitions=4");
        for peers in [1, 2] {
            for worker in 0..peers {
                let mut first = EmulatorSource::new(&spec, worker, peers);
                first.seek(&Positions::new()).unwrap();
                let mut before = Vec::new();
                for _ in 0..9 {
                    first.poll(10, &mut before).unwrap();
                }
                let stored = first.positions();
                // Plus a partition of someone else, which must be ignored.
                let mut from = stored.clone();
                from.insert("emulator:seed=9:p99/4".into(), Position::new(3));
                let mut second = EmulatorSource::new(&spec, worker, peers);
                second.seek(&from).unwrap();
                assert_eq!(second.positions(), stored);
                let after = drain(&mut second, 5);

                let mut all: BTreeMap<(PartitionId, Offset, Stream), Bytes> = BTreeMap::new();
                for r in before
                    .iter()
                    .filter(|r| stored[&r.partition].covers(r.offset))
                {
                    all.insert(
                        (r.partition.clone(), r.offset, r.stream.unwrap()),
                        r.payload.clone(),
                    );
                }
                for r in &after {
                    // No repeat of what the stored positions cover.
                    assert!(!stored[&r.partition].covers(r.offset));
                    let key = (r.partition.clone(), r.offset, r.stream.unwrap());
                    assert!(all.insert(key, r.payload.clone()).is_none(), "repeated");
                }
                // No gap: the union is every record of this worker's partitions.
                let mut whole = EmulatorSource::new(&spec, worker, peers);
                let everything = drain(&mut whole, 64);
                assert_eq!(all.len(), everything.len());
                for r in everything {
                    let key = (r.partition.clone(), r.offset, r.stream.unwrap());
                    assert_eq!(all.get(&key), Some(&r.payload));
                }
            }
        }
        let mut source = EmulatorSource::new(&spec, 0, 1);
        let bad: Positions = [("emulator:seed=9:p0/4".into(), Position::new(-1))]
            .into_iter()
            .collect();
        assert!(matches!(source.seek(&bad), Err(SourceError::Config(_))));
    }

    #[test]
    fn partial_event_is_not_counted_in_positions() {
        let mut source = EmulatorSource::new(&spec("seed=4,partitions=1"), 0, 1);
        let mut out = Vec::new();
        source.poll(4, &mut out).unwrap();
        assert_eq!(out.len(), 4);
        // Event 0 is whole, event 1 only half out: position 1, so a restart re-sends event 1.
        assert_eq!(
            source
                .positions()
                .values()
                .map(|p| p.value())
                .collect::<Vec<_>>(),
            [1]
        );
        source.poll(2, &mut out).unwrap();
        assert_eq!(
            source
                .positions()
                .values()
                .map(|p| p.value())
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(
            out.iter().map(|r| r.offset.value()).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1]
        );
    }

    #[test]
    fn the_schedule_owes_at_most_a_second_and_survives_a_clock_step_back() {
        let second = 1_000_000;
        // One event a millisecond, from the first poll on.
        let mut pace = Pace::new(1000.0);
        assert_eq!(pace.take(5 * second), Some(5 * second));
        assert_eq!(pace.take(5 * second + 999), None);
        assert_eq!(pace.take(5 * second + 1_500), Some(5 * second + 1_000));
        // Stalled 3 s: the events of the last second are owed, due from a second ago.
        let now = 8 * second + 1_000;
        let owed: Vec<i64> = std::iter::from_fn(|| pace.take(now)).collect();
        assert_eq!(owed.len(), 1001);
        assert_eq!((owed[0], owed[1000]), (now - second, now));
        assert!(owed.windows(2).all(|pair| pair[1] - pair[0] == 1_000));
        // The wall clock steps back 10 s: the schedule starts again at once.
        let back = now - 10 * second;
        assert_eq!(pace.take(back), Some(back));
        assert_eq!(pace.take(back), None);
        assert_eq!(pace.take(back + 1_000), Some(back + 1_000));
    }

    #[test]
    fn rate_limit_paces_events() {
        // 2000 events/s over 4 partitions; this worker reads 2 of them: 1000 events/s.
        let spec = spec("seed=1,rate=2000,partitions=4");
        let mut source = EmulatorSource::new(&spec, 0, 2);
        let mut out = Vec::new();
        let started = Instant::now();
        let mut idle = 0;
        while started.elapsed() < Duration::from_millis(300) {
            match source.poll(3 * 1000, &mut out).unwrap() {
                PollStatus::Idle => {
                    idle += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                PollStatus::Ready => {}
                PollStatus::Exhausted => panic!("endless source exhausted"),
            }
        }
        let events = out.len() as f64 / 3.0;
        let expected = 1000.0 * started.elapsed().as_secs_f64();
        assert!(idle > 0, "never rate limited");
        assert!(
            events <= expected + 2.0 && events >= expected * 0.5,
            "{events} events, expected about {expected}"
        );
        // Each event arrives when it is due, 1 ms after the one before (an event's three
        // records share its stamp), however late the poll that made it came.
        let stamps: Vec<i64> = out.iter().step_by(3).map(|r| r.arrival).collect();
        assert!(
            out.chunks(3)
                .all(|e| e.iter().all(|r| r.arrival == e[0].arrival))
        );
        for pair in stamps.windows(2) {
            assert!(
                (999..=1000).contains(&(pair[1] - pair[0])),
                "stamps {pair:?} are not 1 ms apart"
            );
        }
        assert!(*stamps.last().unwrap() <= crate::now_micros());
        // Without a rate nothing waits.
        let mut free = EmulatorSource::new(&EmulatorSpec::default(), 0, 1);
        let mut out = Vec::new();
        assert_eq!(free.poll(3000, &mut out).unwrap(), PollStatus::Ready);
        assert_eq!(out.len(), 3000);
    }
}

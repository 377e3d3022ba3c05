//! Dataflow time: a micro-batch number and a tick within it, packed into one `u64` so that
//! timely's total order is batch first, then tick.
//!
//! Batches decide commits (one Delta commit per table per batch, ~1 s); ticks (5 ms by default) let the
//! frontier, and with it every live aggregate, advance far more often than the tables are
//! committed. A stage that works per batch waits until the frontier reaches the next
//! batch's start.
//!
//! Both come from the wall clock ([`Clock`]): batch = milliseconds since [`ORIGIN_MS`] divided
//! by the batch interval, plus the job's [`Shift`]; tick = the millisecond within the interval,
//! in steps of the tick. Every worker (and every process of a cluster) so agrees on what "now"
//! is; were times counted per worker, a worker whose loop was busy would fall behind and hold
//! back everyone's frontier.
//!
//! A batch that fills (`--batch-records`) closes at once by raising the shift: the next batch
//! starts now, at the current tick. Moving the time to the next interval's start instead put it
//! in the future, and everything read meanwhile sat at that one time, unpublished, until the
//! wall clock got there (up to a whole interval).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bits for the tick (a millisecond) within a batch: batches up to ~70 minutes.
const TICK_BITS: u32 = 22;

/// 2025-01-01T00:00:00Z: batch numbers count from here (42 bits of milliseconds last to 2164).
pub const ORIGIN_MS: u64 = 1_735_689_600_000;

/// Batches closed early, as one count every worker of a dataflow agrees on: each batch number
/// is the wall clock's plus this. It only grows (times stay monotone) and is agreed by taking
/// the greatest one seen: the workers of a process share it, and a process tells the others of
/// a cluster each value it raises it to (`Control::Shift`). It belongs to one dataflow: times
/// only order within one, so the next epoch's starts again from 0.
#[derive(Clone, Default)]
pub struct Shift(Arc<AtomicU64>);

impl Shift {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Raises the shift to `shift`; true when it was lower (this call moved it).
    pub fn raise(&self, shift: u64) -> bool {
        self.0.fetch_max(shift, Ordering::AcqRel) < shift
    }
}

/// Dataflow times from the wall clock and the job's [`Shift`], for one batch interval and tick
/// (each distinct time costs the analytics a little, so times are a tick apart:
/// `BatchPolicy::tick`).
pub struct Clock {
    interval_ms: u64,
    tick_ms: u64,
    shift: Shift,
}

impl Clock {
    pub fn new(interval: Duration, tick: Duration, shift: Shift) -> Clock {
        let interval_ms = (interval.as_millis() as u64).clamp(1, (1 << TICK_BITS) - 1);
        let tick_ms = (tick.as_millis() as u64).clamp(1, interval_ms);
        Clock {
            interval_ms,
            tick_ms,
            shift,
        }
    }

    /// The time now. Callers keep their times monotone (`max` with the last one): the wall
    /// clock may step back.
    pub fn time(&self) -> u64 {
        self.time_at(now_ms())
    }

    /// Closes `batch` (the caller's, now full) for every worker: raises the shift so that the
    /// time now falls in the next batch. Two workers closing one batch ask for the same shift,
    /// and a batch the wall clock has just left needs none. Returns the new shift when this call
    /// raised it (the other processes of a cluster must hear of it), `None` when it stood there
    /// already.
    pub fn close(&self, batch: u64) -> Option<u64> {
        self.close_at(batch, now_ms())
    }

    fn time_at(&self, now_ms: u64) -> u64 {
        let within = now_ms % self.interval_ms;
        at(
            now_ms / self.interval_ms + self.shift.get(),
            within - within % self.tick_ms,
        )
    }

    fn close_at(&self, batch: u64, now_ms: u64) -> Option<u64> {
        let shift = (batch + 1).saturating_sub(now_ms / self.interval_ms);
        self.shift.raise(shift).then_some(shift)
    }
}

/// Milliseconds since [`ORIGIN_MS`] by the wall clock.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .saturating_sub(ORIGIN_MS)
}

/// The first time of `batch`.
pub fn batch_start(batch: u64) -> u64 {
    batch << TICK_BITS
}

/// The batch a time belongs to.
pub fn batch_of(time: u64) -> u64 {
    time >> TICK_BITS
}

/// The time `tick` ticks into `batch`.
pub fn at(batch: u64, tick: u64) -> u64 {
    debug_assert!(tick < 1 << TICK_BITS);
    batch_start(batch) | tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_order_before_ticks() {
        assert!(at(1, (1 << TICK_BITS) - 1) < at(2, 0));
        assert_eq!(batch_of(at(7, 12)), 7);
        assert_eq!(batch_start(3), at(3, 0));
    }

    #[test]
    fn clock_times_advance_by_batch_then_millisecond() {
        let clock = Clock::new(
            Duration::from_secs(1),
            Duration::from_millis(20),
            Shift::default(),
        );
        let a = clock.time();
        std::thread::sleep(Duration::from_millis(25));
        let b = clock.time();
        assert!(b > a);
        assert!(batch_of(b) - batch_of(a) <= 1);
        assert!(batch_of(a) > 50_000_000, "seconds since 2025");
    }

    /// A clock of 1 s batches and 10 ms ticks on `shift`.
    fn clock(shift: &Shift) -> Clock {
        Clock::new(
            Duration::from_secs(1),
            Duration::from_millis(10),
            shift.clone(),
        )
    }

    /// 437 ms into wall-clock batch 5,000.
    const NOW: u64 = 5_000_437;

    #[test]
    fn a_full_batch_closes_now_and_keeps_the_tick() {
        let clock = clock(&Shift::default());
        assert_eq!(clock.time_at(NOW), at(5_000, 430));
        assert_eq!(clock.close_at(5_000, NOW), Some(1));
        // The next batch at once, not at(5_001, 0) 563 ms from now.
        assert_eq!(clock.time_at(NOW), at(5_001, 430));
        assert_eq!(clock.time_at(NOW + 20), at(5_001, 450));
        // The wall clock's next interval is the batch after.
        assert_eq!(clock.time_at(NOW + 563), at(5_002, 0));
    }

    #[test]
    fn the_workers_agree_on_one_close() {
        let (process, other_process) = (Shift::default(), Shift::default());
        let (first, second) = (clock(&process), clock(&process));
        let elsewhere = clock(&other_process);
        // Both workers of a process fill batch 5,000 at once: one shift, raised once.
        assert_eq!(first.close_at(5_000, NOW), Some(1));
        assert_eq!(second.close_at(5_000, NOW), None);
        assert_eq!(second.time_at(NOW + 1), at(5_001, 430));
        // Another process moves when it hears the new shift (or again when it closes too).
        assert_eq!(elsewhere.time_at(NOW), at(5_000, 430));
        assert!(other_process.raise(1));
        assert!(!other_process.raise(1));
        assert_eq!(elsewhere.time_at(NOW), first.time_at(NOW));
        // A batch the wall clock has just left needs no shift: it is closed already.
        assert_eq!(second.close_at(5_001, NOW + 600), None);
        assert_eq!(second.time_at(NOW + 600), at(5_002, 30));
    }

    #[test]
    fn times_stay_monotone_and_a_close_always_moves_on() {
        let clock = clock(&Shift::default());
        let mut current = 0;
        // The wall clock's milliseconds, 7 ms apart, stepping back 1.5 s once (at 21 s).
        let walls = (0..3_000)
            .map(|step| NOW + 7 * step)
            .chain((0..3_000).map(|step| NOW + 21_000 - 1_500 + 7 * step));
        for (step, wall) in walls.enumerate() {
            let now = clock.time_at(wall);
            // The clock alone is monotone while the wall clock is, closes included; after the
            // step back, from the first close on.
            if !(3_000..3_040).contains(&step) {
                assert!(now >= current, "step {step}");
            }
            current = now.max(current);
            if step % 40 == 39 {
                // A batch filled: the next time is in a later batch, whatever the wall clock did.
                let batch = batch_of(current);
                clock.close_at(batch, wall);
                let next = clock.time_at(wall);
                assert!(batch_of(next) > batch, "step {step}");
                current = next;
            }
        }
        // One per close (150), plus the batch the wall clock went back to: the first close
        // after the step back (1.2 s back by then) raised it by 2.
        assert_eq!(clock.shift.get(), 151);
    }
}

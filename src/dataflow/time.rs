//! Dataflow time: a micro-batch number and a tick within it, packed into one `u64` so that
//! timely's total order is batch first, then tick.
//!
//! Batches decide commits (one Delta commit per table per batch, ~1 s); ticks (5 ms by default) let the
//! frontier, and with it every live aggregate, advance far more often than the tables are
//! committed. A stage that works per batch waits until the frontier reaches the next
//! batch's start.
//!
//! Both come from the wall clock ([`Clock`]): batch = milliseconds since [`ORIGIN_MS`] divided
//! by the batch interval, tick = the millisecond within the batch, in steps of the tick. Every worker (and every
//! process of a cluster) so agrees on what "now" is; were times counted per worker, a worker
//! whose loop was busy would fall behind and hold back everyone's frontier.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bits for the tick (a millisecond) within a batch: batches up to ~70 minutes.
const TICK_BITS: u32 = 22;

/// 2025-01-01T00:00:00Z: batch numbers count from here (42 bits of milliseconds last to 2164).
pub const ORIGIN_MS: u64 = 1_735_689_600_000;

/// Dataflow times from the wall clock, for one batch interval and tick (each distinct time
/// costs the analytics a little, so times are a tick apart: `BatchPolicy::tick`).
pub struct Clock {
    interval_ms: u64,
    tick_ms: u64,
}

impl Clock {
    pub fn new(interval: Duration, tick: Duration) -> Clock {
        let interval_ms = (interval.as_millis() as u64).clamp(1, (1 << TICK_BITS) - 1);
        let tick_ms = (tick.as_millis() as u64).clamp(1, interval_ms);
        Clock {
            interval_ms,
            tick_ms,
        }
    }

    /// The time now. Callers keep their times monotone (`max` with the last one): the wall
    /// clock may step back.
    pub fn time(&mut self) -> u64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            .saturating_sub(ORIGIN_MS);
        let within = now_ms % self.interval_ms;
        at(now_ms / self.interval_ms, within - within % self.tick_ms)
    }
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
        let mut clock = Clock::new(Duration::from_secs(1), Duration::from_millis(20));
        let a = clock.time();
        std::thread::sleep(Duration::from_millis(25));
        let b = clock.time();
        assert!(b > a);
        assert!(batch_of(b) - batch_of(a) <= 1);
        assert!(batch_of(a) > 50_000_000, "seconds since 2025");
    }
}

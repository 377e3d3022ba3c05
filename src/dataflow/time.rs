//! Dataflow time: a micro-batch number and a tick within it, packed into one `u64` so that
//! timely's total order is batch first, then tick.
//!
//! Batches decide commits (one Delta commit per table per batch, ~1 s); ticks (~10 ms) let the
//! frontier, and with it every live aggregate, advance far more often than the tables are
//! committed. A stage that works per batch waits until the frontier reaches the next
//! batch's start.

/// Bits for the tick within a batch.
const TICK_BITS: u32 = 32;

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
        assert!(at(1, u32::MAX as u64) < at(2, 0));
        assert_eq!(batch_of(at(7, 12)), 7);
        assert_eq!(batch_start(3), at(3, 0));
    }
}

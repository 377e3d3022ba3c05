//! Exact running medians of a multiset that grows and shrinks: the values split in two
//! ordered halves, so a change costs O(log n) and the median is read from the halves' edges.
//!
//! The medians of SPEC §3 (q5, q7, q8) are kept here, by the publisher, rather than by a
//! differential `reduce`: a reduce re-reads every distinct value of a key whenever the key
//! changes, and with a handful of keys (age groups, join years) that is every value on every
//! tick, which grew the live aggregates' latency with the data.

use std::collections::BTreeMap;

/// A multiset of `i64` with its median.
#[derive(Clone, Debug, Default)]
pub struct Median {
    /// The lower half (its greatest is the lower middle), with counts.
    low: BTreeMap<i64, usize>,
    /// The upper half (its least is the upper middle), with counts.
    high: BTreeMap<i64, usize>,
    low_len: usize,
    high_len: usize,
}

fn add(half: &mut BTreeMap<i64, usize>, value: i64) {
    *half.entry(value).or_default() += 1;
}

/// Removes one `value` from `half`; false when it holds none.
fn take(half: &mut BTreeMap<i64, usize>, value: i64) -> bool {
    match half.get_mut(&value) {
        None => false,
        Some(count) => {
            *count -= 1;
            if *count == 0 {
                half.remove(&value);
            }
            true
        }
    }
}

impl Median {
    /// The number of values held.
    pub fn len(&self) -> usize {
        self.low_len + self.high_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `diff` copies of `value` (removes them when `diff` is negative). Removing a value
    /// not held is ignored (false): the publisher's changes always retract what they added.
    pub fn update(&mut self, value: i64, diff: isize) -> bool {
        let mut consistent = true;
        for _ in 0..diff.unsigned_abs() {
            consistent &= if diff > 0 {
                self.insert(value);
                true
            } else {
                self.remove(value)
            };
        }
        consistent
    }

    fn insert(&mut self, value: i64) {
        match self.low.last_key_value() {
            Some((&lower_middle, _)) if value > lower_middle => {
                add(&mut self.high, value);
                self.high_len += 1;
            }
            _ => {
                add(&mut self.low, value);
                self.low_len += 1;
            }
        }
        self.balance();
    }

    fn remove(&mut self, value: i64) -> bool {
        let removed = if take(&mut self.low, value) {
            self.low_len -= 1;
            true
        } else if take(&mut self.high, value) {
            self.high_len -= 1;
            true
        } else {
            false
        };
        self.balance();
        removed
    }

    /// Keeps `low_len` equal to `high_len` or one more.
    fn balance(&mut self) {
        while self.low_len > self.high_len + 1 {
            let (&value, _) = self.low.last_key_value().expect("low is not empty");
            take(&mut self.low, value);
            add(&mut self.high, value);
            self.low_len -= 1;
            self.high_len += 1;
        }
        while self.high_len > self.low_len {
            let (&value, _) = self.high.first_key_value().expect("high is not empty");
            take(&mut self.high, value);
            add(&mut self.low, value);
            self.high_len -= 1;
            self.low_len += 1;
        }
    }

    /// Twice the median (the sum of the two middle values; twice the middle one for an odd
    /// count), exact in integers; `None` when empty.
    pub fn twice(&self) -> Option<i128> {
        let lower = i128::from(*self.low.last_key_value()?.0);
        if self.low_len > self.high_len {
            return Some(2 * lower);
        }
        let upper = i128::from(*self.high.first_key_value()?.0);
        Some(lower + upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted_twice(values: &[i64]) -> Option<i128> {
        let mut values = values.to_vec();
        values.sort_unstable();
        let n = values.len();
        (n > 0).then(|| i128::from(values[(n - 1) / 2]) + i128::from(values[n / 2]))
    }

    #[test]
    fn medians_of_small_sets() {
        let mut median = Median::default();
        assert_eq!(median.twice(), None);
        median.update(5, 1);
        assert_eq!(median.twice(), Some(10));
        median.update(1, 1);
        assert_eq!(median.twice(), Some(6));
        median.update(9, 2);
        assert_eq!(median.twice(), Some(14)); // 1 5 9 9
        assert!(median.update(9, -2));
        assert_eq!(median.twice(), Some(6));
        assert!(!median.update(42, -1), "a value never added");
        assert_eq!(median.len(), 2);
    }

    proptest! {
        /// Any sequence of additions and removals of held values gives the median of the
        /// multiset left, as sorting it would.
        #[test]
        fn equals_the_median_of_the_sorted_values(
            steps in proptest::collection::vec((-50i64..50, any::<bool>()), 0..300)
        ) {
            let mut median = Median::default();
            let mut held: Vec<i64> = Vec::new();
            for (value, remove) in steps {
                if remove && !held.is_empty() {
                    let at = value.unsigned_abs() as usize % held.len();
                    let gone = held.swap_remove(at);
                    prop_assert!(median.update(gone, -1));
                } else {
                    held.push(value);
                    median.update(value, 1);
                }
                prop_assert_eq!(median.twice(), sorted_twice(&held));
                prop_assert_eq!(median.len(), held.len());
            }
        }
    }
}

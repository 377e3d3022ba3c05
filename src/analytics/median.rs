//! Exact running medians of a multiset: the values split in two ordered halves, so a value
//! costs O(log n) and the median is read from the halves' edges.
//!
//! The medians of SPEC §3 (q5, q7, q8) are kept in the dataflow by [`accumulate`], a
//! [`Median`] per key on the worker that owns the key, rather than by a differential `reduce`
//! (which re-reads every distinct value of a key whenever the key changes: with a handful of
//! keys, every value on every tick) or by the publisher (one thread for every value of the
//! three queries). Only a key's changed median reaches the publisher, as a row.
//!
//! A median query supplies the key of each pin ⋈ user pair and the leading fields of a key's
//! row ([`medians`]); the rest is here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::inputs::PinUser;
use super::operators::{accumulate, combined};
use super::{AggregateId, Change, Collection, Field, Inputs, Update};

/// The key a median is reported for: an age group, a join year or both (a query that does not
/// key by one of them leaves it 0).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct MedianKey {
    /// An index into [`super::facts::AGE_GROUPS`].
    pub group: u8,
    pub join_year: i32,
}

/// Per key (`None`: the pair is left out), the median follower_count of the pin ⋈ user pairs,
/// as rows of median aggregate `id`: the key's fields, then the median
/// ([`Field::Midpoint`]).
pub fn medians<'scope>(
    id: AggregateId,
    inputs: &Inputs<'scope>,
    key: fn(&PinUser) -> Option<MedianKey>,
    key_fields: fn(MedianKey) -> Vec<Field>,
) -> Collection<'scope, Update> {
    // Few distinct follower_counts (they are rounded: "5k"), so a batch's pairs combine well.
    let values = combined(inputs.pin_user.clone(), "median_values", move |pair| {
        key(&pair).map(|key| (key, pair.follower_count))
    });
    accumulate(
        values,
        "median",
        |median: &mut Median, value, diff| {
            median.update(value, diff);
        },
        |median, rows| rows.extend(median.middle()),
        move |&key, (lower, upper)| {
            let mut row = key_fields(key);
            row.push(Field::Midpoint(lower, upper));
            Update {
                aggregate: id,
                change: Change::Row(row),
            }
        },
    )
}

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

fn add(half: &mut BTreeMap<i64, usize>, value: i64, copies: usize) {
    *half.entry(value).or_default() += copies;
}

/// Removes up to `copies` of `value` from `half`; returns how many it held and removed.
fn take(half: &mut BTreeMap<i64, usize>, value: i64, copies: usize) -> usize {
    let Some(count) = half.get_mut(&value) else {
        return 0;
    };
    let taken = copies.min(*count);
    *count -= taken;
    if *count == 0 {
        half.remove(&value);
    }
    taken
}

impl Median {
    /// The number of values held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.low_len + self.high_len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `diff` copies of `value` (removes them when `diff` is negative), in O(log n)
    /// whatever the multiplicity. Removing copies not held is ignored (false): the
    /// publisher's changes always retract what they added.
    pub fn update(&mut self, value: i64, diff: isize) -> bool {
        let copies = diff.unsigned_abs();
        if diff > 0 {
            self.insert(value, copies);
        } else if diff < 0 {
            return self.remove(value, copies);
        }
        true
    }

    fn insert(&mut self, value: i64, copies: usize) {
        match self.low.last_key_value() {
            Some((&lower_middle, _)) if value > lower_middle => {
                add(&mut self.high, value, copies);
                self.high_len += copies;
            }
            _ => {
                add(&mut self.low, value, copies);
                self.low_len += copies;
            }
        }
        self.balance();
    }

    fn remove(&mut self, value: i64, copies: usize) -> bool {
        // The copies of the middle value may be split between the halves.
        let from_low = take(&mut self.low, value, copies);
        let from_high = take(&mut self.high, value, copies - from_low);
        self.low_len -= from_low;
        self.high_len -= from_high;
        self.balance();
        from_low + from_high == copies
    }

    /// Keeps `low_len` equal to `high_len` or one more, moving the copies of a value at the
    /// halves' edge together (a step per distinct value moved, not per copy).
    fn balance(&mut self) {
        while self.low_len > self.high_len + 1 {
            let (&value, &count) = self.low.last_key_value().expect("low is not empty");
            let moved = count.min((self.low_len - self.high_len) / 2);
            take(&mut self.low, value, moved);
            add(&mut self.high, value, moved);
            self.low_len -= moved;
            self.high_len += moved;
        }
        while self.high_len > self.low_len {
            let (&value, &count) = self.high.first_key_value().expect("high is not empty");
            let moved = count.min((self.high_len - self.low_len).div_ceil(2));
            take(&mut self.high, value, moved);
            add(&mut self.low, value, moved);
            self.high_len -= moved;
            self.low_len += moved;
        }
    }

    /// The two middle values, lower first (the same value twice for an odd count); `None`
    /// when empty.
    pub fn middle(&self) -> Option<(i64, i64)> {
        let lower = *self.low.last_key_value()?.0;
        if self.low_len > self.high_len {
            return Some((lower, lower));
        }
        Some((lower, *self.high.first_key_value()?.0))
    }

    /// Twice the median (the sum of the two middle values), exact in integers; `None` when
    /// empty. (The rows carry [`Median::middle`]; this is what the tests compare.)
    #[cfg(test)]
    pub fn twice(&self) -> Option<i128> {
        self.middle()
            .map(|(lower, upper)| i128::from(lower) + i128::from(upper))
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
        /// Any sequence of additions and removals of held values, several copies at once,
        /// gives the median of the multiset left, as sorting it would.
        #[test]
        fn equals_the_median_of_the_sorted_values(
            steps in proptest::collection::vec((-50i64..50, 1usize..5, any::<bool>()), 0..300)
        ) {
            let mut median = Median::default();
            let mut held: Vec<i64> = Vec::new();
            for (value, copies, remove) in steps {
                if remove && !held.is_empty() {
                    // Up to `copies` of one held value at once.
                    let gone = held[value.unsigned_abs() as usize % held.len()];
                    let mut removed = 0;
                    while removed < copies
                        && let Some(at) = held.iter().position(|&v| v == gone)
                    {
                        held.swap_remove(at);
                        removed += 1;
                    }
                    prop_assert!(median.update(gone, -(removed as isize)));
                } else {
                    held.extend(std::iter::repeat_n(value, copies));
                    median.update(value, copies as isize);
                }
                prop_assert_eq!(median.twice(), sorted_twice(&held));
                prop_assert_eq!(median.len(), held.len());
            }
        }
    }
}

//! Reductions more than one query uses.

use differential_dataflow::{ExchangeData, Hashable};

use super::Collection;

/// For every key, the values with the highest count, all ties kept, with that count.
pub fn most_frequent<'scope, K, V>(
    pairs: Collection<'scope, (K, V)>,
) -> Collection<'scope, (K, (V, isize))>
where
    K: ExchangeData + std::hash::Hash,
    V: ExchangeData + std::hash::Hash,
{
    pairs
        .count()
        .map(|((key, value), count)| (key, (count, value)))
        .reduce_named("most_frequent", |_key, input, output| {
            // Sorted by (count, value): the highest counts are last.
            let top = input.last().map(|((count, _), _)| *count);
            for ((count, value), _) in input.iter().rev().take_while(|((c, _), _)| Some(*c) == top)
            {
                output.push(((value.clone(), *count), 1));
            }
        })
}

/// For every key, the values among the `k` highest by `rank`, ties at the `k`th place kept.
///
/// Computed as a tree of reductions over hash buckets of the values (4096, then 64, then 1
/// per key): the top-k-with-ties of a union is the top-k-with-ties of its parts' survivors, so
/// a change re-reads one bucket per level (at most 64·k values) instead of the whole key.
pub fn top_with_ties<'scope, K, V>(
    input: Collection<'scope, (K, V)>,
    k: usize,
    rank: fn(&V) -> i64,
) -> Collection<'scope, (K, V)>
where
    K: ExchangeData + std::hash::Hash,
    V: ExchangeData + std::hash::Hash,
{
    let keep = move |input: &[(&V, isize)], output: &mut Vec<(V, isize)>| {
        // Sorted ascending by value; rank is the value's leading field, so also by rank.
        let mut ranks: Vec<i64> = input.iter().map(|(value, _)| rank(value)).collect();
        ranks.sort_unstable();
        let cutoff = ranks.len().checked_sub(k).map_or(i64::MIN, |i| ranks[i]);
        for (value, _) in input.iter().filter(|(value, _)| rank(value) >= cutoff) {
            output.push(((*value).clone(), 1));
        }
    };
    let mut level = input.map(|(key, value)| {
        let bucket = (value.hashed() & 0xFFF) as u16;
        ((key, bucket), value)
    });
    for shift in [6, 12] {
        level = level
            .reduce_named("top_with_ties_bucket", move |_, input, output| {
                keep(input, output)
            })
            .map(move |((key, bucket), value)| ((key, bucket >> shift << shift >> 6), value));
    }
    level
        .map(|((key, _), value)| (key, value))
        .reduce_named("top_with_ties", move |_, input, output| keep(input, output))
}

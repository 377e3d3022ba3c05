//! Reductions more than one query uses.

use differential_dataflow::ExchangeData;

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

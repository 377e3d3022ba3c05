//! Random draws: one independent, portable generator per (seed, domain, key), and the
//! helpers that turn its numbers into the calibrated shapes.
//!
//! A post's draws depend only on its own key, never on what was drawn before: that is what
//! lets any worker generate any post, in any order, with the same bytes.

use rand::Rng;
use rand_pcg::Pcg64Mcg;

use super::calibration::SKEW_Q;

/// Domains keep the independent draws of one seed apart.
pub(super) const D_SEQ: u64 = 1;
pub(super) const D_PIN: u64 = 2;
pub(super) const D_GEO: u64 = 3;
pub(super) const D_USER: u64 = 4;
pub(super) const D_POSTER: u64 = 5;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for one (seed, domain, key): portable, and independent of every other key.
pub(super) fn rng_for(seed: u64, domain: u64, key: u64) -> Pcg64Mcg {
    let a = splitmix64(seed ^ splitmix64(domain));
    let hi = splitmix64(a ^ key);
    let lo = splitmix64(hi ^ a.rotate_left(17));
    Pcg64Mcg::new((u128::from(hi) << 64) | u128::from(lo))
}

/// Piecewise-linear inverse of a distribution given by its quantiles at equal steps.
pub(super) fn quantile(table: &[f64], u: f64) -> f64 {
    let steps = (table.len() - 1) as f64;
    let x = (u * steps).clamp(0.0, steps);
    let i = (x as usize).min(table.len() - 2);
    let f = x - i as f64;
    table[i] + (table[i + 1] - table[i]) * f
}

/// Index drawn from integer weights.
pub(super) fn weighted(rng: &mut Pcg64Mcg, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut r = rng.random_range(0..total);
    for (i, w) in weights.enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    unreachable!("r < total")
}

/// A discrete distribution by its cumulative weights, drawn from by inverting it: the index
/// drawn for `u` is the first whose cumulative weight is not below `u`.
///
/// The cumulative weights of the head posters run to 125k-200k entries (1-1.6 MB), so a plain
/// binary search missed the cache at most of its 17 steps: 46% of the samples of
/// `Emulator::post` itself at 100k events/s, 2% of the whole run. A table of where each of
/// [`Cdf::BUCKETS`] equal steps of `u` starts narrows the search to the few entries of one
/// step first (the run's share fell to 1%). The index found is the same.
#[derive(Clone, Debug)]
pub(super) struct Cdf {
    /// Cumulative weights, normalised to 1, ascending.
    cumulative: Vec<f64>,
    /// `starts[b]`: the first index whose cumulative weight is not below `b / BUCKETS`;
    /// `BUCKETS + 1` entries.
    starts: Vec<u32>,
}

impl Cdf {
    /// A power of two, so `u * BUCKETS` and `b / BUCKETS` are exact and a bucket's bounds
    /// are exactly those of its `u`.
    const BUCKETS: usize = 1 << 12;

    /// From weights, in index order.
    pub(super) fn new(weights: impl Iterator<Item = f64>) -> Cdf {
        let mut cumulative: Vec<f64> = weights
            .scan(0.0, |total, weight| {
                *total += weight;
                Some(*total)
            })
            .collect();
        let total = cumulative.last().copied().unwrap_or(1.0);
        for c in &mut cumulative {
            *c /= total;
        }
        assert!(
            u32::try_from(cumulative.len()).is_ok(),
            "a Cdf indexes with u32"
        );
        let starts = (0..=Self::BUCKETS)
            .map(|b| {
                let floor = b as f64 / Self::BUCKETS as f64;
                cumulative.partition_point(|&c| c < floor) as u32
            })
            .collect();
        Cdf { cumulative, starts }
    }

    pub(super) fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// The index drawn for `u` in [0, 1): the first whose cumulative weight is not below `u`
    /// (`len()` when none is, by rounding).
    pub(super) fn index(&self, u: f64) -> usize {
        let bucket = ((u * Self::BUCKETS as f64) as usize).min(Self::BUCKETS - 1);
        // b / BUCKETS <= u < (b + 1) / BUCKETS, so the index lies between the two starts.
        let (from, to) = (
            self.starts[bucket] as usize,
            self.starts[bucket + 1] as usize,
        );
        from + self.cumulative[from..to].partition_point(|&c| c < u)
    }
}

/// One entry of a list, uniformly.
pub(super) fn pick<'a, T>(rng: &mut Pcg64Mcg, list: &'a [T]) -> &'a T {
    &list[rng.random_range(0..list.len())]
}

/// An index into a list of `len`, skewed to its start like the sample's names and countries.
pub(super) fn skewed_index(u: f64, len: usize) -> usize {
    ((quantile(&SKEW_Q, u) * len as f64) as usize).min(len - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The narrowed search finds what a binary search of all the weights finds: at bucket
    /// bounds, just below and above them, at each cumulative weight, and at random points.
    #[test]
    fn cdf_index_is_the_full_search() {
        for len in [1u32, 2, 7, 4095, 125_000] {
            let cdf = Cdf::new((1..=len).map(|rank| f64::from(rank).powf(-0.8)));
            let full = |u: f64| cdf.cumulative.partition_point(|&c| c < u);
            let buckets = Cdf::BUCKETS as f64;
            let bounds = (0..Cdf::BUCKETS).map(|b| b as f64 / buckets);
            let near = bounds.flat_map(|u| [u, u.next_down().max(0.0), u.next_up()]);
            let weights = cdf.cumulative.iter().flat_map(|&c| [c, c.next_down()]);
            let rng = &mut rng_for(7, D_SEQ, u64::from(len));
            let random = (0..10_000).map(|_| rng.random::<f64>());
            for u in near.chain(weights).chain(random).filter(|u| *u < 1.0) {
                assert_eq!(cdf.index(u), full(u), "len {len}, u {u}");
            }
        }
    }
}

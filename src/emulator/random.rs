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

/// One entry of a list, uniformly.
pub(super) fn pick<'a, T>(rng: &mut Pcg64Mcg, list: &'a [T]) -> &'a T {
    &list[rng.random_range(0..list.len())]
}

/// An index into a list of `len`, skewed to its start like the sample's names and countries.
pub(super) fn skewed_index(u: f64, len: usize) -> usize {
    ((quantile(&SKEW_Q, u) * len as f64) as usize).min(len - 1)
}

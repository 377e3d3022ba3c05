//! Containers for the state that grows with every distinct row for as long as the job runs
//! (the identities seen, a slot per post), and that a worker must not stop to copy.
//!
//! A hash table that doubles moves all its entries at once: at 300k records/s a worker's
//! identity set doubling took 23-54 ms, during which every time in flight waited, and the
//! pause grows with the table for as long as the job runs. [`GrowingMap`] and
//! [`GrowingSet`] are `griddle`'s tables, which move a few entries at each insert instead
//! (jonhoo's incremental resizing over hashbrown's raw table: the same probing, the same
//! memory once the move is done). [`ChunkedVec`] is a vector that grows a chunk at a time,
//! so it never copies what it holds.
//!
//! A restart seeds these from the tables all at once: that state is sized from the tables'
//! statistics first (`Lake::held_rows`), since moving entries through every doubling while
//! millions are inserted cost the restart ~10% more than hashbrown's moves. Tables that grow
//! per poster or per name (tens of thousands where rows are millions) keep hashbrown: there a
//! doubling is short, and incremental moves during a restart cost more than they save.

use std::ops::{Index, IndexMut};

use rustc_hash::FxBuildHasher;

/// A hash map that grows a few entries per insert (see the module's text); Fx-hashed unless
/// the keys are hashes already.
pub type GrowingMap<K, V, S = FxBuildHasher> = griddle::HashMap<K, V, S>;

/// A hash set that grows a few entries per insert (see the module's text).
pub type GrowingSet<T, S = FxBuildHasher> = griddle::HashSet<T, S>;

/// Values per chunk of a [`ChunkedVec`].
const CHUNK: usize = 1 << 12;

/// A vector indexed by position that allocates a chunk of [`CHUNK`] values at a time and
/// never moves the values it holds.
pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedVec<T> {
    /// Appends `value` and returns its index.
    pub fn push(&mut self, value: T) -> usize {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let chunk = self
            .chunks
            .last_mut()
            .expect("a chunk with room was just made");
        chunk.push(value);
        self.len += 1;
        self.len - 1
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> Index<usize> for ChunkedVec<T> {
    type Output = T;
    fn index(&self, index: usize) -> &T {
        &self.chunks[index / CHUNK][index % CHUNK]
    }
}

impl<T> IndexMut<usize> for ChunkedVec<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.chunks[index / CHUNK][index % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_vec_indexes_across_chunks_and_never_moves_a_value() {
        let mut values = ChunkedVec::default();
        assert!(values.is_empty());
        for i in 0..3 * CHUNK + 5 {
            assert_eq!(values.push(i as u64), i);
        }
        assert_eq!(values.len(), 3 * CHUNK + 5);
        let first: *const u64 = &values[0];
        values.push(0);
        assert_eq!(first, &values[0] as *const u64, "a value moved");
        for i in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 1, 3 * CHUNK + 4] {
            assert_eq!(values[i], i as u64);
        }
        values[CHUNK] += 10;
        assert_eq!(values[CHUNK], CHUNK as u64 + 10);
    }

    #[test]
    fn growing_tables_keep_every_entry_through_their_moves() {
        // Past several doublings, checking every entry while moves are under way.
        let mut map: GrowingMap<u64, u64> = GrowingMap::default();
        let mut set: GrowingSet<u64> = GrowingSet::default();
        for i in 0..100_000u64 {
            assert!(map.insert(i, i * 2).is_none());
            assert!(set.insert(i));
            assert!(!set.insert(i));
            if i % 997 == 0 {
                assert!((0..=i).step_by(101).all(|j| map.get(&j) == Some(&(j * 2))));
            }
        }
        assert_eq!(map.len(), 100_000);
        assert_eq!(set.len(), 100_000);
        *map.entry(7).or_default() += 1;
        assert_eq!(map[&7], 15);
    }
}

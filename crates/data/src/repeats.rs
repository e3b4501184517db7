//! Finding repeated rows (or repeated keys of rows) by sorting instead of hashing.
//!
//! A hash table of millions of rows costs a cache miss or two per row on the one thread that
//! consumes batches. Here a row costs an append to a vector: the 128-bit key and the row
//! number. At the end the vectors — one per share of the key space — are sorted on every core,
//! and within each run of equal keys the smallest row is the original and every other row a
//! repeat. The answer is the same as inserting the rows into a table in file order: the number
//! of repeats, and the first repeats in file order with the row each one repeats.

/// One row's key and row number: 24 bytes, 8-byte aligned.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    hi: u64,
    lo: u64,
    row: u64,
}

/// Rows' keys, collected in file order.
pub(crate) struct Repeats {
    /// Entries whose key's top bits are `i` go to `parts[i]`; the count is a power of two.
    parts: Vec<Vec<Entry>>,
    shift: u32,
}

/// What [`Repeats::finish`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Rows whose key an earlier row already had.
    pub repeats: u64,
    /// The first repeats in file order, each with the first row that had its key.
    pub examples: Vec<(u64, u64)>,
}

impl Repeats {
    /// Room for about `expected` rows, split so that `threads` can sort them.
    pub(crate) fn new(expected: usize, threads: usize) -> Repeats {
        let parts = threads.clamp(1, 64).next_power_of_two();
        let bits = parts.trailing_zeros();
        let each = expected / parts + expected / parts / 32;
        Repeats {
            parts: (0..parts).map(|_| Vec::with_capacity(each)).collect(),
            shift: 64 - bits,
        }
    }

    pub(crate) fn push(&mut self, key: u128, row: u64) {
        let hi = (key >> 64) as u64;
        let part = hi.checked_shr(self.shift).unwrap_or(0) as usize;
        self.parts[part].push(Entry {
            hi,
            lo: key as u64,
            row,
        });
    }

    /// Sorts every share on its own thread and counts the repeats; keeps the first
    /// `examples` of them in file order.
    pub(crate) fn finish(self, examples: usize) -> Found {
        let found: Vec<Found> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .parts
                .into_iter()
                .map(|part| s.spawn(move || repeats_in(part, examples)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut all = Found::default();
        for f in found {
            all.repeats += f.repeats;
            all.examples.extend(f.examples);
        }
        all.examples.sort_unstable();
        all.examples.truncate(examples);
        all
    }
}

fn repeats_in(mut part: Vec<Entry>, examples: usize) -> Found {
    part.sort_unstable();
    let mut found = Found::default();
    // The smallest repeat rows seen so far, largest last once full.
    let mut first_repeats: std::collections::BinaryHeap<(u64, u64)> =
        std::collections::BinaryHeap::with_capacity(examples + 1);
    for run in part.chunk_by(|a, b| a.hi == b.hi && a.lo == b.lo) {
        found.repeats += run.len() as u64 - 1;
        let original = run[0].row;
        for e in &run[1..] {
            if first_repeats.len() < examples {
                first_repeats.push((e.row, original));
            } else if first_repeats.peek().is_some_and(|&(r, _)| e.row < r) {
                first_repeats.pop();
                first_repeats.push((e.row, original));
            } else {
                // The rest of the run comes later in the file still.
                break;
            }
        }
    }
    found.examples = first_repeats.into_vec();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// What a hash table filled in file order finds.
    fn by_table(keys: &[u128], examples: usize) -> Found {
        let mut seen: HashMap<u128, u64> = HashMap::new();
        let mut found = Found::default();
        for (i, &k) in keys.iter().enumerate() {
            let row = i as u64 + 1;
            match seen.get(&k) {
                Some(&first) => {
                    found.repeats += 1;
                    if found.examples.len() < examples {
                        found.examples.push((row, first));
                    }
                }
                None => {
                    seen.insert(k, row);
                }
            }
        }
        found
    }

    fn by_sorting(keys: &[u128], threads: usize, examples: usize) -> Found {
        let mut r = Repeats::new(keys.len(), threads);
        for (i, &k) in keys.iter().enumerate() {
            r.push(k, i as u64 + 1);
        }
        r.finish(examples)
    }

    #[test]
    fn counts_every_repeat_and_names_the_first_ones() {
        // Row 1, 4 and 6 share a key; rows 2 and 5 another; row 3 is alone.
        let keys = [7u128 << 120, 9, 11, 7u128 << 120, 9, 7u128 << 120];
        let found = by_sorting(&keys, 2, 5);
        assert_eq!(found.repeats, 3);
        assert_eq!(found.examples, vec![(4, 1), (5, 2), (6, 1)]);
        assert_eq!(by_sorting(&keys, 2, 2).examples, vec![(4, 1), (5, 2)]);
        assert_eq!(by_sorting(&[], 2, 5), Found::default());
    }

    proptest! {
        /// Sorting finds what a table filled in file order finds, for any keys (drawn from a
        /// few values so that repeats are common, with the top bits varied so every share is
        /// used), any number of threads and examples.
        #[test]
        fn sorting_finds_what_a_table_finds(
            small in proptest::collection::vec((0u8..4, 0u8..12), 0..400),
            threads in 1usize..5,
            examples in 0usize..8,
        ) {
            let keys: Vec<u128> = small
                .iter()
                .map(|&(top, low)| (u128::from(top) << 126) | u128::from(low))
                .collect();
            prop_assert_eq!(by_sorting(&keys, threads, examples), by_table(&keys, examples));
        }
    }
}

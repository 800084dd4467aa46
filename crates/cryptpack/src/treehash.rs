//! BLAKE3 of the plaintext computed segment by segment, out of order, on any thread, then
//! merged in order: the result is exactly `blake3::hash(plaintext)`.
//!
//! BLAKE3 is a binary tree over 1 KiB chunks in which every left subtree is a complete
//! power-of-two number of chunks. When the segment size is a power of two of at least one
//! chunk, every split of that tree above the segment level falls on a segment boundary, so
//! each segment is a complete aligned subtree (the final one possibly partial, on the right
//! edge): its chaining value can be computed alone ([`segment_hash`], with
//! `blake3::hazmat`), and the chaining values merged in order ([`TreeMerger`]) in the same
//! way the reference implementation merges chunk chaining values. Other segment sizes fall
//! back to one sequential hasher (see `write.rs`).

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

/// True when segments of `segment_size` bytes are complete BLAKE3 subtrees.
pub(crate) fn tree_compatible(segment_size: usize) -> bool {
    segment_size.is_power_of_two() && segment_size >= blake3::CHUNK_LEN
}

/// The hash contribution of one segment's plaintext.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SegmentHash {
    /// A segment of a pack with more than one segment: its subtree chaining value.
    Subtree(ChainingValue),
    /// The only segment of a pack: the plaintext hash itself.
    Whole(blake3::Hash),
}

/// Hashes segment `index` (of `segment_size` bytes each; `data` may be shorter for the
/// final segment). `only` says the pack has exactly this one segment (index 0, final).
/// `segment_size` must satisfy [`tree_compatible`]; `data` must not be empty unless `only`.
pub(crate) fn segment_hash(
    index: u64,
    segment_size: usize,
    data: &[u8],
    only: bool,
) -> SegmentHash {
    if only {
        return SegmentHash::Whole(blake3::hash(data));
    }
    let cv = blake3::Hasher::new()
        .set_input_offset(index * segment_size as u64)
        .update(data)
        .finalize_non_root();
    SegmentHash::Subtree(cv)
}

/// Merges segment hashes, given in segment order, into the hash of the whole plaintext.
#[derive(Debug, Default)]
pub(crate) struct TreeMerger {
    /// Chaining values of complete subtrees not merged yet (the reference
    /// implementation's "CV stack"; at most 33 entries for 2^32 segments).
    stack: Vec<ChainingValue>,
    /// Segments pushed so far.
    count: u64,
}

impl TreeMerger {
    /// Adds the hash of a segment that is known not to be the final one. Merges lazily,
    /// as the reference implementation does: a subtree is merged only when its right
    /// sibling is complete and more input follows it, so the root is never merged early.
    pub(crate) fn push(&mut self, hash: SegmentHash) -> Option<()> {
        let SegmentHash::Subtree(mut cv) = hash else {
            return None;
        };
        self.count += 1;
        let mut total = self.count;
        while total & 1 == 0 {
            let left = self.stack.pop()?;
            cv = merge_subtrees_non_root(&left, &cv, Mode::Hash);
            total >>= 1;
        }
        self.stack.push(cv);
        Some(())
    }

    /// Adds the final segment's hash and returns the hash of the whole plaintext. `None`
    /// when the sequence was inconsistent (a `Whole` after other segments, or a `Subtree`
    /// alone): an internal error, never expected.
    pub(crate) fn finish(mut self, last: SegmentHash) -> Option<blake3::Hash> {
        match last {
            SegmentHash::Whole(h) => self.stack.is_empty().then_some(h),
            SegmentHash::Subtree(mut cv) => {
                while let Some(left) = self.stack.pop() {
                    if self.stack.is_empty() {
                        return Some(merge_subtrees_root(&left, &cv, Mode::Hash));
                    }
                    cv = merge_subtrees_non_root(&left, &cv, Mode::Hash);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The tree hash of `data` cut into segments of `seg` bytes.
    fn tree(data: &[u8], seg: usize) -> Option<blake3::Hash> {
        let n = data.len().div_ceil(seg).max(1);
        let mut m = TreeMerger::default();
        let mut last = None;
        for i in 0..n {
            let part = &data[(i * seg).min(data.len())..((i + 1) * seg).min(data.len())];
            let h = segment_hash(i as u64, seg, part, n == 1);
            if i + 1 == n {
                last = Some(h);
            } else {
                m.push(h)?;
            }
        }
        m.finish(last?)
    }

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn edges_equal_plain_blake3() {
        for seg in [1024usize, 2048, 1 << 20] {
            for len in [
                0,
                1,
                seg - 1,
                seg,
                seg + 1,
                2 * seg - 1,
                2 * seg,
                2 * seg + 1,
                3 * seg,
                4 * seg + 7,
                5 * seg,
                7 * seg + 1,
                8 * seg,
                9 * seg - 1,
            ] {
                let data = bytes(len, len as u64 + seg as u64);
                assert_eq!(
                    tree(&data, seg),
                    Some(blake3::hash(&data)),
                    "seg {seg} len {len}"
                );
            }
        }
    }

    #[test]
    fn compatible_sizes() {
        assert!(tree_compatible(1 << 20));
        assert!(tree_compatible(1024));
        assert!(tree_compatible(64 << 20));
        assert!(!tree_compatible(512));
        assert!(!tree_compatible(1000 * 1024));
        assert!(!tree_compatible(0));
    }

    #[test]
    fn inconsistent_sequences_are_refused() {
        let cv = segment_hash(1, 1024, b"x", false);
        assert!(TreeMerger::default().finish(cv).is_none());
        let whole = segment_hash(0, 1024, b"x", true);
        let mut m = TreeMerger::default();
        assert!(m.push(whole).is_none());
        let mut m = TreeMerger::default();
        assert!(m.push(segment_hash(0, 1024, &[0; 1024], false)).is_some());
        assert!(m.finish(whole).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn random_lengths_equal_plain_blake3(
            log in 10u32..14,
            len in 0usize..70_000,
            seed in any::<u64>(),
        ) {
            let seg = 1usize << log;
            let data = bytes(len, seed);
            prop_assert_eq!(tree(&data, seg), Some(blake3::hash(&data)));
        }
    }
}

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

/// Largest subtree a sealing worker hashes of the pack in one piece: small enough to be
/// hashed right after the segments holding it were sealed, while still in cache.
const MAX_PACK_SUBTREE: u64 = 256 << 10;

/// The pack-hash contribution of one batch of sealed segments, computed by the worker that
/// sealed it: the bytes before its first BLAKE3 chunk boundary (`head`), the chaining
/// values of the complete aligned subtrees after it, and its last chunk (`tail`, whole or
/// partial), whose bytes the [`PackMerger`] joins with the neighbouring batches.
#[derive(Debug, Default)]
pub(crate) struct PackPieces {
    pub(crate) head: Vec<u8>,
    /// (pack offset, length in bytes, chaining value), in order.
    pub(crate) subtrees: Vec<(u64, u64, ChainingValue)>,
    pub(crate) tail_start: u64,
    pub(crate) tail: Vec<u8>,
}

/// How the pack bytes `[start, end)` of a batch split up: the head ends at the first chunk
/// boundary (or at `end`), the tail is the last chunk begun, and the subtrees between them
/// are aligned powers of two of at most [`MAX_PACK_SUBTREE`], in order.
pub(crate) fn pack_layout(start: u64, end: u64, subtrees: &mut Vec<(u64, u64)>) -> (u64, u64) {
    let chunk = blake3::CHUNK_LEN as u64;
    let c0 = start.next_multiple_of(chunk).min(end);
    let c1 = if end > c0 {
        ((end - 1) / chunk * chunk).max(c0)
    } else {
        end
    };
    subtrees.clear();
    let mut p = c0;
    while p < c1 {
        let mut size = MAX_PACK_SUBTREE;
        while size > chunk && (!p.is_multiple_of(size) || p + size > c1) {
            size /= 2;
        }
        subtrees.push((p, size));
        p += size;
    }
    (c0, c1)
}

/// The chaining value of the complete subtree (or the last, partial one) `data` at pack
/// offset `offset` (a multiple of the chunk length).
pub(crate) fn subtree_cv(offset: u64, data: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(offset)
        .update(data)
        .finalize_non_root()
}

/// Merges the batches' [`PackPieces`], in pack order, into the BLAKE3 of the whole pack
/// (header included): exactly `blake3::hash(pack)`.
#[derive(Debug)]
pub(crate) struct PackMerger {
    /// The chunk being gathered (1..=1024 bytes once anything was added; always the last
    /// chunk so far, so that the final one is known when the pack ends).
    pending: Vec<u8>,
    pending_start: u64,
    /// Chaining values of complete subtrees not merged yet, as in the reference
    /// implementation (merged lazily, when more input follows).
    stack: Vec<ChainingValue>,
}

impl PackMerger {
    /// A merger whose pack starts with `header`.
    pub(crate) fn new(header: &[u8]) -> PackMerger {
        let mut m = PackMerger {
            pending: Vec::with_capacity(blake3::CHUNK_LEN),
            pending_start: 0,
            stack: Vec::new(),
        };
        m.append(header);
        m
    }

    /// Merges what input from pack offset `start` on proves complete: after it, one
    /// subtree per 1-bit of the number of chunks before `start`.
    fn merge_before(&mut self, start: u64) {
        let post_merge = (start / blake3::CHUNK_LEN as u64).count_ones() as usize;
        while self.stack.len() > post_merge {
            let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) else {
                break;
            };
            self.stack
                .push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
    }

    /// Pushes the chaining value of the subtree starting at pack offset `start`, merging
    /// lazily (never the root before the end is known).
    fn push_cv(&mut self, cv: ChainingValue, start: u64) {
        self.merge_before(start);
        self.stack.push(cv);
    }

    /// More bytes follow: a full pending chunk becomes a chaining value.
    fn flush_full(&mut self) -> Option<()> {
        if self.pending.len() == blake3::CHUNK_LEN {
            let cv = subtree_cv(self.pending_start, &self.pending);
            self.push_cv(cv, self.pending_start);
            self.pending_start += blake3::CHUNK_LEN as u64;
            self.pending.clear();
            Some(())
        } else {
            self.pending.is_empty().then_some(())
        }
    }

    /// Appends bytes that do not cross a chunk boundary after the pending ones.
    fn append(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.pending.len() == blake3::CHUNK_LEN {
                let _ = self.flush_full();
            }
            let n = (blake3::CHUNK_LEN - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    /// Adds the next batch's pieces. `None` when they do not continue the pack where it
    /// stands (an internal error, never expected).
    pub(crate) fn add(&mut self, p: &PackPieces) -> Option<()> {
        self.append(&p.head);
        for (offset, len, cv) in &p.subtrees {
            self.flush_full()?;
            if *offset != self.pending_start {
                return None;
            }
            self.push_cv(*cv, *offset);
            self.pending_start += len;
        }
        if !p.tail.is_empty() {
            self.flush_full()?;
            if p.tail_start != self.pending_start {
                return None;
            }
            self.pending.extend_from_slice(&p.tail);
        }
        Some(())
    }

    /// The hash of the whole pack (its last chunk is the pending one).
    pub(crate) fn finish(mut self) -> blake3::Hash {
        if self.stack.is_empty() {
            return blake3::hash(&self.pending);
        }
        self.merge_before(self.pending_start);
        let mut right = subtree_cv(self.pending_start, &self.pending);
        while let Some(left) = self.stack.pop() {
            if self.stack.is_empty() {
                return merge_subtrees_root(&left, &right, Mode::Hash);
            }
            right = merge_subtrees_non_root(&left, &right, Mode::Hash);
        }
        blake3::hash(&self.pending)
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

    /// The pack hash of `data` (its first `header` bytes the header) with batches ending
    /// at `cuts`, through pieces and the merger.
    fn pieces_hash(data: &[u8], header: usize, cuts: &[usize]) -> Option<blake3::Hash> {
        let mut m = PackMerger::new(&data[..header]);
        let mut start = header;
        let mut layout = Vec::new();
        for &end in cuts.iter().chain(std::iter::once(&data.len())) {
            let end = end.clamp(start, data.len());
            if end == start {
                continue;
            }
            let (c0, c1) = pack_layout(start as u64, end as u64, &mut layout);
            let p = PackPieces {
                head: data[start..c0 as usize].to_vec(),
                subtrees: layout
                    .iter()
                    .map(|&(at, len)| {
                        let a = at as usize;
                        (at, len, subtree_cv(at, &data[a..a + len as usize]))
                    })
                    .collect(),
                tail_start: c1,
                tail: data[c1 as usize..end].to_vec(),
            };
            m.add(&p)?;
            start = end;
        }
        Some(m.finish())
    }

    #[test]
    fn pack_pieces_equal_plain_blake3() {
        let data = bytes(3 << 20, 5);
        for len in [
            132,
            1000,
            1024,
            1025,
            2048,
            5000,
            1 << 20,
            (1 << 20) + 149,
            3 << 20,
        ] {
            for step in [1usize, 1000, 1024, 4096, (1 << 20) + 16, 3 << 20] {
                let cuts: Vec<usize> = (1..)
                    .map(|i| 132 + i * step)
                    .take_while(|c| *c < len)
                    .collect();
                assert_eq!(
                    pieces_hash(&data[..len], 132.min(len), &cuts),
                    Some(blake3::hash(&data[..len])),
                    "len {len} step {step}"
                );
            }
        }
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

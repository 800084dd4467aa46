//! The sealing engine behind [`Encryptor`](crate::Encryptor): batches of segments laid out
//! in place (each segment's plaintext followed by room for its tag, exactly as the pack
//! stores them), sealed on the calling thread or by a pool of worker threads that also
//! take both hashes: per segment of plaintext, and per aligned BLAKE3 subtree of the pack
//! bytes right after sealing them (while in cache); the caller merges them in order.
//!
//! Buffers are allocated once and recycled: caller fills a batch -> a worker hashes and
//! seals it in place -> caller merges its hashes, writes it out -> it is free again. Jobs
//! go to the workers round robin and results are collected in the same order, so no
//! reordering is needed and the writer never waits for a single segment. (A thread of its
//! own hashing the whole pack sequentially cost 20-35% more CPU per byte: it read every
//! batch again from a cold cache, and was one more thread to wake per batch.)

use std::io::{self, IoSliceMut};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use crate::cipher::DataKey;
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, TAG_LEN};
use crate::treehash::{PackPieces, SegmentHash, pack_layout, segment_hash, subtree_cv};

/// Segments of one batch, laid out as stored in the pack.
#[derive(Debug)]
pub(crate) struct Batch {
    /// `segments × (segment_size + 16)` bytes.
    buf: Vec<u8>,
    /// Plaintext bytes held.
    pub(crate) filled: usize,
    /// Index of the first segment.
    first: u64,
    /// The batch ends with the final segment of the pack.
    last: bool,
    /// Plaintext hashes of the segments (tree hashing only), filled by the sealer.
    pub(crate) hashes: Vec<SegmentHash>,
    /// Its part of the pack hash (when sealed by a worker of a hashing pool).
    pub(crate) pieces: PackPieces,
    /// Scratch: where the subtrees of `pieces` lie.
    layout: Vec<(u64, u64)>,
    /// Outcome of sealing.
    result: Result<()>,
}

impl Batch {
    pub(crate) fn new(segments: usize, segment_size: usize) -> Batch {
        Batch {
            buf: vec![0; segments * (segment_size + TAG_LEN)],
            filled: 0,
            first: 0,
            last: false,
            hashes: Vec::with_capacity(segments),
            pieces: PackPieces::default(),
            layout: Vec::new(),
            result: Ok(()),
        }
    }

    /// A batch without a buffer (a placeholder while the real one is away).
    pub(crate) fn empty() -> Batch {
        Batch {
            buf: Vec::new(),
            filled: 0,
            first: 0,
            last: false,
            hashes: Vec::new(),
            pieces: PackPieces::default(),
            layout: Vec::new(),
            result: Ok(()),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.filled = 0;
        self.hashes.clear();
        self.result = Ok(());
    }

    /// Plaintext bytes the batch can hold.
    fn capacity(&self, segment_size: usize) -> usize {
        self.buf.len() / (segment_size + TAG_LEN) * segment_size
    }

    pub(crate) fn is_full(&self, segment_size: usize) -> bool {
        self.filled >= self.capacity(segment_size)
    }

    /// Where the next plaintext bytes go: the rest of the current segment's slot.
    pub(crate) fn space(&mut self, segment_size: usize) -> &mut [u8] {
        if self.is_full(segment_size) {
            return &mut [];
        }
        let slot = segment_size + TAG_LEN;
        let (j, o) = (self.filled / segment_size, self.filled % segment_size);
        &mut self.buf[j * slot + o..j * slot + segment_size]
    }

    /// Where the next plaintext bytes go, as one slice per segment slot (the rest of the
    /// current one, then the following ones, at most `max` slices): one vectored read can
    /// fill several segments.
    pub(crate) fn spaces(&mut self, segment_size: usize, max: usize) -> Vec<IoSliceMut<'_>> {
        if self.is_full(segment_size) {
            return Vec::new();
        }
        let slot = segment_size + TAG_LEN;
        let (j, o) = (self.filled / segment_size, self.filled % segment_size);
        self.buf[j * slot..]
            .chunks_mut(slot)
            .take(max.max(1))
            .enumerate()
            .filter_map(|(i, c)| {
                let from = if i == 0 { o } else { 0 };
                c.get_mut(from..segment_size).map(IoSliceMut::new)
            })
            .collect()
    }

    /// Calls `f` on the plaintext bytes from `from` to `to` (offsets into the batch's
    /// plaintext), in order, as stored.
    pub(crate) fn for_each_plain(
        &self,
        segment_size: usize,
        from: usize,
        to: usize,
        mut f: impl FnMut(&[u8]),
    ) {
        let slot = segment_size + TAG_LEN;
        let mut at = from;
        while at < to {
            let (j, o) = (at / segment_size, at % segment_size);
            let n = (segment_size - o).min(to - at);
            f(&self.buf[j * slot + o..j * slot + o + n]);
            at += n;
        }
    }

    /// Number of segments (an empty final batch is one empty segment).
    pub(crate) fn segments(&self, segment_size: usize) -> usize {
        self.filled.div_ceil(segment_size).max(1)
    }

    /// Bytes of pack the batch holds once sealed.
    pub(crate) fn sealed_len(&self, segment_size: usize) -> usize {
        self.filled + self.segments(segment_size) * TAG_LEN
    }

    /// The sealed bytes, as they go into the pack.
    pub(crate) fn sealed(&self, segment_size: usize) -> &[u8] {
        &self.buf[..self.sealed_len(segment_size)]
    }

    /// Marks the batch as the segments starting at `first`, final or not.
    pub(crate) fn place(&mut self, first: u64, last: bool) {
        self.first = first;
        self.last = last;
    }

    pub(crate) fn is_last(&self) -> bool {
        self.last
    }

    /// The sealing outcome (taken once).
    pub(crate) fn take_result(&mut self) -> Result<()> {
        std::mem::replace(&mut self.result, Ok(()))
    }
}

/// What a sealer computes besides sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlainHash {
    /// Per-segment subtree hashes into [`Batch::hashes`].
    Tree,
    /// None here (hashed elsewhere, or not at all).
    Elsewhere,
}

/// How a sealer takes the pack hash.
#[derive(Debug)]
pub(crate) enum PackHash<'a> {
    /// Not here.
    Off,
    /// Continues one sequential hasher (inline sealing, batches in order).
    Inline(&'a mut blake3::Hasher),
    /// Into [`Batch::pieces`], to be merged in order by a
    /// [`PackMerger`](crate::treehash::PackMerger) (any thread, any order).
    Pieces,
}

/// Seals every segment of `b` in place. With [`PlainHash::Tree`] each segment's plaintext
/// hash is taken first; the sealed bytes are hashed for the pack hash (`cipher`) right
/// after each segment is sealed, while they are still in cache.
pub(crate) fn seal_batch(
    dk: &DataKey,
    b: &mut Batch,
    plain: PlainHash,
    mut cipher: PackHash<'_>,
) -> Result<()> {
    let seg = dk.segment_size;
    let slot = seg + TAG_LEN;
    let n = b.segments(seg);
    b.hashes.clear();
    // Pack offsets of this batch, and its aligned BLAKE3 subtrees.
    let start = HEADER_LEN as u64 + b.first * slot as u64;
    let end = start + b.sealed_len(seg) as u64;
    let (c0, c1) = match cipher {
        PackHash::Pieces => pack_layout(start, end, &mut b.layout),
        _ => (end, end),
    };
    b.pieces.subtrees.clear();
    let mut next_subtree = 0;
    for j in 0..n {
        let index = b.first + j as u64;
        let last = b.last && j + 1 == n;
        let len = (b.filled - j * seg).min(seg);
        let s = &mut b.buf[j * slot..j * slot + len + TAG_LEN];
        if plain == PlainHash::Tree {
            b.hashes
                .push(segment_hash(index, seg, &s[..len], last && index == 0));
        }
        dk.seal(index, last, s)?;
        match &mut cipher {
            PackHash::Inline(h) => {
                h.update(s);
            }
            PackHash::Pieces => {
                let sealed_to = start + (j * slot + len + TAG_LEN) as u64;
                while let Some(&(at, size)) = b.layout.get(next_subtree) {
                    if at + size > sealed_to {
                        break;
                    }
                    let from = (at - start) as usize;
                    let cv = subtree_cv(at, &b.buf[from..from + size as usize]);
                    b.pieces.subtrees.push((at, size, cv));
                    next_subtree += 1;
                }
            }
            PackHash::Off => {}
        }
    }
    if let PackHash::Pieces = cipher {
        let p = &mut b.pieces;
        p.head.clear();
        p.head.extend_from_slice(&b.buf[..(c0 - start) as usize]);
        p.tail.clear();
        p.tail
            .extend_from_slice(&b.buf[(c1 - start) as usize..(end - start) as usize]);
        p.tail_start = c1;
    }
    Ok(())
}

/// Seals `plain` as a whole pack body on the calling thread (the FORMAT.md test vector).
#[cfg(test)]
pub(crate) fn seal_all(dk: &DataKey, plain: &[u8]) -> Result<Vec<u8>> {
    let seg = dk.segment_size;
    let mut b = Batch::new(plain.len().div_ceil(seg).max(1), seg);
    let mut taken = 0;
    while taken < plain.len() {
        let space = b.space(seg);
        let n = space.len().min(plain.len() - taken);
        space[..n].copy_from_slice(&plain[taken..taken + n]);
        b.filled += n;
        taken += n;
    }
    b.place(0, true);
    seal_batch(dk, &mut b, PlainHash::Elsewhere, PackHash::Off)?;
    Ok(b.sealed(seg).to_vec())
}

fn worker_died() -> Error {
    Error::Io(io::Error::other(
        "a cryptpack sealing thread stopped unexpectedly",
    ))
}

/// Worker threads sealing (and hashing) batches.
pub(crate) struct Pool {
    jobs: Vec<Sender<Batch>>,
    results: Vec<Receiver<Batch>>,
    workers: Vec<JoinHandle<()>>,
    /// Batches written out, free again.
    free: Receiver<Batch>,
    free_tx: Sender<Batch>,
    submitted: u64,
    collected: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers.len())
            .field("in_flight", &(self.submitted - self.collected))
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `threads` sealing workers. With `pieces`, they also take each batch's part
    /// of the pack hash ([`Batch::pieces`]).
    pub(crate) fn start(
        dk: &Arc<DataKey>,
        threads: usize,
        plain: PlainHash,
        pieces: bool,
    ) -> Result<Pool> {
        let (free_tx, free) = channel();
        let mut pool = Pool {
            jobs: Vec::new(),
            results: Vec::new(),
            workers: Vec::new(),
            free,
            free_tx,
            submitted: 0,
            collected: 0,
        };
        for t in 0..threads.max(1) {
            let (job_tx, job_rx) = channel::<Batch>();
            let (res_tx, res_rx) = channel::<Batch>();
            let dk = Arc::clone(dk);
            let handle = std::thread::Builder::new()
                .name(format!("cryptpack-seal-{t}"))
                .spawn(move || {
                    while let Ok(mut b) = job_rx.recv() {
                        let pack = if pieces {
                            PackHash::Pieces
                        } else {
                            PackHash::Off
                        };
                        b.result = seal_batch(&dk, &mut b, plain, pack);
                        if res_tx.send(b).is_err() {
                            break;
                        }
                    }
                })?;
            pool.jobs.push(job_tx);
            pool.results.push(res_rx);
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Hands a placed batch to the next worker.
    pub(crate) fn submit(&mut self, b: Batch) -> Result<()> {
        let w = (self.submitted % self.jobs.len() as u64) as usize;
        self.jobs[w].send(b).map_err(|_| worker_died())?;
        self.submitted += 1;
        Ok(())
    }

    /// Batches handed out and not collected yet.
    pub(crate) fn in_flight(&self) -> u64 {
        self.submitted - self.collected
    }

    /// The next sealed batch in order: waits for it when `wait`, else `None` when it is
    /// not ready. `None` also when nothing is in flight.
    pub(crate) fn next(&mut self, wait: bool) -> Result<Option<Batch>> {
        if self.in_flight() == 0 {
            return Ok(None);
        }
        let rx = &self.results[(self.collected % self.results.len() as u64) as usize];
        let b = if wait {
            rx.recv().map_err(|_| worker_died())?
        } else {
            match rx.try_recv() {
                Ok(b) => b,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(worker_died()),
            }
        };
        self.collected += 1;
        Ok(Some(b))
    }

    /// Puts a written batch back on the free list.
    pub(crate) fn recycle(&mut self, b: Batch) -> Result<()> {
        // Our own receiver is alive as long as `self`: this cannot fail.
        self.free_tx.send(b).map_err(|_| worker_died())
    }

    /// A free batch, reset, waiting for one when `wait`.
    pub(crate) fn free_batch(&mut self, wait: bool) -> Result<Option<Batch>> {
        let b = if wait {
            Some(self.free.recv().map_err(|_| worker_died())?)
        } else {
            self.free.try_recv().ok()
        };
        Ok(b.map(|mut b| {
            b.reset();
            b
        }))
    }

    /// Stops the workers (everything must have been collected).
    pub(crate) fn finish(mut self) -> Result<()> {
        self.jobs.clear();
        for w in std::mem::take(&mut self.workers) {
            w.join().map_err(|_| worker_died())?;
        }
        Ok(())
    }
}

impl Drop for Pool {
    /// Closing the channels stops every thread after its current batch; they are joined
    /// so that no thread outlives the encryptor.
    fn drop(&mut self) {
        self.jobs.clear();
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
    }
}

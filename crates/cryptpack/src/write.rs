//! The encrypting `Write` adapter.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::cipher::{DataKey, EncryptOptions, new_pack};
use crate::error::{Error, Result};
use crate::format::HEADER_LEN;
use crate::key::{Key, KeyId, Secret, hex};
use crate::seal::{Batch, PackHash, PlainHash, Pool, seal_batch};
use crate::treehash::{PackMerger, TreeMerger, tree_compatible};

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Lowercase hex, as `b3sum` prints it.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// What sealing (or opening) a pack produced: sizes and hashes for the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Plaintext bytes.
    pub plaintext_len: u64,
    /// Pack bytes (header and segments).
    pub ciphertext_len: u64,
    /// BLAKE3 of the plaintext.
    pub plaintext_hash: Digest,
    /// BLAKE3 of the whole pack as stored (what `b3sum pack` prints; checkable without the
    /// key, see [`ciphertext_hash`](crate::ciphertext_hash)).
    pub ciphertext_hash: Digest,
    /// Number of segments.
    pub segments: u64,
    /// Id of the key-encryption key the pack is sealed under.
    pub key_id: KeyId,
}

/// Encrypts everything written to it into a pack written to `W`.
///
/// Plaintext is copied once, straight into its segment's place in a batch buffer; full
/// batches are sealed in place on worker threads (which also hash the plaintext segment by
/// segment, and the sealed bytes by aligned BLAKE3 subtrees of the pack right after sealing
/// them), then merged and written to `W` in order, one write per batch. With
/// `threads: 1` everything happens on the calling thread. Memory stays bounded (a few
/// batches per thread, recycled). The last segment is held back until
/// [`finish`](Encryptor::finish), which seals it with the final flag and returns the
/// [`Summary`]. Dropping an `Encryptor` without `finish` leaves a pack that fails to decrypt
/// as truncated — never one that looks complete.
pub struct Encryptor<W: Write> {
    inner: W,
    dk: Arc<DataKey>,
    key_id: KeyId,
    /// Segment size in bytes.
    seg: usize,
    /// Segments per batch.
    batch_segments: usize,
    /// Sealing threads (1: inline on the caller).
    threads: usize,
    /// Batches allowed in circulation once the pool runs.
    max_batches: usize,
    /// Batches allocated so far.
    allocated: usize,
    /// The batch being filled.
    cur: Batch,
    /// Free batches on the caller's side (inline mode).
    spare: Vec<Batch>,
    /// Index of the first segment of `cur` (once placed: of the next batch).
    next_index: u64,
    /// How the plaintext is hashed.
    plain: PlainHashing,
    /// The pack hasher while sealing inline (moves into the pool's thread when it starts).
    cipher_inline: Option<blake3::Hasher>,
    /// The pack hash once the pool runs: the workers' pieces merged in order.
    pack_merger: Option<PackMerger>,
    /// The header as written (the start of the pack hash).
    header: Vec<u8>,
    pool: Option<Pool>,
    plaintext_len: u64,
    ciphertext_len: u64,
    failed: bool,
}

/// The plaintext hash, by segment size.
enum PlainHashing {
    /// Per-segment subtree hashes (taken by the sealers) merged in order; the result once
    /// the final batch is merged.
    Tree(Option<TreeMerger>, Option<blake3::Hash>),
    /// One sequential hasher fed as bytes arrive (segment sizes that are not a power of
    /// two of at least 1 KiB).
    Stream(Box<blake3::Hasher>),
    /// No hashes (the seal-only benchmark).
    Off,
}

impl<W: Write> fmt::Debug for Encryptor<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("key_id", &self.key_id)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

/// Default batch: about 4 MiB of plaintext.
const DEFAULT_BATCH_BYTES: usize = 4 << 20;
/// Largest batch accepted.
const MAX_BATCH_BYTES: usize = 1 << 30;
/// Batches in circulation are also bounded by bytes (large segments).
const MAX_CIRCULATING_BYTES: usize = 256 << 20;

impl<W: Write> Encryptor<W> {
    /// Starts a pack: creates a random data key, wraps it under `secret` (a key, or a
    /// passphrase through Argon2id with `opts.kdf`), and writes the header to `inner`.
    pub fn new(inner: W, secret: Secret<'_>, opts: &EncryptOptions) -> Result<Encryptor<W>> {
        Self::with_hashing(inner, secret, opts, true)
    }

    fn with_hashing(
        mut inner: W,
        secret: Secret<'_>,
        opts: &EncryptOptions,
        hashes: bool,
    ) -> Result<Encryptor<W>> {
        // Options first (no key derivation, no header written, for a bad option).
        let seg = (opts.segment_size as usize).max(1);
        let threads = opts.threads.max(1);
        let batch_segments = opts
            .batch_segments
            .unwrap_or(DEFAULT_BATCH_BYTES / seg)
            .max(1);
        let batch_bytes = batch_segments
            .checked_mul(seg)
            .filter(|b| *b <= MAX_BATCH_BYTES)
            .ok_or(Error::InvalidOption(
                "a batch (batch_segments × segment_size) may hold at most 1 GiB",
            ))?;
        let (header, dk) = new_pack(secret, opts)?;
        let bytes = header.encode();
        inner.write_all(&bytes)?;
        // One filling, two per worker (one sealing, one queued), one being written, one
        // being hashed as pack.
        let max_batches = (2 * threads + 3)
            .min(MAX_CIRCULATING_BYTES / batch_bytes)
            .max(3);
        let (plain, cipher_inline) = if hashes {
            let plain = if tree_compatible(seg) {
                PlainHashing::Tree(Some(TreeMerger::default()), None)
            } else {
                PlainHashing::Stream(Box::new(blake3::Hasher::new()))
            };
            let mut cipher = blake3::Hasher::new();
            cipher.update(&bytes);
            (plain, Some(cipher))
        } else {
            (PlainHashing::Off, None)
        };
        Ok(Encryptor {
            inner,
            key_id: header.key_id(),
            dk: Arc::new(dk),
            seg,
            batch_segments,
            threads,
            max_batches,
            allocated: 1,
            cur: Batch::new(batch_segments, seg),
            spare: Vec::new(),
            next_index: 0,
            plain,
            cipher_inline,
            pack_merger: None,
            header: bytes.to_vec(),
            pool: None,
            plaintext_len: 0,
            ciphertext_len: HEADER_LEN as u64,
            failed: false,
        })
    }

    /// Id of the key-encryption key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    fn plain_mode(&self) -> PlainHash {
        match self.plain {
            PlainHashing::Tree(..) => PlainHash::Tree,
            _ => PlainHash::Elsewhere,
        }
    }

    /// Hands the (full) current batch on as non-final and takes a fresh one.
    fn rotate(&mut self) -> Result<()> {
        let full = std::mem::replace(&mut self.cur, Batch::empty());
        self.dispatch(full, false)?;
        self.cur = self.take_batch()?;
        Ok(())
    }

    /// Seals `b` (inline, or by handing it to the pool) as the next segments.
    fn dispatch(&mut self, mut b: Batch, last: bool) -> Result<()> {
        let n = b.segments(self.seg) as u64;
        if self.next_index + n > 1 << 32 {
            return Err(Error::TooLarge);
        }
        b.place(self.next_index, last);
        self.next_index += n;
        if self.pool.is_none() && self.threads > 1 && !last {
            // The inline hasher has seen the header only: the workers hash the pack from
            // here on, in pieces merged in order.
            let pieces = self.cipher_inline.take().is_some();
            if pieces {
                self.pack_merger = Some(PackMerger::new(&self.header));
            }
            self.pool = Some(Pool::start(
                &self.dk,
                self.threads,
                self.plain_mode(),
                pieces,
            )?);
        }
        match self.pool.as_mut() {
            None => {
                let mode = self.plain_mode();
                let pack = match self.cipher_inline.as_mut() {
                    Some(h) => PackHash::Inline(h),
                    None => PackHash::Off,
                };
                seal_batch(&self.dk, &mut b, mode, pack)?;
                self.complete(b)
            }
            Some(pool) => {
                pool.submit(b)?;
                self.collect_ready()
            }
        }
    }

    /// Completes the batches the workers have finished, in order, without waiting.
    fn collect_ready(&mut self) -> Result<()> {
        while let Some(b) = self.pool.as_mut().map_or(Ok(None), |p| p.next(false))? {
            self.complete(b)?;
        }
        Ok(())
    }

    /// A sealed batch, in order: merge its plaintext hashes, write it, pass it on to the
    /// pack hash and recycle it.
    fn complete(&mut self, mut b: Batch) -> Result<()> {
        b.take_result()?;
        if let PlainHashing::Tree(merger, root) = &mut self.plain {
            let n = b.hashes.len();
            let last_batch = b.is_last();
            for (j, h) in b.hashes.drain(..).enumerate() {
                if last_batch && j + 1 == n {
                    let done = merger.take().ok_or_else(internal)?;
                    *root = Some(done.finish(h).ok_or_else(internal)?);
                } else {
                    let tree = merger.as_mut().ok_or_else(internal)?;
                    tree.push(h).ok_or_else(internal)?;
                }
            }
        }
        if let Some(m) = self.pack_merger.as_mut() {
            m.add(&b.pieces).ok_or_else(internal)?;
        }
        let sealed = b.sealed(self.seg);
        self.inner.write_all(sealed)?;
        self.plaintext_len += b.filled as u64;
        self.ciphertext_len += sealed.len() as u64;
        match self.pool.as_mut() {
            Some(pool) => pool.recycle(b),
            None => {
                self.spare.push(b);
                Ok(())
            }
        }
    }

    /// An empty batch to fill: a recycled one, a new one while under the bound, or the
    /// next to come free (completing sealed batches meanwhile).
    fn take_batch(&mut self) -> Result<Batch> {
        loop {
            if let Some(mut b) = self.spare.pop() {
                b.reset();
                return Ok(b);
            }
            let Some(pool) = self.pool.as_mut() else {
                self.allocated += 1;
                return Ok(Batch::new(self.batch_segments, self.seg));
            };
            if let Some(b) = pool.free_batch(false)? {
                return Ok(b);
            }
            if self.allocated < self.max_batches {
                self.allocated += 1;
                return Ok(Batch::new(self.batch_segments, self.seg));
            }
            if pool.in_flight() > 0 {
                if let Some(b) = pool.next(true)? {
                    self.complete(b)?;
                }
                continue;
            }
            if let Some(b) = pool.free_batch(true)? {
                return Ok(b);
            }
        }
    }

    /// Copies plaintext into the current batch (sealing full batches first); returns the
    /// bytes taken (at least one when `buf` is not empty).
    fn take_plain(&mut self, buf: &[u8]) -> Result<usize> {
        if self.cur.is_full(self.seg) {
            // More data follows, so none of the buffered segments is the final one.
            self.rotate()?;
        }
        let mut taken = 0;
        while taken < buf.len() && !self.cur.is_full(self.seg) {
            let space = self.cur.space(self.seg);
            let n = space.len().min(buf.len() - taken);
            space[..n].copy_from_slice(&buf[taken..taken + n]);
            self.cur.filled += n;
            taken += n;
        }
        if let PlainHashing::Stream(h) = &mut self.plain {
            h.update(&buf[..taken]);
        }
        Ok(taken)
    }

    /// Reads from `r` straight into the places of the current batch's segments, several
    /// segments per call (`read_vectored`: one `readv` for a `File`; no intermediate
    /// buffer). Returns the bytes read; 0 at the end of `r`.
    pub(crate) fn read_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier write failed"));
        }
        if !self.cur.is_full(self.seg) {
            let from = self.cur.filled;
            let n = read_into(r, &mut self.cur, self.seg)?;
            if let PlainHashing::Stream(h) = &mut self.plain {
                self.cur.for_each_plain(self.seg, from, from + n, |p| {
                    h.update(p);
                });
            }
            self.cur.filled += n;
            return Ok(n);
        }
        // The batch is full: read into the next one, and only once data follows seal the
        // full one as non-final (at the end of `r` it stays, to be sealed as final).
        let mut next = self.take_batch().map_err(|e| self.fail(e))?;
        let n = match read_into(r, &mut next, self.seg) {
            Ok(0) => {
                self.spare.push(next);
                return Ok(0);
            }
            Ok(n) => n,
            Err(e) => {
                self.spare.push(next);
                return Err(e);
            }
        };
        if let PlainHashing::Stream(h) = &mut self.plain {
            next.for_each_plain(self.seg, 0, n, |p| {
                h.update(p);
            });
        }
        next.filled = n;
        let full = std::mem::replace(&mut self.cur, next);
        self.dispatch(full, false).map_err(|e| self.fail(e))?;
        Ok(n)
    }

    /// Marks the encryptor failed (nothing more can be sealed) and converts `e`.
    fn fail(&mut self, e: Error) -> io::Error {
        self.failed = true;
        e.into_io()
    }

    /// Seals the final batch, drains the workers, flushes; the totals and hashes.
    fn finish_parts(mut self) -> Result<(Summary, Option<()>, W)> {
        if self.failed {
            return Err(Error::Io(io::Error::other("an earlier write failed")));
        }
        let last = std::mem::replace(&mut self.cur, Batch::empty());
        self.dispatch(last, true)?;
        while let Some(b) = self.pool.as_mut().map_or(Ok(None), |p| p.next(true))? {
            self.complete(b)?;
        }
        let cipher = match self.pool.take() {
            Some(pool) => {
                pool.finish()?;
                self.pack_merger.take().map(PackMerger::finish)
            }
            None => self.cipher_inline.take().map(|h| h.finalize()),
        };
        self.inner.flush()?;
        let plain = match std::mem::replace(&mut self.plain, PlainHashing::Off) {
            PlainHashing::Tree(_, root) => Some(root.ok_or_else(internal)?),
            PlainHashing::Stream(h) => Some(h.finalize()),
            PlainHashing::Off => None,
        };
        let hashes = match (plain, cipher) {
            (Some(p), Some(c)) => Some((Digest(*p.as_bytes()), Digest(*c.as_bytes()))),
            _ => None,
        };
        let (plaintext_hash, ciphertext_hash, complete) = match hashes {
            Some((p, c)) => (p, c, Some(())),
            None => (Digest([0; 32]), Digest([0; 32]), None),
        };
        let summary = Summary {
            plaintext_len: self.plaintext_len,
            ciphertext_len: self.ciphertext_len,
            plaintext_hash,
            ciphertext_hash,
            segments: self.next_index,
            key_id: self.key_id,
        };
        Ok((summary, complete, self.inner))
    }

    /// Seals the final segment, flushes, and returns the summary and the inner writer.
    pub fn finish_into_inner(self) -> Result<(Summary, W)> {
        match self.finish_parts()? {
            (summary, Some(()), inner) => Ok((summary, inner)),
            (_, None, _) => Err(internal()),
        }
    }

    /// Seals the final segment, flushes, and returns the summary.
    pub fn finish(self) -> Result<Summary> {
        self.finish_into_inner().map(|(s, _)| s)
    }
}

/// Slots one vectored read may fill (bounds the slice list with small segments; the
/// kernel takes at most 1024).
const MAX_READ_SLICES: usize = 64;

/// One (vectored) read from `r` into the free segment places of `b`; `b.filled` is left
/// to the caller. Returns the bytes read.
fn read_into(r: &mut impl Read, b: &mut Batch, seg: usize) -> io::Result<usize> {
    let mut spaces = b.spaces(seg, MAX_READ_SLICES);
    r.read_vectored(&mut spaces)
}

fn internal() -> Error {
    Error::Io(io::Error::other(
        "cryptpack internal error: hash pipeline out of order",
    ))
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier write failed"));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        self.take_plain(buf).map_err(|e| self.fail(e))
    }

    /// Flushes the inner writer. Buffered plaintext stays buffered: the last segment can
    /// only be sealed by [`Encryptor::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Seals `plain` into a pack under a fresh random key, with no hashes, into nothing:
/// the seal throughput of the [`Encryptor`] pipeline alone, for `cargo xtask bench pack`
/// (which compares it with raw ring). Returns the pack length. Not for real use: a pack
/// needs its hashes.
#[doc(hidden)]
pub fn bench_seal_only(plain: &[u8], opts: &EncryptOptions) -> Result<u64> {
    let key = Key::generate()?;
    let mut enc = Encryptor::with_hashing(io::sink(), Secret::Key(&key), opts, false)?;
    for piece in plain.chunks(1 << 20) {
        enc.write_all(piece)?;
    }
    let (summary, _, _) = enc.finish_parts()?;
    Ok(summary.ciphertext_len)
}

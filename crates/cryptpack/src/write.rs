//! The encrypting `Write` adapter.

use std::fmt;
use std::io::{self, Write};

use crate::cipher::{DataKey, EncryptOptions, batch_len, new_pack, seal_batch};
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, TAG_LEN};
use crate::key::{KeyId, Secret, hex};

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
/// Plaintext is buffered in batches of segments that are sealed on worker threads; memory
/// stays bounded (about three batches). The last segment is held back until
/// [`finish`](Encryptor::finish), which seals it with the final flag and returns the
/// [`Summary`]. Dropping an `Encryptor` without `finish` leaves a pack that fails to decrypt
/// as truncated — never one that looks complete.
pub struct Encryptor<W: Write> {
    inner: W,
    dk: DataKey,
    key_id: KeyId,
    threads: usize,
    capacity: usize,
    plain: Vec<u8>,
    out: Vec<u8>,
    prev_out: Vec<u8>,
    next_index: u64,
    plain_hasher: blake3::Hasher,
    cipher_hasher: blake3::Hasher,
    plaintext_len: u64,
    ciphertext_len: u64,
    failed: bool,
}

impl<W: Write> fmt::Debug for Encryptor<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("key_id", &self.key_id)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Encryptor<W> {
    /// Starts a pack: creates a random data key, wraps it under `secret` (a key, or a
    /// passphrase through Argon2id with `opts.kdf`), and writes the header to `inner`.
    pub fn new(mut inner: W, secret: Secret<'_>, opts: &EncryptOptions) -> Result<Encryptor<W>> {
        let (header, dk) = new_pack(secret, opts)?;
        let bytes = header.encode();
        inner.write_all(&bytes)?;
        let mut cipher_hasher = blake3::Hasher::new();
        cipher_hasher.update(&bytes);
        let threads = opts.threads.max(1);
        let seg = dk.segment_size;
        let capacity = batch_len(seg, threads, opts.batch_segments) * seg;
        Ok(Encryptor {
            inner,
            key_id: header.key_id(),
            dk,
            threads,
            capacity,
            plain: Vec::with_capacity(capacity),
            out: Vec::new(),
            prev_out: Vec::new(),
            next_index: 0,
            plain_hasher: blake3::Hasher::new(),
            cipher_hasher,
            plaintext_len: 0,
            ciphertext_len: HEADER_LEN as u64,
            failed: false,
        })
    }

    /// Id of the key-encryption key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Seals the buffered plaintext as one batch and writes it out.
    fn seal_buffered(&mut self, final_batch: bool) -> Result<()> {
        let seg = self.dk.segment_size;
        let n = self.plain.len().div_ceil(seg).max(1) as u64;
        if self.next_index + n > 1 << 32 {
            return Err(Error::TooLarge);
        }
        let plain_hasher = &mut self.plain_hasher;
        let cipher_hasher = &mut self.cipher_hasher;
        let plain = &self.plain;
        let prev_out = &self.prev_out;
        seal_batch(
            &self.dk,
            plain,
            &mut self.out,
            self.next_index,
            final_batch,
            self.threads,
            || {
                plain_hasher.update(plain);
                cipher_hasher.update(prev_out);
            },
        )?;
        self.inner.write_all(&self.out)?;
        self.next_index += n;
        self.plaintext_len += self.plain.len() as u64;
        self.ciphertext_len += (self.plain.len() + n as usize * TAG_LEN) as u64;
        self.plain.clear();
        std::mem::swap(&mut self.out, &mut self.prev_out);
        Ok(())
    }

    /// Seals the final segment, flushes, and returns the summary and the inner writer.
    pub fn finish_into_inner(mut self) -> Result<(Summary, W)> {
        if self.failed {
            return Err(Error::Io(io::Error::other("an earlier write failed")));
        }
        self.seal_buffered(true)?;
        self.cipher_hasher.update(&self.prev_out);
        self.inner.flush()?;
        let summary = Summary {
            plaintext_len: self.plaintext_len,
            ciphertext_len: self.ciphertext_len,
            plaintext_hash: Digest(*self.plain_hasher.finalize().as_bytes()),
            ciphertext_hash: Digest(*self.cipher_hasher.finalize().as_bytes()),
            segments: self.next_index,
            key_id: self.key_id,
        };
        Ok((summary, self.inner))
    }

    /// Seals the final segment, flushes, and returns the summary.
    pub fn finish(self) -> Result<Summary> {
        self.finish_into_inner().map(|(s, _)| s)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier write failed"));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.plain.len() == self.capacity {
            // More data follows, so none of the buffered segments is the final one.
            if let Err(e) = self.seal_buffered(false) {
                self.failed = true;
                return Err(e.into_io());
            }
        }
        let n = buf.len().min(self.capacity - self.plain.len());
        self.plain.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Flushes the inner writer. Buffered plaintext stays buffered: the last segment can
    /// only be sealed by [`Encryptor::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

//! The decrypting `Read` adapter.

use std::fmt;
use std::io::{self, Read};

use crate::cipher::{DataKey, batch_len, default_threads, open_batch, open_pack};
use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, Header, TAG_LEN};
use crate::key::Secret;
use crate::write::{Digest, Summary};

/// Options for decrypting.
#[derive(Debug, Clone)]
pub struct DecryptOptions {
    /// Worker threads for opening segments (default: available parallelism).
    pub threads: usize,
    /// Segments opened per batch. `None`: about 4 MiB per thread.
    pub batch_segments: Option<usize>,
}

impl Default for DecryptOptions {
    fn default() -> Self {
        DecryptOptions {
            threads: default_threads(),
            batch_segments: None,
        }
    }
}

/// Reads up to `buf.len()` bytes, stopping early only at end of stream.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads and decodes a pack header from the start of `r` (no key needed).
pub fn read_header(r: &mut impl Read) -> Result<Header> {
    let mut buf = [0u8; HEADER_LEN];
    let n = read_full(r, &mut buf)?;
    Header::decode(&buf[..n])
}

/// Decrypts a pack read from `R`. Plaintext is only ever returned after the segment that
/// holds it authenticated; the end of the stream is only reported (`Ok(0)`) after the final
/// segment authenticated, so truncation and trailing data surface as errors. Errors from
/// `read` are `std::io::Error`s wrapping a cryptpack [`Error`]; recover it with
/// [`Error::from_io`].
pub struct Decryptor<R: Read> {
    inner: R,
    header: Header,
    dk: DataKey,
    threads: usize,
    batch: usize,
    raw: Vec<u8>,
    work: Vec<u8>,
    ready: Vec<u8>,
    ready_pos: usize,
    ready_hashed: bool,
    next_index: u64,
    offset: u64,
    eof: bool,
    done: bool,
    failed: Option<Error>,
    plain_hasher: blake3::Hasher,
    cipher_hasher: blake3::Hasher,
    plaintext_len: u64,
}

impl<R: Read> fmt::Debug for Decryptor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("header", &self.header)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Decryptor<R> {
    /// Reads the header and unwraps the data key with default options. Fails with a
    /// distinct error for a file of another format, an unsupported version, a wrong key or
    /// passphrase, or a tampered header.
    pub fn new(inner: R, secret: Secret<'_>) -> Result<Decryptor<R>> {
        Decryptor::with_options(inner, secret, &DecryptOptions::default())
    }

    /// Like [`Decryptor::new`] with explicit options.
    pub fn with_options(
        mut inner: R,
        secret: Secret<'_>,
        opts: &DecryptOptions,
    ) -> Result<Decryptor<R>> {
        let mut head = [0u8; HEADER_LEN];
        let n = read_full(&mut inner, &mut head)?;
        let header = Header::decode(&head[..n])?;
        let dk = open_pack(&header, secret)?;
        let threads = opts.threads.max(1);
        let batch = batch_len(dk.segment_size, threads, opts.batch_segments);
        let mut cipher_hasher = blake3::Hasher::new();
        cipher_hasher.update(&head);
        Ok(Decryptor {
            inner,
            header,
            dk,
            threads,
            batch,
            raw: Vec::new(),
            work: Vec::new(),
            ready: Vec::new(),
            ready_pos: 0,
            ready_hashed: true,
            next_index: 0,
            offset: HEADER_LEN as u64,
            eof: false,
            done: false,
            failed: None,
            plain_hasher: blake3::Hasher::new(),
            cipher_hasher,
            plaintext_len: 0,
        })
    }

    /// The pack header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Sizes and hashes, once the whole stream has been read and authenticated.
    pub fn summary(&self) -> Option<Summary> {
        if !self.done || self.ready_pos < self.ready.len() || self.failed.is_some() {
            return None;
        }
        Some(Summary {
            plaintext_len: self.plaintext_len,
            ciphertext_len: self.offset,
            plaintext_hash: Digest(*self.plain_hasher.finalize().as_bytes()),
            ciphertext_hash: Digest(*self.cipher_hasher.finalize().as_bytes()),
            segments: self.next_index,
            key_id: self.header.key_id(),
        })
    }

    /// Returns the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads and opens the next batch of segments into `ready`.
    fn next_batch(&mut self) -> Result<()> {
        let seg = self.dk.segment_size;
        let chunk = seg + TAG_LEN;
        let want = self.batch * chunk + 1;
        while self.raw.len() < want && !self.eof {
            let have = self.raw.len();
            self.raw.resize(want, 0);
            let got = read_full(&mut self.inner, &mut self.raw[have..])?;
            self.raw.truncate(have + got);
            if have + got < want {
                self.eof = true;
            }
        }
        if self.raw.is_empty() {
            return Err(Error::Truncated { len: self.offset });
        }
        // A segment is final exactly when nothing follows it.
        let (take, final_batch) = if self.eof {
            (self.raw.len(), true)
        } else {
            (self.batch * chunk, false)
        };
        let n = take.div_ceil(chunk) as u64;
        if self.next_index + n > 1 << 32 {
            return Err(Error::TooLarge);
        }
        self.work.clear();
        self.work.extend_from_slice(&self.raw[..take]);
        let raw = &self.raw[..take];
        let cipher_hasher = &mut self.cipher_hasher;
        let plain_hasher = &mut self.plain_hasher;
        let prev = &self.ready;
        let prev_hashed = self.ready_hashed;
        open_batch(
            &self.dk,
            &mut self.work,
            raw,
            self.next_index,
            self.offset,
            final_batch,
            self.threads,
            || {
                cipher_hasher.update(raw);
                if !prev_hashed {
                    plain_hasher.update(prev);
                }
            },
        )?;
        // Compact the plaintexts (segment i's sits at i * chunk) to the front.
        let mut len = 0;
        for i in 0..n as usize {
            let start = i * chunk;
            let end = ((i + 1) * chunk).min(take) - TAG_LEN;
            self.work.copy_within(start..end, len);
            len += end - start;
        }
        self.work.truncate(len);
        std::mem::swap(&mut self.work, &mut self.ready);
        self.ready_pos = 0;
        self.ready_hashed = false;
        self.raw.drain(..take);
        self.next_index += n;
        self.offset += take as u64;
        self.plaintext_len += len as u64;
        if final_batch {
            self.plain_hasher.update(&self.ready);
            self.ready_hashed = true;
            self.done = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.ready_pos < self.ready.len() {
                let n = buf.len().min(self.ready.len() - self.ready_pos);
                buf[..n].copy_from_slice(&self.ready[self.ready_pos..self.ready_pos + n]);
                self.ready_pos += n;
                return Ok(n);
            }
            if let Some(e) = &self.failed {
                return Err(e.duplicate().into_io());
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if let Err(e) = self.next_batch() {
                self.failed = Some(e.duplicate());
                self.ready.clear();
                self.ready_pos = 0;
                return Err(e.into_io());
            }
        }
    }
}

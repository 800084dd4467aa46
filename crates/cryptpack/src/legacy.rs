//! Reading the seed tool's files: `openssl enc -aes-256-cbc -pbkdf2 -iter 100000`.
//!
//! Layout: `"Salted__"` (8 bytes) || salt (8 bytes) || AES-256-CBC ciphertext with PKCS#7
//! padding. Key and IV: PBKDF2-HMAC-SHA256(passphrase, salt, iterations, 48 bytes) = key
//! (32) || IV (16). These files carry **no authentication**: a wrong passphrase is only
//! noticed when the final padding is invalid (and goes unnoticed with probability about
//! 1/256), and corruption inside the file is not detected at all. Compare the result with a
//! hash recorded elsewhere (the seed's catalog has md5 sums) before trusting it.

use std::fmt;
use std::io::{self, Read};
use std::num::NonZeroU32;

use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key::Passphrase;
use crate::read::read_full;

/// The iteration count the seed tool passes to `openssl enc -pbkdf2 -iter`.
pub const OPENSSL_SEED_ITERATIONS: u32 = 100_000;

const SALTED: &[u8; 8] = b"Salted__";
const BLOCK: usize = 16;
const CHUNK: usize = 64 * 1024;

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Streaming decryptor for `openssl enc -aes-256-cbc -pbkdf2` files (see the module docs
/// for what it can and cannot detect). End of stream is reported only after the padding of
/// the last block checked out; a bad padding gives [`Error::LegacyBadPadding`], a length
/// that is not a whole number of blocks gives [`Error::Truncated`].
pub struct OpensslDecryptor<R: Read> {
    inner: R,
    cipher: Aes256CbcDec,
    /// Ciphertext read but not yet decrypted (always less than one block beyond what is
    /// held back).
    pending: Vec<u8>,
    /// Decrypted plaintext ready to hand out.
    ready: Vec<u8>,
    ready_pos: usize,
    offset: u64,
    eof: bool,
    done: bool,
    failed: Option<Error>,
}

impl<R: Read> fmt::Debug for OpensslDecryptor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpensslDecryptor")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl<R: Read> OpensslDecryptor<R> {
    /// Reads the `Salted__` header and derives key and IV from `pass` with PBKDF2-HMAC-SHA256
    /// and `iterations` (the seed tool used [`OPENSSL_SEED_ITERATIONS`]).
    pub fn new(mut inner: R, pass: &Passphrase, iterations: u32) -> Result<OpensslDecryptor<R>> {
        let iterations = NonZeroU32::new(iterations)
            .ok_or(Error::InvalidOption("PBKDF2 iterations must be at least 1"))?;
        let mut head = [0u8; 16];
        let n = read_full(&mut inner, &mut head)?;
        if n < 8 || head[..8] != SALTED[..] {
            return Err(Error::NotOpensslSalted {
                found: head[..n.min(8)].to_vec(),
            });
        }
        if n < 16 {
            return Err(Error::Truncated { len: n as u64 });
        }
        let mut key_iv = Zeroizing::new([0u8; 48]);
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &head[8..16],
            pass.as_bytes(),
            key_iv.as_mut(),
        );
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&key_iv[..32]);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&key_iv[32..]);
        let cipher = Aes256CbcDec::new(&(*key).into(), &iv.into());
        Ok(OpensslDecryptor {
            inner,
            cipher,
            pending: Vec::new(),
            ready: Vec::new(),
            ready_pos: 0,
            offset: 16,
            eof: false,
            done: false,
            failed: None,
        })
    }

    /// Decrypts whole blocks in `buf` in place.
    fn decrypt_in_place(&mut self, buf: &mut [u8]) {
        for block in buf.chunks_exact_mut(BLOCK) {
            if let Ok(b) = <&mut aes::Block>::try_from(block) {
                self.cipher.decrypt_block(b);
            }
        }
    }

    /// Reads more ciphertext and decrypts all but the last block (kept back for the padding
    /// check) unless the stream ended.
    fn fill(&mut self) -> Result<()> {
        let have = self.pending.len();
        self.pending.resize(have + CHUNK, 0);
        let got = read_full(&mut self.inner, &mut self.pending[have..])?;
        self.pending.truncate(have + got);
        self.offset += got as u64;
        if got < CHUNK {
            self.eof = true;
        }
        let whole = self.pending.len() / BLOCK * BLOCK;
        if self.eof {
            if self.pending.len() != whole || whole == 0 {
                return Err(Error::Truncated { len: self.offset });
            }
            let mut data = std::mem::take(&mut self.pending);
            self.decrypt_in_place(&mut data);
            let pad = usize::from(data[whole - 1]);
            if pad == 0 || pad > BLOCK || data[whole - pad..].iter().any(|&b| usize::from(b) != pad)
            {
                return Err(Error::LegacyBadPadding);
            }
            data.truncate(whole - pad);
            self.ready = data;
            self.done = true;
        } else {
            // Keep the last whole block (it may be the padded one) and any partial block.
            let keep_from = whole.saturating_sub(BLOCK);
            let mut data: Vec<u8> = self.pending.drain(..keep_from).collect();
            self.decrypt_in_place(&mut data);
            self.ready = data;
        }
        self.ready_pos = 0;
        Ok(())
    }
}

impl<R: Read> Read for OpensslDecryptor<R> {
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
            if let Err(e) = self.fill() {
                self.failed = Some(e.duplicate());
                return Err(e.into_io());
            }
        }
    }
}

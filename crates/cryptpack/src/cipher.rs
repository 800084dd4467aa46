//! The data key of one pack, header creation/opening/rewrap, and segment seal/open (serial
//! and on worker threads).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result, SecretKind};
use crate::format::{
    DEFAULT_SEGMENT_SIZE, HEADER_LEN, Header, Kdf, MAX_SEGMENT_SIZE, NONCE_PREFIX_LEN, TAG_LEN,
    segment_nonce,
};
use crate::key::{KdfParams, KeyId, Secret, random_bytes, unwrap, wrap};

/// Options for sealing a pack.
#[derive(Debug, Clone)]
pub struct EncryptOptions {
    /// Plaintext bytes per segment (1..=64 MiB; default 1 MiB).
    pub segment_size: u32,
    /// Worker threads for sealing (default: available parallelism). 1 seals and hashes
    /// inline on the calling thread; with more, that many workers seal and take both
    /// hashes, the calling thread reads, merges the hashes and writes.
    pub threads: usize,
    /// Segments per batch, the unit handed to a worker. `None`: about 4 MiB of plaintext.
    /// Memory: up to `2 × threads + 3` batches (at most 256 MiB of them, at least 3).
    pub batch_segments: Option<usize>,
    /// Argon2id parameters when sealing with a passphrase.
    pub kdf: KdfParams,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        EncryptOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            threads: default_threads(),
            batch_segments: None,
            kdf: KdfParams::default(),
        }
    }
}

pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How many segments one batch holds.
pub(crate) fn batch_len(segment_size: usize, threads: usize, explicit: Option<usize>) -> usize {
    explicit
        .unwrap_or_else(|| {
            let per_thread = (4 << 20) / segment_size.max(1);
            threads.max(1) * per_thread.max(2)
        })
        .max(1)
}

/// Below this many bytes a batch is sealed on the calling thread (spawning costs more).
const PARALLEL_MIN_BYTES: usize = 256 << 10;

/// The per-pack secret state: the data key and what every segment's nonce and AAD need.
pub(crate) struct DataKey {
    key: LessSafeKey,
    aad: [u8; 32],
    prefix: [u8; NONCE_PREFIX_LEN],
    pub(crate) segment_size: usize,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").finish_non_exhaustive()
    }
}

impl DataKey {
    pub(crate) fn new(raw: &[u8; 32], header: &Header) -> Result<DataKey> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).map_err(|_| Error::Random)?);
        Ok(DataKey {
            key,
            aad: header.segment_aad(),
            prefix: header.nonce_prefix,
            segment_size: header.segment_size as usize,
        })
    }

    /// Seals one segment in place: `buf` holds the plaintext followed by 16 spare bytes.
    pub(crate) fn seal(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<()> {
        let n = buf.len() - TAG_LEN;
        let nonce = Nonce::assume_unique_for_key(segment_nonce(&self.prefix, index, last));
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&self.aad), &mut buf[..n])
            .map_err(|_| Error::TooLarge)?;
        buf[n..].copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens one segment in place (ciphertext || tag); true when it authenticated. On
    /// success the first `len - 16` bytes hold the plaintext.
    pub(crate) fn open(&self, index: u64, last: bool, buf: &mut [u8]) -> bool {
        let nonce = Nonce::assume_unique_for_key(segment_nonce(&self.prefix, index, last));
        self.key
            .open_in_place(nonce, Aad::from(&self.aad), buf)
            .is_ok()
    }

    /// Opens segment `index` which was read as final (`last`) or not, and classifies a
    /// failure: a final-looking segment that opens as non-final means truncation; a
    /// non-final-looking one that opens as final means trailing data.
    /// `original` is a copy of the stored segment (`open` may overwrite `buf` on failure).
    pub(crate) fn open_classified(
        &self,
        index: u64,
        last: bool,
        buf: &mut [u8],
        original: &[u8],
        offset: u64,
    ) -> Result<()> {
        if self.open(index, last, buf) {
            return Ok(());
        }
        let mut probe = original.to_vec();
        if self.open(index, !last, &mut probe) {
            let end = offset + buf.len() as u64;
            return Err(if last {
                Error::Truncated { len: end }
            } else {
                Error::TrailingData { offset: end }
            });
        }
        Err(Error::CorruptSegment { index, offset })
    }
}

/// Creates a header and data key for a new pack sealed with `secret`.
pub(crate) fn new_pack(secret: Secret<'_>, opts: &EncryptOptions) -> Result<(Header, DataKey)> {
    if opts.segment_size == 0 || opts.segment_size > MAX_SEGMENT_SIZE {
        return Err(Error::InvalidOption("segment size must be 1..=64 MiB"));
    }
    let data_key = Zeroizing::new(random_bytes::<32>()?);
    let nonce_prefix = random_bytes::<NONCE_PREFIX_LEN>()?;
    let (kdf, kek) = kek_for_new(secret, opts.kdf)?;
    let header = seal_header(
        opts.segment_size,
        nonce_prefix,
        kdf,
        &kek,
        random_bytes()?,
        &data_key,
    )?;
    let dk = DataKey::new(&data_key, &header)?;
    Ok((header, dk))
}

/// Builds a header around `data_key` (deterministic given its inputs: used by the test
/// vector).
pub(crate) fn seal_header(
    segment_size: u32,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    kdf: Kdf,
    kek: &[u8; 32],
    wrap_nonce: [u8; 12],
    data_key: &[u8; 32],
) -> Result<Header> {
    let mut header = Header {
        segment_size,
        nonce_prefix,
        kdf,
        key_id: KeyId::of(kek),
        wrap_nonce,
        wrapped_key: [0; 48],
    };
    header.wrapped_key = wrap(kek, &wrap_nonce, &header.wrap_aad(), data_key)?;
    Ok(header)
}

/// The KEK and KDF header fields for sealing a new pack (a fresh salt for passphrases).
fn kek_for_new(secret: Secret<'_>, params: KdfParams) -> Result<(Kdf, Zeroizing<[u8; 32]>)> {
    match secret {
        Secret::Key(k) => Ok((Kdf::KeyFile, Zeroizing::new(*k.secret()))),
        Secret::Passphrase(p) => {
            let salt = random_bytes::<16>()?;
            let kek = params.derive(p, &salt)?;
            Ok((Kdf::Argon2id { params, salt }, kek))
        }
    }
}

/// Derives the KEK for an existing header, checking the key id (wrong key / passphrase).
fn kek_for_header(header: &Header, secret: Secret<'_>) -> Result<Zeroizing<[u8; 32]>> {
    let kek = match (header.kdf, secret) {
        (Kdf::KeyFile, Secret::Key(k)) => {
            if k.id() != header.key_id {
                return Err(Error::WrongKey {
                    expected: header.key_id,
                    given: k.id(),
                });
            }
            Zeroizing::new(*k.secret())
        }
        (Kdf::Argon2id { params, salt }, Secret::Passphrase(p)) => {
            let kek = params.derive(p, &salt)?;
            if KeyId::of(&kek) != header.key_id {
                return Err(Error::WrongPassphrase);
            }
            kek
        }
        (Kdf::KeyFile, s) => {
            return Err(Error::WrongSecretKind {
                needed: SecretKind::KeyFile,
                given: s.kind(),
            });
        }
        (Kdf::Argon2id { .. }, s) => {
            return Err(Error::WrongSecretKind {
                needed: SecretKind::Passphrase,
                given: s.kind(),
            });
        }
    };
    Ok(kek)
}

/// Unwraps the data key of a pack.
pub(crate) fn open_pack(header: &Header, secret: Secret<'_>) -> Result<DataKey> {
    let kek = kek_for_header(header, secret)?;
    let raw = unwrap(
        &kek,
        &header.wrap_nonce,
        &header.wrap_aad(),
        &header.wrapped_key,
    )
    .ok_or(Error::HeaderTampered)?;
    DataKey::new(&raw, header)
}

/// Rewraps the data key of `header` from `old` to `new` (KEK rotation): returns the new
/// 132-byte header. The stream part of the header (and so every segment) is unchanged,
/// so the segments that follow stay valid as they are.
pub fn rewrap_header(
    header: &[u8],
    old: Secret<'_>,
    new: Secret<'_>,
    kdf_params: KdfParams,
) -> Result<[u8; HEADER_LEN]> {
    let parsed = Header::decode(header)?;
    let kek = kek_for_header(&parsed, old)?;
    let raw = unwrap(
        &kek,
        &parsed.wrap_nonce,
        &parsed.wrap_aad(),
        &parsed.wrapped_key,
    )
    .ok_or(Error::HeaderTampered)?;
    let (kdf, new_kek) = kek_for_new(new, kdf_params)?;
    let out = seal_header(
        parsed.segment_size,
        parsed.nonce_prefix,
        kdf,
        &new_kek,
        random_bytes()?,
        &raw,
    )?;
    Ok(out.encode())
}

/// Opens consecutive segments in place in `buf` (a copy of `raw`), the first with index
/// `first` at pack offset `offset`, the last read as final when `final_batch`. Returns the
/// first failure (lowest index), classified.
#[expect(
    clippy::too_many_arguments,
    reason = "internal helper; a struct would only rename the arguments"
)]
pub(crate) fn open_batch(
    dk: &DataKey,
    buf: &mut [u8],
    raw: &[u8],
    first: u64,
    offset: u64,
    final_batch: bool,
    threads: usize,
    side: impl FnOnce(),
) -> Result<()> {
    let chunk = dk.segment_size + TAG_LEN;
    let n = buf.len().div_ceil(chunk) as u64;
    let open_range = |part: &mut [u8], first_index: u64| -> Result<()> {
        for (i, seg) in part.chunks_mut(chunk).enumerate() {
            let index = first_index + i as u64;
            let last = final_batch && index == first + n - 1;
            let rel = (index - first) as usize * chunk;
            let at = offset + rel as u64;
            if seg.len() < TAG_LEN {
                return Err(Error::Truncated {
                    len: at + seg.len() as u64,
                });
            }
            let original = &raw[rel..rel + seg.len()];
            dk.open_classified(index, last, seg, original, at)?;
        }
        Ok(())
    };
    if threads <= 1 || buf.len() < PARALLEL_MIN_BYTES || n < 2 {
        side();
        return open_range(buf, first);
    }
    let per = (n as usize).div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = buf
            .chunks_mut(per * chunk)
            .enumerate()
            .map(|(t, part)| {
                let open_range = &open_range;
                s.spawn(move || open_range(part, first + (t * per) as u64))
            })
            .collect();
        side();
        let mut result = Ok(());
        // Threads hold increasing index ranges: the first error in order is the lowest.
        for h in handles {
            let r = h.join().unwrap_or(Err(Error::Random));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

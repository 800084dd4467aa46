//! The byte layout of a pack header and the nonce/AAD rules (see FORMAT.md, which is the
//! normative description; the offsets here must match it).

use crate::error::{Error, Result};
use crate::key::{KdfParams, KeyId};

/// The eight magic bytes every pack starts with.
pub const MAGIC: [u8; 8] = *b"TAPEBKCP";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Algorithm 1: AES-256-GCM segments in the STREAM construction, AES-256-GCM key wrap.
pub const ALG_AES256GCM_STREAM: u8 = 1;
/// KDF id: the KEK is a 256-bit key from a key file.
pub const KDF_KEYFILE: u8 = 1;
/// KDF id: the KEK is derived from a passphrase with Argon2id (version 0x13).
pub const KDF_ARGON2ID: u8 = 2;

/// Length of the whole header in bytes.
pub const HEADER_LEN: usize = 132;
/// Length of the stream part of the header (hashed into every segment's AAD; not changed by
/// a rewrap).
pub const STREAM_HEADER_LEN: usize = 24;
/// The bytes the key wrap authenticates (everything before the wrapped key).
pub const WRAP_AAD_LEN: usize = 84;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Length of the nonce prefix stored in the header.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Default plaintext bytes per segment: 1 MiB (see FORMAT.md for the reasoning).
pub const DEFAULT_SEGMENT_SIZE: u32 = 1 << 20;
/// Largest segment size accepted (64 MiB): bounds the memory a hostile header can demand.
pub const MAX_SEGMENT_SIZE: u32 = 64 << 20;

/// Argon2 bounds enforced when parsing a header, so that a hostile header cannot demand
/// absurd memory or time (FORMAT.md, "Limits").
pub(crate) const MAX_M_COST_KIB: u32 = 4 << 20;
pub(crate) const MAX_T_COST: u32 = 64;
pub(crate) const MAX_P_COST: u32 = 64;

/// How the key-encryption key (KEK) of a pack is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// The KEK is a 256-bit key read from a key file.
    KeyFile,
    /// The KEK is Argon2id(passphrase, salt, params).
    Argon2id {
        /// Cost parameters.
        params: KdfParams,
        /// 16 random bytes.
        salt: [u8; 16],
    },
}

/// A parsed pack header. Reading it needs no key: it tells which key (by id) and which
/// parameters the pack needs. [`Header::decode`] checks structure only; authenticity is
/// checked when the data key is unwrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub(crate) segment_size: u32,
    pub(crate) nonce_prefix: [u8; NONCE_PREFIX_LEN],
    pub(crate) kdf: Kdf,
    pub(crate) key_id: KeyId,
    pub(crate) wrap_nonce: [u8; 12],
    pub(crate) wrapped_key: [u8; 32 + TAG_LEN],
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

impl Header {
    /// The format version (always [`VERSION`] for a header that decoded).
    pub fn version(&self) -> u8 {
        VERSION
    }
    /// Plaintext bytes per segment (the last segment may be shorter).
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }
    /// Id of the key-encryption key the data key is wrapped under.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// How the KEK is obtained (key file, or passphrase with its Argon2id parameters).
    pub fn kdf(&self) -> Kdf {
        self.kdf
    }

    /// Encodes the header to its 132 bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..WRAP_AAD_LEN].copy_from_slice(&self.wrap_aad());
        b[WRAP_AAD_LEN..].copy_from_slice(&self.wrapped_key);
        b
    }

    /// The first 84 bytes: everything the key wrap authenticates.
    pub(crate) fn wrap_aad(&self) -> [u8; WRAP_AAD_LEN] {
        let mut b = [0u8; WRAP_AAD_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8] = VERSION;
        b[9] = ALG_AES256GCM_STREAM;
        // 10..12 reserved, zero
        b[12..16].copy_from_slice(&self.segment_size.to_le_bytes());
        b[16..23].copy_from_slice(&self.nonce_prefix);
        // 23 reserved, zero
        match self.kdf {
            Kdf::KeyFile => b[24] = KDF_KEYFILE,
            Kdf::Argon2id { params, salt } => {
                b[24] = KDF_ARGON2ID;
                b[44..48].copy_from_slice(&params.m_cost_kib.to_le_bytes());
                b[48..52].copy_from_slice(&params.t_cost.to_le_bytes());
                b[52..56].copy_from_slice(&params.p_cost.to_le_bytes());
                b[56..72].copy_from_slice(&salt);
            }
        }
        // 25..28 reserved, zero
        b[28..44].copy_from_slice(&self.key_id.0);
        b[72..84].copy_from_slice(&self.wrap_nonce);
        b
    }

    /// The associated data of every segment: BLAKE3 of the stream header (bytes 0..24).
    pub(crate) fn segment_aad(&self) -> [u8; 32] {
        let aad = self.wrap_aad();
        *blake3::hash(&aad[..STREAM_HEADER_LEN]).as_bytes()
    }

    /// Parses a header from the first bytes of a pack. Checks magic, version, algorithm,
    /// reserved bytes and ranges; needs no key. `bytes` may be longer than the header.
    pub fn decode(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            let n = bytes.len().min(MAGIC.len());
            if bytes[..n] == MAGIC[..n] {
                // A prefix of the magic: a pack cut inside its header.
                return Err(Error::Truncated {
                    len: bytes.len() as u64,
                });
            }
            return Err(Error::NotCryptpack {
                found: bytes[..n].to_vec(),
            });
        }
        if bytes.len() > 8 && bytes[8] != VERSION {
            return Err(Error::UnsupportedVersion { version: bytes[8] });
        }
        if bytes.len() > 9 && bytes[9] != ALG_AES256GCM_STREAM {
            return Err(Error::UnsupportedAlgorithm { id: bytes[9] });
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated {
                len: bytes.len() as u64,
            });
        }
        let b = &bytes[..HEADER_LEN];
        if b[10] != 0 || b[11] != 0 || b[23] != 0 || b[25..28] != [0, 0, 0] {
            return Err(Error::InvalidHeader {
                field: "reserved",
                problem: "is not zero",
            });
        }
        let segment_size = u32_at(b, 12);
        if segment_size == 0 || segment_size > MAX_SEGMENT_SIZE {
            return Err(Error::InvalidHeader {
                field: "segment_size",
                problem: "is outside 1..=64 MiB",
            });
        }
        let kdf = match b[24] {
            KDF_KEYFILE => {
                if b[44..72].iter().any(|&x| x != 0) {
                    return Err(Error::InvalidHeader {
                        field: "kdf_params",
                        problem: "must be zero for a key-file pack",
                    });
                }
                Kdf::KeyFile
            }
            KDF_ARGON2ID => {
                let params = KdfParams {
                    m_cost_kib: u32_at(b, 44),
                    t_cost: u32_at(b, 48),
                    p_cost: u32_at(b, 52),
                };
                params.check().map_err(|problem| Error::InvalidHeader {
                    field: "kdf_params",
                    problem,
                })?;
                let mut salt = [0u8; 16];
                salt.copy_from_slice(&b[56..72]);
                Kdf::Argon2id { params, salt }
            }
            id => return Err(Error::UnsupportedKdf { id }),
        };
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&b[16..23]);
        let mut key_id = [0u8; 16];
        key_id.copy_from_slice(&b[28..44]);
        let mut wrap_nonce = [0u8; 12];
        wrap_nonce.copy_from_slice(&b[72..84]);
        let mut wrapped_key = [0u8; 48];
        wrapped_key.copy_from_slice(&b[84..132]);
        Ok(Header {
            segment_size,
            nonce_prefix,
            kdf,
            key_id: KeyId(key_id),
            wrap_nonce,
            wrapped_key,
        })
    }
}

/// The nonce of segment `index`: prefix(7) || index as u32 big-endian || final flag.
pub(crate) fn segment_nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    // Callers keep index < 2^32 (Error::TooLarge otherwise).
    n[7..11].copy_from_slice(&(index as u32).to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Size and shape of a pack computed from its total length (no key needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Plaintext bytes per full segment.
    pub segment_size: u32,
    /// Total pack length in bytes (header included).
    pub pack_len: u64,
    /// Number of segments.
    pub segments: u64,
    /// Plaintext length in bytes.
    pub plaintext_len: u64,
}

impl Layout {
    /// Computes the layout of a pack of `pack_len` bytes with this segment size. Fails with
    /// [`Error::Truncated`] when the length cannot hold a final segment.
    pub fn new(segment_size: u32, pack_len: u64) -> Result<Layout> {
        let body = pack_len.saturating_sub(HEADER_LEN as u64);
        let chunk = u64::from(segment_size) + TAG_LEN as u64;
        if body < TAG_LEN as u64 {
            return Err(Error::Truncated { len: pack_len });
        }
        let full = body / chunk;
        let rest = body % chunk;
        let (segments, last_len) = if rest == 0 {
            (full, chunk)
        } else {
            (full + 1, rest)
        };
        if last_len < TAG_LEN as u64 {
            return Err(Error::Truncated { len: pack_len });
        }
        if segments > 1 << 32 {
            return Err(Error::TooLarge);
        }
        let plaintext_len = (segments - 1) * u64::from(segment_size) + (last_len - TAG_LEN as u64);
        Ok(Layout {
            segment_size,
            pack_len,
            segments,
            plaintext_len,
        })
    }

    /// The byte offset of segment `index` in the pack.
    pub fn segment_offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * (u64::from(self.segment_size) + TAG_LEN as u64)
    }

    /// The stored length (ciphertext + tag) of segment `index`.
    pub fn segment_len(&self, index: u64) -> u64 {
        if index + 1 == self.segments {
            self.pack_len - self.segment_offset(index)
        } else {
            u64::from(self.segment_size) + TAG_LEN as u64
        }
    }
}

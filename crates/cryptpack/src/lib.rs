//! cryptpack encrypts and decrypts streams of any length into *packs*: a 132-byte header
//! followed by fixed-size AES-256-GCM segments in the STREAM construction (the segment
//! counter and a final-segment flag are in each nonce, the header hash is each segment's
//! associated data), so that any flipped bit, reordering, dropping, duplication, truncation
//! or extension is detected and reported with its own error. Each pack has a random data
//! key wrapped under a key-encryption key (KEK) from a key file or from a passphrase through
//! Argon2id; rotating the KEK rewrites the header only. Sealing runs on worker threads and
//! computes BLAKE3 hashes of the plaintext and of the pack in the same pass. The byte
//! layout is specified in `FORMAT.md` next to this crate's `Cargo.toml`.
//!
//! cryptpack does no I/O of its own beyond the `Read`/`Write`/`Seek` values and files it
//! is handed (plus key files, and the temporary file of [`decrypt_to_path`]).
//! [`encrypt_file`] seals one file into another (no buffers in between).
//!
//! # Brief overview
//!
//! * [`Encryptor`] is a `Write` adapter; [`Encryptor::finish`] seals the final segment and
//!   returns a [`Summary`] (sizes, plaintext and pack hashes, key id).
//! * [`Decryptor`] is a `Read` adapter that only returns plaintext that authenticated and
//!   reports end-of-stream only after the final segment did.
//! * [`PackReader`] is `Read + Seek` over the plaintext, decrypting only the segments a read
//!   touches (partial restores).
//! * [`Key`], [`KeyFile`] and [`Passphrase`] are the secrets; [`Secret`] picks one for an
//!   operation. [`Header`] (from [`read_header`]) and [`inspect`] need no key.
//! * [`OpensslDecryptor`] reads the seed tool's `openssl enc -aes-256-cbc -pbkdf2` files
//!   (unauthenticated; for restoring old tapes).
//! * [`Error`] has one variant per failure a caller may branch on (wrong key, wrong
//!   passphrase, tampered header, corrupt segment, truncated, trailing data, ...).
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use cryptpack::{Decryptor, EncryptOptions, Encryptor, Key, Secret};
//!
//! # fn main() -> Result<(), cryptpack::Error> {
//! let key = Key::generate()?;
//! let mut enc = Encryptor::new(Vec::new(), Secret::Key(&key), &EncryptOptions::default())?;
//! enc.write_all(b"hello, tape")?;
//! let (summary, pack) = enc.finish_into_inner()?;
//! assert_eq!(summary.plaintext_len, 11);
//!
//! let mut plain = Vec::new();
//! Decryptor::new(&pack[..], Secret::Key(&key))?.read_to_end(&mut plain)?;
//! assert_eq!(plain, b"hello, tape");
//!
//! // Flip one bit: decryption fails with an authentication error, and yields nothing.
//! let mut bad = pack.clone();
//! bad[140] ^= 1;
//! let err = Decryptor::new(&bad[..], Secret::Key(&key))?
//!     .read_to_end(&mut Vec::new())
//!     .map_err(cryptpack::Error::from_io)
//!     .unwrap_err();
//! assert!(matches!(err, cryptpack::Error::CorruptSegment { index: 0, .. }));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod cipher;
mod error;
mod format;
mod key;
mod legacy;
mod ops;
mod read;
mod seal;
mod seek;
#[cfg(test)]
mod tests;
mod treehash;
mod write;

pub use cipher::{EncryptOptions, rewrap_header};
pub use error::{Error, Result, SecretKind};
pub use format::{
    DEFAULT_SEGMENT_SIZE, HEADER_LEN, Header, Kdf, Layout, MAGIC, MAX_SEGMENT_SIZE, VERSION,
};
pub use key::{KdfParams, Key, KeyFile, KeyId, Passphrase, ProtectedKey, Secret};
pub use legacy::{OPENSSL_SEED_ITERATIONS, OpensslDecryptor};
pub use ops::{
    Progress, Silent, ciphertext_hash, decrypt_stream, decrypt_to_path, encrypt_file,
    encrypt_stream, rewrap_file,
};
pub use read::{DecryptOptions, Decryptor, read_header};
pub use seek::{PackInfo, PackReader, inspect};
#[doc(hidden)]
pub use write::bench_seal_only;
pub use write::{Digest, Encryptor, Summary};

/// The fixed key the fuzz target and its seeds use (bytes 0x00..=0x1f).
#[doc(hidden)]
pub const FUZZ_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};

/// Entry point of the `cryptpack_decode` fuzz target (and its seed-replay test): parses a
/// header, then decrypts the input as a stream and through [`PackReader`] with
/// [`FUZZ_KEY`]. Must never panic, whatever the bytes.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let _ = Header::decode(data);
    let _ = inspect(std::io::Cursor::new(data));
    let key = Key::from_bytes(&FUZZ_KEY);
    let opts = DecryptOptions {
        threads: 1,
        batch_segments: Some(3),
    };
    if let Ok(mut d) = Decryptor::with_options(data, Secret::Key(&key), &opts) {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut d, &mut sink);
        let _ = d.summary();
    }
    if let Ok(mut r) = PackReader::open(std::io::Cursor::new(data), Secret::Key(&key)) {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut r, &mut sink);
        let middle = r.len() / 2;
        let _ = std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(middle));
        let _ = std::io::Read::read(&mut r, &mut [0u8; 7]);
    }
}

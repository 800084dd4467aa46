//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

use crate::key::KeyId;

/// Which kind of secret a pack (or key file) was sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A 256-bit key from a key file.
    KeyFile,
    /// A passphrase stretched with Argon2id.
    Passphrase,
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::KeyFile => "key file",
            SecretKind::Passphrase => "passphrase",
        })
    }
}

/// Everything that can go wrong in cryptpack. Each condition a caller may want to branch on
/// has its own variant; [`Error::is_authentication_failure`] groups the ones that mean "the
/// key is wrong or the data is not what was sealed".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the underlying stream failed.
    #[error("I/O error")]
    Io(#[from] std::io::Error),
    /// The input does not start with the cryptpack magic bytes.
    #[error("not a cryptpack file (starts with {found:02x?}, expected \"TAPEBKCP\")")]
    NotCryptpack {
        /// The first bytes found (up to 8).
        found: Vec<u8>,
    },
    /// The header's format version is not one this build understands.
    #[error("unsupported cryptpack format version {version} (this build reads version 1)")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The header names an algorithm this build does not implement.
    #[error("unsupported cryptpack algorithm id {id}")]
    UnsupportedAlgorithm {
        /// The algorithm byte found.
        id: u8,
    },
    /// The header names a key-derivation method this build does not implement.
    #[error("unsupported key derivation id {id}")]
    UnsupportedKdf {
        /// The KDF byte found.
        id: u8,
    },
    /// A header field is out of range (checked before any key is used).
    #[error("invalid header: {field} {problem}")]
    InvalidHeader {
        /// The field's name as in FORMAT.md.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The pack was sealed under another key (the key ids differ).
    #[error("wrong key: the pack was sealed under key {expected}, the key given is {given}")]
    WrongKey {
        /// Key id stored in the pack header.
        expected: KeyId,
        /// Id of the key that was given.
        given: KeyId,
    },
    /// The passphrase does not derive the key the pack was sealed under.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The pack needs another kind of secret than the one given.
    #[error("the pack was sealed with a {needed}, but a {given} was given")]
    WrongSecretKind {
        /// The kind the header asks for.
        needed: SecretKind,
        /// The kind given.
        given: SecretKind,
    },
    /// The key matched but the header failed authentication: it was modified.
    #[error("header authentication failed: the pack header was modified")]
    HeaderTampered,
    /// A segment failed authentication: corrupted, reordered, duplicated, or from another pack.
    #[error(
        "segment {index} (at byte {offset}) failed authentication: corrupt, reordered or foreign data"
    )]
    CorruptSegment {
        /// Zero-based segment index.
        index: u64,
        /// Byte offset of the segment in the pack.
        offset: u64,
    },
    /// The pack ends before its final segment.
    #[error("truncated pack: it ends at byte {len} before its final segment")]
    Truncated {
        /// Number of bytes present.
        len: u64,
    },
    /// Bytes follow the final segment.
    #[error("trailing data after the final segment, starting at byte {offset}")]
    TrailingData {
        /// Offset of the first byte after the final segment.
        offset: u64,
    },
    /// The stream would need more than 2^32 segments.
    #[error("pack too large: more than 2^32 segments")]
    TooLarge,
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(&'static str),
    /// A key file could not be parsed or does not check out.
    #[error("key file {path}: {problem}")]
    InvalidKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// A key or passphrase file can be read by group or others.
    #[error("{path} is accessible by group or others (mode {mode:o}); run chmod 600 on it")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing a key or passphrase file failed.
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file is protected by a passphrase and none was given.
    #[error("key file {path} is protected by a passphrase")]
    KeyFileNeedsPassphrase {
        /// The file.
        path: PathBuf,
    },
    /// The passphrase is empty.
    #[error("empty passphrase")]
    EmptyPassphrase,
    /// Argon2 refused its parameters.
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A legacy file does not start with openssl's `Salted__` header.
    #[error("not an openssl enc file with salt (starts with {found:02x?}, expected \"Salted__\")")]
    NotOpensslSalted {
        /// The first bytes found (up to 8).
        found: Vec<u8>,
    },
    /// A legacy openssl file's final padding is invalid: wrong passphrase (or iteration
    /// count), or corrupt data.
    #[error("wrong passphrase or corrupt data (invalid padding in the openssl file)")]
    LegacyBadPadding,
    /// The operation was cancelled through its cancel flag.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// True for failures that mean "wrong key or passphrase, or the data is not what was
    /// sealed": wrong key/passphrase, tampered header, corrupt segment, truncation, trailing
    /// data. (Not for I/O errors or files of another format.)
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            Error::WrongKey { .. }
                | Error::WrongPassphrase
                | Error::HeaderTampered
                | Error::CorruptSegment { .. }
                | Error::Truncated { .. }
                | Error::TrailingData { .. }
                | Error::LegacyBadPadding
        )
    }

    /// Recovers a cryptpack error that travelled through a `std::io::Error` (as the
    /// [`Read`](std::io::Read)/[`Write`](std::io::Write) adapters must return), or wraps a
    /// plain I/O error.
    pub fn from_io(e: std::io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(inner) = e.into_inner()
                && let Ok(ours) = inner.downcast::<Error>()
            {
                return *ours;
            }
            return Error::Io(std::io::Error::other("unrecoverable wrapped error"));
        }
        Error::Io(e)
    }

    /// Wraps this error into an `std::io::Error` (kind `InvalidData` for data problems).
    pub(crate) fn into_io(self) -> std::io::Error {
        match self {
            Error::Io(e) => e,
            Error::Cancelled => std::io::Error::new(std::io::ErrorKind::Interrupted, self),
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }

    /// A copy of a data error (for adapters that must report the same failure again).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::CorruptSegment { index, offset } => Error::CorruptSegment {
                index: *index,
                offset: *offset,
            },
            Error::Truncated { len } => Error::Truncated { len: *len },
            Error::TrailingData { offset } => Error::TrailingData { offset: *offset },
            Error::TooLarge => Error::TooLarge,
            Error::LegacyBadPadding => Error::LegacyBadPadding,
            Error::Cancelled => Error::Cancelled,
            Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            other => Error::Io(std::io::Error::other(other.to_string())),
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

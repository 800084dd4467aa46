//! The [`Store`] seam and the values it hands back.

use std::fmt;
use std::io::{Read, Write};
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// A SHA-256 digest. Displays (and parses) as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Sha256 {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 hex digest: {0:?}")]
pub struct ParseSha256Error(pub String);

impl FromStr for Sha256 {
    type Err = ParseSha256Error;
    fn from_str(s: &str) -> Result<Sha256, ParseSha256Error> {
        let bad = || ParseSha256Error(s.chars().take(80).collect());
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = u8::try_from(hi * 16 + lo).map_err(|_| bad())?;
        }
        Ok(Sha256(out))
    }
}

/// Incremental SHA-256 (ring, SHA-NI where the CPU has it).
pub(crate) struct Hasher(ring::digest::Context);

impl Hasher {
    pub(crate) fn new() -> Hasher {
        Hasher(ring::digest::Context::new(&ring::digest::SHA256))
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub(crate) fn finish(self) -> Sha256 {
        let d = self.0.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Sha256(out)
    }
}

/// What the store says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the store's prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time (UTC).
    pub last_modified: SystemTime,
    /// Entity tag, if the store has one (S3: MD5 for single PUTs, `…-N` for multipart).
    pub etag: Option<String>,
    /// Version id on versioned buckets.
    pub version: Option<String>,
}

/// The result of an upload: what was sent, hashed on the way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Key relative to the store's prefix.
    pub key: String,
    /// Bytes sent.
    pub size: u64,
    /// SHA-256 of the bytes sent.
    pub sha256: Sha256,
    /// Number of parts (1 for a single PUT).
    pub parts: u64,
    /// Entity tag the store returned.
    pub etag: Option<String>,
}

/// The result of a download: what arrived, hashed on the way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// Bytes received.
    pub size: u64,
    /// SHA-256 of the bytes received.
    pub sha256: Sha256,
}

/// What a delete removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Object versions removed (1 on an unversioned bucket or a local directory).
    pub versions: u64,
    /// Delete markers removed (versioned buckets only).
    pub delete_markers: u64,
}

/// A URL that lets anyone holding it GET one object until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    /// The URL (`https://…?X-Amz-Signature=…`, or `file:///…` for a local store).
    pub url: String,
    /// When the signature expires; `None` for `file://` URLs, which never expire.
    pub expires: Option<SystemTime>,
}

/// What an object should be, to check it against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: Sha256,
}

/// How thoroughly [`Store::verify`] checks an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyDepth {
    /// HEAD only: the object exists and has the expected size. Cheap; catches truncation
    /// and missing objects, not bit rot.
    Size,
    /// Download everything and compare the SHA-256. Catches any change of content.
    Content,
}

/// Progress of a long transfer. Called from the calling thread, in order.
pub trait Progress {
    /// `bytes` more bytes were handed to the store (upload) or to the writer (download).
    fn advance(&self, bytes: u64);
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64) {}
}

/// An object store: the seam between tapebackup and S3-compatible storage. Two
/// implementations: [`S3Store`](crate::S3Store) and [`LocalStore`](crate::LocalStore).
///
/// Keys are `/`-separated relative paths (`archives/host/12/chunk-000001`); each segment must
/// be non-empty and not `.` or `..`. All methods block; none may be called from inside an
/// async runtime.
pub trait Store: Send + Sync + fmt::Debug {
    /// Where this store is, for messages: `s3://bucket/prefix` or a directory path.
    fn location(&self) -> String;

    /// Uploads everything `reader` yields to `key`, replacing any object there. Data larger
    /// than one part goes as a multipart upload with parts sent in parallel; a failed or
    /// cancelled multipart upload is aborted (no orphan parts are left behind).
    fn upload(
        &self,
        key: &str,
        reader: &mut dyn Read,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Uploaded>;

    /// Uploads a small buffer.
    fn put(&self, key: &str, data: &[u8]) -> Result<Uploaded> {
        let mut r = data;
        self.upload(key, &mut r, &NoProgress, &AtomicBool::new(false))
    }

    /// Streams the object into `out`, hashing it.
    fn download(
        &self,
        key: &str,
        out: &mut dyn Write,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<Downloaded>;

    /// Reads a whole (small) object into memory.
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.download(key, &mut out, &NoProgress, &AtomicBool::new(false))?;
        Ok(out)
    }

    /// Reads a byte range of an object.
    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>>;

    /// Size, time and tags of an object; [`Error::NotFound`] if it is not there.
    fn head(&self, key: &str) -> Result<ObjectInfo>;

    /// Every object whose key lies under `prefix` (a `/`-separated directory prefix, `""` for
    /// all), sorted by key.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Deletes an object for real: on a versioned bucket every version and delete marker of
    /// the key is removed (a plain S3 DELETE would only hide it). Deleting a missing key is
    /// not an error (returns zero counts).
    fn delete(&self, key: &str) -> Result<Deleted>;

    /// A URL that lets its holder GET the object without credentials until it expires
    /// (at most 7 days for S3).
    fn presign_get(&self, key: &str, expires_in: Duration) -> Result<PresignedUrl>;

    /// Checks that what landed is what was meant: the size by HEAD, and with
    /// [`VerifyDepth::Content`] the SHA-256 of a full read.
    fn verify(&self, key: &str, expected: &Expected, depth: VerifyDepth) -> Result<ObjectInfo> {
        let info = self.head(key)?;
        if info.size != expected.size {
            return Err(Error::SizeMismatch {
                key: key.to_string(),
                expected: expected.size,
                actual: info.size,
            });
        }
        if depth == VerifyDepth::Content {
            let got = self.download(
                key,
                &mut std::io::sink(),
                &NoProgress,
                &AtomicBool::new(false),
            )?;
            if got.size != expected.size {
                return Err(Error::SizeMismatch {
                    key: key.to_string(),
                    expected: expected.size,
                    actual: got.size,
                });
            }
            if got.sha256 != expected.sha256 {
                return Err(Error::HashMismatch {
                    key: key.to_string(),
                    expected: expected.sha256.to_string(),
                    actual: got.sha256.to_string(),
                });
            }
        }
        Ok(info)
    }
}

/// Checks a key: relative, `/`-separated, no empty, `.` or `..` segment, no control
/// characters, at most 1024 bytes.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if key.contains('\\') {
        return bad("contains a backslash");
    }
    for seg in key.split('/') {
        if seg.is_empty() {
            return bad("empty path segment (leading, trailing or double '/')");
        }
        if seg == "." || seg == ".." {
            return bad("'.' or '..' segment");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            Sha256::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn keys() {
        for ok in ["a", "a/b", "archives/host 1/0/chunk-000001", "ünï/cödé"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", ".", "a/./b", "a\nb", "a\\b",
        ] {
            assert!(
                matches!(validate_key(bad), Err(Error::InvalidKey { .. })),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn sha256_hex_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let h = Sha256(bytes);
            prop_assert_eq!(h.to_string().parse::<Sha256>().unwrap(), h);
        }

        #[test]
        fn sha256_parse_never_panics(s in ".{0,80}") {
            let _ = s.parse::<Sha256>();
        }
    }
}

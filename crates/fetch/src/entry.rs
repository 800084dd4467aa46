//! What a source lists: one regular file, its raw-bytes path and its metadata.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A modification time: whole seconds since the Unix epoch (negative before 1970) plus
/// nanoseconds (`0..1_000_000_000`). Sources that only know seconds (SFTP v3) give `nanos == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mtime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Mtime {
    /// Builds an mtime; nanoseconds above one second are clamped.
    pub fn new(secs: i64, nanos: u32) -> Self {
        Mtime {
            secs,
            nanos: nanos.min(999_999_999),
        }
    }

    /// Converts a `SystemTime` (as read from file metadata).
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Mtime::new(
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(e) => {
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if d.subsec_nanos() == 0 {
                    Mtime::new(-secs, 0)
                } else {
                    Mtime::new(-secs - 1, 1_000_000_000 - d.subsec_nanos())
                }
            }
        }
    }

    /// Converts to a `SystemTime` (to set on a staged file).
    pub fn to_system_time(self) -> SystemTime {
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.secs.unsigned_abs()) + nanos
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs()) + nanos
        }
    }
}

impl fmt::Display for Mtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// A BLAKE3 content hash (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes a byte slice (handy in tests and for small files).
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex, 64 characters (the format `b3sum` prints).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses 64 hex digits (either case). `None` for anything else.
    pub fn from_hex(s: &[u8]) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0])?;
            let lo = hex_val(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(ContentHash(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// One regular file as a source lists it.
///
/// `path` is relative to the source root, as raw bytes (any byte but NUL; `/` separates
/// components). It never is empty, never starts with `/`, and has no `.`, `..` or empty
/// component: [`is_safe_relative_path`] holds for every entry a source returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the source root, raw bytes.
    pub path: Vec<u8>,
    /// Size in bytes at listing time.
    pub size: u64,
    /// Modification time at listing time.
    pub mtime: Mtime,
    /// Permission bits (`0o7777` mask), as listed.
    pub mode: u32,
    /// The content hash the source computed remotely, when it was asked to.
    pub hash: Option<ContentHash>,
}

impl Entry {
    /// The path as an `OsStr` (lossless on Unix).
    pub fn path_os(&self) -> &OsStr {
        OsStr::from_bytes(&self.path)
    }

    /// Where this entry lands under a staging directory.
    pub fn staged_path(&self, staging: &Path) -> PathBuf {
        staging.join(self.path_os())
    }

    /// The path for messages: lossy UTF-8 (never use it to open a file).
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// True when `path` is a safe relative path: non-empty, not absolute, no NUL, no empty,
/// `.` or `..` component. Paths from a remote listing are untrusted; anything else could
/// write outside the staging directory.
pub fn is_safe_relative_path(path: &[u8]) -> bool {
    !path.is_empty()
        && !path.contains(&0)
        && path
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = ContentHash::of(b"abc");
        assert_eq!(ContentHash::from_hex(h.to_hex().as_bytes()), Some(h));
        assert_eq!(
            h.to_hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(ContentHash::from_hex(b"zz"), None);
    }

    #[test]
    fn safe_paths() {
        for (p, ok) in [
            (&b"a"[..], true),
            (b"a/b c/\n\xff", true),
            (b"-x", true),
            (b"..a", true),
            (b"", false),
            (b"/a", false),
            (b"a//b", false),
            (b"a/", false),
            (b"./a", false),
            (b"a/../b", false),
            (b"..", false),
            (b"a\0b", false),
        ] {
            assert_eq!(
                is_safe_relative_path(p),
                ok,
                "{:?}",
                String::from_utf8_lossy(p)
            );
        }
    }

    #[test]
    fn mtime_system_time_round_trip() {
        for m in [
            Mtime::new(0, 0),
            Mtime::new(1_700_000_000, 123_456_789),
            Mtime::new(-5, 250),
        ] {
            assert_eq!(Mtime::from_system_time(m.to_system_time()), m);
        }
    }
}

//! Plain data types of the catalog API: ids, timestamps, hashes, states and records.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// A point in time, UTC, with one-second resolution.
///
/// Stored in the catalog as INTEGER seconds since 1970-01-01T00:00:00Z (negative before).
/// Formatting for people (RFC 3339) is the caller's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From seconds since the Unix epoch, UTC.
    pub const fn from_unix_seconds(secs: i64) -> Timestamp {
        Timestamp(secs)
    }
    /// Seconds since the Unix epoch, UTC.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }
    /// The current time (clamped to the epoch if the clock is before 1970).
    pub fn now() -> Timestamp {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(secs)
    }
    /// From a `SystemTime` (e.g. a file's mtime), truncated to whole seconds.
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => {
                let d = e.duration();
                let mut s = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if d.subsec_nanos() > 0 {
                    s -= 1;
                }
                Timestamp(s)
            }
        }
    }
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) i64);
        impl $name {
            /// The row id, for display and for passing back to this catalog.
            pub const fn get(self) -> i64 {
                self.0
            }
            /// An id previously obtained from [`get`](Self::get) (e.g. from a CLI argument).
            /// The catalog checks that it exists when it is used.
            pub const fn from_raw(id: i64) -> Self {
                $name(id)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A source: a remote or local root that files come from.
    SourceId
);
id_type!(
    /// A file: one path under one source.
    FileId
);
id_type!(
    /// One version of a file (size, mtime, content).
    VersionId
);
id_type!(
    /// A unique content (dedup by hash).
    ContentId
);
id_type!(
    /// An encrypted pack.
    PackId
);
id_type!(
    /// A tape or an object-store location.
    VolumeId
);
id_type!(
    /// A pack (or a part of a pack) on a volume.
    LocationId
);
id_type!(
    /// A job (get, pack, write, verify, restore, import run).
    JobId
);

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// The name stored in the catalog (and shown to users).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
            /// All values.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// Parses the stored name.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$var),)+ _ => None }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(
    /// Hash algorithms the catalog knows.
    HashAlgo {
        /// BLAKE3, 32 bytes: cryptpack's plaintext and ciphertext hashes.
        Blake3 = "blake3",
        /// SHA-256, 32 bytes.
        Sha256 = "sha256",
        /// MD5, 16 bytes: only for packs imported from the seed tool.
        Md5 = "md5",
    }
);

impl HashAlgo {
    /// Digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            HashAlgo::Blake3 | HashAlgo::Sha256 => 32,
            HashAlgo::Md5 => 16,
        }
    }
}

/// A content hash: algorithm and digest bytes (length checked).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algo: HashAlgo,
    bytes: Vec<u8>,
}

impl Digest {
    /// A digest; fails when the length does not fit the algorithm.
    pub fn new(algo: HashAlgo, bytes: impl Into<Vec<u8>>) -> Result<Digest> {
        let bytes = bytes.into();
        if bytes.len() != algo.digest_len() {
            return Err(Error::HashLength {
                algo,
                expected: algo.digest_len(),
                got: bytes.len(),
            });
        }
        Ok(Digest { algo, bytes })
    }
    /// From lowercase or uppercase hex.
    pub fn from_hex(algo: HashAlgo, hex: &str) -> Result<Digest> {
        let hex = hex.trim();
        if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidInput {
                what: "hex digest",
                reason: format!("{hex:?} is not hexadecimal"),
            });
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| Error::InvalidInput {
                what: "hex digest",
                reason: e.to_string(),
            })?;
        Digest::new(algo, bytes)
    }
    /// The algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }
    /// The digest bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Lowercase hex of the digest bytes.
    pub fn to_hex(&self) -> String {
        hex(&self.bytes)
    }
}

impl fmt::Display for Digest {
    /// `algo:hex`, e.g. `blake3:af13…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo, self.to_hex())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

str_enum!(
    /// How a pack was made, so a restore knows how to open it.
    PackFormat {
        /// A cryptpack pack (streaming AES-256-GCM, BLAKE3 hashes).
        Cryptpack = "cryptpack",
        /// Imported from the seed tool: `openssl enc -aes-256-cbc -pbkdf2 -iter 100000`
        /// ("Salted__" header), MD5 hashes of plaintext and ciphertext.
        LegacyOpensslAes256CbcPbkdf2 = "openssl-aes-256-cbc-pbkdf2-100000",
    }
);

str_enum!(
    /// Life cycle of a volume.
    VolumeState {
        /// Known, never written.
        Blank = "blank",
        /// Holds data and has room.
        Appendable = "appendable",
        /// No more writes.
        Full = "full",
        /// Taken out of service: its copies no longer count.
        Retired = "retired",
        /// Stored away from the library (still counts as a copy).
        Offsite = "offsite",
    }
);

str_enum!(
    /// Kinds of jobs.
    JobKind {
        /// Fetch files from sources.
        Get = "get",
        /// Encrypt versions into packs.
        Pack = "pack",
        /// Write packs onto volumes.
        Write = "write",
        /// Read back and check packs.
        Verify = "verify",
        /// Restore files.
        Restore = "restore",
        /// Import (legacy database or snapshot merge).
        Import = "import",
    }
);

str_enum!(
    /// How a job ended (or that it has not).
    JobOutcome {
        /// Started and not ended: still running, or killed (then resumable).
        Running = "running",
        /// Completed.
        Succeeded = "succeeded",
        /// Ended with an error.
        Failed = "failed",
        /// Interrupted by the user.
        Cancelled = "cancelled",
    }
);

str_enum!(
    /// Severity of a job event.
    EventLevel {
        /// Informational.
        Info = "info",
        /// Something to look at.
        Warning = "warning",
        /// A failure.
        Error = "error",
    }
);

str_enum!(
    /// Result of verifying a pack on a volume, or a whole volume.
    VerifyOutcome {
        /// Read back and matched.
        Ok = "ok",
        /// Read back but the hash differed.
        Mismatch = "mismatch",
        /// Could not be read (medium error, ...).
        Unreadable = "unreadable",
        /// Not found where the catalog says it is.
        Missing = "missing",
    }
);

/// Where a pack (part) sits on its volume.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Position {
    /// On tape: partition and first logical block (raw format, or LTFS with a known extent).
    Tape {
        /// Partition number (LTFS: 1 is the data partition).
        partition: u32,
        /// First logical block.
        start_block: u64,
    },
    /// A file in an LTFS volume's root, found through the LTFS index at read time (packs
    /// imported from the seed tool; `start_block` when the seed recorded a tape position).
    LtfsFile {
        /// The file name on the LTFS volume.
        name: String,
        /// The recorded position, if any.
        start_block: Option<u64>,
    },
    /// An object in an object-store volume (key relative to the volume's bucket).
    Object {
        /// The object key.
        key: String,
    },
}

/// Which part of a pack a location holds (packs may span volumes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Part {
    /// 0-based part number.
    pub index: u32,
    /// Number of parts the pack was split into (1 when not spanning).
    pub count: u32,
    /// Offset of this part within the pack's ciphertext.
    pub offset: u64,
    /// Bytes in this part (`None` only for legacy imports that did not record sizes).
    pub length: Option<u64>,
}

impl Part {
    /// The whole pack in one piece.
    pub fn whole(length: u64) -> Part {
        Part {
            index: 0,
            count: 1,
            offset: 0,
            length: Some(length),
        }
    }
}

/// A time interval `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
}

/// Which version of each file a query wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionSelector {
    /// The newest version (files deleted at the source are included only when asked).
    #[default]
    Latest,
    /// The newest version the catalog had seen at this time (first seen at or before it, and
    /// not marked deleted by then).
    AsOf(Timestamp),
    /// Version number N (1 is the first version of each file).
    Number(u32),
}

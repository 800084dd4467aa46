//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

use crate::types::{HashAlgo, VersionId};

/// Everything that can go wrong in the catalog. Variants a caller may branch on are separate;
/// context travels in fields.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be opened or created.
    #[error("cannot open catalog {path}")]
    Open {
        /// The catalog file.
        path: PathBuf,
        /// What SQLite said.
        source: DbError,
    },
    /// The file is not a SQLite database (or is damaged beyond opening).
    #[error("{path} is not a tapebackup catalog (not a SQLite database, or damaged)")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The catalog was written by a newer tapebackup whose schema this one does not know.
    #[error("catalog schema version {found} is newer than this tapebackup supports ({supported})")]
    NewerSchema {
        /// The schema version found in the file.
        found: usize,
        /// The newest schema version this build knows.
        supported: usize,
    },
    /// A schema migration failed; the catalog was left at its previous version.
    #[error("catalog schema migration failed")]
    Migration {
        /// What the migration engine said.
        source: DbError,
    },
    /// Another process holds the catalog's write lock longer than the busy timeout.
    #[error("catalog is busy (locked by another process) during {op}")]
    Busy {
        /// The operation that waited.
        op: &'static str,
    },
    /// Any other SQLite failure during an operation.
    #[error("catalog: {op} failed")]
    Sqlite {
        /// The operation.
        op: &'static str,
        /// What SQLite said.
        source: DbError,
    },
    /// A referenced record does not exist.
    #[error("{what} {key} not found in the catalog")]
    NotFound {
        /// Kind of record ("source", "version", "volume", ...).
        what: &'static str,
        /// Its key as the caller gave it.
        key: String,
    },
    /// A record with this unique key already exists.
    #[error("{what} {key} already exists in the catalog")]
    AlreadyExists {
        /// Kind of record.
        what: &'static str,
        /// The clashing key.
        key: String,
    },
    /// A version's content is already stored in a pack: content is packed once.
    #[error("version {version} is already packed (content stored once)")]
    AlreadyPacked {
        /// The version.
        version: VersionId,
    },
    /// A fetched file's size or hash differs from what the catalog recorded for the version.
    #[error("version {version}: fetched content does not match the catalog ({detail})")]
    ContentMismatch {
        /// The version.
        version: VersionId,
        /// What differed.
        detail: String,
    },
    /// A value given by the caller is out of range or malformed; nothing was changed.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A hash had the wrong length for its algorithm.
    #[error("a {algo} hash must be {expected} bytes, got {got}")]
    HashLength {
        /// The algorithm.
        algo: HashAlgo,
        /// Its digest length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The file is a SQLite database but not one of the seed tool's two schemas.
    #[error(
        "{path} is not a legacy Tapebackup database (no files/tapedevices or file/tape tables)"
    )]
    NotLegacy {
        /// The file.
        path: PathBuf,
    },
    /// The catalog holds a value this build cannot decode (corruption or a foreign writer).
    #[error("catalog holds an invalid {what}: {value}")]
    Corrupt {
        /// Which column or field.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// Local file I/O (snapshot destination, snapshot source).
    #[error("I/O error on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The operating system's random generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// A batch call (`record_scans`, `record_fetches`, `record_packs`, `record_locations`)
    /// failed earlier in this transaction and its error was not returned from the closure:
    /// the transaction was rolled back rather than committed with part of the batch.
    #[error("{op} failed earlier in this transaction; the whole transaction was rolled back")]
    TransactionAbandoned {
        /// The batch call that failed.
        op: &'static str,
    },
    /// The caller's cancel flag was set; the operation's transaction was rolled back.
    #[error("cancelled")]
    Cancelled,
}

/// An error from the SQL engine. Opaque on purpose: SQL stays inside the crate.
pub struct DbError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl DbError {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> DbError {
        DbError(Box::new(e))
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DbError {}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps a SQLite error during `op` to the right variant (busy vs. other).
pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| {
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        {
            return Error::Busy { op };
        }
        Error::Sqlite {
            op,
            source: DbError::new(e),
        }
    }
}

/// True when `e` is a UNIQUE constraint violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

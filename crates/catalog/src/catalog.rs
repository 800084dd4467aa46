//! The catalog handle: opening, migrating, connection settings, transactions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use rusqlite_migration::SchemaVersion;

use crate::error::{DbError, Error, Result, sql};
use crate::query::Reader;
use crate::schema::{SCHEMA_VERSION, migrations};
use crate::txn::Txn;

/// `PRAGMA application_id` of a tapebackup catalog: ASCII "TBCt".
pub const APPLICATION_ID: i32 = 0x5442_4374;

/// How long a writer waits for another process's lock before [`Error::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open catalog.
///
/// Reads go through [`Catalog::read`]; every change goes through [`Catalog::write`], which
/// runs a closure in one `BEGIN IMMEDIATE` transaction: all of it is stored or none of it.
#[derive(Debug)]
pub struct Catalog {
    pub(crate) conn: Connection,
    path: Option<PathBuf>,
}

impl Catalog {
    /// Opens (creating if missing) the catalog at `path` and migrates it to the current
    /// schema. Sets WAL mode, foreign keys, `synchronous=FULL` and a busy timeout.
    ///
    /// Refuses a SQLite file that is not a catalog (e.g. a legacy Tapebackup database:
    /// import that with [`Catalog::import_legacy`]) and one written by a newer schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Catalog> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|e| Error::Open {
            path: path.to_path_buf(),
            source: DbError::new(e),
        })?;
        Catalog::setup(conn, Some(path.to_path_buf()))
    }

    /// A fresh catalog in memory (tests, examples, snapshot merges).
    pub fn open_in_memory() -> Result<Catalog> {
        let conn = Connection::open_in_memory().map_err(|e| Error::Open {
            path: PathBuf::from(":memory:"),
            source: DbError::new(e),
        })?;
        Catalog::setup(conn, None)
    }

    /// Opens an existing catalog without creating, migrating or writing anything. Fails with
    /// [`Error::NewerSchema`] or an older-schema error when the version differs.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Catalog> {
        let path = path.as_ref();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::Open {
            path: path.to_path_buf(),
            source: DbError::new(e),
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql("set busy timeout"))?;
        check_is_catalog(&conn, path)?;
        let version = schema_version(&conn, path)?;
        if version != SCHEMA_VERSION {
            return Err(if version > SCHEMA_VERSION {
                Error::NewerSchema {
                    found: version,
                    supported: SCHEMA_VERSION,
                }
            } else {
                Error::InvalidInput {
                    what: "catalog",
                    reason: format!(
                        "schema version {version} needs a migration to {SCHEMA_VERSION}: open it writable once"
                    ),
                }
            });
        }
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(sql("enable foreign keys"))?;
        tune(&conn)?;
        Ok(Catalog {
            conn,
            path: Some(path.to_path_buf()),
        })
    }

    pub(crate) fn setup(mut conn: Connection, path: Option<PathBuf>) -> Result<Catalog> {
        let shown = path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql("set busy timeout"))?;
        check_is_catalog(&conn, &shown)?;
        let version = schema_version(&conn, &shown)?;
        if version > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        // WAL must be set outside a transaction; it persists in the file.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql("set WAL mode"))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
            .map_err(sql("set pragmas"))?;
        tune(&conn)?;
        // Migrations run with foreign keys off (table rebuilds need it) and check them at
        // the end of each step (`foreign_key_check()` on every step).
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| Error::Migration {
                source: DbError::new(e),
            })?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(sql("enable foreign keys"))?;
        Ok(Catalog { conn, path })
    }

    /// The file this catalog lives in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of this build.
    pub const fn schema_version() -> usize {
        SCHEMA_VERSION
    }

    /// Queries, outside any write transaction.
    pub fn read(&self) -> Reader<'_> {
        Reader::new(&self.conn)
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`): committed when `f` returns
    /// `Ok`, rolled back when it returns `Err` (or panics, or the process dies). Also rolled
    /// back, with [`Error::TransactionAbandoned`], when a batch call of [`Txn`] failed and
    /// `f` returned `Ok` anyway: a batch is never stored in part.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&mut Txn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin transaction"))?;
        let mut txn = Txn::new(tx);
        let value = f(&mut txn)?;
        if let Some(op) = txn.abandoned() {
            // Dropping the transaction rolls it back.
            return Err(Error::TransactionAbandoned { op }.into());
        }
        txn.commit()?;
        Ok(value)
    }
}

/// Page cache of one connection: 64 MiB (`PRAGMA cache_size` in KiB when negative). Enough
/// for the B-tree pages a bulk insert into a catalog of a few million files touches
/// (random-order indexes: content hashes, pack names).
const CACHE_KIB: i64 = 64 * 1024;
/// Memory-mapped reads of the database file, up to 256 MiB.
const MMAP_BYTES: i64 = 256 << 20;
/// WAL pages after which a commit checkpoints (SQLite's default is 1000 pages, 4 MB: with
/// transactions of thousands of files that is a checkpoint, with its fsync of the database
/// file, after nearly every commit). 16384 pages of 4 KiB: 64 MiB.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16384;
/// After a checkpoint the WAL file is truncated to at most this size.
const WAL_SIZE_LIMIT: i64 = 64 << 20;
/// Cached prepared statements per connection (rusqlite's default of 16 is fewer than the
/// statements of one scan-to-location pass, so they would be prepared again and again).
const STATEMENT_CACHE: usize = 128;

/// Per-connection performance settings (none of them changes durability or the file).
fn tune(conn: &Connection) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{CACHE_KIB}; PRAGMA mmap_size = {MMAP_BYTES}; \
         PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}; \
         PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))
    .map_err(sql("set pragmas"))
}

/// Refuses SQLite files that are some other program's database.
pub(crate) fn check_is_catalog(conn: &Connection, path: &Path) -> Result<()> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| not_a_db(e, path))?;
    if app_id == APPLICATION_ID {
        return Ok(());
    }
    if app_id != 0 {
        return Err(Error::NotADatabase {
            path: path.to_path_buf(),
        });
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_a_db(e, path))?;
    if tables > 0 {
        return Err(Error::NotADatabase {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

pub(crate) fn schema_version(conn: &Connection, path: &Path) -> Result<usize> {
    match migrations().current_version(conn) {
        Ok(SchemaVersion::NoneSet) => Ok(0),
        Ok(SchemaVersion::Inside(v) | SchemaVersion::Outside(v)) => Ok(v.get()),
        Err(_) => Err(Error::NotADatabase {
            path: path.to_path_buf(),
        }),
    }
}

fn not_a_db(e: rusqlite::Error, path: &Path) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == rusqlite::ErrorCode::NotADatabase
    {
        return Error::NotADatabase {
            path: path.to_path_buf(),
        };
    }
    sql("open")(e)
}

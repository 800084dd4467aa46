//! Import of the seed tool's (Tapebackup) SQLite database, in both of its schemas.
//!
//! Mapping (one transaction; a failure imports nothing):
//! - every row of `files` / `file` becomes a file under one new source, version 1, with
//!   `mtime`, `filesize` (later schema; unknown in the early one), mode 0 (not recorded),
//!   first seen at `downloaded_date`, deleted at the import time when `deleted` is set;
//! - `md5sum_file` becomes the content hash (MD5) when the file was downloaded;
//! - an encrypted file (`packed` / `encrypted` set, `filename_encrypted` present) becomes a
//!   pack named `filename_encrypted`, format
//!   [`PackFormat::LegacyOpensslAes256CbcPbkdf2`](crate::PackFormat), key id `legacy`,
//!   plaintext MD5 `md5sum_file`, ciphertext MD5 `md5sum_encrypted`;
//! - a written file becomes a location on its tape: an LTFS file named `filename_encrypted`
//!   (with `tapeposition` as start block when the later schema has it);
//! - `tapedevices` / `tape` rows become tapes (barcode = `label`, full or appendable);
//! - `verified_count` / `verified_last` become one "ok" verification at `verified_last`;
//! - `alternative_file_names` (early) and `duplicate_id` (later) become further paths with
//!   the same content (path aliases);
//! - `restore_job`, `restore_job_file_map` and `config` are not imported (in-flight restores
//!   and settings of the old tool).
//!
//! Dates are epoch seconds stored as TEXT (integers or decimals are accepted too).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::catalog::Catalog;
use crate::error::{DbError, Error, Result, sql};
use crate::progress::Progress;
use crate::query::collect;
use crate::records::{NewLocation, NewTape, NewVerification};
use crate::txn::Txn;
use crate::types::{
    Digest, HashAlgo, JobKind, JobOutcome, PackFormat, Part, Position, SourceId, Timestamp,
    VerifyOutcome, VolumeId, VolumeState,
};

/// Which of the seed tool's schemas a database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacySchema {
    /// `files`, `tapedevices`, `alternative_file_names`.
    Early,
    /// `file`, `tape`, `restore_job`, `restore_job_file_map`, `config`.
    Later,
}

/// What [`Catalog::import_legacy`] imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyImport {
    /// The schema found.
    pub schema: LegacySchema,
    /// The source the files were put under.
    pub source: SourceId,
    /// Files (paths) imported, aliases included.
    pub files: u64,
    /// Of those, path aliases (alternative names / duplicates).
    pub aliases: u64,
    /// Packs imported.
    pub packs: u64,
    /// Tapes imported (new to this catalog).
    pub tapes: u64,
    /// Locations imported.
    pub locations: u64,
    /// Verification results imported.
    pub verifications: u64,
    /// Rows imported with less than the old tool knew, and why.
    pub warnings: Vec<String>,
}

/// One file row of either schema, normalized.
#[derive(Debug, Default)]
struct Row {
    id: i64,
    duplicate_of: Option<i64>,
    path: String,
    encrypted_name: Option<String>,
    mtime: Option<i64>,
    size: Option<u64>,
    size_encrypted: Option<u64>,
    md5_file: Option<String>,
    md5_encrypted: Option<String>,
    tape: Option<Value>,
    downloaded_date: Option<i64>,
    packed_date: Option<i64>,
    written_date: Option<i64>,
    tape_position: Option<u64>,
    downloaded: bool,
    packed: bool,
    written: bool,
    verified_count: u64,
    verified_last: Option<i64>,
    deleted: bool,
}

/// Parses an epoch-seconds date stored as TEXT, INTEGER or REAL.
fn date(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Real(f) if f.is_finite() => Some(f.floor() as i64),
        Value::Text(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
        }
        _ => None,
    }
}

fn flag(v: &Value) -> bool {
    match v {
        Value::Integer(i) => *i != 0,
        Value::Real(f) => *f != 0.0,
        Value::Text(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
        _ => false,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn count(v: &Value) -> Option<u64> {
    date(v).and_then(|i| u64::try_from(i).ok())
}

fn tables(conn: &Connection) -> Result<Vec<String>> {
    collect(
        conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
        "list legacy tables",
    )
}

/// Reads rows of `table` as name → value maps (the old tool's columns are loosely typed).
fn read_table(conn: &Connection, table: &str) -> Result<Vec<HashMap<String, Value>>> {
    let mut st = conn
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
        .map_err(sql("read legacy table"))?;
    let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
    let rows = st
        .query_map([], |r| {
            let mut m = HashMap::new();
            for (i, n) in names.iter().enumerate() {
                m.insert(n.clone(), r.get::<_, Value>(i)?);
            }
            Ok(m)
        })
        .map_err(sql("read legacy table"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql("read legacy table"))
}

fn get<'a>(m: &'a HashMap<String, Value>, k: &str) -> &'a Value {
    m.get(k).unwrap_or(&Value::Null)
}

fn normalize(m: &HashMap<String, Value>, schema: LegacySchema) -> Row {
    let later = schema == LegacySchema::Later;
    Row {
        id: date(get(m, "id")).unwrap_or(0),
        duplicate_of: if later {
            date(get(m, "duplicate_id"))
        } else {
            None
        },
        path: text(get(m, "path")).unwrap_or_default(),
        encrypted_name: text(get(m, "filename_encrypted")),
        mtime: date(get(m, "mtime")),
        size: count(get(m, "filesize")),
        size_encrypted: count(get(m, "filesize_encrypted")),
        md5_file: text(get(m, "md5sum_file")),
        md5_encrypted: text(get(m, "md5sum_encrypted")),
        tape: Some(get(m, if later { "tape_id" } else { "tape" }).clone())
            .filter(|v| *v != Value::Null),
        downloaded_date: date(get(m, "downloaded_date")),
        packed_date: date(get(
            m,
            if later {
                "encrypted_date"
            } else {
                "packed_date"
            },
        )),
        written_date: date(get(m, "written_date")),
        tape_position: count(get(m, "tapeposition")),
        downloaded: flag(get(m, "downloaded")),
        packed: flag(get(m, if later { "encrypted" } else { "packed" })),
        written: flag(get(m, "written")),
        verified_count: count(get(m, "verified_count")).unwrap_or(0),
        verified_last: date(get(m, "verified_last")),
        deleted: flag(get(m, "deleted")),
    }
}

/// Options of a legacy import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyOptions {
    /// Name of the new source the files go under (must not exist yet).
    pub source_name: String,
    /// Pool for imported tapes.
    pub pool: String,
}

impl Default for LegacyOptions {
    fn default() -> Self {
        LegacyOptions {
            source_name: "legacy".to_owned(),
            pool: "default".to_owned(),
        }
    }
}

impl Catalog {
    /// Imports a database of the seed tool (either schema) in one transaction, recorded as
    /// an `import` job. See the module documentation of the mapping; packs are marked
    /// [`PackFormat::LegacyOpensslAes256CbcPbkdf2`] so a restore can open them. The legacy
    /// file is opened read-only.
    pub fn import_legacy(
        &mut self,
        db: &Path,
        options: &LegacyOptions,
        now: Timestamp,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<LegacyImport> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::Open {
            path: db.to_path_buf(),
            source: DbError::new(e),
        })?;
        let names = tables(&conn).map_err(|e| match e {
            Error::Sqlite { .. } => Error::NotADatabase {
                path: db.to_path_buf(),
            },
            e => e,
        })?;
        let has = |t: &str| names.iter().any(|n| n == t);
        let schema = if has("files") && has("tapedevices") {
            LegacySchema::Early
        } else if has("file") && has("tape") {
            LegacySchema::Later
        } else {
            return Err(Error::NotLegacy {
                path: db.to_path_buf(),
            });
        };
        let (file_table, tape_table) = match schema {
            LegacySchema::Early => ("files", "tapedevices"),
            LegacySchema::Later => ("file", "tape"),
        };
        progress.phase("reading legacy database");
        let rows: Vec<Row> = read_table(&conn, file_table)?
            .iter()
            .map(|m| normalize(m, schema))
            .collect();
        let tapes = read_table(&conn, tape_table)?;
        let aliases = if schema == LegacySchema::Early && has("alternative_file_names") {
            read_table(&conn, "alternative_file_names")?
        } else {
            Vec::new()
        };
        progress.set_total(rows.len() as u64);
        let url = format!("legacy:{}", db.display());
        self.write(|tx| {
            import(
                tx, schema, &rows, &tapes, &aliases, options, &url, now, progress, cancel,
            )
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn import(
    tx: &mut Txn<'_>,
    schema: LegacySchema,
    rows: &[Row],
    tapes: &[HashMap<String, Value>],
    aliases: &[HashMap<String, Value>],
    options: &LegacyOptions,
    url: &str,
    now: Timestamp,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<LegacyImport> {
    let job = tx.start_job(JobKind::Import, now)?;
    let source = tx.add_source(&options.source_name, url, now)?;
    let mut out = LegacyImport {
        schema,
        source,
        files: 0,
        aliases: 0,
        packs: 0,
        tapes: 0,
        locations: 0,
        verifications: 0,
        warnings: Vec::new(),
    };

    // Tapes: by legacy id and by label.
    let mut tape_by_key: HashMap<String, VolumeId> = HashMap::new();
    for t in tapes {
        let Some(label) = text(get(t, "label")) else {
            out.warnings
                .push("a tape row without a label was skipped".to_owned());
            continue;
        };
        let vol = match tx.read().volume_by_barcode(&label)? {
            Some(v) => v.id,
            None => {
                let id = tx.add_tape(
                    &NewTape {
                        barcode: label.clone(),
                        ltfs_uuid: None,
                        generation: None,
                        capacity: None,
                        pool: options.pool.clone(),
                    },
                    now,
                )?;
                let full = flag(get(t, "full"));
                let state = if full {
                    VolumeState::Full
                } else {
                    VolumeState::Appendable
                };
                let at = date(get(t, "full_date")).map_or(now, Timestamp::from_unix_seconds);
                tx.set_volume_state(id, state, at)?;
                out.tapes += 1;
                if count(get(t, "verified_count")).unwrap_or(0) > 0
                    && let Some(last) = date(get(t, "verified_last"))
                {
                    tx.record_verification(
                        &NewVerification {
                            job: Some(job),
                            volume: id,
                            location: None,
                            outcome: VerifyOutcome::Ok,
                            detail: Some(format!(
                                "imported from the seed tool: verified {} times",
                                count(get(t, "verified_count")).unwrap_or(0)
                            )),
                        },
                        Timestamp::from_unix_seconds(last),
                    )?;
                    out.verifications += 1;
                }
                id
            }
        };
        tape_by_key.insert(format!("label:{label}"), vol);
        if let Some(id) = date(get(t, "id")) {
            tape_by_key.insert(format!("id:{id}"), vol);
        }
    }
    let tape_of = |v: &Value| -> Option<VolumeId> {
        match v {
            Value::Integer(i) => tape_by_key
                .get(&format!("id:{i}"))
                .or_else(|| tape_by_key.get(&format!("label:{i}")))
                .copied(),
            other => text(other).and_then(|s| {
                tape_by_key
                    .get(&format!("label:{s}"))
                    .or_else(|| {
                        s.parse::<i64>()
                            .ok()
                            .and_then(|i| tape_by_key.get(&format!("id:{i}")))
                    })
                    .copied()
            }),
        }
    };

    // Content of each legacy row, for aliases and duplicates.
    let mut content_of: HashMap<i64, Digest> = HashMap::new();
    let ordered = rows
        .iter()
        .filter(|r| r.duplicate_of.is_none())
        .chain(rows.iter().filter(|r| r.duplicate_of.is_some()));
    for (n, row) in ordered.enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        progress.set_done(n as u64);
        if row.path.is_empty() {
            out.warnings
                .push(format!("row {}: no path, skipped", row.id));
            continue;
        }
        let first_seen = row
            .downloaded_date
            .or(row.packed_date)
            .or(row.written_date)
            .map_or(now, Timestamp::from_unix_seconds);
        let mut hash = match &row.md5_file {
            Some(h) => match Digest::from_hex(HashAlgo::Md5, h) {
                Ok(d) => Some(d),
                Err(_) => {
                    out.warnings.push(format!(
                        "{}: md5sum_file {h:?} is not an MD5, ignored",
                        row.path
                    ));
                    None
                }
            },
            None => None,
        };
        if let Some(dup) = row.duplicate_of {
            if hash.is_none() {
                hash = content_of.get(&dup).cloned();
            }
            out.aliases += 1;
        }
        let fetched = row.downloaded || row.packed || row.written || row.duplicate_of.is_some();
        let content = match (&hash, fetched) {
            (Some(h), true) => Some(tx.content_row(h, row.size)?),
            _ => None,
        };
        if let Some(h) = &hash {
            content_of.insert(row.id, h.clone());
        }
        let version = insert_version(
            tx,
            source,
            &row.path,
            row.size,
            row.mtime.unwrap_or(0),
            content.map(|c| c.0),
            first_seen,
            row.deleted.then_some(now),
        )?;
        let Some(version) = version else {
            out.warnings.push(format!(
                "{}: path appears twice, second row skipped",
                row.path
            ));
            continue;
        };
        let _ = version;
        out.files += 1;
        if row.duplicate_of.is_some() {
            continue;
        }
        let Some(name) = row
            .encrypted_name
            .as_deref()
            .filter(|_| row.packed || row.written)
        else {
            continue;
        };
        let (Some(content), Some(plain_hash)) = (content, hash.as_ref()) else {
            out.warnings.push(format!(
                "{}: encrypted as {name} but without md5sum_file; left to be fetched again",
                row.path
            ));
            continue;
        };
        let cipher_hash = match row
            .md5_encrypted
            .as_deref()
            .map(|h| Digest::from_hex(HashAlgo::Md5, h))
        {
            Some(Ok(d)) => Some(d),
            Some(Err(_)) => {
                out.warnings.push(format!(
                    "{}: md5sum_encrypted is not an MD5, ignored",
                    row.path
                ));
                None
            }
            None => None,
        };
        let pack = tx.insert_pack_raw(
            name,
            PackFormat::LegacyOpensslAes256CbcPbkdf2,
            "legacy",
            (row.size, Some(plain_hash)),
            (row.size_encrypted, cipher_hash.as_ref()),
            row.packed_date
                .map_or(first_seen, Timestamp::from_unix_seconds),
        )?;
        tx.conn()
            .execute(
                "INSERT INTO pack_member (pack_id, content_id, offset, length) \
                 VALUES (?1, ?2, 0, ?3)",
                params![pack.0, content.0, row.size],
            )
            .map_err(sql("add pack member"))?;
        out.packs += 1;
        if !row.written {
            continue;
        }
        let Some(tape) = row.tape.as_ref().and_then(tape_of) else {
            out.warnings.push(format!(
                "{}: marked written but its tape is unknown; no location recorded",
                row.path
            ));
            continue;
        };
        let written_at = row.written_date.map_or(now, Timestamp::from_unix_seconds);
        let loc = tx.record_location(
            &NewLocation {
                pack,
                volume: tape,
                part: Part {
                    index: 0,
                    count: 1,
                    offset: 0,
                    length: row.size_encrypted,
                },
                position: Position::LtfsFile {
                    name: name.to_owned(),
                    start_block: row.tape_position,
                },
                job: Some(job),
            },
            written_at,
        )?;
        out.locations += 1;
        if row.verified_count > 0
            && let Some(last) = row.verified_last
        {
            tx.record_verification(
                &NewVerification {
                    job: Some(job),
                    volume: tape,
                    location: Some(loc),
                    outcome: VerifyOutcome::Ok,
                    detail: Some(format!(
                        "imported from the seed tool: verified {} times",
                        row.verified_count
                    )),
                },
                Timestamp::from_unix_seconds(last),
            )?;
            out.verifications += 1;
        }
    }

    // Early schema: alternative names of a file (same content, another path).
    for a in aliases {
        let Some(path) = text(get(a, "path")) else {
            continue;
        };
        let target = date(get(a, "files_id"));
        let Some(target_row) = target.and_then(|t| rows.iter().find(|r| r.id == t)) else {
            out.warnings.push(format!(
                "{path}: alternative name of an unknown file, skipped"
            ));
            continue;
        };
        let content = match content_of.get(&target_row.id) {
            Some(h) => Some(tx.content_row(h, target_row.size)?),
            None => None,
        };
        let seen = date(get(a, "date")).map_or(now, Timestamp::from_unix_seconds);
        let v = insert_version(
            tx,
            source,
            &path,
            target_row.size,
            target_row.mtime.unwrap_or(0),
            content.map(|c| c.0),
            seen,
            None,
        )?;
        if v.is_some() {
            out.files += 1;
            out.aliases += 1;
        } else {
            out.warnings.push(format!(
                "{path}: alternative name duplicates a path, skipped"
            ));
        }
    }
    let done = out.files;
    tx.update_job(
        job,
        &crate::records::JobProgress {
            items_done: done,
            items_failed: out.warnings.len() as u64,
            bytes_done: 0,
            resume_state: None,
        },
    )?;
    tx.finish_job(
        job,
        JobOutcome::Succeeded,
        Some(&format!(
            "imported {} files, {} packs, {} tapes from a {:?} legacy database",
            out.files, out.packs, out.tapes, schema
        )),
        now,
    )?;
    Ok(out)
}

/// Inserts a file with one version; `None` when the path already exists in the source.
#[allow(clippy::too_many_arguments)]
fn insert_version(
    tx: &mut Txn<'_>,
    source: SourceId,
    path: &str,
    size: Option<u64>,
    mtime: i64,
    content: Option<i64>,
    first_seen: Timestamp,
    deleted_at: Option<Timestamp>,
) -> Result<Option<i64>> {
    let c = tx.conn();
    let exists: Option<i64> = c
        .prepare_cached("SELECT id FROM file WHERE source_id = ?1 AND path = ?2")
        .and_then(|mut s| {
            s.query_row(params![source.0, path], |r| r.get(0))
                .optional()
        })
        .map_err(sql("find file"))?;
    if exists.is_some() {
        return Ok(None);
    }
    c.prepare_cached("INSERT INTO file (source_id, path) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![source.0, path]))
        .map_err(sql("add file"))?;
    let fid = c.last_insert_rowid();
    c.prepare_cached(
        "INSERT INTO version (file_id, seq, size, mtime, mode, content_id, first_seen, \
         last_seen, deleted_at) VALUES (?1, 1, ?2, ?3, 0, ?4, ?5, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            fid,
            size,
            mtime,
            content,
            first_seen.unix_seconds(),
            deleted_at.map(|d| d.unix_seconds())
        ])
    })
    .map_err(sql("add version"))?;
    Ok(Some(c.last_insert_rowid()))
}

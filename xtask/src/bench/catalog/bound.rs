//! The lower bound of `bench catalog`: the same workload on the smallest schema the
//! issue's model allows, with only the lookups that deduplication and change detection
//! cannot do without, and no checks.
//!
//! The floor ([`super::floor`]) answers "what does SQLite need for the catalog's rows";
//! this stage answers "what would SQLite need for any schema of the model", so a target
//! below it cannot be met by a schema change either. Compared with the catalog's schema:
//!
//! - no `file` table: each version carries its source and path, one unique index
//!   `(path, source_id, seq)` finds a path's versions (the catalog: a `file` row and its
//!   unique index, then `version` and its unique `(file_id, seq)` index, four B-trees
//!   instead of two);
//! - content is found by a UNIQUE index on the hash's first 8 bytes, inserted first
//!   (`INSERT … ON CONFLICT DO NOTHING`, the full hash compared only on a conflict): one
//!   index descent per new content instead of a lookup and then the insert;
//! - pack members are clustered by content (`WITHOUT ROWID`, key `(content_id, pack_id)`),
//!   which is the restore plan's direction; there is no index from a pack to its members
//!   and none from a content to its versions (the catalog has both: search by volume and
//!   path aliases use them);
//! - no `CHECK` constraints, no reading back of versions or pack members.
//!
//! Per file: scan inserts a version first and looks the path up only when it exists
//! (never, in a first backup: the same insert-first the catalog does after a new path);
//! fetched inserts the content and updates the version; packs (with their members) and
//! locations are the floor's stages, on the catalog's `pack`, `volume` and `location`
//! tables without their CHECKs. Same transactions as the catalog and the floor.
//! The rows are counted afterwards (versions, contents, members, packs, locations) and
//! must match the catalog's.
//!
//! The DDL is xtask's own and not a proposal: it gives up queries the catalog answers.

use std::path::Path;
use std::time::Instant;

use rusqlite::{OptionalExtension, TransactionBehavior::Immediate, params};

use super::{
    CATALOG_PRAGMAS, FloorRun, Stage, Workload, cpu_time, digest, path_of, remove_db, size_of,
};

/// The smallest schema of the model (see the module documentation).
const SCHEMA: &str = "
CREATE TABLE source (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL,
    created_at INTEGER NOT NULL) STRICT;
CREATE TABLE content (id INTEGER PRIMARY KEY, hash_algo TEXT NOT NULL, hash BLOB NOT NULL,
    size INTEGER) STRICT;
CREATE UNIQUE INDEX content_by_prefix ON content(substr(hash, 1, 8));
CREATE TABLE version (id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL REFERENCES source(id),
    path TEXT NOT NULL, seq INTEGER NOT NULL, size INTEGER, mtime INTEGER NOT NULL,
    mode INTEGER NOT NULL, content_id INTEGER REFERENCES content(id),
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (path, source_id, seq)) STRICT;
CREATE TABLE pack (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, format TEXT NOT NULL,
    key_id TEXT NOT NULL, plain_size INTEGER, plain_hash_algo TEXT, plain_hash BLOB,
    cipher_size INTEGER, cipher_hash_algo TEXT, cipher_hash BLOB,
    created_at INTEGER NOT NULL) STRICT;
CREATE TABLE pack_member (content_id INTEGER NOT NULL REFERENCES content(id),
    pack_id INTEGER NOT NULL REFERENCES pack(id), offset INTEGER NOT NULL, length INTEGER,
    PRIMARY KEY (content_id, pack_id)) STRICT, WITHOUT ROWID;
CREATE TABLE volume (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, barcode TEXT UNIQUE,
    ltfs_uuid TEXT, generation TEXT, capacity INTEGER, bucket TEXT, prefix TEXT,
    bytes_used INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, pool TEXT NOT NULL,
    created_at INTEGER NOT NULL, full_at INTEGER, UNIQUE (bucket, prefix)) STRICT;
CREATE TABLE location (id INTEGER PRIMARY KEY, pack_id INTEGER NOT NULL REFERENCES pack(id),
    volume_id INTEGER NOT NULL REFERENCES volume(id), part_index INTEGER NOT NULL,
    part_count INTEGER NOT NULL, part_offset INTEGER NOT NULL, length INTEGER,
    position_kind TEXT NOT NULL, partition INTEGER, start_block INTEGER, object_key TEXT,
    written_at INTEGER NOT NULL, job_id INTEGER,
    UNIQUE (pack_id, volume_id, part_index)) STRICT;
CREATE INDEX location_by_volume ON location(volume_id, partition, start_block);
";

const ADD_VERSION: &str = "INSERT INTO version (source_id, path, seq, size, mtime, mode, \
     first_seen, last_seen) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?6) ON CONFLICT DO NOTHING";
const LATEST_VERSION: &str = "SELECT id, size, mtime FROM version \
     WHERE path = ?2 AND source_id = ?1 ORDER BY seq DESC LIMIT 1";
const ADD_CONTENT: &str = "INSERT INTO content (hash_algo, hash, size) VALUES (?1, ?2, ?3) \
     ON CONFLICT DO NOTHING";
const CONTENT_BY_HASH: &str = "SELECT id FROM content \
     WHERE substr(hash, 1, 8) = substr(?2, 1, 8) AND hash_algo = ?1 AND hash = ?2";
const SET_CONTENT: &str = "UPDATE version SET content_id = ?2, size = ?3 WHERE id = ?1";
/// A pack's member, with the floor's parameters (pack, content, offset, length).
const ADD_MEMBER: &str =
    "INSERT INTO pack_member (content_id, pack_id, offset, length) VALUES (?2, ?1, ?3, ?4)";

/// Rows the lower bound wrote: versions, contents, pack members, packs, locations.
pub(super) type BoundRows = [i64; 5];

/// Counts the rows of a lower-bound database (see [`BoundRows`]).
fn rows(conn: &rusqlite::Connection) -> anyhow::Result<BoundRows> {
    let mut out = [0; 5];
    for (slot, table) in
        out.iter_mut()
            .zip(["version", "content", "pack_member", "pack", "location"])
    {
        *slot = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    }
    Ok(out)
}

/// Runs the workload `w` on the smallest schema in a fresh database file `db`.
pub(super) fn run(db: &Path, w: &Workload<'_>) -> anyhow::Result<(FloorRun, BoundRows)> {
    remove_db(db);
    let mut conn = rusqlite::Connection::open(db)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    anyhow::ensure!(mode == "wal", "lower-bound database in journal mode {mode}");
    conn.execute_batch(CATALOG_PRAGMAS)?;
    conn.execute_batch(SCHEMA)?;

    let now = w.now.unix_seconds();
    let blake3 = "blake3";
    let mut stages = Vec::new();
    let mut transactions = 0u64;
    let started = Instant::now();
    let cpu_started = cpu_time()?;
    conn.execute(
        "INSERT INTO source (name, url, created_at) VALUES ('bench', '/bench', ?1)",
        [now],
    )?;
    let src = conn.last_insert_rowid();

    // Scan: a version per new path; a known path is looked up (a change would add
    // version seq + 1; a first backup has none).
    let t = Stage::start()?;
    let mut versions: Vec<i64> = Vec::with_capacity(usize::try_from(w.n)?);
    for &(i, end) in w.chunks {
        let tx = conn.transaction_with_behavior(Immediate)?;
        {
            let mut add = tx.prepare_cached(ADD_VERSION)?;
            let mut latest = tx.prepare_cached(LATEST_VERSION)?;
            for k in i..end {
                let path = path_of(k);
                let added = add.execute(params![
                    src,
                    path,
                    size_of(k),
                    1_600_000_000 + k as i64,
                    0o644,
                    now
                ])?;
                let id = if added == 1 {
                    tx.last_insert_rowid()
                } else {
                    latest.query_row(params![src, path], |r| r.get(0))?
                };
                versions.push(id);
            }
        }
        tx.commit()?;
        transactions += 1;
    }
    stages.push(t.end("scan")?);

    // Fetched: the content (found by its hash on a conflict), the version's content.
    let t = Stage::start()?;
    let mut contents: Vec<i64> = Vec::with_capacity(versions.len());
    for &(i, end) in w.chunks {
        let tx = conn.transaction_with_behavior(Immediate)?;
        {
            let mut add = tx.prepare_cached(ADD_CONTENT)?;
            let mut find = tx.prepare_cached(CONTENT_BY_HASH)?;
            let mut set = tx.prepare_cached(SET_CONTENT)?;
            for k in i..end {
                let hash = digest(1, k)?;
                let content = if add.execute(params![blake3, hash.bytes(), size_of(k)])? == 1 {
                    tx.last_insert_rowid()
                } else {
                    find.query_row(params![blake3, hash.bytes()], |r| r.get(0))
                        .optional()?
                        .ok_or_else(|| anyhow::anyhow!("two hashes share their first 8 bytes"))?
                };
                set.execute(params![versions[usize::try_from(k)?], content, size_of(k)])?;
                contents.push(content);
            }
        }
        tx.commit()?;
        transactions += 1;
    }
    stages.push(t.end("fetched")?);

    // Packs, members and locations: the floor's stages (the catalog's `pack`, `volume`
    // and `location` tables; members clustered by content).
    let t = Stage::start()?;
    let packs = super::floor_packs(
        &mut conn,
        w,
        &contents,
        (super::floor_sql::ADD_PACK, ADD_MEMBER),
        &mut transactions,
    )?;
    stages.push(t.end("packs")?);
    let t = Stage::start()?;
    super::floor_locations(&mut conn, w, &packs, &mut transactions)?;
    stages.push(t.end("locations")?);
    let insert = started.elapsed();
    let insert_cpu = cpu_time()?.saturating_sub(cpu_started);
    let counted = rows(&conn)?;
    drop(conn);
    Ok((
        FloorRun {
            stages,
            insert,
            insert_cpu,
            transactions,
            check: std::time::Duration::ZERO,
            size: super::db_size(db),
        },
        counted,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lower bound writes one version, content and member per file, and the planned
    /// packs and locations, on a small workload.
    #[test]
    fn lower_bound_writes_every_row() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let n = 2_000;
        let chunks: Vec<(u64, u64)> = (0..n).step_by(700).map(|i| (i, (i + 700).min(n))).collect();
        let planned = super::super::plan_packs(n, None);
        let pack_txns = super::super::pack_transactions(&planned, 700);
        let w = Workload {
            n,
            batch: 700,
            chunks: &chunks,
            planned: &planned,
            pack_txns: &pack_txns,
            now: catalog::Timestamp::now(),
        };
        let (run, counted) = run(&dir.path().join("bound.db"), &w)?;
        let packs = i64::try_from(planned.len())?;
        assert_eq!(counted, [2_000, 2_000, 2_000, packs, packs]);
        assert_eq!(run.stages.len(), 4);
        // Scan and fetched commit per chunk, packs per pack transaction, locations at
        // least once.
        assert!(run.transactions > 2 * chunks.len() as u64 + pack_txns.len() as u64);
        Ok(())
    }
}

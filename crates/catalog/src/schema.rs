//! Schema and migrations (`PRAGMA user_version` steps driven by `rusqlite_migration`).
//!
//! Append a migration to [`MIGRATIONS`] to change the schema; never edit a released one.
//! `tests/migrations.rs` opens a catalog created at every earlier version and checks it.

use rusqlite_migration::{M, Migrations};

/// Version 1: the initial schema. All times are INTEGER seconds since the Unix epoch, UTC.
const V1: &str = r#"
-- Marks the file as a tapebackup catalog: ASCII "TBCt" (see catalog::APPLICATION_ID).
PRAGMA application_id = 1413628788;

CREATE TABLE source (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    url         TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE file (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES source(id),
    path        TEXT NOT NULL,
    UNIQUE (source_id, path)
) STRICT;
CREATE INDEX file_by_path ON file(path);

CREATE TABLE content (
    id          INTEGER PRIMARY KEY,
    hash_algo   TEXT NOT NULL CHECK (hash_algo IN ('blake3', 'sha256', 'md5')),
    hash        BLOB NOT NULL,
    size        INTEGER CHECK (size >= 0),
    UNIQUE (hash_algo, hash)
) STRICT;

CREATE TABLE version (
    id          INTEGER PRIMARY KEY,
    file_id     INTEGER NOT NULL REFERENCES file(id),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    size        INTEGER CHECK (size >= 0),
    mtime       INTEGER NOT NULL,
    mode        INTEGER NOT NULL,
    content_id  INTEGER REFERENCES content(id),
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    deleted_at  INTEGER,
    UNIQUE (file_id, seq)
) STRICT;
CREATE INDEX version_by_content ON version(content_id);
CREATE INDEX version_unfetched ON version(id) WHERE content_id IS NULL;

CREATE TABLE pack (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    format            TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    plain_size        INTEGER CHECK (plain_size >= 0),
    plain_hash_algo   TEXT,
    plain_hash        BLOB,
    cipher_size       INTEGER CHECK (cipher_size >= 0),
    cipher_hash_algo  TEXT,
    cipher_hash       BLOB,
    created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE pack_member (
    pack_id     INTEGER NOT NULL REFERENCES pack(id),
    content_id  INTEGER NOT NULL REFERENCES content(id),
    offset      INTEGER NOT NULL CHECK (offset >= 0),
    length      INTEGER CHECK (length >= 0),
    PRIMARY KEY (pack_id, content_id)
) STRICT;
CREATE INDEX pack_member_by_content ON pack_member(content_id);

CREATE TABLE volume (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('tape', 'object')),
    barcode     TEXT UNIQUE,
    ltfs_uuid   TEXT,
    generation  TEXT,
    capacity    INTEGER CHECK (capacity >= 0),
    bucket      TEXT,
    prefix      TEXT,
    bytes_used  INTEGER NOT NULL DEFAULT 0 CHECK (bytes_used >= 0),
    state       TEXT NOT NULL
                CHECK (state IN ('blank', 'appendable', 'full', 'retired', 'offsite')),
    pool        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    full_at     INTEGER,
    CHECK ((kind = 'tape' AND barcode IS NOT NULL AND bucket IS NULL)
        OR (kind = 'object' AND barcode IS NULL AND bucket IS NOT NULL AND prefix IS NOT NULL)),
    UNIQUE (bucket, prefix)
) STRICT;

CREATE TABLE job (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL
                  CHECK (kind IN ('get', 'pack', 'write', 'verify', 'restore', 'import')),
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    outcome       TEXT NOT NULL
                  CHECK (outcome IN ('running', 'succeeded', 'failed', 'cancelled')),
    items_done    INTEGER NOT NULL DEFAULT 0,
    items_failed  INTEGER NOT NULL DEFAULT 0,
    bytes_done    INTEGER NOT NULL DEFAULT 0,
    resume_state  BLOB,
    message       TEXT
) STRICT;

CREATE TABLE location (
    id             INTEGER PRIMARY KEY,
    pack_id        INTEGER NOT NULL REFERENCES pack(id),
    volume_id      INTEGER NOT NULL REFERENCES volume(id),
    part_index     INTEGER NOT NULL CHECK (part_index >= 0),
    part_count     INTEGER NOT NULL CHECK (part_count >= 1 AND part_index < part_count),
    part_offset    INTEGER NOT NULL CHECK (part_offset >= 0),
    length         INTEGER CHECK (length >= 0),
    position_kind  TEXT NOT NULL CHECK (position_kind IN ('tape', 'ltfs_file', 'object')),
    partition      INTEGER,
    start_block    INTEGER,
    object_key     TEXT,
    written_at     INTEGER NOT NULL,
    job_id         INTEGER REFERENCES job(id),
    UNIQUE (pack_id, volume_id, part_index)
) STRICT;
CREATE INDEX location_by_volume ON location(volume_id, partition, start_block);

CREATE TABLE event (
    id       INTEGER PRIMARY KEY,
    job_id   INTEGER REFERENCES job(id),
    at       INTEGER NOT NULL,
    level    TEXT NOT NULL CHECK (level IN ('info', 'warning', 'error')),
    message  TEXT NOT NULL
) STRICT;
CREATE INDEX event_by_job ON event(job_id);

CREATE TABLE verification (
    id           INTEGER PRIMARY KEY,
    job_id       INTEGER REFERENCES job(id),
    volume_id    INTEGER NOT NULL REFERENCES volume(id),
    location_id  INTEGER REFERENCES location(id),
    at           INTEGER NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('ok', 'mismatch', 'unreadable', 'missing')),
    detail       TEXT
) STRICT;
CREATE INDEX verification_by_location ON verification(location_id);
CREATE INDEX verification_by_volume ON verification(volume_id);

CREATE TABLE restore_item (
    job_id      INTEGER NOT NULL REFERENCES job(id),
    version_id  INTEGER NOT NULL REFERENCES version(id),
    done_at     INTEGER,
    PRIMARY KEY (job_id, version_id)
) STRICT;
"#;

/// Version 2: fewer and smaller B-trees on the bulk insert path (issue 3, insert speed).
///
/// - `file`: one unique index on `(path, source_id)` instead of `UNIQUE (source_id, path)`
///   plus `file_by_path`. It answers both lookups of one path in a source (equality on both
///   columns) and path GLOB patterns with a literal prefix (range on `path`), so every new
///   file costs one index entry, not two.
/// - `version_by_content` only indexes versions that have a content: a scanned version no
///   longer gets an entry with a NULL key that its fetch deletes again. Every query that
///   uses it compares `content_id` with `=`, which implies NOT NULL.
/// - `pack_member` and `restore_item` become `WITHOUT ROWID` tables clustered on their
///   primary key: one B-tree each instead of a rowid table plus its primary-key index.
///
/// Tables are rebuilt the way SQLite documents (create new, copy, drop old, rename; foreign
/// keys are off while migrations run and checked after the step). Row ids of `file` are
/// kept, so `version.file_id` stays valid.
const V2: &str = r#"
CREATE TABLE file_v2 (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES source(id),
    path        TEXT NOT NULL,
    UNIQUE (path, source_id)
) STRICT;
INSERT INTO file_v2 (id, source_id, path) SELECT id, source_id, path FROM file ORDER BY id;
DROP TABLE file;
ALTER TABLE file_v2 RENAME TO file;

DROP INDEX version_by_content;
CREATE INDEX version_by_content ON version(content_id) WHERE content_id IS NOT NULL;

CREATE TABLE pack_member_v2 (
    pack_id     INTEGER NOT NULL REFERENCES pack(id),
    content_id  INTEGER NOT NULL REFERENCES content(id),
    offset      INTEGER NOT NULL CHECK (offset >= 0),
    length      INTEGER CHECK (length >= 0),
    PRIMARY KEY (pack_id, content_id)
) STRICT, WITHOUT ROWID;
INSERT INTO pack_member_v2 (pack_id, content_id, offset, length)
    SELECT pack_id, content_id, offset, length FROM pack_member;
DROP TABLE pack_member;
ALTER TABLE pack_member_v2 RENAME TO pack_member;
CREATE INDEX pack_member_by_content ON pack_member(content_id);

CREATE TABLE restore_item_v2 (
    job_id      INTEGER NOT NULL REFERENCES job(id),
    version_id  INTEGER NOT NULL REFERENCES version(id),
    done_at     INTEGER,
    PRIMARY KEY (job_id, version_id)
) STRICT, WITHOUT ROWID;
INSERT INTO restore_item_v2 (job_id, version_id, done_at)
    SELECT job_id, version_id, done_at FROM restore_item;
DROP TABLE restore_item;
ALTER TABLE restore_item_v2 RENAME TO restore_item;
"#;

/// Version 3: insert speed again (issue 3).
///
/// - `content` loses its `UNIQUE (hash_algo, hash)` constraint, whose index held the whole
///   algorithm name and hash (about 48 bytes an entry). Hashes arrive in random order, so a
///   batch of fetched files touches nearly every leaf page of that index and each commit
///   writes them all to the WAL again (measured: 3 GB of WAL for 1M files). In its place
///   `content_by_prefix` indexes the first 8 bytes of the hash (about 17 bytes an entry, a
///   third of the pages). Lookups compare the prefix through the index and then the full
///   algorithm and hash ([`CONTENT_BY_HASH`](crate::ingest::CONTENT_BY_HASH)); a hash is
///   still stored once: the catalog looks it up before adding it, inside the writer's
///   transaction, and `Catalog::check` reports two content rows with one hash
///   (`DuplicateContent`).
/// - The CHECKs on `content.hash_algo` and `location.position_kind` compare with `=` … `OR`
///   instead of `IN (…)`: SQLite evaluates a constant `IN` list of more than two values
///   through a temporary B-tree that it builds again on every execution of the statement
///   (measured: a fifth of the cost of recording a location).
///
/// Both tables are rebuilt (ids kept; foreign keys are off while migrations run and checked
/// after the step).
const V3: &str = r#"
CREATE TABLE content_v3 (
    id          INTEGER PRIMARY KEY,
    hash_algo   TEXT NOT NULL
                CHECK (hash_algo = 'blake3' OR hash_algo = 'sha256' OR hash_algo = 'md5'),
    hash        BLOB NOT NULL,
    size        INTEGER CHECK (size >= 0)
) STRICT;
INSERT INTO content_v3 (id, hash_algo, hash, size)
    SELECT id, hash_algo, hash, size FROM content ORDER BY id;
DROP TABLE content;
ALTER TABLE content_v3 RENAME TO content;
CREATE INDEX content_by_prefix ON content(substr(hash, 1, 8));

CREATE TABLE location_v3 (
    id             INTEGER PRIMARY KEY,
    pack_id        INTEGER NOT NULL REFERENCES pack(id),
    volume_id      INTEGER NOT NULL REFERENCES volume(id),
    part_index     INTEGER NOT NULL CHECK (part_index >= 0),
    part_count     INTEGER NOT NULL CHECK (part_count >= 1 AND part_index < part_count),
    part_offset    INTEGER NOT NULL CHECK (part_offset >= 0),
    length         INTEGER CHECK (length >= 0),
    position_kind  TEXT NOT NULL CHECK (position_kind = 'tape'
                   OR position_kind = 'ltfs_file' OR position_kind = 'object'),
    partition      INTEGER,
    start_block    INTEGER,
    object_key     TEXT,
    written_at     INTEGER NOT NULL,
    job_id         INTEGER REFERENCES job(id),
    UNIQUE (pack_id, volume_id, part_index)
) STRICT;
INSERT INTO location_v3 SELECT * FROM location ORDER BY id;
DROP TABLE location;
ALTER TABLE location_v3 RENAME TO location;
CREATE INDEX location_by_volume ON location(volume_id, partition, start_block);
"#;

/// Version 4: one B-tree entry fewer per file on the insert path (issue 3).
///
/// `version_unfetched` (a partial index of the versions without content) took an entry
/// when a file was scanned and lost it again when the file was fetched: two B-tree
/// operations per file for one query, [`Reader::versions_to_fetch`] (and the count in
/// [`Reader::summary`]), which `get` runs once per run. That query now reads the
/// `version` table in row order instead: a sequential pass over the versions, cheaper
/// than the listing every `get` records anyway, while the bulk insert no longer pays for
/// an index per file (measured: scan stage ~0.5 s CPU per 1M files).
///
/// [`Reader::versions_to_fetch`]: crate::Reader::versions_to_fetch
/// [`Reader::summary`]: crate::Reader::summary
const V4: &str = r#"
DROP INDEX version_unfetched;
"#;

/// Every schema step, oldest first. The schema version is the number of steps applied.
pub(crate) const MIGRATIONS: &[M<'static>] = &[
    M::up(V1).foreign_key_check(),
    M::up(V2).foreign_key_check(),
    M::up(V3).foreign_key_check(),
    M::up(V4).foreign_key_check(),
];

/// The migration engine over [`MIGRATIONS`].
pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATIONS)
}

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Catalog, FileQuery, RestoreQuery};

    /// Representative rows valid at each schema version (index = version - 1). Add one
    /// entry with every new migration so older catalogs with data are tested too.
    const SEED: &[&str] = &[
        r#"
        INSERT INTO source VALUES (1, 'old', '/old', 100);
        INSERT INTO file VALUES (1, 1, 'a/b.txt');
        INSERT INTO content VALUES (1, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 5);
        INSERT INTO version VALUES (1, 1, 1, 5, 50, 420, 1, 100, 200, NULL);
        INSERT INTO pack VALUES (1, 'Xk2j9qA0', 'openssl-aes-256-cbc-pbkdf2-100000', 'legacy',
            5, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 32, NULL, NULL, 150);
        INSERT INTO pack_member VALUES (1, 1, 0, 5);
        INSERT INTO volume VALUES (1, 'tape', 'OLD001L5', NULL, 'LTO-5', NULL, NULL, NULL, 32,
            'full', 'default', 100, 300);
        INSERT INTO job VALUES (1, 'write', 150, 160, 'succeeded', 1, 0, 32, NULL, NULL);
        INSERT INTO location VALUES (1, 1, 1, 0, 1, 0, 32, 'ltfs_file', NULL, NULL, 'Xk2j9qA0',
            160, 1);
        INSERT INTO verification VALUES (1, 1, 1, 1, 170, 'ok', NULL);
        INSERT INTO job VALUES (2, 'restore', 180, NULL, 'running', 0, 0, 0, NULL, NULL);
        INSERT INTO restore_item VALUES (2, 1, NULL);
    "#,
        r#"
        INSERT INTO source VALUES (1, 'old', '/old', 100);
        INSERT INTO file VALUES (1, 1, 'a/b.txt');
        INSERT INTO content VALUES (1, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 5);
        INSERT INTO version VALUES (1, 1, 1, 5, 50, 420, 1, 100, 200, NULL);
        INSERT INTO pack VALUES (1, 'Xk2j9qA0', 'openssl-aes-256-cbc-pbkdf2-100000', 'legacy',
            5, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 32, NULL, NULL, 150);
        INSERT INTO pack_member VALUES (1, 1, 0, 5);
        INSERT INTO volume VALUES (1, 'tape', 'OLD001L5', NULL, 'LTO-5', NULL, NULL, NULL, 32,
            'full', 'default', 100, 300);
        INSERT INTO job VALUES (1, 'write', 150, 160, 'succeeded', 1, 0, 32, NULL, NULL);
        INSERT INTO location VALUES (1, 1, 1, 0, 1, 0, 32, 'ltfs_file', NULL, NULL, 'Xk2j9qA0',
            160, 1);
        INSERT INTO verification VALUES (1, 1, 1, 1, 170, 'ok', NULL);
        INSERT INTO job VALUES (2, 'restore', 180, NULL, 'running', 0, 0, 0, NULL, NULL);
        INSERT INTO restore_item VALUES (2, 1, NULL);
    "#,
        r#"
        INSERT INTO source VALUES (1, 'old', '/old', 100);
        INSERT INTO file VALUES (1, 1, 'a/b.txt');
        INSERT INTO content VALUES (1, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 5);
        INSERT INTO version VALUES (1, 1, 1, 5, 50, 420, 1, 100, 200, NULL);
        INSERT INTO pack VALUES (1, 'Xk2j9qA0', 'openssl-aes-256-cbc-pbkdf2-100000', 'legacy',
            5, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 32, NULL, NULL, 150);
        INSERT INTO pack_member VALUES (1, 1, 0, 5);
        INSERT INTO volume VALUES (1, 'tape', 'OLD001L5', NULL, 'LTO-5', NULL, NULL, NULL, 32,
            'full', 'default', 100, 300);
        INSERT INTO job VALUES (1, 'write', 150, 160, 'succeeded', 1, 0, 32, NULL, NULL);
        INSERT INTO location VALUES (1, 1, 1, 0, 1, 0, 32, 'ltfs_file', NULL, NULL, 'Xk2j9qA0',
            160, 1);
        INSERT INTO verification VALUES (1, 1, 1, 1, 170, 'ok', NULL);
        INSERT INTO job VALUES (2, 'restore', 180, NULL, 'running', 0, 0, 0, NULL, NULL);
        INSERT INTO restore_item VALUES (2, 1, NULL);
    "#,
        r#"
        INSERT INTO source VALUES (1, 'old', '/old', 100);
        INSERT INTO file VALUES (1, 1, 'a/b.txt');
        INSERT INTO content VALUES (1, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 5);
        INSERT INTO version VALUES (1, 1, 1, 5, 50, 420, 1, 100, 200, NULL);
        INSERT INTO pack VALUES (1, 'Xk2j9qA0', 'openssl-aes-256-cbc-pbkdf2-100000', 'legacy',
            5, 'md5', x'0cc175b9c0f1b6a831c399e269772661', 32, NULL, NULL, 150);
        INSERT INTO pack_member VALUES (1, 1, 0, 5);
        INSERT INTO volume VALUES (1, 'tape', 'OLD001L5', NULL, 'LTO-5', NULL, NULL, NULL, 32,
            'full', 'default', 100, 300);
        INSERT INTO job VALUES (1, 'write', 150, 160, 'succeeded', 1, 0, 32, NULL, NULL);
        INSERT INTO location VALUES (1, 1, 1, 0, 1, 0, 32, 'ltfs_file', NULL, NULL, 'Xk2j9qA0',
            160, 1);
        INSERT INTO verification VALUES (1, 1, 1, 1, 170, 'ok', NULL);
        INSERT INTO job VALUES (2, 'restore', 180, NULL, 'running', 0, 0, 0, NULL, NULL);
        INSERT INTO restore_item VALUES (2, 1, NULL);
    "#,
    ];

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
        assert_eq!(
            SEED.len(),
            SCHEMA_VERSION,
            "add a SEED entry for every migration"
        );
    }

    /// A catalog created at every earlier version (with data where the version has a seed)
    /// opens, migrates to the current version, passes its check and still finds its data.
    #[test]
    fn every_earlier_version_migrates() -> Result<(), Box<dyn std::error::Error>> {
        for from in 0..=SCHEMA_VERSION {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("c.db");
            {
                let mut conn = rusqlite::Connection::open(&path)?;
                migrations().to_version(&mut conn, from)?;
                if from > 0 {
                    conn.execute_batch(SEED[from - 1])?;
                }
            }
            let cat = Catalog::open(&path)?;
            let report = cat.check()?;
            assert!(report.is_ok(), "from v{from}: {:?}", report.problems);
            let files = cat.read().search(&FileQuery::default())?;
            let plan = cat.read().plan_restore(&RestoreQuery::default())?;
            if from > 0 {
                assert_eq!(files.len(), 1, "from v{from}");
                assert_eq!(plan.file_count(), 1, "from v{from}");
                let (file, version) = (&files[0], &files[0].version);
                assert_eq!((version.path.as_str(), version.file.get()), ("a/b.txt", 1));
                assert_eq!(file.pack_offset, Some(0), "from v{from}");
                assert_eq!(file.copies.len(), 1, "from v{from}");
                let job = crate::JobId::from_raw(2);
                assert_eq!(cat.read().restore_progress(job)?, (0, 1), "from v{from}");
                assert_eq!(cat.read().plan_restore_job(job)?.file_count(), 1);
                let located =
                    cat.read()
                        .locate(version.source, "a/b.txt", crate::VersionSelector::Latest)?;
                assert_eq!(located.map(|e| e.version.id), Some(version.id));
                // The migrated content is still found by its hash: no second row.
                let md5 = crate::Digest::from_hex(
                    crate::HashAlgo::Md5,
                    "0cc175b9c0f1b6a831c399e269772661",
                )?;
                let mut cat = cat;
                let content = cat.write(|tx| tx.content_row(&md5, Some(5)))?;
                assert_eq!(content.0, 1, "from v{from}");
                let other = crate::Digest::from_hex(
                    crate::HashAlgo::Md5,
                    "0cc175b9c0f1b6a8ffffffffffffffff",
                )?;
                let added = cat.write(|tx| tx.content_row(&other, None))?;
                assert_eq!(added.0, 2, "from v{from}: same prefix, other hash");
                drop(cat);
            } else {
                assert!(files.is_empty());
            }
            let v =
                rusqlite::Connection::open(&path)?
                    .query_row("PRAGMA user_version", [], |r| r.get::<_, usize>(0))?;
            assert_eq!(v, SCHEMA_VERSION);
        }
        Ok(())
    }

    #[test]
    fn newer_schema_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.db");
        drop(Catalog::open(&path)?);
        rusqlite::Connection::open(&path)?
            .execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1))?;
        assert!(matches!(
            Catalog::open(&path),
            Err(crate::Error::NewerSchema { found, .. }) if found == SCHEMA_VERSION + 1
        ));
        Ok(())
    }
}

//! Online snapshots (SQLite backup API) and merging a snapshot back.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::catalog::{Catalog, check_is_catalog, schema_version};
use crate::error::{DbError, Error, Result, sql};
use crate::progress::Progress;
use crate::query::collect;
use crate::schema::SCHEMA_VERSION;
use crate::types::Timestamp;

/// Pages copied per backup step.
const PAGES_PER_STEP: std::os::raw::c_int = 256;

/// What [`Catalog::snapshot`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Size of the snapshot file in bytes.
    pub bytes: u64,
    /// Database pages copied.
    pub pages: u64,
}

/// What [`Catalog::merge_snapshot`] added (rows new to this catalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MergeStats {
    /// Sources added.
    pub sources: u64,
    /// Files added.
    pub files: u64,
    /// Versions added.
    pub versions: u64,
    /// Packs added.
    pub packs: u64,
    /// Volumes added.
    pub volumes: u64,
    /// Locations added.
    pub locations: u64,
    /// Verification results added.
    pub verifications: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies `from` into `to` page by page with the online backup API.
fn backup(
    from: &Connection,
    to: &mut Connection,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<u64> {
    let b = Backup::new(from, to).map_err(sql("start backup"))?;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let r = b.step(PAGES_PER_STEP).map_err(sql("backup step"))?;
        let p = b.progress();
        let total = u64::try_from(p.pagecount).unwrap_or(0);
        let remaining = u64::try_from(p.remaining).unwrap_or(0);
        progress.set_total(total);
        progress.set_done(total.saturating_sub(remaining));
        match r {
            StepResult::Done => return Ok(total),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => std::thread::sleep(Duration::from_millis(50)),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Catalog {
    /// Writes a consistent copy of the live catalog to `dest` as one self-contained SQLite
    /// file (rollback journal mode, no `-wal` file), using SQLite's online backup API while
    /// other connections may keep writing. The copy is written to `dest.partial`, synced,
    /// then renamed over `dest`, so `dest` is either the old file or the complete snapshot.
    pub fn snapshot(
        &self,
        dest: &Path,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<SnapshotInfo> {
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        match fs::remove_file(&partial) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&partial)(e)),
        }
        progress.phase("snapshot");
        let result = (|| {
            let mut dst = Connection::open(&partial).map_err(|e| Error::Open {
                path: partial.clone(),
                source: DbError::new(e),
            })?;
            let pages = backup(&self.conn, &mut dst, progress, cancel)?;
            let _mode: String = dst
                .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
                .map_err(sql("set snapshot journal mode"))?;
            dst.close().map_err(|(_, e)| sql("close snapshot")(e))?;
            Ok(pages)
        })();
        let pages = match result {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(e);
            }
        };
        fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&partial))?;
        fs::rename(&partial, dest).map_err(io_err(dest))?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(io_err(dir))?;
        }
        let bytes = fs::metadata(dest).map_err(io_err(dest))?.len();
        Ok(SnapshotInfo { bytes, pages })
    }

    /// Loads a snapshot file into memory (migrating it to the current schema), without
    /// changing the file.
    pub fn open_snapshot(path: &Path, cancel: &AtomicBool) -> Result<Catalog> {
        let src = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::Open {
            path: path.to_path_buf(),
            source: DbError::new(e),
        })?;
        check_is_catalog(&src, path)?;
        let v = schema_version(&src, path)?;
        if v > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        let mut mem = Connection::open_in_memory().map_err(|e| Error::Open {
            path: PathBuf::from(":memory:"),
            source: DbError::new(e),
        })?;
        backup(&src, &mut mem, &crate::progress::Silent, cancel)?;
        Catalog::setup(mem, None)
    }

    /// Merges a snapshot (e.g. recovered from a tape) into this catalog, in one
    /// transaction. Rows are matched by natural keys: sources by name, files by (source,
    /// path), contents by hash, versions by (file, size, mtime, content), packs by name,
    /// tapes by barcode, object volumes by (bucket, prefix), locations by (pack, volume,
    /// part), verifications by (volume, location, time, outcome). What is new is added
    /// (versions new to a file are numbered after its existing ones); what exists is kept,
    /// with missing facts (hash, size) filled in. Jobs, events and restore progress are not
    /// merged: they describe runs of the other catalog. A pack name that exists with a
    /// different ciphertext hash aborts the merge with [`Error::AlreadyExists`].
    pub fn merge_snapshot(
        &mut self,
        path: &Path,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<MergeStats> {
        let other = Catalog::open_snapshot(path, cancel)?;
        let report = other.check()?;
        if let Some(p) = report.problems.first() {
            return Err(Error::InvalidInput {
                what: "snapshot",
                reason: format!("{} fails its integrity check: {p}", path.display()),
            });
        }
        self.write(|tx| merge(&other.conn, tx.conn(), progress, cancel))
    }
}

type Map = HashMap<i64, i64>;

fn id_in(map: &Map, id: i64, what: &'static str) -> Result<i64> {
    map.get(&id).copied().ok_or_else(|| Error::Corrupt {
        what,
        value: format!("snapshot references missing id {id}"),
    })
}

fn check_cancel(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

fn merge(
    src: &Connection,
    dst: &Connection,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<MergeStats> {
    let mut stats = MergeStats::default();
    let q = |op: &'static str| sql(op);

    progress.phase("sources");
    let mut sources = Map::new();
    for (id, name, url, created) in collect(
        src,
        "SELECT id, name, url, created_at FROM source",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
        "read snapshot sources",
    )? {
        let found: Option<i64> = dst
            .query_row("SELECT id FROM source WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(q("find source"))?;
        let new_id = match found {
            Some(i) => i,
            None => {
                dst.execute(
                    "INSERT INTO source (name, url, created_at) VALUES (?1, ?2, ?3)",
                    params![name, url, created],
                )
                .map_err(q("add source"))?;
                stats.sources += 1;
                dst.last_insert_rowid()
            }
        };
        sources.insert(id, new_id);
    }

    progress.phase("contents");
    let mut contents = Map::new();
    {
        let mut st = src
            .prepare("SELECT id, hash_algo, hash, size FROM content")
            .map_err(q("read snapshot contents"))?;
        let mut rows = st.query([]).map_err(q("read snapshot contents"))?;
        while let Some(r) = rows.next().map_err(q("read snapshot contents"))? {
            let id: i64 = r.get(0).map_err(q("read content"))?;
            let algo: String = r.get(1).map_err(q("read content"))?;
            let hash: Vec<u8> = r.get(2).map_err(q("read content"))?;
            let size: Option<i64> = r.get(3).map_err(q("read content"))?;
            let found: Option<i64> = dst
                .prepare_cached(crate::ingest::CONTENT_BY_HASH)
                .and_then(|mut s| s.query_row(params![algo, hash], |r| r.get(0)).optional())
                .map_err(q("find content"))?;
            let new_id = match found {
                Some(i) => {
                    dst.prepare_cached(
                        "UPDATE content SET size = coalesce(size, ?2) WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![i, size]))
                    .map_err(q("update content"))?;
                    i
                }
                None => {
                    dst.prepare_cached(
                        "INSERT INTO content (hash_algo, hash, size) VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut s| s.execute(params![algo, hash, size]))
                    .map_err(q("add content"))?;
                    dst.last_insert_rowid()
                }
            };
            contents.insert(id, new_id);
        }
    }
    check_cancel(cancel)?;

    progress.phase("files");
    let mut files = Map::new();
    {
        let mut st = src
            .prepare("SELECT id, source_id, path FROM file")
            .map_err(q("read snapshot files"))?;
        let mut rows = st.query([]).map_err(q("read snapshot files"))?;
        while let Some(r) = rows.next().map_err(q("read snapshot files"))? {
            let id: i64 = r.get(0).map_err(q("read file"))?;
            let sid: i64 = r.get(1).map_err(q("read file"))?;
            let path: String = r.get(2).map_err(q("read file"))?;
            let sid = id_in(&sources, sid, "sources")?;
            let found: Option<i64> = dst
                .prepare_cached("SELECT id FROM file WHERE source_id = ?1 AND path = ?2")
                .and_then(|mut s| s.query_row(params![sid, path], |r| r.get(0)).optional())
                .map_err(q("find file"))?;
            let new_id = match found {
                Some(i) => i,
                None => {
                    dst.prepare_cached("INSERT INTO file (source_id, path) VALUES (?1, ?2)")
                        .and_then(|mut s| s.execute(params![sid, path]))
                        .map_err(q("add file"))?;
                    stats.files += 1;
                    dst.last_insert_rowid()
                }
            };
            files.insert(id, new_id);
        }
    }
    check_cancel(cancel)?;

    progress.phase("versions");
    {
        let mut st = src
            .prepare(
                "SELECT file_id, size, mtime, mode, content_id, first_seen, last_seen, deleted_at \
                 FROM version ORDER BY file_id, seq",
            )
            .map_err(q("read snapshot versions"))?;
        let mut rows = st.query([]).map_err(q("read snapshot versions"))?;
        while let Some(r) = rows.next().map_err(q("read snapshot versions"))? {
            let fid = id_in(
                &files,
                r.get::<_, i64>(0).map_err(q("read version"))?,
                "files",
            )?;
            let size: Option<i64> = r.get(1).map_err(q("read version"))?;
            let mtime: i64 = r.get(2).map_err(q("read version"))?;
            let mode: i64 = r.get(3).map_err(q("read version"))?;
            let content: Option<i64> = r
                .get::<_, Option<i64>>(4)
                .map_err(q("read version"))?
                .map(|c| id_in(&contents, c, "contents"))
                .transpose()?;
            let first: i64 = r.get(5).map_err(q("read version"))?;
            let last: i64 = r.get(6).map_err(q("read version"))?;
            let deleted: Option<i64> = r.get(7).map_err(q("read version"))?;
            // Same version: same size and mtime, and contents that do not contradict.
            let found: Option<i64> = dst
                .prepare_cached(
                    "SELECT id FROM version WHERE file_id = ?1 AND size IS ?2 AND mtime = ?3 \
                     AND (content_id IS NULL OR ?4 IS NULL OR content_id = ?4) \
                     ORDER BY seq LIMIT 1",
                )
                .and_then(|mut s| {
                    s.query_row(params![fid, size, mtime, content], |r| r.get(0))
                        .optional()
                })
                .map_err(q("find version"))?;
            match found {
                Some(vid) => {
                    dst.prepare_cached(
                        "UPDATE version SET content_id = coalesce(content_id, ?2), \
                         first_seen = min(first_seen, ?3), last_seen = max(last_seen, ?4), \
                         deleted_at = coalesce(deleted_at, ?5) WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![vid, content, first, last, deleted]))
                    .map_err(q("update version"))?;
                }
                None => {
                    dst.prepare_cached(
                        "INSERT INTO version (file_id, seq, size, mtime, mode, content_id, \
                         first_seen, last_seen, deleted_at) VALUES (?1, \
                         (SELECT coalesce(max(seq), 0) + 1 FROM version WHERE file_id = ?1), \
                         ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            fid, size, mtime, mode, content, first, last, deleted
                        ])
                    })
                    .map_err(q("add version"))?;
                    stats.versions += 1;
                }
            }
        }
    }
    check_cancel(cancel)?;

    progress.phase("packs");
    let mut packs = Map::new();
    {
        let mut st = src
            .prepare(
                "SELECT id, name, format, key_id, plain_size, plain_hash_algo, plain_hash, \
                 cipher_size, cipher_hash_algo, cipher_hash, created_at FROM pack",
            )
            .map_err(q("read snapshot packs"))?;
        let mut rows = st.query([]).map_err(q("read snapshot packs"))?;
        while let Some(r) = rows.next().map_err(q("read snapshot packs"))? {
            let g = |i| r.get::<_, rusqlite::types::Value>(i);
            let vals: Vec<rusqlite::types::Value> = (0..11)
                .map(g)
                .collect::<rusqlite::Result<_>>()
                .map_err(q("read pack"))?;
            let id: i64 = r.get(0).map_err(q("read pack"))?;
            let name: String = r.get(1).map_err(q("read pack"))?;
            let cipher_hash: Option<Vec<u8>> = r.get(9).map_err(q("read pack"))?;
            let found: Option<(i64, Option<Vec<u8>>)> = dst
                .prepare_cached("SELECT id, cipher_hash FROM pack WHERE name = ?1")
                .and_then(|mut s| {
                    s.query_row([&name], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(q("find pack"))?;
            let new_id = match found {
                Some((i, h)) => {
                    if h.is_some() && cipher_hash.is_some() && h != cipher_hash {
                        return Err(Error::AlreadyExists {
                            what: "pack with a different ciphertext hash",
                            key: name,
                        });
                    }
                    i
                }
                None => {
                    dst.prepare_cached(
                        "INSERT INTO pack (name, format, key_id, plain_size, plain_hash_algo, \
                         plain_hash, cipher_size, cipher_hash_algo, cipher_hash, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .and_then(|mut s| s.execute(rusqlite::params_from_iter(&vals[1..])))
                    .map_err(q("add pack"))?;
                    stats.packs += 1;
                    dst.last_insert_rowid()
                }
            };
            packs.insert(id, new_id);
        }
    }
    for (pid, cid, off, len) in collect(
        src,
        "SELECT pack_id, content_id, offset, length FROM pack_member",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        },
        "read snapshot pack members",
    )? {
        let pid = id_in(&packs, pid, "packs")?;
        let cid = id_in(&contents, cid, "contents")?;
        dst.prepare_cached(
            "INSERT OR IGNORE INTO pack_member (pack_id, content_id, offset, length) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![pid, cid, off, len]))
        .map_err(q("add pack member"))?;
    }
    check_cancel(cancel)?;

    progress.phase("volumes");
    let mut volumes = Map::new();
    {
        let mut st = src
            .prepare(
                "SELECT id, kind, barcode, ltfs_uuid, generation, capacity, bucket, prefix, \
                 bytes_used, state, pool, created_at, full_at FROM volume",
            )
            .map_err(q("read snapshot volumes"))?;
        let mut rows = st.query([]).map_err(q("read snapshot volumes"))?;
        while let Some(r) = rows.next().map_err(q("read snapshot volumes"))? {
            let vals: Vec<rusqlite::types::Value> = (0..13)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<_>>()
                .map_err(q("read volume"))?;
            let id: i64 = r.get(0).map_err(q("read volume"))?;
            let barcode: Option<String> = r.get(2).map_err(q("read volume"))?;
            let bucket: Option<String> = r.get(6).map_err(q("read volume"))?;
            let prefix: Option<String> = r.get(7).map_err(q("read volume"))?;
            let found: Option<i64> = dst
                .prepare_cached(
                    "SELECT id FROM volume WHERE (barcode IS NOT NULL AND barcode = ?1) \
                     OR (bucket IS NOT NULL AND bucket = ?2 AND prefix = ?3)",
                )
                .and_then(|mut s| {
                    s.query_row(params![barcode, bucket, prefix], |r| r.get(0))
                        .optional()
                })
                .map_err(q("find volume"))?;
            let new_id = match found {
                Some(i) => i,
                None => {
                    // bytes_used starts at 0: merged locations add their lengths below.
                    dst.prepare_cached(
                        "INSERT INTO volume (kind, barcode, ltfs_uuid, generation, capacity, \
                         bucket, prefix, bytes_used, state, pool, created_at, full_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?9, ?10, ?11, ?12)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7], vals[8],
                            vals[9], vals[10], vals[11], vals[12]
                        ])
                    })
                    .map_err(q("add volume"))?;
                    stats.volumes += 1;
                    dst.last_insert_rowid()
                }
            };
            volumes.insert(id, new_id);
        }
    }

    progress.phase("locations");
    let mut locations = Map::new();
    {
        let mut st = src
            .prepare(
                "SELECT id, pack_id, volume_id, part_index, part_count, part_offset, length, \
                 position_kind, partition, start_block, object_key, written_at FROM location",
            )
            .map_err(q("read snapshot locations"))?;
        let mut rows = st.query([]).map_err(q("read snapshot locations"))?;
        while let Some(r) = rows.next().map_err(q("read snapshot locations"))? {
            let mut vals: Vec<rusqlite::types::Value> = (0..12)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<_>>()
                .map_err(q("read location"))?;
            let id: i64 = r.get(0).map_err(q("read location"))?;
            let pack = id_in(
                &packs,
                r.get::<_, i64>(1).map_err(q("read location"))?,
                "packs",
            )?;
            let vol = id_in(
                &volumes,
                r.get::<_, i64>(2).map_err(q("read location"))?,
                "volumes",
            )?;
            let part: i64 = r.get(3).map_err(q("read location"))?;
            let length: Option<i64> = r.get(6).map_err(q("read location"))?;
            vals[1] = pack.into();
            vals[2] = vol.into();
            let found: Option<i64> = dst
                .prepare_cached(
                    "SELECT id FROM location WHERE pack_id = ?1 AND volume_id = ?2 \
                     AND part_index = ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![pack, vol, part], |r| r.get(0))
                        .optional()
                })
                .map_err(q("find location"))?;
            let new_id = match found {
                Some(i) => i,
                None => {
                    dst.prepare_cached(
                        "INSERT INTO location (pack_id, volume_id, part_index, part_count, \
                         part_offset, length, position_kind, partition, start_block, \
                         object_key, written_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                         ?10, ?11)",
                    )
                    .and_then(|mut s| s.execute(rusqlite::params_from_iter(&vals[1..])))
                    .map_err(q("add location"))?;
                    dst.prepare_cached(
                        "UPDATE volume SET bytes_used = bytes_used + ?2, state = CASE state \
                         WHEN 'blank' THEN 'appendable' ELSE state END WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![vol, length.unwrap_or(0)]))
                    .map_err(q("update volume usage"))?;
                    stats.locations += 1;
                    dst.last_insert_rowid()
                }
            };
            locations.insert(id, new_id);
        }
    }

    progress.phase("verifications");
    for (vol, loc, at, outcome, detail) in collect(
        src,
        "SELECT volume_id, location_id, at, outcome, detail FROM verification",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        },
        "read snapshot verifications",
    )? {
        let vol = id_in(&volumes, vol, "volumes")?;
        let loc = loc.map(|l| id_in(&locations, l, "locations")).transpose()?;
        let exists = dst
            .prepare_cached(
                "SELECT 1 FROM verification WHERE volume_id = ?1 AND location_id IS ?2 \
                 AND at = ?3 AND outcome = ?4",
            )
            .and_then(|mut s| s.exists(params![vol, loc, at, outcome]))
            .map_err(q("find verification"))?;
        if !exists {
            dst.prepare_cached(
                "INSERT INTO verification (volume_id, location_id, at, outcome, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![vol, loc, at, outcome, detail]))
            .map_err(q("add verification"))?;
            stats.verifications += 1;
        }
    }
    let _ = Timestamp::now;
    Ok(stats)
}

//! Write operations ([`Txn`]), each inside the caller's one transaction.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::error::{Error, Result, is_unique_violation, sql};
use crate::query::Reader;
use crate::records::{
    JobProgress, NewLocation, NewObjectVolume, NewPack, NewTape, NewVerification, PackInfo,
    RestorePlan, ScanChange, ScanOutcome, ScannedFile,
};
use crate::rows::position_columns;
use crate::types::{
    ContentId, Digest, EventLevel, FileId, JobId, JobKind, JobOutcome, LocationId, PackFormat,
    PackId, Position, SourceId, Timestamp, VersionId, VolumeId, VolumeState, hex,
};

/// A write transaction. Get one from [`Catalog::write`](crate::Catalog::write); everything
/// done through it is committed together when the closure returns `Ok`.
#[derive(Debug)]
pub struct Txn<'c> {
    tx: Transaction<'c>,
}

/// Generates a pack name: 32 lowercase hex characters from the OS random generator.
pub fn generate_pack_name() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
    Ok(hex(&bytes))
}

fn check_text(what: &'static str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::InvalidInput {
            what,
            reason: "must not be empty".to_owned(),
        });
    }
    if s.contains('\0') {
        return Err(Error::InvalidInput {
            what,
            reason: "must not contain NUL".to_owned(),
        });
    }
    Ok(())
}

fn to_i64(what: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::InvalidInput {
        what,
        reason: format!("{v} is too large"),
    })
}

impl<'c> Txn<'c> {
    pub(crate) fn new(tx: Transaction<'c>) -> Txn<'c> {
        Txn { tx }
    }

    pub(crate) fn commit(self) -> Result<()> {
        self.tx.commit().map_err(sql("commit"))
    }

    /// Queries that see this transaction's changes.
    pub fn read(&self) -> Reader<'_> {
        Reader::new(&self.tx)
    }

    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        &self.tx
    }

    /// Registers a source under a unique `name`.
    pub fn add_source(&mut self, name: &str, url: &str, now: Timestamp) -> Result<SourceId> {
        check_text("source name", name)?;
        let r = self.tx.execute(
            "INSERT INTO source (name, url, created_at) VALUES (?1, ?2, ?3)",
            params![name, url, now.unix_seconds()],
        );
        match r {
            Ok(_) => Ok(SourceId(self.tx.last_insert_rowid())),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                what: "source",
                key: name.to_owned(),
            }),
            Err(e) => Err(sql("add source")(e)),
        }
    }

    fn exists(&self, q: &str, id: i64, what: &'static str) -> Result<()> {
        let found = self
            .tx
            .prepare_cached(q)
            .and_then(|mut st| st.exists([id]))
            .map_err(sql("look up"))?;
        if found {
            Ok(())
        } else {
            Err(Error::NotFound {
                what,
                key: id.to_string(),
            })
        }
    }

    /// Finds or creates the content row for `hash` (dedup by hash). A known size is filled
    /// in when the row had none; a different known size is a [`Error::InvalidInput`].
    fn content_for(&mut self, hash: &Digest, size: Option<u64>) -> Result<ContentId> {
        let found: Option<(i64, Option<u64>)> = self
            .tx
            .prepare_cached("SELECT id, size FROM content WHERE hash_algo = ?1 AND hash = ?2")
            .and_then(|mut st| {
                st.query_row(params![hash.algo().as_str(), hash.bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(sql("find content"))?;
        match found {
            Some((id, known)) => {
                match (known, size) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(Error::InvalidInput {
                            what: "content size",
                            reason: format!("{hash} is recorded with {a} bytes, not {b}"),
                        });
                    }
                    (None, Some(b)) => {
                        self.tx
                            .prepare_cached("UPDATE content SET size = ?2 WHERE id = ?1")
                            .and_then(|mut st| st.execute(params![id, b]))
                            .map_err(sql("update content"))?;
                    }
                    _ => {}
                }
                Ok(ContentId(id))
            }
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO content (hash_algo, hash, size) VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut st| {
                        st.execute(params![hash.algo().as_str(), hash.bytes(), size])
                    })
                    .map_err(sql("add content"))?;
                Ok(ContentId(self.tx.last_insert_rowid()))
            }
        }
    }

    /// Records one file seen by a scan of `source` at time `now`.
    ///
    /// A path seen for the first time gets version 1. When size or mtime differ from the
    /// latest version, or both hashes are known and differ, or the latest version was marked
    /// deleted, a new version is added. Otherwise the latest version's `last_seen` (and its
    /// mode, and its hash if it had none) are updated. Identical content is stored once:
    /// versions with the same hash share one content row (path aliases).
    pub fn record_scan(
        &mut self,
        source: SourceId,
        file: &ScannedFile,
        now: Timestamp,
    ) -> Result<ScanOutcome> {
        check_text("path", &file.path)?;
        let size = to_i64("size", file.size)?;
        self.exists("SELECT 1 FROM source WHERE id = ?1", source.0, "source")?;
        let file_id: Option<i64> = self
            .tx
            .prepare_cached("SELECT id FROM file WHERE source_id = ?1 AND path = ?2")
            .and_then(|mut st| {
                st.query_row(params![source.0, file.path], |r| r.get(0))
                    .optional()
            })
            .map_err(sql("find file"))?;
        let content = match &file.hash {
            Some(h) => Some(self.content_for(h, Some(file.size))?),
            None => None,
        };
        let insert_version = |tx: &Transaction<'_>, fid: i64, seq: i64| -> Result<VersionId> {
            tx.prepare_cached(
                "INSERT INTO version (file_id, seq, size, mtime, mode, content_id, first_seen, \
                 last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    fid,
                    seq,
                    size,
                    file.mtime.unix_seconds(),
                    file.mode,
                    content.map(|c| c.0),
                    now.unix_seconds()
                ])
            })
            .map_err(sql("add version"))?;
            Ok(VersionId(tx.last_insert_rowid()))
        };
        let Some(fid) = file_id else {
            self.tx
                .prepare_cached("INSERT INTO file (source_id, path) VALUES (?1, ?2)")
                .and_then(|mut st| st.execute(params![source.0, file.path]))
                .map_err(sql("add file"))?;
            let fid = self.tx.last_insert_rowid();
            let version = insert_version(&self.tx, fid, 1)?;
            return Ok(ScanOutcome {
                file: FileId(fid),
                version,
                change: ScanChange::New,
            });
        };
        type Latest = (i64, i64, Option<i64>, i64, Option<i64>, Option<i64>);
        let latest: Option<Latest> = self
            .tx
            .prepare_cached(
                "SELECT id, seq, size, mtime, content_id, deleted_at FROM version \
                 WHERE file_id = ?1 ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row([fid], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .optional()
            })
            .map_err(sql("find latest version"))?;
        let Some((vid, seq, old_size, old_mtime, old_content, deleted)) = latest else {
            let version = insert_version(&self.tx, fid, 1)?;
            return Ok(ScanOutcome {
                file: FileId(fid),
                version,
                change: ScanChange::New,
            });
        };
        let hash_differs = matches!((old_content, content), (Some(a), Some(b)) if a != b.0);
        if deleted.is_some()
            || old_size != Some(size)
            || old_mtime != file.mtime.unix_seconds()
            || hash_differs
        {
            let version = insert_version(&self.tx, fid, seq + 1)?;
            return Ok(ScanOutcome {
                file: FileId(fid),
                version,
                change: ScanChange::Changed,
            });
        }
        self.tx
            .prepare_cached(
                "UPDATE version SET last_seen = max(last_seen, ?2), mode = ?3, \
                 content_id = coalesce(content_id, ?4) WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    vid,
                    now.unix_seconds(),
                    file.mode,
                    content.map(|c| c.0)
                ])
            })
            .map_err(sql("update version"))?;
        Ok(ScanOutcome {
            file: FileId(fid),
            version: VersionId(vid),
            change: ScanChange::Unchanged,
        })
    }

    /// Records the content of a fetched version: its hash and size. Content is deduplicated
    /// by hash. Fails with [`Error::ContentMismatch`] when the size differs from the scanned
    /// one or the version already has a different hash (the file changed: scan again).
    pub fn record_fetched(
        &mut self,
        version: VersionId,
        hash: &Digest,
        size: u64,
    ) -> Result<ContentId> {
        let row: Option<(Option<u64>, Option<i64>)> = self
            .tx
            .prepare_cached("SELECT size, content_id FROM version WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([version.0], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sql("read version"))?;
        let Some((known_size, known_content)) = row else {
            return Err(Error::NotFound {
                what: "version",
                key: version.to_string(),
            });
        };
        if let Some(s) = known_size
            && s != size
        {
            return Err(Error::ContentMismatch {
                version,
                detail: format!("scanned size {s}, fetched size {size}"),
            });
        }
        if let Some(c) = known_content {
            let same = self
                .tx
                .prepare_cached(
                    "SELECT 1 FROM content WHERE id = ?1 AND hash_algo = ?2 AND hash = ?3",
                )
                .and_then(|mut st| st.exists(params![c, hash.algo().as_str(), hash.bytes()]))
                .map_err(sql("compare content"))?;
            if !same {
                return Err(Error::ContentMismatch {
                    version,
                    detail: format!("fetched hash {hash} differs from the recorded one"),
                });
            }
            return Ok(ContentId(c));
        }
        let content = self.content_for(hash, Some(size))?;
        self.tx
            .prepare_cached("UPDATE version SET content_id = ?2, size = ?3 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![version.0, content.0, size]))
            .map_err(sql("record fetched content"))?;
        Ok(content)
    }

    /// After a complete scan of `source` that started at `scan_started`: marks every
    /// latest version not seen since then as deleted at `now`. Returns how many.
    pub fn mark_unseen_deleted(
        &mut self,
        source: SourceId,
        scan_started: Timestamp,
        now: Timestamp,
    ) -> Result<u64> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE version SET deleted_at = ?3 WHERE deleted_at IS NULL AND last_seen < ?2 \
                 AND file_id IN (SELECT id FROM file WHERE source_id = ?1) \
                 AND seq = (SELECT max(seq) FROM version v2 WHERE v2.file_id = version.file_id)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    source.0,
                    scan_started.unix_seconds(),
                    now.unix_seconds()
                ])
            })
            .map_err(sql("mark deleted"))?;
        Ok(n as u64)
    }

    /// Records a pack holding the contents of one or more versions. The catalog generates
    /// the pack's name ([`generate_pack_name`]). Each content is stored in one pack only:
    /// a version whose content is already packed gives [`Error::AlreadyPacked`]; two
    /// members with the same content are one entry.
    pub fn record_pack(&mut self, pack: &NewPack, now: Timestamp) -> Result<PackInfo> {
        check_text("key id", &pack.key_id)?;
        if pack.members.is_empty() {
            return Err(Error::InvalidInput {
                what: "pack",
                reason: "a pack needs at least one member".to_owned(),
            });
        }
        to_i64("plain size", pack.plain_size)?;
        to_i64("cipher size", pack.cipher_size)?;
        let mut contents: Vec<(i64, u64, u64)> = Vec::with_capacity(pack.members.len());
        for m in &pack.members {
            let end = m.offset.checked_add(m.length);
            if end.is_none_or(|e| e > pack.plain_size) {
                return Err(Error::InvalidInput {
                    what: "pack member",
                    reason: format!(
                        "version {} at {}+{} lies outside the {}-byte plaintext",
                        m.version, m.offset, m.length, pack.plain_size
                    ),
                });
            }
            let content: Option<Option<i64>> = self
                .tx
                .prepare_cached("SELECT content_id FROM version WHERE id = ?1")
                .and_then(|mut st| st.query_row([m.version.0], |r| r.get(0)).optional())
                .map_err(sql("read version"))?;
            let content = match content {
                None => {
                    return Err(Error::NotFound {
                        what: "version",
                        key: m.version.to_string(),
                    });
                }
                Some(None) => {
                    return Err(Error::InvalidInput {
                        what: "pack member",
                        reason: format!("version {} has no content yet (not fetched)", m.version),
                    });
                }
                Some(Some(c)) => c,
            };
            let packed = self
                .tx
                .prepare_cached("SELECT 1 FROM pack_member WHERE content_id = ?1")
                .and_then(|mut st| st.exists([content]))
                .map_err(sql("check pack member"))?;
            if packed {
                return Err(Error::AlreadyPacked { version: m.version });
            }
            if !contents.iter().any(|c| c.0 == content) {
                contents.push((content, m.offset, m.length));
            }
        }
        let mut attempts = 0;
        let (id, name) = loop {
            let name = generate_pack_name()?;
            let r = self
                .tx
                .prepare_cached(
                    "INSERT INTO pack (name, format, key_id, plain_size, plain_hash_algo, \
                     plain_hash, cipher_size, cipher_hash_algo, cipher_hash, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        name,
                        pack.format.as_str(),
                        pack.key_id,
                        pack.plain_size,
                        pack.plain_hash.algo().as_str(),
                        pack.plain_hash.bytes(),
                        pack.cipher_size,
                        pack.cipher_hash.algo().as_str(),
                        pack.cipher_hash.bytes(),
                        now.unix_seconds()
                    ])
                });
            match r {
                Ok(_) => break (self.tx.last_insert_rowid(), name),
                Err(e) if is_unique_violation(&e) && attempts < 3 => attempts += 1,
                Err(e) => return Err(sql("add pack")(e)),
            }
        };
        for (content, offset, length) in contents {
            self.tx
                .prepare_cached(
                    "INSERT INTO pack_member (pack_id, content_id, offset, length) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut st| st.execute(params![id, content, offset, length]))
                .map_err(sql("add pack member"))?;
        }
        Ok(PackInfo {
            id: PackId(id),
            name,
            format: pack.format,
            key_id: pack.key_id.clone(),
            plain_size: Some(pack.plain_size),
            plain_hash: Some(pack.plain_hash.clone()),
            cipher_size: Some(pack.cipher_size),
            cipher_hash: Some(pack.cipher_hash.clone()),
            created_at: now,
        })
    }

    /// Registers a tape, blank.
    pub fn add_tape(&mut self, tape: &NewTape, now: Timestamp) -> Result<VolumeId> {
        check_text("barcode", &tape.barcode)?;
        check_text("pool", &tape.pool)?;
        if let Some(c) = tape.capacity {
            to_i64("capacity", c)?;
        }
        let r = self.tx.execute(
            "INSERT INTO volume (kind, barcode, ltfs_uuid, generation, capacity, state, pool, \
             created_at) VALUES ('tape', ?1, ?2, ?3, ?4, 'blank', ?5, ?6)",
            params![
                tape.barcode,
                tape.ltfs_uuid,
                tape.generation,
                tape.capacity,
                tape.pool,
                now.unix_seconds()
            ],
        );
        match r {
            Ok(_) => Ok(VolumeId(self.tx.last_insert_rowid())),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                what: "tape",
                key: tape.barcode.clone(),
            }),
            Err(e) => Err(sql("add tape")(e)),
        }
    }

    /// Registers an object-store location (bucket + prefix) as a volume, appendable.
    pub fn add_object_volume(&mut self, v: &NewObjectVolume, now: Timestamp) -> Result<VolumeId> {
        check_text("bucket", &v.bucket)?;
        check_text("pool", &v.pool)?;
        let r = self.tx.execute(
            "INSERT INTO volume (kind, bucket, prefix, state, pool, created_at) \
             VALUES ('object', ?1, ?2, 'appendable', ?3, ?4)",
            params![v.bucket, v.prefix, v.pool, now.unix_seconds()],
        );
        match r {
            Ok(_) => Ok(VolumeId(self.tx.last_insert_rowid())),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                what: "object volume",
                key: format!("{}/{}", v.bucket, v.prefix),
            }),
            Err(e) => Err(sql("add object volume")(e)),
        }
    }

    /// Sets a volume's state (`Full` also stamps `full_at`).
    pub fn set_volume_state(
        &mut self,
        volume: VolumeId,
        state: VolumeState,
        now: Timestamp,
    ) -> Result<()> {
        let full_at = (state == VolumeState::Full).then_some(now.unix_seconds());
        let n = self
            .tx
            .prepare_cached(
                "UPDATE volume SET state = ?2, full_at = coalesce(?3, full_at) WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![volume.0, state.as_str(), full_at]))
            .map_err(sql("set volume state"))?;
        if n == 0 {
            return Err(Error::NotFound {
                what: "volume",
                key: volume.to_string(),
            });
        }
        Ok(())
    }

    /// Marks a volume full: no more writes go to it.
    pub fn mark_volume_full(&mut self, volume: VolumeId, now: Timestamp) -> Result<()> {
        self.set_volume_state(volume, VolumeState::Full, now)
    }

    /// Records a tape's LTFS volume UUID (after formatting).
    pub fn set_ltfs_uuid(&mut self, volume: VolumeId, uuid: &str) -> Result<()> {
        check_text("LTFS UUID", uuid)?;
        let n = self
            .tx
            .execute(
                "UPDATE volume SET ltfs_uuid = ?2 WHERE id = ?1 AND kind = 'tape'",
                params![volume.0, uuid],
            )
            .map_err(sql("set LTFS UUID"))?;
        if n == 0 {
            return Err(Error::NotFound {
                what: "tape",
                key: volume.to_string(),
            });
        }
        Ok(())
    }

    /// Records that a pack (or one part of it) was written to a volume at `position`. Adds
    /// the part's length to the volume's bytes used and makes a blank volume appendable.
    /// Refuses retired volumes and positions of the wrong kind (object keys on tapes).
    pub fn record_location(&mut self, loc: &NewLocation, now: Timestamp) -> Result<LocationId> {
        if loc.part.count == 0 || loc.part.index >= loc.part.count {
            return Err(Error::InvalidInput {
                what: "part",
                reason: format!("part {} of {}", loc.part.index, loc.part.count),
            });
        }
        if let Some(l) = loc.part.length {
            to_i64("part length", l)?;
        }
        self.exists("SELECT 1 FROM pack WHERE id = ?1", loc.pack.0, "pack")?;
        let volume = self.read().volume(loc.volume)?;
        if volume.state == VolumeState::Retired {
            return Err(Error::InvalidInput {
                what: "volume",
                reason: format!("{} is retired", volume.label()),
            });
        }
        let is_tape = matches!(volume.medium, crate::records::Medium::Tape { .. });
        let pos_on_tape = !matches!(loc.position, Position::Object { .. });
        if is_tape != pos_on_tape {
            return Err(Error::InvalidInput {
                what: "position",
                reason: format!("{:?} does not fit volume {}", loc.position, volume.label()),
            });
        }
        let (kind, partition, start_block, key) = position_columns(&loc.position);
        if let Some(b) = start_block {
            to_i64("start block", b)?;
        }
        let r = self
            .tx
            .prepare_cached(
                "INSERT INTO location (pack_id, volume_id, part_index, part_count, part_offset, \
                 length, position_kind, partition, start_block, object_key, written_at, job_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    loc.pack.0,
                    loc.volume.0,
                    loc.part.index,
                    loc.part.count,
                    loc.part.offset,
                    loc.part.length,
                    kind,
                    partition,
                    start_block,
                    key,
                    now.unix_seconds(),
                    loc.job.map(|j| j.0)
                ])
            });
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    what: "location",
                    key: format!(
                        "pack {} part {} on {}",
                        loc.pack,
                        loc.part.index,
                        volume.label()
                    ),
                });
            }
            Err(e)
                if matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) =>
            {
                return Err(Error::NotFound {
                    what: "job",
                    key: loc.job.map(|j| j.to_string()).unwrap_or_default(),
                });
            }
            Err(e) => return Err(sql("add location")(e)),
        }
        let id = LocationId(self.tx.last_insert_rowid());
        self.tx
            .prepare_cached(
                "UPDATE volume SET bytes_used = bytes_used + ?2, \
                 state = CASE state WHEN 'blank' THEN 'appendable' ELSE state END WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![loc.volume.0, loc.part.length.unwrap_or(0)]))
            .map_err(sql("update volume usage"))?;
        Ok(id)
    }

    /// Starts a job.
    pub fn start_job(&mut self, kind: JobKind, now: Timestamp) -> Result<JobId> {
        self.tx
            .prepare_cached(
                "INSERT INTO job (kind, started_at, outcome) VALUES (?1, ?2, 'running')",
            )
            .and_then(|mut st| st.execute(params![kind.as_str(), now.unix_seconds()]))
            .map_err(sql("start job"))?;
        Ok(JobId(self.tx.last_insert_rowid()))
    }

    /// Stores a running job's counters and resume state.
    pub fn update_job(&mut self, job: JobId, progress: &JobProgress) -> Result<()> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE job SET items_done = ?2, items_failed = ?3, bytes_done = ?4, \
                 resume_state = ?5 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    job.0,
                    progress.items_done,
                    progress.items_failed,
                    progress.bytes_done,
                    progress.resume_state
                ])
            })
            .map_err(sql("update job"))?;
        if n == 0 {
            return Err(Error::NotFound {
                what: "job",
                key: job.to_string(),
            });
        }
        Ok(())
    }

    /// Ends a job with an outcome (not [`JobOutcome::Running`]) and an optional message.
    pub fn finish_job(
        &mut self,
        job: JobId,
        outcome: JobOutcome,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        if outcome == JobOutcome::Running {
            return Err(Error::InvalidInput {
                what: "job outcome",
                reason: "a finished job cannot be running".to_owned(),
            });
        }
        let n = self
            .tx
            .prepare_cached(
                "UPDATE job SET outcome = ?2, ended_at = ?3, message = ?4 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    job.0,
                    outcome.as_str(),
                    now.unix_seconds(),
                    message
                ])
            })
            .map_err(sql("finish job"))?;
        if n == 0 {
            return Err(Error::NotFound {
                what: "job",
                key: job.to_string(),
            });
        }
        Ok(())
    }

    /// Appends an event to a job's log (or the catalog-wide log with `job = None`).
    pub fn log_event(
        &mut self,
        job: Option<JobId>,
        level: EventLevel,
        message: &str,
        now: Timestamp,
    ) -> Result<()> {
        if let Some(j) = job {
            self.exists("SELECT 1 FROM job WHERE id = ?1", j.0, "job")?;
        }
        self.tx
            .prepare_cached(
                "INSERT INTO event (job_id, at, level, message) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    job.map(|j| j.0),
                    now.unix_seconds(),
                    level.as_str(),
                    message
                ])
            })
            .map_err(sql("log event"))?;
        Ok(())
    }

    /// Records a verification result of a pack location or of a whole volume.
    pub fn record_verification(&mut self, v: &NewVerification, now: Timestamp) -> Result<()> {
        self.exists("SELECT 1 FROM volume WHERE id = ?1", v.volume.0, "volume")?;
        if let Some(l) = v.location {
            let on: Option<i64> = self
                .tx
                .prepare_cached("SELECT volume_id FROM location WHERE id = ?1")
                .and_then(|mut st| st.query_row([l.0], |r| r.get(0)).optional())
                .map_err(sql("read location"))?;
            match on {
                None => {
                    return Err(Error::NotFound {
                        what: "location",
                        key: l.to_string(),
                    });
                }
                Some(vol) if vol != v.volume.0 => {
                    return Err(Error::InvalidInput {
                        what: "verification",
                        reason: format!("location {l} is not on volume {}", v.volume),
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(j) = v.job {
            self.exists("SELECT 1 FROM job WHERE id = ?1", j.0, "job")?;
        }
        self.tx
            .prepare_cached(
                "INSERT INTO verification (job_id, volume_id, location_id, at, outcome, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    v.job.map(|j| j.0),
                    v.volume.0,
                    v.location.map(|l| l.0),
                    now.unix_seconds(),
                    v.outcome.as_str(),
                    v.detail
                ])
            })
            .map_err(sql("record verification"))?;
        Ok(())
    }

    /// Starts a restore job for every file of `plan`; progress is kept per file so an
    /// interrupted restore resumes with [`Reader::plan_restore_job`].
    pub fn start_restore(&mut self, plan: &RestorePlan, now: Timestamp) -> Result<JobId> {
        let job = self.start_job(JobKind::Restore, now)?;
        for file in plan
            .runs
            .iter()
            .flat_map(|r| &r.reads)
            .flat_map(|r| &r.files)
        {
            self.tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO restore_item (job_id, version_id) VALUES (?1, ?2)",
                )
                .and_then(|mut st| st.execute(params![job.0, file.version.0]))
                .map_err(sql("add restore item"))?;
        }
        Ok(job)
    }

    /// Marks one file of a restore job as restored (idempotent).
    pub fn mark_restored(&mut self, job: JobId, version: VersionId, now: Timestamp) -> Result<()> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE restore_item SET done_at = coalesce(done_at, ?3) \
                 WHERE job_id = ?1 AND version_id = ?2",
            )
            .and_then(|mut st| st.execute(params![job.0, version.0, now.unix_seconds()]))
            .map_err(sql("mark restored"))?;
        if n == 0 {
            return Err(Error::NotFound {
                what: "restore item",
                key: format!("job {job} version {version}"),
            });
        }
        Ok(())
    }

    /// Internal: inserts a pack row with a given name (legacy imports, merges).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert_pack_raw(
        &mut self,
        name: &str,
        format: PackFormat,
        key_id: &str,
        plain: (Option<u64>, Option<&Digest>),
        cipher: (Option<u64>, Option<&Digest>),
        created_at: Timestamp,
    ) -> Result<PackId> {
        let r = self
            .tx
            .prepare_cached(
                "INSERT INTO pack (name, format, key_id, plain_size, plain_hash_algo, \
                 plain_hash, cipher_size, cipher_hash_algo, cipher_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    name,
                    format.as_str(),
                    key_id,
                    plain.0,
                    plain.1.map(|d| d.algo().as_str()),
                    plain.1.map(|d| d.bytes()),
                    cipher.0,
                    cipher.1.map(|d| d.algo().as_str()),
                    cipher.1.map(|d| d.bytes()),
                    created_at.unix_seconds()
                ])
            });
        match r {
            Ok(_) => Ok(PackId(self.tx.last_insert_rowid())),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                what: "pack",
                key: name.to_owned(),
            }),
            Err(e) => Err(sql("add pack")(e)),
        }
    }

    /// Internal: finds or creates a content row.
    pub(crate) fn content_row(&mut self, hash: &Digest, size: Option<u64>) -> Result<ContentId> {
        self.content_for(hash, size)
    }
}

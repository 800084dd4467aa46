//! Write operations ([`Txn`]), each inside the caller's one transaction.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::error::{Error, Result, is_unique_violation, sql};
use crate::ingest::{self, Stmts, VolumeCache, check_text, to_i64};
use crate::query::Reader;
use crate::records::{
    Fetched, JobProgress, NewLocation, NewObjectVolume, NewPack, NewTape, NewVerification,
    PackInfo, RestorePlan, ScanOutcome, ScannedFile,
};
use crate::types::{
    ContentId, Digest, EventLevel, JobId, JobKind, JobOutcome, LocationId, PackFormat, PackId,
    SourceId, Timestamp, VersionId, VolumeId, VolumeState,
};

/// A write transaction. Get one from [`Catalog::write`](crate::Catalog::write); everything
/// done through it is committed together when the closure returns `Ok`.
#[derive(Debug)]
pub struct Txn<'c> {
    tx: Transaction<'c>,
    /// The batch call that failed, if one did: the transaction must not be committed.
    abandoned: Option<&'static str>,
}

/// Generates a pack name: 32 lowercase hex characters, the time of day in milliseconds
/// followed by 80 bits from the OS random generator (no plaintext information; names made
/// later sort later, which keeps the name index compact and cheap to insert into).
pub fn generate_pack_name() -> Result<String> {
    ingest::pack_names(1)?
        .pop()
        .ok_or_else(|| Error::Random("no name generated".to_owned()))
}

impl<'c> Txn<'c> {
    pub(crate) fn new(tx: Transaction<'c>) -> Txn<'c> {
        Txn {
            tx,
            abandoned: None,
        }
    }

    /// The batch call that failed in this transaction, if any.
    pub(crate) fn abandoned(&self) -> Option<&'static str> {
        self.abandoned
    }

    /// Runs one batch call. A batch stops at its first failing item with the items before
    /// it already written. Rather than pay for a savepoint per batch (SQLite then copies
    /// every page the batch touches to its sub-journal, and every statement truncates it:
    /// measured half again the cost of the fetched stage), a failure marks the transaction
    /// abandoned, so [`Catalog::write`](crate::Catalog::write) rolls it back even if the
    /// closure swallows the error.
    fn batch<T>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        let r = f(&self.tx);
        if r.is_err() {
            self.abandoned.get_or_insert(op);
        }
        r
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
        ingest::exists(
            &self.tx,
            "SELECT 1 FROM source WHERE id = ?1",
            source.0,
            "source",
        )?;
        ingest::scan_one(&mut Stmts::new(&self.tx), source, file, now)
    }

    /// Records many files seen by one scan of `source` (the way a listing arrives) in one
    /// call. On an error (e.g. an empty path) the transaction is abandoned: nothing of it is
    /// stored, even if the closure goes on (see [`Error::TransactionAbandoned`]).
    /// Same rules as [`Txn::record_scan`] for each file, in order (a path listed twice is
    /// recorded twice, the second time as unchanged or changed). Returns the outcomes in
    /// input order.
    pub fn record_scans(
        &mut self,
        source: SourceId,
        files: &[ScannedFile],
        now: Timestamp,
    ) -> Result<Vec<ScanOutcome>> {
        self.batch("record_scans", |c| {
            ingest::exists(c, "SELECT 1 FROM source WHERE id = ?1", source.0, "source")?;
            let mut s = Stmts::new(c);
            files
                .iter()
                .map(|f| ingest::scan_one(&mut s, source, f, now))
                .collect()
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
        ingest::fetched_one(&mut Stmts::new(&self.tx), version, hash, size)
    }

    /// Records the contents of many fetched versions in one call. On an error the
    /// transaction is abandoned: nothing of it is stored. Same checks and effects as
    /// [`Txn::record_fetched`] for each. Returns the content ids in input order.
    pub fn record_fetches(&mut self, fetched: &[Fetched]) -> Result<Vec<ContentId>> {
        self.batch("record_fetches", |c| {
            let mut s = Stmts::new(c);
            fetched
                .iter()
                .map(|f| ingest::fetched_one(&mut s, f.version, &f.hash, f.size))
                .collect()
        })
    }

    /// Forgets the recorded content of a version whose bytes can no longer be captured: a
    /// file read in place at its source that changed or vanished before it was packed.
    /// The version goes back to "not fetched" (fetched again while it is the latest of
    /// its file; a newer scan supersedes it otherwise), and its content row is removed
    /// when nothing else refers to it. Refused with [`Error::ContentMismatch`] when the
    /// content is already in a pack (then its bytes are safe and nothing is lost).
    pub fn forget_fetched(&mut self, version: VersionId) -> Result<()> {
        let content: Option<Option<i64>> = self
            .tx
            .prepare_cached("SELECT content_id FROM version WHERE id = ?1")
            .and_then(|mut st| st.query_row([version.0], |r| r.get(0)).optional())
            .map_err(sql("read version"))?;
        let Some(content) = content else {
            return Err(Error::NotFound {
                what: "version",
                key: version.to_string(),
            });
        };
        let Some(content) = content else {
            return Ok(());
        };
        let packed: bool = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM pack_member WHERE content_id = ?1)")
            .and_then(|mut st| st.query_row([content], |r| r.get(0)))
            .map_err(sql("read pack members"))?;
        if packed {
            return Err(Error::ContentMismatch {
                version,
                detail: "its content is already packed".into(),
            });
        }
        self.tx
            .prepare_cached("UPDATE version SET content_id = NULL WHERE id = ?1")
            .and_then(|mut st| st.execute([version.0]))
            .map_err(sql("forget fetched content"))?;
        self.tx
            .prepare_cached(
                "DELETE FROM content WHERE id = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM version WHERE content_id = ?1) \
                 AND NOT EXISTS (SELECT 1 FROM pack_member WHERE content_id = ?1)",
            )
            .and_then(|mut st| st.execute([content]))
            .map_err(sql("remove unreferenced content"))?;
        Ok(())
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
        ingest::pack_one(&mut Stmts::new(&self.tx), pack, generate_pack_name()?, now)
    }

    /// Like [`Txn::record_pack`], under a name chosen before the pack was recorded (a pack
    /// streamed onto a tape under its name before it is recorded). The name must look like
    /// one [`generate_pack_name`] makes (32 lowercase hex characters) and be unused:
    /// otherwise [`Error::InvalidInput`] or [`Error::AlreadyExists`].
    pub fn record_pack_named(
        &mut self,
        pack: &NewPack,
        name: &str,
        now: Timestamp,
    ) -> Result<PackInfo> {
        if name.len() != 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::InvalidInput {
                what: "pack name",
                reason: format!("{name:?} is not 32 lowercase hex characters"),
            });
        }
        if self.read().pack_by_name(name)?.is_some() {
            return Err(Error::AlreadyExists {
                what: "pack",
                key: name.to_owned(),
            });
        }
        ingest::pack_one(&mut Stmts::new(&self.tx), pack, name.to_owned(), now)
    }

    /// Records many packs in one call. On an error the transaction is abandoned: nothing of
    /// it is stored. Same checks and effects as [`Txn::record_pack`] for each (a content may not
    /// appear in two packs of the batch either); the names come from one read of the OS
    /// random generator. Returns the packs in input order.
    pub fn record_packs(&mut self, packs: &[NewPack], now: Timestamp) -> Result<Vec<PackInfo>> {
        self.batch("record_packs", |c| {
            let mut s = Stmts::new(c);
            ingest::pack_names(packs.len())?
                .into_iter()
                .zip(packs)
                .map(|(name, p)| ingest::pack_one(&mut s, p, name, now))
                .collect()
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

    /// Forgets the locations of objects deleted from an object-store volume (a prune), with
    /// their verification records, and takes their lengths off the volume's bytes used.
    /// Keys the catalog does not know are ignored. Returns how many locations went; packs
    /// left without any location are then listed again as unwritten, never silently "safe".
    pub fn remove_object_locations(&mut self, volume: VolumeId, keys: &[String]) -> Result<u64> {
        let mut removed = 0u64;
        let mut bytes = 0u64;
        for key in keys {
            let rows: Vec<(i64, Option<i64>)> = self
                .tx
                .prepare_cached(
                    "SELECT id, length FROM location \
                     WHERE volume_id = ?1 AND position_kind = 'object' AND object_key = ?2",
                )
                .and_then(|mut st| {
                    st.query_map(params![volume.0, key], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(sql("find object locations"))?;
            for (id, len) in rows {
                self.tx
                    .prepare_cached("DELETE FROM verification WHERE location_id = ?1")
                    .and_then(|mut st| st.execute(params![id]))
                    .map_err(sql("forget verifications"))?;
                self.tx
                    .prepare_cached("DELETE FROM location WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![id]))
                    .map_err(sql("forget location"))?;
                removed += 1;
                bytes += len.and_then(|l| u64::try_from(l).ok()).unwrap_or(0);
            }
        }
        if removed > 0 {
            self.tx
                .prepare_cached(
                    "UPDATE volume SET bytes_used = MAX(0, bytes_used - ?2) WHERE id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![volume.0, i64::try_from(bytes).unwrap_or(i64::MAX)])
                })
                .map_err(sql("update volume usage"))?;
        }
        Ok(removed)
    }

    /// Records that a pack (or one part of it) was written to a volume at `position`. Adds
    /// the part's length to the volume's bytes used and makes a blank volume appendable.
    /// Refuses retired volumes and positions of the wrong kind (object keys on tapes).
    pub fn record_location(&mut self, loc: &NewLocation, now: Timestamp) -> Result<LocationId> {
        let mut volumes = VolumeCache::default();
        let id = ingest::location_one(&mut Stmts::new(&self.tx), &mut volumes, loc, now)?;
        volumes.flush(&self.tx)?;
        Ok(id)
    }

    /// Records many locations (e.g. every pack written to a tape in one session) in one
    /// call. On an error the transaction is abandoned: nothing of it is stored. Same checks and
    /// effects as [`Txn::record_location`] for each; each volume is read once and its bytes
    /// used updated once. Returns the ids in input order.
    pub fn record_locations(
        &mut self,
        locs: &[NewLocation],
        now: Timestamp,
    ) -> Result<Vec<LocationId>> {
        self.batch("record_locations", |c| {
            let mut volumes = VolumeCache::default();
            let mut s = Stmts::new(c);
            let ids = locs
                .iter()
                .map(|l| ingest::location_one(&mut s, &mut volumes, l, now))
                .collect::<Result<Vec<_>>>()?;
            volumes.flush(c)?;
            Ok(ids)
        })
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
            ingest::exists(&self.tx, "SELECT 1 FROM job WHERE id = ?1", j.0, "job")?;
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
        ingest::exists(
            &self.tx,
            "SELECT 1 FROM volume WHERE id = ?1",
            v.volume.0,
            "volume",
        )?;
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
            ingest::exists(&self.tx, "SELECT 1 FROM job WHERE id = ?1", j.0, "job")?;
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
        ingest::content_for(&self.tx, hash, size)
    }
}

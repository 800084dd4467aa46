//! Read-only queries ([`Reader`]).

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::error::{Error, Result, sql};
use crate::records::{
    CopyTarget, Event, FileCopy, FileEntry, FileQuery, Job, Location, MissingFile, MissingReason,
    PackContent, PackInfo, PackRead, RestoreFile, RestorePlan, RestoreQuery, Source, Summary,
    Verification, VersionInfo, Volume, VolumeRun, VolumeSummary,
};
use crate::rows::{self, SqlResult};
use crate::types::{
    ContentId, EventLevel, JobId, JobKind, LocationId, PackId, Part, Position, SourceId, Timestamp,
    VerifyOutcome, VersionId, VersionSelector, VolumeId, VolumeState,
};

/// Queries over the catalog. Get one from [`Catalog::read`](crate::Catalog::read) or, inside
/// a write transaction, [`Txn::read`](crate::Txn::read).
#[derive(Debug, Clone, Copy)]
pub struct Reader<'c> {
    conn: &'c Connection,
}

/// Which versions a file query selects: SQL for a CTE `sel(vid, fid, sid, path, content_id)`
/// and its parameters.
fn selection(
    pattern: Option<&str>,
    source: Option<SourceId>,
    selector: VersionSelector,
    include_deleted: bool,
) -> (String, Vec<Value>) {
    let mut conds = Vec::new();
    let mut params = Vec::new();
    if let Some(p) = pattern {
        conds.push("f.path GLOB ?".to_owned());
        params.push(Value::Text(p.to_owned()));
    }
    if let Some(s) = source {
        conds.push("f.source_id = ?".to_owned());
        params.push(Value::Integer(s.0));
    }
    match selector {
        VersionSelector::Latest => {
            conds.push("v.seq = (SELECT max(seq) FROM version WHERE file_id = f.id)".to_owned());
            if !include_deleted {
                conds.push("v.deleted_at IS NULL".to_owned());
            }
        }
        VersionSelector::AsOf(t) => {
            conds.push(
                "v.seq = (SELECT max(seq) FROM version WHERE file_id = f.id AND first_seen <= ?)"
                    .to_owned(),
            );
            params.push(Value::Integer(t.unix_seconds()));
            if !include_deleted {
                conds.push("(v.deleted_at IS NULL OR v.deleted_at > ?)".to_owned());
                params.push(Value::Integer(t.unix_seconds()));
            }
        }
        VersionSelector::Number(n) => {
            conds.push("v.seq = ?".to_owned());
            params.push(Value::Integer(i64::from(n)));
            if !include_deleted {
                conds.push("v.deleted_at IS NULL".to_owned());
            }
        }
    }
    let sql = format!(
        "sel AS (SELECT v.id AS vid, f.id AS fid, f.source_id AS sid, f.path AS path, \
         v.content_id AS content_id FROM file f JOIN version v ON v.file_id = f.id WHERE {})",
        conds.join(" AND ")
    );
    (sql, params)
}

/// The query [`Reader::locate`] runs for `selector`: the version id of one path, with the
/// parameters that follow `source_id` and `path`.
fn locate_query(selector: VersionSelector) -> (&'static str, Vec<Value>) {
    match selector {
        VersionSelector::Latest => (
            "SELECT v.id FROM file f JOIN version v ON v.file_id = f.id \
             WHERE f.source_id = ? AND f.path = ? ORDER BY v.seq DESC LIMIT 1",
            vec![],
        ),
        VersionSelector::AsOf(t) => (
            "SELECT v.id FROM file f JOIN version v ON v.file_id = f.id \
             WHERE f.source_id = ? AND f.path = ? AND v.first_seen <= ? \
             AND (v.deleted_at IS NULL OR v.deleted_at > ?) \
             AND v.seq = (SELECT max(seq) FROM version WHERE file_id = f.id \
                          AND first_seen <= ?)",
            vec![Value::Integer(t.unix_seconds()); 3],
        ),
        VersionSelector::Number(n) => (
            "SELECT v.id FROM file f JOIN version v ON v.file_id = f.id \
             WHERE f.source_id = ? AND f.path = ? AND v.seq = ?",
            vec![Value::Integer(i64::from(n))],
        ),
    }
}

/// The query of a restore plan over the versions a `sel` CTE selects: one row per
/// (version, pack, location); versions without pack or location still appear once (LEFT
/// JOINs) so they can be reported missing.
fn plan_query(cte: &str) -> String {
    format!(
        "WITH {cte} SELECT sel.vid, s.name, sel.path, sel.content_id, c.hash_algo, c.hash, \
           v.mtime, v.mode, pm.pack_id, pm.offset, pm.length, p.name, p.format, \
           l.id, l.volume_id, l.part_index, l.part_count, l.part_offset, l.length, \
           l.position_kind, l.partition, l.start_block, l.object_key, vol.state, \
           coalesce(vol.barcode, vol.bucket || '/' || vol.prefix) \
         FROM sel JOIN source s ON s.id = sel.sid JOIN version v ON v.id = sel.vid \
         LEFT JOIN content c ON c.id = sel.content_id \
         LEFT JOIN pack_member pm ON pm.content_id = sel.content_id \
         LEFT JOIN pack p ON p.id = pm.pack_id \
         LEFT JOIN location l ON l.pack_id = pm.pack_id \
         LEFT JOIN volume vol ON vol.id = l.volume_id \
         ORDER BY sel.sid, sel.path, sel.vid, pm.pack_id, l.part_index, l.volume_id"
    )
}

/// The `sel` CTE of [`Reader::plan_restore_job`]: a restore job's files not restored yet.
const RESTORE_JOB_SEL: &str = "sel AS (SELECT v.id AS vid, f.id AS fid, f.source_id AS sid, \
     f.path AS path, v.content_id AS content_id FROM restore_item ri \
     JOIN version v ON v.id = ri.version_id JOIN file f ON f.id = v.file_id \
     WHERE ri.job_id = ? AND ri.done_at IS NULL)";

/// Rank of a volume for reading: lower is preferred; `None` means unusable.
fn read_rank(state: VolumeState) -> Option<u8> {
    match state {
        VolumeState::Appendable | VolumeState::Full | VolumeState::Blank => Some(0),
        VolumeState::Offsite => Some(1),
        VolumeState::Retired => None,
    }
}

/// Sort key of a position on its volume.
fn position_key(p: &Position) -> (u32, u64, String) {
    match p {
        Position::Tape {
            partition,
            start_block,
        } => (*partition, *start_block, String::new()),
        Position::LtfsFile { name, start_block } => {
            (u32::MAX, start_block.unwrap_or(u64::MAX), name.clone())
        }
        Position::Object { key } => (0, 0, key.clone()),
    }
}

impl<'c> Reader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Reader<'c> {
        Reader { conn }
    }

    /// All sources, by name.
    pub fn sources(&self) -> Result<Vec<Source>> {
        let q = format!("SELECT {} FROM source s ORDER BY s.name", rows::SOURCE_COLS);
        collect(self.conn, &q, [], rows::source, "list sources")
    }

    /// A source by its name.
    pub fn source_by_name(&self, name: &str) -> Result<Option<Source>> {
        let q = format!(
            "SELECT {} FROM source s WHERE s.name = ?1",
            rows::SOURCE_COLS
        );
        self.conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([name], rows::source).optional())
            .map_err(sql("find source"))
    }

    /// One version.
    pub fn version(&self, id: VersionId) -> Result<VersionInfo> {
        let q = format!(
            "SELECT {} FROM {} WHERE v.id = ?1",
            rows::VERSION_COLS,
            rows::VERSION_FROM
        );
        self.conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([id.0], rows::version).optional())
            .map_err(sql("read version"))?
            .ok_or_else(|| Error::NotFound {
                what: "version",
                key: id.to_string(),
            })
    }

    /// All versions of one path, oldest first (empty if the path is unknown).
    pub fn versions_of(&self, source: SourceId, path: &str) -> Result<Vec<VersionInfo>> {
        let q = format!(
            "SELECT {} FROM {} WHERE f.source_id = ?1 AND f.path = ?2 ORDER BY v.seq",
            rows::VERSION_COLS,
            rows::VERSION_FROM
        );
        collect(
            self.conn,
            &q,
            params![source.0, path],
            rows::version,
            "list versions",
        )
    }

    /// What to fetch next: latest versions, not deleted, whose content is not known yet.
    /// Ordered by version id (scan order); at most `limit`.
    ///
    /// Reads the versions in row order (no index since schema v4: one pass over the
    /// `version` table, which a bulk insert no longer pays an index entry per file for).
    pub fn versions_to_fetch(&self, limit: u64) -> Result<Vec<VersionInfo>> {
        let q = format!(
            "SELECT {} FROM {} WHERE v.content_id IS NULL AND v.deleted_at IS NULL \
             AND v.seq = (SELECT max(seq) FROM version WHERE file_id = v.file_id) \
             ORDER BY v.id LIMIT ?1",
            rows::VERSION_COLS,
            rows::VERSION_FROM
        );
        collect(
            self.conn,
            &q,
            [limit],
            rows::version,
            "list versions to fetch",
        )
    }

    /// What to pack next: one version per content that is in no pack yet (the content is
    /// packed once; other versions with the same hash share it). Ordered by content id; at
    /// most `limit`.
    pub fn versions_to_pack(&self, limit: u64) -> Result<Vec<VersionInfo>> {
        self.versions_to_pack_after(None, limit)
    }

    /// [`Reader::versions_to_pack`] for contents with an id above `after` only: a caller
    /// that packs while contents are being recorded reads only what is new since its last
    /// call instead of everything still unpacked. Content ids grow as contents are
    /// recorded, but the highest one is given again when its row was removed (a forgotten
    /// fetch), so such a caller reads everything (`after` = `None`) once before it stops.
    pub fn versions_to_pack_after(
        &self,
        after: Option<ContentId>,
        limit: u64,
    ) -> Result<Vec<VersionInfo>> {
        let q = format!(
            "SELECT {} FROM {} WHERE v.id IN (\
               SELECT (SELECT min(id) FROM version WHERE content_id = c2.id) FROM content c2 \
               WHERE c2.id > ?2 \
               AND NOT EXISTS (SELECT 1 FROM pack_member pm WHERE pm.content_id = c2.id) \
               ORDER BY c2.id LIMIT ?1) \
             ORDER BY v.content_id",
            rows::VERSION_COLS,
            rows::VERSION_FROM
        );
        let after = after.map_or(0, |c| c.0);
        collect(
            self.conn,
            &q,
            params![limit, after],
            rows::version,
            "list versions to pack",
        )
    }

    /// One pack.
    pub fn pack(&self, id: PackId) -> Result<PackInfo> {
        let q = format!("SELECT {} FROM pack p WHERE p.id = ?1", rows::PACK_COLS);
        self.conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([id.0], rows::pack).optional())
            .map_err(sql("read pack"))?
            .ok_or_else(|| Error::NotFound {
                what: "pack",
                key: id.to_string(),
            })
    }

    /// A pack by its generated name.
    pub fn pack_by_name(&self, name: &str) -> Result<Option<PackInfo>> {
        let q = format!("SELECT {} FROM pack p WHERE p.name = ?1", rows::PACK_COLS);
        self.conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([name], rows::pack).optional())
            .map_err(sql("find pack"))
    }

    /// The contents of a pack, by offset.
    pub fn pack_contents(&self, pack: PackId) -> Result<Vec<PackContent>> {
        collect(
            self.conn,
            "SELECT pm.content_id, c.hash_algo, c.hash, pm.offset, pm.length \
             FROM pack_member pm JOIN content c ON c.id = pm.content_id \
             WHERE pm.pack_id = ?1 ORDER BY pm.offset",
            [pack.0],
            |r| {
                Ok(PackContent {
                    content: ContentId(r.get(0)?),
                    hash: rows::digest(r, 1, 2)?,
                    offset: r.get(3)?,
                    length: r.get(4)?,
                })
            },
            "list pack contents",
        )
    }

    /// Packs with fewer than `target.copies` complete copies on volumes that are not
    /// retired (and, if given, in `target.pool`). A copy of a spanning pack counts only when
    /// every part is there. Ordered by pack id; at most `limit`.
    pub fn packs_to_write(&self, target: &CopyTarget, limit: u64) -> Result<Vec<PackInfo>> {
        let q = format!(
            "WITH parts AS (\
               SELECT l.pack_id, l.part_index, max(l.part_count) AS pc, count(*) AS n \
               FROM location l JOIN volume vol ON vol.id = l.volume_id \
               WHERE vol.state <> 'retired' AND (?1 IS NULL OR vol.pool = ?1) \
               GROUP BY l.pack_id, l.part_index), \
             copies AS (\
               SELECT pack_id, CASE WHEN count(*) < max(pc) THEN 0 ELSE min(n) END AS k \
               FROM parts GROUP BY pack_id) \
             SELECT {} FROM pack p LEFT JOIN copies ON copies.pack_id = p.id \
             WHERE coalesce(copies.k, 0) < ?2 ORDER BY p.id LIMIT ?3",
            rows::PACK_COLS
        );
        collect(
            self.conn,
            &q,
            params![target.pool, target.copies, limit],
            rows::pack,
            "list packs to write",
        )
    }

    /// Complete copies of a pack on volumes that are not retired.
    pub fn copies_of(&self, pack: PackId) -> Result<u32> {
        self.conn
            .prepare_cached(
                "WITH parts AS (\
                   SELECT l.part_index, max(l.part_count) AS pc, count(*) AS n \
                   FROM location l JOIN volume vol ON vol.id = l.volume_id \
                   WHERE l.pack_id = ?1 AND vol.state <> 'retired' GROUP BY l.part_index) \
                 SELECT CASE WHEN count(*) = 0 OR count(*) < max(pc) THEN 0 ELSE min(n) END \
                 FROM parts",
            )
            .and_then(|mut st| st.query_row([pack.0], |r| r.get(0)))
            .map_err(sql("count copies"))
    }

    /// One volume.
    pub fn volume(&self, id: VolumeId) -> Result<Volume> {
        let q = format!(
            "SELECT {} FROM volume vol WHERE vol.id = ?1",
            rows::VOLUME_COLS
        );
        self.conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([id.0], rows::volume).optional())
            .map_err(sql("read volume"))?
            .ok_or_else(|| Error::NotFound {
                what: "volume",
                key: id.to_string(),
            })
    }

    /// A tape by barcode.
    pub fn volume_by_barcode(&self, barcode: &str) -> Result<Option<Volume>> {
        let q = format!(
            "SELECT {} FROM volume vol WHERE vol.barcode = ?1",
            rows::VOLUME_COLS
        );
        self.conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([barcode], rows::volume).optional())
            .map_err(sql("find volume"))
    }

    /// All volumes, by id.
    pub fn volumes(&self) -> Result<Vec<Volume>> {
        let q = format!(
            "SELECT {} FROM volume vol ORDER BY vol.id",
            rows::VOLUME_COLS
        );
        collect(self.conn, &q, [], rows::volume, "list volumes")
    }

    /// Locations of a pack's parts, by part then volume.
    pub fn locations_of_pack(&self, pack: PackId) -> Result<Vec<Location>> {
        let q = format!(
            "SELECT {} FROM location l WHERE l.pack_id = ?1 ORDER BY l.part_index, l.volume_id",
            rows::LOCATION_COLS
        );
        collect(self.conn, &q, [pack.0], rows::location, "list locations")
    }

    /// Locations on a volume, in position order.
    pub fn locations_on_volume(&self, volume: VolumeId) -> Result<Vec<Location>> {
        let q = format!(
            "SELECT {} FROM location l WHERE l.volume_id = ?1 \
             ORDER BY l.partition, l.start_block, l.object_key, l.id",
            rows::LOCATION_COLS
        );
        collect(self.conn, &q, [volume.0], rows::location, "list locations")
    }

    /// One job.
    pub fn job(&self, id: JobId) -> Result<Job> {
        let q = format!("SELECT {} FROM job j WHERE j.id = ?1", rows::JOB_COLS);
        self.conn
            .prepare_cached(&q)
            .and_then(|mut st| st.query_row([id.0], rows::job).optional())
            .map_err(sql("read job"))?
            .ok_or_else(|| Error::NotFound {
                what: "job",
                key: id.to_string(),
            })
    }

    /// The most recent jobs, newest first.
    pub fn jobs(&self, limit: u64) -> Result<Vec<Job>> {
        let q = format!(
            "SELECT {} FROM job j ORDER BY j.id DESC LIMIT ?1",
            rows::JOB_COLS
        );
        collect(self.conn, &q, [limit], rows::job, "list jobs")
    }

    /// Jobs of a kind that never ended (killed or still running), oldest first: the ones
    /// to resume.
    pub fn unfinished_jobs(&self, kind: JobKind) -> Result<Vec<Job>> {
        let q = format!(
            "SELECT {} FROM job j WHERE j.kind = ?1 AND j.outcome = 'running' ORDER BY j.id",
            rows::JOB_COLS
        );
        collect(self.conn, &q, [kind.as_str()], rows::job, "list jobs")
    }

    /// A job's events, oldest first.
    pub fn events(&self, job: JobId) -> Result<Vec<Event>> {
        collect(
            self.conn,
            "SELECT job_id, at, level, message FROM event WHERE job_id = ?1 ORDER BY id",
            [job.0],
            |r| {
                Ok(Event {
                    job: r.get::<_, Option<i64>>(0)?.map(JobId),
                    at: rows::ts(r, 1)?,
                    level: {
                        let s: String = r.get(2)?;
                        EventLevel::parse(&s).ok_or_else(|| rows::corrupt(2, "event level", s))?
                    },
                    message: r.get(3)?,
                })
            },
            "list events",
        )
    }

    /// Verifications recorded on a volume, oldest first.
    pub fn verifications_of_volume(&self, volume: VolumeId) -> Result<Vec<Verification>> {
        collect(
            self.conn,
            "SELECT job_id, volume_id, location_id, at, outcome, detail FROM verification \
             WHERE volume_id = ?1 ORDER BY id",
            [volume.0],
            verification,
            "list verifications",
        )
    }

    /// Verifications of a pack (any of its locations), oldest first.
    pub fn verifications_of_pack(&self, pack: PackId) -> Result<Vec<Verification>> {
        collect(
            self.conn,
            "SELECT ve.job_id, ve.volume_id, ve.location_id, ve.at, ve.outcome, ve.detail \
             FROM verification ve JOIN location l ON l.id = ve.location_id \
             WHERE l.pack_id = ?1 ORDER BY ve.id",
            [pack.0],
            verification,
            "list verifications",
        )
    }

    /// Per-volume summaries (by volume id).
    pub fn volume_summaries(&self) -> Result<Vec<VolumeSummary>> {
        let q = format!(
            "SELECT {}, \
               (SELECT count(*) FROM location l WHERE l.volume_id = vol.id), \
               (SELECT count(DISTINCT pack_id) FROM location l WHERE l.volume_id = vol.id), \
               (SELECT max(at) FROM verification ve WHERE ve.volume_id = vol.id), \
               (SELECT count(*) FROM verification ve WHERE ve.volume_id = vol.id \
                  AND ve.outcome <> 'ok') \
             FROM volume vol ORDER BY vol.id",
            rows::VOLUME_COLS
        );
        collect(
            self.conn,
            &q,
            [],
            |r| {
                Ok(VolumeSummary {
                    volume: rows::volume(r)?,
                    locations: r.get(13)?,
                    packs: r.get(14)?,
                    last_verified: rows::opt_ts(r, 15)?,
                    failed_verifications: r.get(16)?,
                })
            },
            "summarize volumes",
        )
    }

    /// Whole-catalog counts.
    pub fn summary(&self) -> Result<Summary> {
        let count = |q: &str| -> Result<u64> {
            self.conn
                .prepare_cached(q)
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(sql("summarize"))
        };
        let volumes = collect(
            self.conn,
            "SELECT state, count(*) FROM volume GROUP BY state ORDER BY state",
            [],
            |r| {
                let s: String = r.get(0)?;
                let state =
                    VolumeState::parse(&s).ok_or_else(|| rows::corrupt(0, "volume state", s))?;
                Ok((state, r.get(1)?))
            },
            "summarize",
        )?;
        Ok(Summary {
            sources: count("SELECT count(*) FROM source")?,
            files: count("SELECT count(*) FROM file")?,
            versions: count("SELECT count(*) FROM version")?,
            contents: count("SELECT count(*) FROM content")?,
            content_bytes: count("SELECT coalesce(sum(size), 0) FROM content")?,
            versions_to_fetch: count(
                "SELECT count(*) FROM version v WHERE v.content_id IS NULL \
                 AND v.deleted_at IS NULL \
                 AND v.seq = (SELECT max(seq) FROM version WHERE file_id = v.file_id)",
            )?,
            contents_to_pack: count(
                "SELECT count(*) FROM content c WHERE NOT EXISTS \
                 (SELECT 1 FROM pack_member pm WHERE pm.content_id = c.id)",
            )?,
            packs: count("SELECT count(*) FROM pack")?,
            packs_unwritten: count(
                "SELECT count(*) FROM pack p WHERE NOT EXISTS \
                 (SELECT 1 FROM location l WHERE l.pack_id = p.id)",
            )?,
            volumes,
            jobs_unfinished: count("SELECT count(*) FROM job WHERE outcome = 'running'")?,
        })
    }

    /// Looks up one path: the selected version and where its bytes are. `None` when the
    /// path is unknown or no version matches the selector.
    pub fn locate(
        &self,
        source: SourceId,
        path: &str,
        selector: VersionSelector,
    ) -> Result<Option<FileEntry>> {
        let vid: Option<i64> = {
            let (q, mut p) = locate_query(selector);
            let mut all = vec![Value::Integer(source.0), Value::Text(path.to_owned())];
            all.append(&mut p);
            self.conn
                .prepare_cached(q)
                .and_then(|mut st| st.query_row(params_from_iter(all), |r| r.get(0)).optional())
                .map_err(sql("locate"))?
        };
        match vid {
            None => Ok(None),
            Some(v) => self.entry_for(self.version(VersionId(v))?).map(Some),
        }
    }

    /// Completes a version into a [`FileEntry`] (source name, pack, copies).
    fn entry_for(&self, version: VersionInfo) -> Result<FileEntry> {
        let source_name: String = self
            .conn
            .prepare_cached("SELECT name FROM source WHERE id = ?1")
            .and_then(|mut st| st.query_row([version.source.0], |r| r.get(0)))
            .map_err(sql("read source"))?;
        let mut pack = None;
        let mut pack_offset = None;
        let mut copies = Vec::new();
        if let Some(content) = version.content {
            let q = format!(
                "SELECT {}, pm.offset FROM pack_member pm JOIN pack p ON p.id = pm.pack_id \
                 WHERE pm.content_id = ?1 ORDER BY p.id LIMIT 1",
                rows::PACK_COLS
            );
            let found = self
                .conn
                .prepare_cached(&q)
                .and_then(|mut st| {
                    st.query_row([content.0], |r| {
                        Ok((rows::pack(r)?, r.get::<_, u64>(rows::PACK_NCOLS)?))
                    })
                    .optional()
                })
                .map_err(sql("find pack of content"))?;
            if let Some((p, off)) = found {
                copies = self.copies_of_pack(p.id)?;
                pack = Some(p);
                pack_offset = Some(off);
            }
        }
        Ok(FileEntry {
            version,
            source_name,
            pack,
            pack_offset,
            copies,
        })
    }

    fn copies_of_pack(&self, pack: PackId) -> Result<Vec<FileCopy>> {
        let q = "SELECT l.id, l.volume_id, coalesce(vol.barcode, vol.bucket || '/' || vol.prefix), \
             l.part_index, l.part_count, l.part_offset, l.length, l.position_kind, l.partition, \
             l.start_block, l.object_key FROM location l JOIN volume vol ON vol.id = l.volume_id \
             WHERE l.pack_id = ?1 ORDER BY l.part_index, l.volume_id";
        collect(
            self.conn,
            q,
            [pack.0],
            |r| {
                let (part, position) = rows::part_position_at(r, 3)?;
                Ok(FileCopy {
                    location: LocationId(r.get(0)?),
                    volume: VolumeId(r.get(1)?),
                    volume_label: r.get(2)?,
                    part,
                    position,
                })
            },
            "list copies",
        )
    }

    /// Searches files by path glob, source, version selector, mtime range and volume.
    /// Results in (source, path) order.
    pub fn search(&self, query: &FileQuery) -> Result<Vec<FileEntry>> {
        let (cte, mut params) = selection(
            query.pattern.as_deref(),
            query.source,
            query.selector,
            query.include_deleted,
        );
        let mut conds = vec!["1".to_owned()];
        if let Some(from) = query.modified.from {
            conds.push("v.mtime >= ?".to_owned());
            params.push(Value::Integer(from.unix_seconds()));
        }
        if let Some(to) = query.modified.to {
            conds.push("v.mtime < ?".to_owned());
            params.push(Value::Integer(to.unix_seconds()));
        }
        if let Some(vol) = query.volume {
            conds.push(
                "EXISTS (SELECT 1 FROM pack_member pm JOIN location l ON l.pack_id = pm.pack_id \
                 WHERE pm.content_id = v.content_id AND l.volume_id = ?)"
                    .to_owned(),
            );
            params.push(Value::Integer(vol.0));
        }
        let limit = match query.limit {
            Some(n) => {
                params.push(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
                " LIMIT ?"
            }
            None => "",
        };
        let q = format!(
            "WITH {cte} SELECT {} FROM sel JOIN version v ON v.id = sel.vid \
             JOIN file f ON f.id = v.file_id LEFT JOIN content c ON c.id = v.content_id \
             WHERE {} ORDER BY f.source_id, f.path{limit}",
            rows::VERSION_COLS,
            conds.join(" AND ")
        );
        let versions = collect(
            self.conn,
            &q,
            params_from_iter(params),
            rows::version,
            "search files",
        )?;
        versions.into_iter().map(|v| self.entry_for(v)).collect()
    }

    /// Plans a restore: selects versions as [`RestoreQuery`] says, picks for each a pack
    /// with a complete copy on usable volumes (library volumes before offsite ones, retired
    /// never), and orders the reads as runs per volume by position.
    pub fn plan_restore(&self, query: &RestoreQuery) -> Result<RestorePlan> {
        let (cte, params) = selection(
            query.pattern.as_deref(),
            query.source,
            query.selector,
            query.include_deleted,
        );
        self.plan_from(&cte, params)
    }

    /// The plan for what a restore job still has to do (files not yet marked restored).
    pub fn plan_restore_job(&self, job: JobId) -> Result<RestorePlan> {
        self.plan_from(RESTORE_JOB_SEL, vec![Value::Integer(job.0)])
    }

    /// Restore progress of a restore job: (files done, files total).
    pub fn restore_progress(&self, job: JobId) -> Result<(u64, u64)> {
        self.conn
            .prepare_cached("SELECT count(done_at), count(*) FROM restore_item WHERE job_id = ?1")
            .and_then(|mut st| st.query_row([job.0], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(sql("restore progress"))
    }

    fn plan_from(&self, cte: &str, params: Vec<Value>) -> Result<RestorePlan> {
        let q = plan_query(cte);
        struct Loc {
            id: LocationId,
            volume: VolumeId,
            part: Part,
            position: Position,
            state: VolumeState,
            label: String,
        }
        struct Row {
            vid: VersionId,
            source_name: String,
            path: String,
            has_content: bool,
            file: Option<RestoreFile>,
            pack: Option<(PackId, String, crate::types::PackFormat)>,
            loc: Option<Loc>,
        }
        let map = |r: &rusqlite::Row<'_>| -> SqlResult<Row> {
            let vid = VersionId(r.get(0)?);
            let source_name: String = r.get(1)?;
            let path: String = r.get(2)?;
            let has_content = r.get::<_, Option<i64>>(3)?.is_some();
            let hash = rows::opt_digest(r, 4, 5)?;
            let pack_id: Option<i64> = r.get(8)?;
            let (file, pack) = match (pack_id, hash) {
                (Some(pid), Some(hash)) => {
                    let fmt: String = r.get(12)?;
                    let format = crate::types::PackFormat::parse(&fmt)
                        .ok_or_else(|| rows::corrupt(12, "pack format", fmt))?;
                    (
                        Some(RestoreFile {
                            version: vid,
                            source_name: source_name.clone(),
                            path: path.clone(),
                            offset: r.get(9)?,
                            length: r.get(10)?,
                            hash,
                            mtime: rows::ts(r, 6)?,
                            mode: rows::u32_of(r, 7)?,
                        }),
                        Some((PackId(pid), r.get(11)?, format)),
                    )
                }
                _ => (None, None),
            };
            let loc = match r.get::<_, Option<i64>>(13)? {
                Some(lid) => {
                    let (part, position) = rows::part_position_at(r, 15)?;
                    let st: String = r.get(23)?;
                    Some(Loc {
                        id: LocationId(lid),
                        volume: VolumeId(r.get(14)?),
                        part,
                        position,
                        state: VolumeState::parse(&st)
                            .ok_or_else(|| rows::corrupt(23, "volume state", st))?,
                        label: r.get(24)?,
                    })
                }
                None => None,
            };
            Ok(Row {
                vid,
                source_name,
                path,
                has_content,
                file,
                pack,
                loc,
            })
        };
        let all = collect(self.conn, &q, params_from_iter(params), map, "plan restore")?;

        // Group rows by version (they arrive ordered by version, then pack, then part).
        struct Choice {
            pack: PackId,
            pack_name: String,
            format: crate::types::PackFormat,
            file: RestoreFile,
            parts: Vec<Loc>,
        }
        let mut plan = RestorePlan::default();
        let mut chosen: Vec<Choice> = Vec::new();
        let mut i = 0;
        while i < all.len() {
            let vid = all[i].vid;
            let mut j = i;
            while j < all.len() && all[j].vid == vid {
                j += 1;
            }
            let group = &all[i..j];
            let first = &group[0];
            // Candidate packs in id order; for each, best location per part.
            let mut best: Option<(PackId, Vec<&Loc>)> = None;
            let mut k = 0;
            while k < group.len() {
                let Some((pid, ..)) = &group[k].pack else {
                    k += 1;
                    continue;
                };
                let pid = *pid;
                let mut m = k;
                let mut per_part: BTreeMap<u32, &Loc> = BTreeMap::new();
                let mut count = 0;
                while m < group.len() && group[m].pack.as_ref().map(|p| p.0) == Some(pid) {
                    if let Some(loc) = &group[m].loc
                        && let Some(rank) = read_rank(loc.state)
                    {
                        count = count.max(loc.part.count);
                        let better = match per_part.get(&loc.part.index) {
                            None => true,
                            Some(cur) => {
                                let cur_rank = read_rank(cur.state).unwrap_or(u8::MAX);
                                (rank, loc.volume) < (cur_rank, cur.volume)
                            }
                        };
                        if better {
                            per_part.insert(loc.part.index, loc);
                        }
                    }
                    m += 1;
                }
                let complete = count > 0
                    && per_part.len() == count as usize
                    && per_part.keys().copied().eq(0..count);
                if complete && best.is_none() {
                    best = Some((pid, per_part.into_values().collect()));
                }
                k = m;
            }
            match best {
                Some((pid, parts)) => {
                    let row = group
                        .iter()
                        .find(|r| r.pack.as_ref().map(|p| p.0) == Some(pid));
                    if let Some(Row {
                        file: Some(file),
                        pack: Some((_, name, format)),
                        ..
                    }) = row
                    {
                        chosen.push(Choice {
                            pack: pid,
                            pack_name: name.clone(),
                            format: *format,
                            file: file.clone(),
                            parts: parts
                                .iter()
                                .map(|l| Loc {
                                    id: l.id,
                                    volume: l.volume,
                                    part: l.part,
                                    position: l.position.clone(),
                                    state: l.state,
                                    label: l.label.clone(),
                                })
                                .collect(),
                        });
                    }
                }
                None => {
                    let reason = if !first.has_content {
                        MissingReason::NotFetched
                    } else if group.iter().all(|r| r.pack.is_none()) {
                        MissingReason::NotPacked
                    } else {
                        MissingReason::NoUsableCopy
                    };
                    plan.missing.push(MissingFile {
                        version: vid,
                        source_name: first.source_name.clone(),
                        path: first.path.clone(),
                        reason,
                    });
                }
            }
            i = j;
        }

        // Build reads keyed by location, then runs by volume.
        let mut reads: BTreeMap<(VolumeId, LocationId), (PackRead, VolumeState, String)> =
            BTreeMap::new();
        for c in chosen {
            for loc in &c.parts {
                let entry = reads.entry((loc.volume, loc.id)).or_insert_with(|| {
                    (
                        PackRead {
                            location: loc.id,
                            pack: c.pack,
                            pack_name: c.pack_name.clone(),
                            format: c.format,
                            part: loc.part,
                            position: loc.position.clone(),
                            files: Vec::new(),
                        },
                        loc.state,
                        loc.label.clone(),
                    )
                });
                if loc.part.index == 0 {
                    entry.0.files.push(c.file.clone());
                }
            }
        }
        let mut runs: BTreeMap<VolumeId, VolumeRun> = BTreeMap::new();
        for ((vol, _), (read, state, label)) in reads {
            runs.entry(vol)
                .or_insert_with(|| VolumeRun {
                    volume: vol,
                    label,
                    state,
                    reads: Vec::new(),
                })
                .reads
                .push(read);
        }
        plan.runs = runs
            .into_values()
            .map(|mut run| {
                run.reads
                    .sort_by_cached_key(|r| (position_key(&r.position), r.location));
                run
            })
            .collect();
        Ok(plan)
    }

    /// Versions a restore job has not finished yet.
    pub fn restore_pending(&self, job: JobId) -> Result<Vec<VersionId>> {
        collect(
            self.conn,
            "SELECT version_id FROM restore_item WHERE job_id = ?1 AND done_at IS NULL \
             ORDER BY version_id",
            [job.0],
            |r| Ok(VersionId(r.get(0)?)),
            "list pending restore items",
        )
    }

    /// When the catalog was last changed by a job that ended (for status displays).
    pub fn last_job_end(&self) -> Result<Option<Timestamp>> {
        self.conn
            .prepare_cached("SELECT max(ended_at) FROM job")
            .and_then(|mut st| st.query_row([], |r| rows::opt_ts(r, 0)))
            .map_err(sql("last job"))
    }
}

fn verification(r: &rusqlite::Row<'_>) -> SqlResult<Verification> {
    let s: String = r.get(4)?;
    Ok(Verification {
        job: r.get::<_, Option<i64>>(0)?.map(JobId),
        volume: VolumeId(r.get(1)?),
        location: r.get::<_, Option<i64>>(2)?.map(LocationId),
        at: rows::ts(r, 3)?,
        outcome: VerifyOutcome::parse(&s).ok_or_else(|| rows::corrupt(4, "outcome", s))?,
        detail: r.get(5)?,
    })
}

/// Runs a query and collects mapped rows.
pub(crate) fn collect<T, P: rusqlite::Params>(
    conn: &Connection,
    q: &str,
    params: P,
    map: impl FnMut(&rusqlite::Row<'_>) -> SqlResult<T>,
    op: &'static str,
) -> Result<Vec<T>> {
    let mut st = conn.prepare_cached(q).map_err(sql(op))?;
    let rows = st.query_map(params, map).map_err(sql(op))?;
    rows.collect::<SqlResult<Vec<T>>>().map_err(sql(op))
}

/// The hot queries use indexes: `EXPLAIN QUERY PLAN` of each, with real parameters bound,
/// must show no full scan of the big tables (`file`, `version`, `content`, `pack_member`,
/// `location`, `pack`).
#[cfg(test)]
mod query_plans {
    use super::*;
    use crate::ingest::{
        CONTENT_BY_HASH, FETCH_LOOKUP, MEMBER_LOOKUP, MEMBERS_LOOKUP, SCAN_LOOKUP,
    };
    use crate::{Catalog, ScannedFile};

    const BIG: &[&str] = &[
        "file",
        "version",
        "content",
        "pack_member",
        "location",
        "pack",
    ];

    /// The `detail` lines of the query plan of `q` with `params` bound.
    fn plan(cat: &Catalog, q: &str, params: Vec<Value>) -> Vec<String> {
        let mut st = cat
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {q}"))
            .expect("prepare EXPLAIN");
        st.query_map(params_from_iter(params), |r| r.get::<_, String>(3))
            .expect("run EXPLAIN")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("read EXPLAIN")
    }

    /// Fails if the plan scans one of the big tables (under any alias).
    fn assert_no_big_scan(what: &str, cat: &Catalog, q: &str, params: Vec<Value>) -> Vec<String> {
        let lines = plan(cat, q, params);
        for line in &lines {
            let mut words = line.split_whitespace();
            if words.next() == Some("SCAN") {
                let table = words.next().unwrap_or_default();
                assert!(
                    !BIG.contains(&table) && !["f", "v", "c", "pm", "l", "p"].contains(&table),
                    "{what}: full scan of {table} in plan {lines:#?}"
                );
            }
        }
        lines
    }

    fn catalog() -> Catalog {
        let mut cat = Catalog::open_in_memory().expect("open");
        cat.write(|tx| {
            let src = tx.add_source("s", "/s", Timestamp::from_unix_seconds(1))?;
            for i in 0..50 {
                tx.record_scan(
                    src,
                    &ScannedFile {
                        path: format!("dir{:04}/f{i}", i % 5),
                        size: 1,
                        mtime: Timestamp::from_unix_seconds(1),
                        mode: 0o644,
                        hash: None,
                    },
                    Timestamp::from_unix_seconds(2),
                )?;
            }
            Ok::<_, Error>(())
        })
        .expect("fill");
        cat
    }

    #[test]
    fn locate_uses_the_path_index() {
        let cat = catalog();
        for selector in [
            VersionSelector::Latest,
            VersionSelector::AsOf(Timestamp::from_unix_seconds(5)),
            VersionSelector::Number(1),
        ] {
            let (q, mut p) = locate_query(selector);
            let mut all = vec![Value::Integer(1), Value::Text("dir0001/f1".into())];
            all.append(&mut p);
            let lines = assert_no_big_scan("locate", &cat, q, all);
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("SEARCH f USING") && l.contains("path=?")),
                "{lines:#?}"
            );
        }
    }

    #[test]
    fn glob_patterns_with_a_prefix_use_the_path_index() {
        let cat = catalog();
        for source in [None, Some(SourceId(1))] {
            let (cte, params) = selection(
                Some("dir00[0-9][0-9]/*"),
                source,
                VersionSelector::Latest,
                false,
            );
            let lines = assert_no_big_scan("plan restore", &cat, &plan_query(&cte), params);
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("SEARCH f USING") && l.contains("path>? AND path<?")),
                "{lines:#?}"
            );
        }
    }

    #[test]
    fn restore_job_plan_uses_indexes() {
        let cat = catalog();
        assert_no_big_scan(
            "restore job",
            &cat,
            &plan_query(RESTORE_JOB_SEL),
            vec![Value::Integer(1)],
        );
    }

    #[test]
    fn insert_path_lookups_use_indexes() {
        let cat = catalog();
        let lines = assert_no_big_scan(
            "scan lookup",
            &cat,
            SCAN_LOOKUP,
            vec![Value::Integer(1), Value::Text("dir0001/f1".into())],
        );
        assert!(
            lines.iter().any(|l| l.contains("(path=? AND source_id=?)")),
            "{lines:#?}"
        );
        let lines = assert_no_big_scan(
            "fetch lookup",
            &cat,
            FETCH_LOOKUP,
            vec![
                Value::Integer(1),
                Value::Text("blake3".into()),
                Value::Blob(vec![7; 32]),
            ],
        );
        assert!(
            lines.iter().any(|l| l.contains("content_by_prefix")),
            "{lines:#?}"
        );
        let lines = assert_no_big_scan(
            "member lookup",
            &cat,
            MEMBER_LOOKUP,
            vec![Value::Integer(1)],
        );
        assert!(
            lines.iter().any(|l| l.contains("pack_member_by_content")),
            "{lines:#?}"
        );
        let lines = assert_no_big_scan(
            "members lookup",
            &cat,
            MEMBERS_LOOKUP,
            vec![Value::Text("[1,2,3]".into())],
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("SEARCH v USING INTEGER PRIMARY KEY"))
                && lines.iter().any(|l| l.contains("pack_member_by_content")),
            "{lines:#?}"
        );
        let lines = assert_no_big_scan(
            "content by hash",
            &cat,
            CONTENT_BY_HASH,
            vec![Value::Text("blake3".into()), Value::Blob(vec![7; 32])],
        );
        assert!(
            lines.iter().any(|l| l.contains("content_by_prefix")),
            "{lines:#?}"
        );
    }

    /// No statement of the insert path builds a temporary B-tree each time it runs (SQLite
    /// does that for a constant `IN (…)` list of three or more values, e.g. in a CHECK).
    #[test]
    fn insert_path_statements_build_no_temporary_btree() {
        let cat = catalog();
        for q in crate::ingest::Q::ALL {
            let mut st = cat
                .conn
                .prepare(&format!("EXPLAIN {}", q.sql()))
                .expect("prepare EXPLAIN");
            let unbound = vec![Value::Null; st.parameter_count()];
            let opcodes = st
                .query_map(params_from_iter(unbound), |r| r.get::<_, String>(1))
                .expect("run EXPLAIN")
                .collect::<rusqlite::Result<Vec<_>>>()
                .expect("read EXPLAIN");
            assert!(opcodes.iter().any(|o| o == "Halt"), "{q:?}: {opcodes:?}");
            assert!(
                !opcodes.iter().any(|o| o == "OpenEphemeral"),
                "{q:?} opens a temporary B-tree: {opcodes:?}"
            );
        }
    }
}

//! The bulk insert path: scanned files, fetched contents, packs and locations.
//!
//! Every function here works on one item inside the caller's transaction, with statements
//! held for the whole call ([`Stmts`]) and as few of them as the checks allow. The
//! [`Txn`](crate::Txn) methods call them once (`record_scan`, …) or for a whole slice
//! (`record_scans`, …); a failed batch abandons the transaction, so a batch is stored
//! completely or not at all.
//!
//! Statements per item (a new file through to its location on a volume):
//!
//! | step                 | statements                                                  |
//! |----------------------|-------------------------------------------------------------|
//! | scan, new path       | look up file + latest version; insert file; insert version (after a new path: insert file if new; insert version) |
//! | scan, unchanged path | look up file + latest version; update version               |
//! | fetched              | read version + look up its hash; insert content (new hash); update version |
//! | pack (per member)    | insert member                                               |
//! | pack (per pack)      | read the members' versions, their contents and whether those are packed (one statement); insert pack |
//! | location             | insert location (a missing pack or job fails its foreign key) |
//! | location (per volume and batch) | read the volume once; update its bytes used once |

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

use crate::error::{Error, Result, is_unique_violation, sql};
use crate::records::{
    Medium, NewLocation, NewPack, PackInfo, ScanChange, ScanOutcome, ScannedFile,
};
use crate::rows::position_columns;
use crate::types::{
    ContentId, Digest, FileId, LocationId, PackId, Position, SourceId, Timestamp, VersionId,
    VolumeId, VolumeState, hex,
};

/// A path's file and latest version (`?1` source, `?2` path).
pub(crate) const SCAN_LOOKUP: &str = "SELECT f.id, v.id, v.seq, v.size, v.mtime, v.content_id, v.deleted_at FROM file f \
     LEFT JOIN version v ON v.id = \
       (SELECT id FROM version WHERE file_id = f.id ORDER BY seq DESC LIMIT 1) \
     WHERE f.path = ?2 AND f.source_id = ?1";

/// A version's size and content (`?1` version), and the content already recorded with
/// the fetched hash (`?2` algorithm, `?3` hash; through `content_by_prefix`): one
/// statement for both lookups of a fetched file.
pub(crate) const FETCH_LOOKUP: &str = "SELECT v.size, v.content_id, c.hash_algo, c.hash, \
     k.id, k.size FROM version v LEFT JOIN content c ON c.id = v.content_id \
     LEFT JOIN content k ON substr(k.hash, 1, 8) = substr(?3, 1, 8) AND k.hash_algo = ?2 \
     AND k.hash = ?3 WHERE v.id = ?1";

/// A version's content and whether that content is in a pack (`?1` version).
pub(crate) const MEMBER_LOOKUP: &str = "SELECT v.content_id, EXISTS (SELECT 1 FROM \
     pack_member pm WHERE pm.content_id = v.content_id) FROM version v WHERE v.id = ?1";

/// [`MEMBER_LOOKUP`] for several versions at once (`?1`: a JSON array of version ids):
/// per array index, the version (NULL if there is none), its content and whether that is
/// in a pack. One statement per pack instead of one per member.
pub(crate) const MEMBERS_LOOKUP: &str = "SELECT j.key, v.id, v.content_id, EXISTS (SELECT 1 \
     FROM pack_member pm WHERE pm.content_id = v.content_id) FROM json_each(?1) j \
     LEFT JOIN version v ON v.id = j.value";

/// The statements of the insert path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Q {
    ScanLookup,
    AddFile,
    AddFileIfNew,
    AddVersion,
    TouchVersion,
    FetchLookup,
    AddContent,
    SetContent,
    MemberLookup,
    MembersLookup,
    AddPack,
    AddMember,
    AddLocation,
}

/// Number of [`Q`] variants.
const STATEMENTS: usize = 13;

impl Q {
    /// Every statement.
    #[cfg(test)]
    pub(crate) const ALL: [Q; STATEMENTS] = [
        Q::ScanLookup,
        Q::AddFile,
        Q::AddFileIfNew,
        Q::AddVersion,
        Q::TouchVersion,
        Q::FetchLookup,
        Q::AddContent,
        Q::SetContent,
        Q::MemberLookup,
        Q::MembersLookup,
        Q::AddPack,
        Q::AddMember,
        Q::AddLocation,
    ];

    pub(crate) fn sql(self) -> &'static str {
        match self {
            Q::ScanLookup => SCAN_LOOKUP,
            Q::AddFile => "INSERT INTO file (source_id, path) VALUES (?1, ?2)",
            Q::AddFileIfNew => {
                "INSERT INTO file (source_id, path) VALUES (?1, ?2) \
                 ON CONFLICT (path, source_id) DO NOTHING"
            }
            Q::AddVersion => {
                "INSERT INTO version (file_id, seq, size, mtime, mode, content_id, first_seen, \
                 last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
            }
            Q::TouchVersion => {
                "UPDATE version SET last_seen = max(last_seen, ?2), mode = ?3, \
                 content_id = coalesce(content_id, ?4) WHERE id = ?1"
            }
            Q::FetchLookup => FETCH_LOOKUP,
            Q::AddContent => "INSERT INTO content (hash_algo, hash, size) VALUES (?1, ?2, ?3)",
            Q::SetContent => "UPDATE version SET content_id = ?2, size = ?3 WHERE id = ?1",
            Q::MemberLookup => MEMBER_LOOKUP,
            Q::MembersLookup => MEMBERS_LOOKUP,
            Q::AddPack => {
                "INSERT INTO pack (name, format, key_id, plain_size, plain_hash_algo, \
                 plain_hash, cipher_size, cipher_hash_algo, cipher_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            }
            Q::AddMember => {
                "INSERT INTO pack_member (pack_id, content_id, offset, length) \
                 VALUES (?1, ?2, ?3, ?4)"
            }
            Q::AddLocation => {
                "INSERT INTO location (pack_id, volume_id, part_index, part_count, part_offset, \
                 length, position_kind, partition, start_block, object_key, written_at, job_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            }
        }
    }
}

/// The insert path's prepared statements, held for one call (a whole batch): each is
/// taken from the connection's statement cache once per batch instead of once per item
/// (measured: the cache lookup, which hashes the SQL text, and the return were ~6% of the
/// bulk insert).
pub(crate) struct Stmts<'c> {
    c: &'c Connection,
    held: [Option<CachedStatement<'c>>; STATEMENTS],
    /// The last path [`scan_one`] recorded was new to the catalog: try the next one as
    /// new too (see there).
    scan_new: bool,
}

impl<'c> Stmts<'c> {
    pub(crate) fn new(c: &'c Connection) -> Stmts<'c> {
        Stmts {
            c,
            held: Default::default(),
            scan_new: false,
        }
    }

    /// The statement `q`, prepared on first use.
    fn get(&mut self, q: Q) -> rusqlite::Result<&mut CachedStatement<'c>> {
        let i = q as usize;
        if self.held[i].is_none() {
            self.held[i] = Some(self.c.prepare_cached(q.sql())?);
        }
        match &mut self.held[i] {
            Some(st) => Ok(st),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    }
}

pub(crate) fn check_text(what: &'static str, s: &str) -> Result<()> {
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

pub(crate) fn to_i64(what: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::InvalidInput {
        what,
        reason: format!("{v} is too large"),
    })
}

/// Fails with [`Error::NotFound`] unless the row `id` exists (`q` selects 1 by id).
pub(crate) fn exists(c: &Connection, q: &str, id: i64, what: &'static str) -> Result<()> {
    let found = c
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

/// Pack names: `n` names of 32 lowercase hex characters: 6 bytes of the current time in
/// milliseconds since the Unix epoch (big-endian), then 10 bytes from the OS random
/// generator (one read for all `n`).
///
/// The time prefix makes new names sort after older ones, so the unique index on
/// `pack.name` grows at its end instead of taking inserts all over its key space (measured:
/// the pack stage of the catalog bench). A name still says nothing about the plaintext;
/// it tells when the pack was made, which its LTFS file or object already shows. 80 random
/// bits keep names made in the same millisecond apart (a clash is retried anyway).
pub(crate) fn pack_names(n: usize) -> Result<Vec<String>> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let prefix = u64::try_from(millis).unwrap_or(u64::MAX).to_be_bytes();
    let mut random = vec![0u8; n * 10];
    getrandom::fill(&mut random).map_err(|e| Error::Random(e.to_string()))?;
    Ok(random
        .chunks_exact(10)
        .map(|r| {
            let mut name = [0u8; 16];
            name[..6].copy_from_slice(&prefix[2..]);
            name[6..].copy_from_slice(r);
            hex(&name)
        })
        .collect())
}

/// A content's id and size by algorithm (`?1`) and hash (`?2`): through the
/// `content_by_prefix` index on the hash's first 8 bytes (schema v3), then the full hash.
pub(crate) const CONTENT_BY_HASH: &str = "SELECT id, size FROM content \
     WHERE substr(hash, 1, 8) = substr(?2, 1, 8) AND hash_algo = ?1 AND hash = ?2";

/// Finds or creates the content row for `hash` (dedup by hash). A known size is filled in
/// when the row had none; a different known size is an [`Error::InvalidInput`] (and changes
/// nothing).
///
/// Two statements for a new hash: the lookup, which misses in the small prefix index, and
/// a single-row `INSERT` (which needs no statement journal; `INSERT … SELECT … WHERE NOT
/// EXISTS` would, for the table's CHECK constraints). The fetched path folds the lookup
/// into its read of the version ([`FETCH_LOOKUP`]). Every content row is added after such
/// a lookup (here or in the snapshot merge), inside the writer's one transaction, so a hash
/// is never stored twice.
pub(crate) fn content_for(c: &Connection, hash: &Digest, size: Option<u64>) -> Result<ContentId> {
    let found: Option<(i64, Option<u64>)> = c
        .prepare_cached(CONTENT_BY_HASH)
        .and_then(|mut st| {
            st.query_row(params![hash.algo().as_str(), hash.bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(sql("find content"))?;
    content_with(&mut Stmts::new(c), hash, size, found)
}

/// The rest of [`content_for`] once the content with `hash` was looked up (`found`: its id
/// and recorded size).
fn content_with(
    s: &mut Stmts<'_>,
    hash: &Digest,
    size: Option<u64>,
    found: Option<(i64, Option<u64>)>,
) -> Result<ContentId> {
    let Some((id, recorded)) = found else {
        s.get(Q::AddContent)
            .and_then(|st| st.execute(params![hash.algo().as_str(), hash.bytes(), size]))
            .map_err(sql("add content"))?;
        return Ok(ContentId(s.c.last_insert_rowid()));
    };
    match (recorded, size) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::InvalidInput {
                what: "content size",
                reason: format!("{hash} is recorded with {a} bytes, not {b}"),
            });
        }
        (None, Some(b)) => {
            s.c.prepare_cached("UPDATE content SET size = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![id, b]))
                .map_err(sql("update content"))?;
        }
        _ => {}
    }
    Ok(ContentId(id))
}

/// Records one scanned file of a source known to exist. See
/// [`Txn::record_scan`](crate::Txn::record_scan).
///
/// A listing comes in runs: a first backup, or a new directory, is new path after new
/// path; a later backup is mostly known paths. After a path that was new, the next one is
/// tried as new first: one `INSERT … ON CONFLICT DO NOTHING` adds the file, or changes
/// nothing when the path is known, and only then is it looked up. A new file then costs two
/// statements (file, version) instead of three, and a known path after a new one one
/// statement more, after which lookups come first again.
pub(crate) fn scan_one(
    s: &mut Stmts<'_>,
    source: SourceId,
    file: &ScannedFile,
    now: Timestamp,
) -> Result<ScanOutcome> {
    check_text("path", &file.path)?;
    let size = to_i64("size", file.size)?;
    let content = match &file.hash {
        Some(h) => Some(content_for(s.c, h, Some(file.size))?),
        None => None,
    };
    if s.scan_new {
        let added = s
            .get(Q::AddFileIfNew)
            .and_then(|st| st.execute(params![source.0, file.path]))
            .map_err(sql("add file"))?;
        if added == 1 {
            let fid = s.c.last_insert_rowid();
            return Ok(ScanOutcome {
                file: FileId(fid),
                version: add_version(s, fid, 1, file, size, content, now)?,
                change: ScanChange::New,
            });
        }
        s.scan_new = false;
    }
    type Latest = (i64, i64, Option<i64>, i64, Option<i64>, Option<i64>);
    let found: Option<(i64, Option<Latest>)> = s
        .get(Q::ScanLookup)
        .and_then(|st| {
            st.query_row(params![source.0, file.path], |r| {
                let fid = r.get(0)?;
                let latest = match r.get::<_, Option<i64>>(1)? {
                    Some(vid) => Some((vid, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
                    None => None,
                };
                Ok((fid, latest))
            })
            .optional()
        })
        .map_err(sql("find file"))?;
    let (fid, latest) = match found {
        Some(f) => f,
        None => {
            s.get(Q::AddFile)
                .and_then(|st| st.execute(params![source.0, file.path]))
                .map_err(sql("add file"))?;
            s.scan_new = true;
            (s.c.last_insert_rowid(), None)
        }
    };
    let Some((vid, seq, old_size, old_mtime, old_content, deleted)) = latest else {
        return Ok(ScanOutcome {
            file: FileId(fid),
            version: add_version(s, fid, 1, file, size, content, now)?,
            change: ScanChange::New,
        });
    };
    let hash_differs = matches!((old_content, content), (Some(a), Some(b)) if a != b.0);
    if deleted.is_some()
        || old_size != Some(size)
        || old_mtime != file.mtime.unix_seconds()
        || hash_differs
    {
        return Ok(ScanOutcome {
            file: FileId(fid),
            version: add_version(s, fid, seq + 1, file, size, content, now)?,
            change: ScanChange::Changed,
        });
    }
    s.get(Q::TouchVersion)
        .and_then(|st| {
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

/// Adds version `seq` of file `fid` as scanned.
fn add_version(
    s: &mut Stmts<'_>,
    fid: i64,
    seq: i64,
    file: &ScannedFile,
    size: i64,
    content: Option<ContentId>,
    now: Timestamp,
) -> Result<VersionId> {
    s.get(Q::AddVersion)
        .and_then(|st| {
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
    Ok(VersionId(s.c.last_insert_rowid()))
}

/// Records the content of one fetched version. See
/// [`Txn::record_fetched`](crate::Txn::record_fetched).
pub(crate) fn fetched_one(
    s: &mut Stmts<'_>,
    version: VersionId,
    hash: &Digest,
    size: u64,
) -> Result<ContentId> {
    type Known = (
        Option<u64>,
        Option<i64>,
        Option<String>,
        Option<Vec<u8>>,
        Option<i64>,
        Option<u64>,
    );
    let row: Option<Known> = s
        .get(Q::FetchLookup)
        .and_then(|st| {
            st.query_row(
                params![version.0, hash.algo().as_str(), hash.bytes()],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
        })
        .map_err(sql("read version"))?;
    let Some((known_size, known_content, algo, bytes, found, found_size)) = row else {
        return Err(Error::NotFound {
            what: "version",
            key: version.to_string(),
        });
    };
    if let Some(scanned) = known_size
        && scanned != size
    {
        return Err(Error::ContentMismatch {
            version,
            detail: format!("scanned size {scanned}, fetched size {size}"),
        });
    }
    if let Some(content) = known_content {
        let same =
            algo.as_deref() == Some(hash.algo().as_str()) && bytes.as_deref() == Some(hash.bytes());
        if !same {
            return Err(Error::ContentMismatch {
                version,
                detail: format!("fetched hash {hash} differs from the recorded one"),
            });
        }
        return Ok(ContentId(content));
    }
    let content = content_with(s, hash, Some(size), found.map(|id| (id, found_size)))?;
    s.get(Q::SetContent)
        .and_then(|st| st.execute(params![version.0, content.0, size]))
        .map_err(sql("record fetched content"))?;
    Ok(content)
}

/// Records one pack named `name` (a fresh name is drawn if it is taken). See
/// [`Txn::record_pack`](crate::Txn::record_pack).
pub(crate) fn pack_one(
    s: &mut Stmts<'_>,
    pack: &NewPack,
    name: String,
    now: Timestamp,
) -> Result<PackInfo> {
    check_text("key id", &pack.key_id)?;
    if pack.members.is_empty() {
        return Err(Error::InvalidInput {
            what: "pack",
            reason: "a pack needs at least one member".to_owned(),
        });
    }
    to_i64("plain size", pack.plain_size)?;
    to_i64("cipher size", pack.cipher_size)?;
    let looked_up = members_lookup(s, pack)?;
    let mut contents: Vec<(i64, u64, u64)> = Vec::with_capacity(pack.members.len());
    let mut seen = std::collections::HashSet::with_capacity(pack.members.len());
    for (m, row) in pack.members.iter().zip(looked_up) {
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
        let content = match row {
            None => {
                return Err(Error::NotFound {
                    what: "version",
                    key: m.version.to_string(),
                });
            }
            Some((None, _)) => {
                return Err(Error::InvalidInput {
                    what: "pack member",
                    reason: format!("version {} has no content yet (not fetched)", m.version),
                });
            }
            Some((Some(_), true)) => return Err(Error::AlreadyPacked { version: m.version }),
            Some((Some(c), false)) => c,
        };
        if seen.insert(content) {
            contents.push((content, m.offset, m.length));
        }
    }
    let mut name = name;
    let mut attempts = 0;
    let id = loop {
        let r = s.get(Q::AddPack).and_then(|st| {
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
            Ok(_) => break s.c.last_insert_rowid(),
            Err(e) if is_unique_violation(&e) && attempts < 3 => {
                attempts += 1;
                name = pack_names(1)?.pop().unwrap_or_default();
            }
            Err(e) => return Err(sql("add pack")(e)),
        }
    };
    for (content, offset, length) in contents {
        s.get(Q::AddMember)
            .and_then(|st| st.execute(params![id, content, offset, length]))
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

/// A pack member's version as [`MEMBER_LOOKUP`] reads it: its content (if fetched) and
/// whether that content is in a pack.
type MemberRow = (Option<i64>, bool);

/// Per member of `pack`, in order: `None` if its version does not exist, else the
/// version's content and whether that content is in a pack. One statement for the whole
/// pack ([`MEMBERS_LOOKUP`]), or [`MEMBER_LOOKUP`] for a single member.
fn members_lookup(s: &mut Stmts<'_>, pack: &NewPack) -> Result<Vec<Option<MemberRow>>> {
    if let [m] = pack.members.as_slice() {
        let row = s
            .get(Q::MemberLookup)
            .and_then(|st| {
                st.query_row([m.version.0], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sql("read version"))?;
        return Ok(vec![row]);
    }
    let mut ids = String::with_capacity(pack.members.len() * 8 + 2);
    ids.push('[');
    for (i, m) in pack.members.iter().enumerate() {
        if i > 0 {
            ids.push(',');
        }
        ids.push_str(&m.version.0.to_string());
    }
    ids.push(']');
    let mut out = vec![None; pack.members.len()];
    let st = s.get(Q::MembersLookup).map_err(sql("read versions"))?;
    let mut rows = st.query([ids]).map_err(sql("read versions"))?;
    while let Some(r) = rows.next().map_err(sql("read versions"))? {
        let key: usize = r.get(0).map_err(sql("read versions"))?;
        let version: Option<i64> = r.get(1).map_err(sql("read versions"))?;
        let row = (
            r.get::<_, Option<i64>>(2).map_err(sql("read versions"))?,
            r.get::<_, bool>(3).map_err(sql("read versions"))?,
        );
        if let (Some(_), Some(slot)) = (version, out.get_mut(key)) {
            *slot = Some(row);
        }
    }
    Ok(out)
}

/// What a location insert needs to know about its volume, read once per batch.
#[derive(Debug)]
pub(crate) struct VolumeFacts {
    label: String,
    is_tape: bool,
    retired: bool,
    /// Bytes added by this batch, not yet written to `volume.bytes_used`.
    pending: u64,
}

/// Volumes touched by a batch of locations: read once each, their usage updated once each
/// by [`VolumeCache::flush`].
#[derive(Debug, Default)]
pub(crate) struct VolumeCache {
    volumes: HashMap<VolumeId, VolumeFacts>,
}

impl VolumeCache {
    fn facts(&mut self, c: &Connection, id: VolumeId) -> Result<&mut VolumeFacts> {
        match self.volumes.entry(id) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let v = crate::query::Reader::new(c).volume(id)?;
                Ok(e.insert(VolumeFacts {
                    label: v.label(),
                    is_tape: matches!(v.medium, Medium::Tape { .. }),
                    retired: v.state == VolumeState::Retired,
                    pending: 0,
                }))
            }
        }
    }

    /// Adds each volume's new bytes to its usage and makes a blank volume appendable.
    pub(crate) fn flush(&mut self, c: &Connection) -> Result<()> {
        for (id, facts) in &self.volumes {
            let added = to_i64("bytes used", facts.pending)?;
            c.prepare_cached(
                "UPDATE volume SET bytes_used = bytes_used + ?2, \
                 state = CASE state WHEN 'blank' THEN 'appendable' ELSE state END WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id.0, added]))
            .map_err(sql("update volume usage"))?;
        }
        self.volumes.clear();
        Ok(())
    }
}

/// Records one location; its bytes are added to the volume by `volumes.flush`. See
/// [`Txn::record_location`](crate::Txn::record_location).
pub(crate) fn location_one(
    s: &mut Stmts<'_>,
    volumes: &mut VolumeCache,
    loc: &NewLocation,
    now: Timestamp,
) -> Result<LocationId> {
    if loc.part.count == 0 || loc.part.index >= loc.part.count {
        return Err(Error::InvalidInput {
            what: "part",
            reason: format!("part {} of {}", loc.part.index, loc.part.count),
        });
    }
    let length = match loc.part.length {
        Some(l) => {
            to_i64("part length", l)?;
            l
        }
        None => 0,
    };
    let (kind, partition, start_block, key) = position_columns(&loc.position);
    if let Some(b) = start_block {
        to_i64("start block", b)?;
    }
    let volume = volumes.facts(s.c, loc.volume)?;
    if volume.retired {
        return Err(Error::InvalidInput {
            what: "volume",
            reason: format!("{} is retired", volume.label),
        });
    }
    let pos_on_tape = !matches!(loc.position, Position::Object { .. });
    if volume.is_tape != pos_on_tape {
        return Err(Error::InvalidInput {
            what: "position",
            reason: format!("{:?} does not fit volume {}", loc.position, volume.label),
        });
    }
    let r = s.get(Q::AddLocation).and_then(|st| {
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
                    loc.pack, loc.part.index, volume.label
                ),
            });
        }
        Err(e)
            if matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) =>
        {
            // The volume exists (read above): the pack or the job is missing.
            let pack_exists =
                s.c.prepare_cached("SELECT 1 FROM pack WHERE id = ?1")
                    .and_then(|mut st| st.exists([loc.pack.0]))
                    .map_err(sql("look up pack"))?;
            return Err(if pack_exists {
                Error::NotFound {
                    what: "job",
                    key: loc.job.map(|j| j.to_string()).unwrap_or_default(),
                }
            } else {
                Error::NotFound {
                    what: "pack",
                    key: loc.pack.to_string(),
                }
            });
        }
        Err(e) => return Err(sql("add location")(e)),
    }
    volume.pending = volume.pending.saturating_add(length);
    Ok(LocationId(s.c.last_insert_rowid()))
}

//! Decoding rows into records. Column lists live next to the functions that read them.

use rusqlite::Row;
use rusqlite::types::Type;

use crate::error::Error;
use crate::records::{Job, Location, Medium, PackInfo, Source, VersionInfo, Volume};
use crate::types::{
    ContentId, Digest, FileId, HashAlgo, JobId, JobKind, JobOutcome, LocationId, PackFormat,
    PackId, Part, Position, SourceId, Timestamp, VersionId, VolumeId, VolumeState,
};

pub(crate) type SqlResult<T> = rusqlite::Result<T>;

/// A decode failure as a rusqlite error (so it can leave a row-mapping closure).
pub(crate) fn corrupt(idx: usize, what: &'static str, value: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        Type::Text,
        Box::new(Error::Corrupt {
            what,
            value: value.into(),
        }),
    )
}

pub(crate) fn ts(row: &Row<'_>, idx: usize) -> SqlResult<Timestamp> {
    Ok(Timestamp::from_unix_seconds(row.get(idx)?))
}

pub(crate) fn opt_ts(row: &Row<'_>, idx: usize) -> SqlResult<Option<Timestamp>> {
    Ok(row
        .get::<_, Option<i64>>(idx)?
        .map(Timestamp::from_unix_seconds))
}

pub(crate) fn opt_digest(row: &Row<'_>, algo: usize, bytes: usize) -> SqlResult<Option<Digest>> {
    let a: Option<String> = row.get(algo)?;
    let b: Option<Vec<u8>> = row.get(bytes)?;
    match (a, b) {
        (Some(a), Some(b)) => {
            let algo_v = HashAlgo::parse(&a).ok_or_else(|| corrupt(algo, "hash algorithm", &a))?;
            Digest::new(algo_v, b)
                .map(Some)
                .map_err(|e| corrupt(bytes, "hash", e.to_string()))
        }
        _ => Ok(None),
    }
}

pub(crate) fn digest(row: &Row<'_>, algo: usize, bytes: usize) -> SqlResult<Digest> {
    opt_digest(row, algo, bytes)?.ok_or_else(|| corrupt(bytes, "hash", "NULL"))
}

fn parse_enum<T>(
    row: &Row<'_>,
    idx: usize,
    what: &'static str,
    parse: fn(&str) -> Option<T>,
) -> SqlResult<T> {
    let s: String = row.get(idx)?;
    parse(&s).ok_or_else(|| corrupt(idx, what, s))
}

pub(crate) fn u32_of(row: &Row<'_>, idx: usize) -> SqlResult<u32> {
    let v: i64 = row.get(idx)?;
    u32::try_from(v).map_err(|_| corrupt(idx, "32-bit value", v.to_string()))
}

/// Columns for [`source`].
pub(crate) const SOURCE_COLS: &str = "s.id, s.name, s.url, s.created_at";

pub(crate) fn source(row: &Row<'_>) -> SqlResult<Source> {
    Ok(Source {
        id: SourceId(row.get(0)?),
        name: row.get(1)?,
        url: row.get(2)?,
        created_at: ts(row, 3)?,
    })
}

/// Columns for [`version`]; needs `version v JOIN file f LEFT JOIN content c`.
pub(crate) const VERSION_COLS: &str = "v.id, v.file_id, f.source_id, f.path, v.seq, v.size, \
     v.mtime, v.mode, v.content_id, c.hash_algo, c.hash, v.first_seen, v.last_seen, v.deleted_at";
pub(crate) const VERSION_FROM: &str = "version v JOIN file f ON f.id = v.file_id \
     LEFT JOIN content c ON c.id = v.content_id";

pub(crate) fn version(row: &Row<'_>) -> SqlResult<VersionInfo> {
    Ok(VersionInfo {
        id: VersionId(row.get(0)?),
        file: FileId(row.get(1)?),
        source: SourceId(row.get(2)?),
        path: row.get(3)?,
        seq: u32_of(row, 4)?,
        size: row.get(5)?,
        mtime: ts(row, 6)?,
        mode: u32_of(row, 7)?,
        content: row.get::<_, Option<i64>>(8)?.map(ContentId),
        hash: opt_digest(row, 9, 10)?,
        first_seen: ts(row, 11)?,
        last_seen: ts(row, 12)?,
        deleted_at: opt_ts(row, 13)?,
    })
}

/// Columns for [`pack`], from `pack p`.
pub(crate) const PACK_COLS: &str = "p.id, p.name, p.format, p.key_id, p.plain_size, \
     p.plain_hash_algo, p.plain_hash, p.cipher_size, p.cipher_hash_algo, p.cipher_hash, p.created_at";
pub(crate) const PACK_NCOLS: usize = 11;

/// Decodes a pack starting at column `o`.
pub(crate) fn pack_at(row: &Row<'_>, o: usize) -> SqlResult<PackInfo> {
    Ok(PackInfo {
        id: PackId(row.get(o)?),
        name: row.get(o + 1)?,
        format: parse_enum(row, o + 2, "pack format", PackFormat::parse)?,
        key_id: row.get(o + 3)?,
        plain_size: row.get(o + 4)?,
        plain_hash: opt_digest(row, o + 5, o + 6)?,
        cipher_size: row.get(o + 7)?,
        cipher_hash: opt_digest(row, o + 8, o + 9)?,
        created_at: ts(row, o + 10)?,
    })
}

pub(crate) fn pack(row: &Row<'_>) -> SqlResult<PackInfo> {
    pack_at(row, 0)
}

/// Columns for [`volume`], from `volume vol`.
pub(crate) const VOLUME_COLS: &str = "vol.id, vol.kind, vol.barcode, vol.ltfs_uuid, \
     vol.generation, vol.capacity, vol.bucket, vol.prefix, vol.bytes_used, vol.state, vol.pool, \
     vol.created_at, vol.full_at";

pub(crate) fn volume(row: &Row<'_>) -> SqlResult<Volume> {
    let kind: String = row.get(1)?;
    let medium = match kind.as_str() {
        "tape" => Medium::Tape {
            barcode: row.get(2)?,
            ltfs_uuid: row.get(3)?,
            generation: row.get(4)?,
            capacity: row.get(5)?,
        },
        "object" => Medium::Object {
            bucket: row.get(6)?,
            prefix: row.get(7)?,
        },
        _ => return Err(corrupt(1, "volume kind", kind)),
    };
    Ok(Volume {
        id: VolumeId(row.get(0)?),
        medium,
        bytes_used: row.get(8)?,
        state: parse_enum(row, 9, "volume state", VolumeState::parse)?,
        pool: row.get(10)?,
        created_at: ts(row, 11)?,
        full_at: opt_ts(row, 12)?,
    })
}

/// Columns for [`location`], from `location l`.
pub(crate) const LOCATION_COLS: &str = "l.id, l.pack_id, l.volume_id, l.part_index, \
     l.part_count, l.part_offset, l.length, l.position_kind, l.partition, l.start_block, \
     l.object_key, l.written_at, l.job_id";

/// Decodes the part and position starting at `o`: part_index, part_count, part_offset,
/// length, position_kind, partition, start_block, object_key.
pub(crate) fn part_position_at(row: &Row<'_>, o: usize) -> SqlResult<(Part, Position)> {
    let part = Part {
        index: u32_of(row, o)?,
        count: u32_of(row, o + 1)?,
        offset: row.get(o + 2)?,
        length: row.get(o + 3)?,
    };
    let kind: String = row.get(o + 4)?;
    let position = match kind.as_str() {
        "tape" => Position::Tape {
            partition: row
                .get::<_, Option<u32>>(o + 5)?
                .ok_or_else(|| corrupt(o + 5, "partition", "NULL"))?,
            start_block: row
                .get::<_, Option<u64>>(o + 6)?
                .ok_or_else(|| corrupt(o + 6, "start block", "NULL"))?,
        },
        "ltfs_file" => Position::LtfsFile {
            name: row
                .get::<_, Option<String>>(o + 7)?
                .ok_or_else(|| corrupt(o + 7, "LTFS file name", "NULL"))?,
            start_block: row.get(o + 6)?,
        },
        "object" => Position::Object {
            key: row
                .get::<_, Option<String>>(o + 7)?
                .ok_or_else(|| corrupt(o + 7, "object key", "NULL"))?,
        },
        _ => return Err(corrupt(o + 4, "position kind", kind)),
    };
    Ok((part, position))
}

pub(crate) fn location(row: &Row<'_>) -> SqlResult<Location> {
    let (part, position) = part_position_at(row, 3)?;
    Ok(Location {
        id: LocationId(row.get(0)?),
        pack: PackId(row.get(1)?),
        volume: VolumeId(row.get(2)?),
        part,
        position,
        written_at: ts(row, 11)?,
        job: row.get::<_, Option<i64>>(12)?.map(JobId),
    })
}

/// Splits a position into (kind, partition, start_block, object_key) columns.
pub(crate) fn position_columns(
    p: &Position,
) -> (&'static str, Option<u32>, Option<u64>, Option<&str>) {
    match p {
        Position::Tape {
            partition,
            start_block,
        } => ("tape", Some(*partition), Some(*start_block), None),
        Position::LtfsFile { name, start_block } => {
            ("ltfs_file", None, *start_block, Some(name.as_str()))
        }
        Position::Object { key } => ("object", None, None, Some(key.as_str())),
    }
}

/// Columns for [`job`], from `job j`.
pub(crate) const JOB_COLS: &str = "j.id, j.kind, j.started_at, j.ended_at, j.outcome, \
     j.items_done, j.items_failed, j.bytes_done, j.resume_state, j.message";

pub(crate) fn job(row: &Row<'_>) -> SqlResult<Job> {
    Ok(Job {
        id: JobId(row.get(0)?),
        kind: parse_enum(row, 1, "job kind", JobKind::parse)?,
        started_at: ts(row, 2)?,
        ended_at: opt_ts(row, 3)?,
        outcome: parse_enum(row, 4, "job outcome", JobOutcome::parse)?,
        items_done: row.get(5)?,
        items_failed: row.get(6)?,
        bytes_done: row.get(7)?,
        resume_state: row.get(8)?,
        message: row.get(9)?,
    })
}

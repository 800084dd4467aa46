//! Integrity check: SQLite's own checks plus the catalog's invariants.

use std::fmt;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::query::collect;
use crate::types::{ContentId, FileId, LocationId, PackId, VersionId, VolumeId};

/// One problem found by [`Catalog::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// `PRAGMA integrity_check` reported this line.
    Sqlite(String),
    /// `PRAGMA foreign_key_check`: a row references a missing parent.
    ForeignKey {
        /// Table of the row.
        table: String,
        /// Its rowid.
        rowid: i64,
        /// The referenced table.
        parent: String,
    },
    /// A file without any version.
    FileWithoutVersion {
        /// The file.
        file: FileId,
        /// Its path.
        path: String,
    },
    /// A file's version numbers are not 1, 2, …, n.
    VersionNumbersNotDense {
        /// The file.
        file: FileId,
    },
    /// A location whose pack does not exist.
    LocationWithoutPack {
        /// The location.
        location: LocationId,
    },
    /// A pack with no content in it.
    EmptyPack {
        /// The pack.
        pack: PackId,
    },
    /// A pack member lies outside its pack's plaintext.
    MemberOutsidePack {
        /// The pack.
        pack: PackId,
        /// The content.
        content: ContentId,
    },
    /// A cryptpack pack whose name is not 32 lowercase hex characters.
    BadPackName {
        /// The pack.
        pack: PackId,
    },
    /// Locations of one pack disagree on its number of parts.
    PartCountMismatch {
        /// The pack.
        pack: PackId,
    },
    /// A position of the wrong kind for its volume (object key on a tape, or the reverse).
    PositionKindMismatch {
        /// The location.
        location: LocationId,
    },
    /// A version's size differs from its content's size.
    ContentSizeMismatch {
        /// The version.
        version: VersionId,
    },
    /// A volume's bytes-used differs from the sum of its locations' lengths.
    VolumeUsageMismatch {
        /// The volume.
        volume: VolumeId,
        /// Recorded bytes used.
        recorded: u64,
        /// Sum of location lengths.
        computed: u64,
    },
    /// A content that no version refers to.
    OrphanContent {
        /// The content.
        content: ContentId,
    },
    /// Two content rows with the same algorithm and hash (a hash is stored once).
    DuplicateContent {
        /// The later of the two rows.
        content: ContentId,
        /// The first row with that hash.
        first: ContentId,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Sqlite(s) => write!(f, "SQLite integrity check: {s}"),
            Problem::ForeignKey {
                table,
                rowid,
                parent,
            } => write!(f, "{table} row {rowid} references a missing {parent}"),
            Problem::FileWithoutVersion { file, path } => {
                write!(f, "file {file} ({path}) has no version")
            }
            Problem::VersionNumbersNotDense { file } => {
                write!(f, "file {file}: version numbers are not 1..n")
            }
            Problem::LocationWithoutPack { location } => {
                write!(f, "location {location} refers to a missing pack")
            }
            Problem::EmptyPack { pack } => write!(f, "pack {pack} holds no content"),
            Problem::MemberOutsidePack { pack, content } => {
                write!(
                    f,
                    "pack {pack}: content {content} lies outside the plaintext"
                )
            }
            Problem::BadPackName { pack } => {
                write!(f, "pack {pack}: name is not 32 lowercase hex characters")
            }
            Problem::PartCountMismatch { pack } => {
                write!(f, "pack {pack}: locations disagree on the number of parts")
            }
            Problem::PositionKindMismatch { location } => {
                write!(
                    f,
                    "location {location}: position kind does not fit its volume"
                )
            }
            Problem::ContentSizeMismatch { version } => {
                write!(f, "version {version}: size differs from its content's size")
            }
            Problem::VolumeUsageMismatch {
                volume,
                recorded,
                computed,
            } => write!(
                f,
                "volume {volume}: bytes used {recorded} but its locations hold {computed}"
            ),
            Problem::OrphanContent { content } => {
                write!(f, "content {content} belongs to no version")
            }
            Problem::DuplicateContent { content, first } => {
                write!(f, "content {content} has the same hash as content {first}")
            }
        }
    }
}

/// Result of [`Catalog::check`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// Everything found; empty when the catalog is sound.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// True when nothing was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

type RowToProblem = fn(&rusqlite::Row<'_>) -> rusqlite::Result<Problem>;

impl Catalog {
    /// Checks the catalog: `PRAGMA integrity_check`, `PRAGMA foreign_key_check` and the
    /// catalog's invariants (every file has versions numbered 1..n; every location's pack
    /// exists; packs are non-empty, their members inside the plaintext and, for cryptpack
    /// packs, named by 32 hex characters; parts agree; positions fit their volumes; sizes
    /// agree; volume usage equals the sum of its locations; no orphan contents).
    pub fn check(&self) -> Result<CheckReport> {
        let c = &self.conn;
        let mut problems = Vec::new();
        let lines = collect(
            c,
            "PRAGMA integrity_check",
            [],
            |r| r.get::<_, String>(0),
            "integrity check",
        )?;
        problems.extend(lines.into_iter().filter(|l| l != "ok").map(Problem::Sqlite));
        problems.extend(collect(
            c,
            "PRAGMA foreign_key_check",
            [],
            |r| {
                Ok(Problem::ForeignKey {
                    table: r.get(0)?,
                    rowid: r.get::<_, Option<i64>>(1)?.unwrap_or(-1),
                    parent: r.get(2)?,
                })
            },
            "foreign key check",
        )?);
        let checks: &[(&str, RowToProblem)] = &[
            (
                "SELECT f.id, f.path FROM file f WHERE NOT EXISTS \
                 (SELECT 1 FROM version v WHERE v.file_id = f.id)",
                |r| {
                    Ok(Problem::FileWithoutVersion {
                        file: FileId(r.get(0)?),
                        path: r.get(1)?,
                    })
                },
            ),
            (
                "SELECT file_id FROM version GROUP BY file_id \
                 HAVING min(seq) <> 1 OR max(seq) <> count(*)",
                |r| {
                    Ok(Problem::VersionNumbersNotDense {
                        file: FileId(r.get(0)?),
                    })
                },
            ),
            (
                "SELECT l.id FROM location l WHERE NOT EXISTS \
                 (SELECT 1 FROM pack p WHERE p.id = l.pack_id)",
                |r| {
                    Ok(Problem::LocationWithoutPack {
                        location: LocationId(r.get(0)?),
                    })
                },
            ),
            (
                "SELECT p.id FROM pack p WHERE NOT EXISTS \
                 (SELECT 1 FROM pack_member pm WHERE pm.pack_id = p.id)",
                |r| {
                    Ok(Problem::EmptyPack {
                        pack: PackId(r.get(0)?),
                    })
                },
            ),
            (
                "SELECT pm.pack_id, pm.content_id FROM pack_member pm JOIN pack p \
                 ON p.id = pm.pack_id WHERE p.plain_size IS NOT NULL AND pm.length IS NOT NULL \
                 AND pm.offset + pm.length > p.plain_size",
                |r| {
                    Ok(Problem::MemberOutsidePack {
                        pack: PackId(r.get(0)?),
                        content: ContentId(r.get(1)?),
                    })
                },
            ),
            (
                "SELECT id FROM pack WHERE format = 'cryptpack' AND \
                 (length(name) <> 32 OR name GLOB '*[^0-9a-f]*')",
                |r| {
                    Ok(Problem::BadPackName {
                        pack: PackId(r.get(0)?),
                    })
                },
            ),
            (
                "SELECT pack_id FROM location GROUP BY pack_id \
                 HAVING min(part_count) <> max(part_count)",
                |r| {
                    Ok(Problem::PartCountMismatch {
                        pack: PackId(r.get(0)?),
                    })
                },
            ),
            (
                "SELECT l.id FROM location l JOIN volume vol ON vol.id = l.volume_id \
                 WHERE (vol.kind = 'tape') <> (l.position_kind <> 'object') \
                 OR (l.position_kind = 'tape' AND (l.partition IS NULL OR l.start_block IS NULL)) \
                 OR (l.position_kind <> 'tape' AND l.object_key IS NULL)",
                |r| {
                    Ok(Problem::PositionKindMismatch {
                        location: LocationId(r.get(0)?),
                    })
                },
            ),
            (
                "SELECT v.id FROM version v JOIN content c ON c.id = v.content_id \
                 WHERE v.size IS NOT NULL AND c.size IS NOT NULL AND v.size <> c.size",
                |r| {
                    Ok(Problem::ContentSizeMismatch {
                        version: VersionId(r.get(0)?),
                    })
                },
            ),
            (
                "SELECT vol.id, vol.bytes_used, \
                 (SELECT coalesce(sum(length), 0) FROM location l WHERE l.volume_id = vol.id) AS s \
                 FROM volume vol WHERE vol.bytes_used <> s",
                |r| {
                    Ok(Problem::VolumeUsageMismatch {
                        volume: VolumeId(r.get(0)?),
                        recorded: r.get(1)?,
                        computed: r.get(2)?,
                    })
                },
            ),
            (
                "SELECT c.id FROM content c WHERE NOT EXISTS \
                 (SELECT 1 FROM version v WHERE v.content_id = c.id)",
                |r| {
                    Ok(Problem::OrphanContent {
                        content: ContentId(r.get(0)?),
                    })
                },
            ),
            (
                // Through the prefix index: equal hashes have equal prefixes.
                "SELECT c.id, (SELECT min(d.id) FROM content d \
                   WHERE substr(d.hash, 1, 8) = substr(c.hash, 1, 8) \
                   AND d.hash_algo = c.hash_algo AND d.hash = c.hash) AS first \
                 FROM content c WHERE first < c.id",
                |r| {
                    Ok(Problem::DuplicateContent {
                        content: ContentId(r.get(0)?),
                        first: ContentId(r.get(1)?),
                    })
                },
            ),
        ];
        for (q, map) in checks {
            problems.extend(collect(c, q, [], *map, "catalog check")?);
        }
        Ok(CheckReport { problems })
    }
}

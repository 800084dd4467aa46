//! The tapebackup catalog: a SQLite database that knows, years later, which version of
//! which file is in which encrypted pack, on which tape or object store, at which position,
//! and when that was last verified.
//!
//! It records sources, files and their versions (a changed file becomes a new version;
//! identical content is stored once, with every path that has it), packs (encrypted objects
//! with generated names), volumes (tapes and object-store locations), locations (a pack or
//! part of a pack on a volume), jobs with their event logs, verification results and
//! restore progress. All SQL stays in this crate; callers see typed records. Every change
//! runs in one transaction. The database uses WAL mode, foreign keys and a busy timeout.
//! Times are stored as INTEGER seconds since the Unix epoch, UTC ([`Timestamp`]).
//!
//! # Brief overview
//!
//! - [`Catalog`] opens (and migrates) a catalog file; [`Catalog::write`] runs a closure in
//!   one transaction with a [`Txn`], the handle for every change. Bulk work goes through
//!   its batch calls ([`Txn::record_scans`], [`Txn::record_fetches`], [`Txn::record_packs`],
//!   [`Txn::record_locations`]).
//! - [`Reader`] answers the workflow's questions: what to fetch ([`Reader::versions_to_fetch`]),
//!   pack ([`Reader::versions_to_pack`]) and write ([`Reader::packs_to_write`]) next, where a
//!   path is ([`Reader::locate`]), searches ([`Reader::search`]) and restore plans
//!   ([`Reader::plan_restore`]) as ordered runs per volume.
//! - [`Catalog::snapshot`] copies the live catalog into one file with SQLite's online backup
//!   API; [`Catalog::merge_snapshot`] merges such a file back; [`Catalog::check`] runs
//!   SQLite's and the catalog's own integrity checks.
//! - [`Catalog::import_legacy`] imports a database of the seed tool (Tapebackup, both
//!   schemas); its packs are marked [`PackFormat::LegacyOpensslAes256CbcPbkdf2`].
//!
//! # Example
//!
//! ```
//! use catalog::{
//!     Catalog, Digest, HashAlgo, NewLocation, NewPack, NewTape, PackFormat, PackMember, Part,
//!     Position, RestoreQuery, ScannedFile, Timestamp,
//! };
//!
//! # fn main() -> Result<(), catalog::Error> {
//! let mut cat = Catalog::open_in_memory()?;
//! let now = Timestamp::from_unix_seconds(1_700_000_000);
//! let hash = Digest::new(HashAlgo::Blake3, [7u8; 32])?;
//! let plan = cat.write(|tx| {
//!     let src = tx.add_source("media", "ssh://nas/srv/media", now)?;
//!     let file = ScannedFile {
//!         path: "photos/a.jpg".into(),
//!         size: 1000,
//!         mtime: now,
//!         mode: 0o644,
//!         hash: None,
//!     };
//!     let seen = tx.record_scan(src, &file, now)?;
//!     tx.record_fetched(seen.version, &hash, 1000)?;
//!     let pack = tx.record_pack(
//!         &NewPack {
//!             format: PackFormat::Cryptpack,
//!             key_id: "k1".into(),
//!             plain_size: 1000,
//!             plain_hash: hash.clone(),
//!             cipher_size: 1100,
//!             cipher_hash: Digest::new(HashAlgo::Blake3, [9u8; 32])?,
//!             members: vec![PackMember { version: seen.version, offset: 0, length: 1000 }],
//!         },
//!         now,
//!     )?;
//!     assert_eq!(pack.name.len(), 32);
//!     let tape = tx.add_tape(
//!         &NewTape {
//!             barcode: "ABC123L8".into(),
//!             ltfs_uuid: None,
//!             generation: Some("LTO-8".into()),
//!             capacity: Some(12_000_000_000_000),
//!             pool: "default".into(),
//!         },
//!         now,
//!     )?;
//!     tx.record_location(
//!         &NewLocation {
//!             pack: pack.id,
//!             volume: tape,
//!             part: Part::whole(1100),
//!             position: Position::Tape { partition: 1, start_block: 42 },
//!             job: None,
//!         },
//!         now,
//!     )?;
//!     tx.read().plan_restore(&RestoreQuery { pattern: Some("photos/*".into()), ..Default::default() })
//! })?;
//! assert_eq!(plan.runs.len(), 1);
//! assert_eq!(plan.runs[0].label, "ABC123L8");
//! assert_eq!(plan.runs[0].reads[0].files[0].path, "photos/a.jpg");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod catalog;
mod check;
mod error;
mod ingest;
mod legacy;
mod progress;
mod query;
mod records;
mod rows;
mod schema;
mod snapshot;
mod txn;
mod types;

pub use crate::catalog::{APPLICATION_ID, BUSY_TIMEOUT, Catalog};
pub use crate::check::{CheckReport, Problem};
pub use crate::error::{DbError, Error, Result};
pub use crate::legacy::{LegacyImport, LegacyOptions, LegacySchema};
pub use crate::progress::{Progress, Silent};
pub use crate::query::Reader;
pub use crate::records::{
    CopyTarget, Event, Fetched, FileCopy, FileEntry, FileQuery, Job, JobProgress, Location, Medium,
    MissingFile, MissingReason, NewLocation, NewObjectVolume, NewPack, NewTape, NewVerification,
    PackContent, PackInfo, PackMember, PackRead, RestoreFile, RestorePlan, RestoreQuery,
    ScanChange, ScanOutcome, ScannedFile, Source, Summary, Verification, VersionInfo, Volume,
    VolumeRun, VolumeSummary,
};
pub use crate::schema::SCHEMA_VERSION;
pub use crate::snapshot::{MergeStats, SnapshotInfo};
pub use crate::txn::{Txn, generate_pack_name};
pub use crate::types::{
    ContentId, Digest, EventLevel, FileId, HashAlgo, JobId, JobKind, JobOutcome, LocationId,
    PackFormat, PackId, Part, Position, SourceId, TimeRange, Timestamp, VerifyOutcome, VersionId,
    VersionSelector, VolumeId, VolumeState,
};

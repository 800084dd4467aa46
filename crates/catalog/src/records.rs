//! Records the catalog hands out and takes in.

use crate::types::{
    ContentId, Digest, EventLevel, FileId, JobId, JobKind, JobOutcome, LocationId, PackFormat,
    PackId, Part, Position, SourceId, TimeRange, Timestamp, VerifyOutcome, VersionId,
    VersionSelector, VolumeId, VolumeState,
};

/// A source: a remote or local root that files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its id.
    pub id: SourceId,
    /// Unique short name chosen by the user.
    pub name: String,
    /// Where it is (e.g. `ssh://host/srv/media` or `/data`). Informational for the catalog.
    pub url: String,
    /// When it was registered.
    pub created_at: Timestamp,
}

/// A file as seen by a scan (or a fetch) of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// Path relative to the source root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Unix mode bits.
    pub mode: u32,
    /// Content hash when the scanner already knows it (local sources); `None` when only a
    /// fetch will tell.
    pub hash: Option<Digest>,
}

/// What [`Txn::record_scan`](crate::Txn::record_scan) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanChange {
    /// First time this path is seen: version 1.
    New,
    /// Size, mtime or hash differ from the latest version (or it had been deleted): a new
    /// version.
    Changed,
    /// Same as the latest version: only `last_seen` moved.
    Unchanged,
}

/// Result of recording one scanned file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOutcome {
    /// The file.
    pub file: FileId,
    /// The version that now describes it.
    pub version: VersionId,
    /// What happened.
    pub change: ScanChange,
}

/// The content of one fetched version, for [`Txn::record_fetches`](crate::Txn::record_fetches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The version that was fetched.
    pub version: VersionId,
    /// Hash of the bytes that landed.
    pub hash: Digest,
    /// Their size.
    pub size: u64,
}

/// One version of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version.
    pub id: VersionId,
    /// Its file.
    pub file: FileId,
    /// The file's source.
    pub source: SourceId,
    /// The path under the source.
    pub path: String,
    /// Version number, 1 for the first.
    pub seq: u32,
    /// Size (`None` only for legacy imports that did not record one).
    pub size: Option<u64>,
    /// Modification time.
    pub mtime: Timestamp,
    /// Unix mode bits.
    pub mode: u32,
    /// Content, once hashed.
    pub content: Option<ContentId>,
    /// Content hash, once known.
    pub hash: Option<Digest>,
    /// When this version was first seen.
    pub first_seen: Timestamp,
    /// When it was last seen at the source.
    pub last_seen: Timestamp,
    /// When it was found gone from the source.
    pub deleted_at: Option<Timestamp>,
}

/// A version's place in a new pack: where its content starts in the pack's plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackMember {
    /// The version whose content is in the pack.
    pub version: VersionId,
    /// Offset of the content in the pack's plaintext stream.
    pub offset: u64,
    /// Length of the content.
    pub length: u64,
}

/// A pack to record. The catalog generates its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPack {
    /// How it was made.
    pub format: PackFormat,
    /// The id of the key it is encrypted with.
    pub key_id: String,
    /// Plaintext bytes.
    pub plain_size: u64,
    /// Plaintext hash.
    pub plain_hash: Digest,
    /// Ciphertext bytes.
    pub cipher_size: u64,
    /// Ciphertext hash (checkable without the key).
    pub cipher_hash: Digest,
    /// The versions in it (each content once).
    pub members: Vec<PackMember>,
}

/// A recorded pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    /// Its id.
    pub id: PackId,
    /// Its generated name: 32 lowercase hex characters, a millisecond time prefix and 80
    /// random bits from the OS random generator ([`generate_pack_name`](crate::generate_pack_name); legacy
    /// packs keep the seed tool's name). Carries no plaintext information.
    pub name: String,
    /// How it was made.
    pub format: PackFormat,
    /// Key id.
    pub key_id: String,
    /// Plaintext bytes (`None` for some legacy imports).
    pub plain_size: Option<u64>,
    /// Plaintext hash.
    pub plain_hash: Option<Digest>,
    /// Ciphertext bytes (`None` for some legacy imports).
    pub cipher_size: Option<u64>,
    /// Ciphertext hash.
    pub cipher_hash: Option<Digest>,
    /// When it was recorded.
    pub created_at: Timestamp,
}

/// One content inside a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackContent {
    /// The content.
    pub content: ContentId,
    /// Its hash.
    pub hash: Digest,
    /// Offset in the pack's plaintext.
    pub offset: u64,
    /// Length (`None` for some legacy imports).
    pub length: Option<u64>,
}

/// A tape to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTape {
    /// Barcode (volume serial), unique.
    pub barcode: String,
    /// LTFS volume UUID, once formatted.
    pub ltfs_uuid: Option<String>,
    /// Generation, e.g. `LTO-8`.
    pub generation: Option<String>,
    /// Native capacity in bytes.
    pub capacity: Option<u64>,
    /// Pool name.
    pub pool: String,
}

/// An object-store location to register as a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObjectVolume {
    /// Bucket.
    pub bucket: String,
    /// Key prefix (may be empty).
    pub prefix: String,
    /// Pool name.
    pub pool: String,
}

/// What a volume physically is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    /// A tape cartridge.
    Tape {
        /// Barcode.
        barcode: String,
        /// LTFS volume UUID.
        ltfs_uuid: Option<String>,
        /// Generation, e.g. `LTO-8`.
        generation: Option<String>,
        /// Native capacity in bytes.
        capacity: Option<u64>,
    },
    /// A bucket and prefix in an object store.
    Object {
        /// Bucket.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

/// A volume: a tape or an object-store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Its id.
    pub id: VolumeId,
    /// What it is.
    pub medium: Medium,
    /// Bytes written to it (sum of its locations' lengths).
    pub bytes_used: u64,
    /// Life-cycle state.
    pub state: VolumeState,
    /// Pool.
    pub pool: String,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it was marked full.
    pub full_at: Option<Timestamp>,
}

impl Volume {
    /// A human label: the barcode, or `bucket/prefix`.
    pub fn label(&self) -> String {
        match &self.medium {
            Medium::Tape { barcode, .. } => barcode.clone(),
            Medium::Object { bucket, prefix } if prefix.is_empty() => bucket.clone(),
            Medium::Object { bucket, prefix } => format!("{bucket}/{prefix}"),
        }
    }
}

/// A location to record: a pack (part) written to a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLocation {
    /// The pack.
    pub pack: PackId,
    /// The volume.
    pub volume: VolumeId,
    /// Which part of the pack (use [`Part::whole`] when not spanning).
    pub part: Part,
    /// Where on the volume.
    pub position: Position,
    /// The write job, if any.
    pub job: Option<JobId>,
}

/// A recorded location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Its id.
    pub id: LocationId,
    /// The pack.
    pub pack: PackId,
    /// The volume.
    pub volume: VolumeId,
    /// Which part.
    pub part: Part,
    /// Where.
    pub position: Position,
    /// When it was written.
    pub written_at: Timestamp,
    /// The job that wrote it.
    pub job: Option<JobId>,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Kind.
    pub kind: JobKind,
    /// Start.
    pub started_at: Timestamp,
    /// End, once ended.
    pub ended_at: Option<Timestamp>,
    /// Outcome ([`JobOutcome::Running`] until ended; a killed job stays running and is
    /// resumable).
    pub outcome: JobOutcome,
    /// Items done.
    pub items_done: u64,
    /// Items failed.
    pub items_failed: u64,
    /// Bytes done.
    pub bytes_done: u64,
    /// Opaque state the job's owner stores to resume it.
    pub resume_state: Option<Vec<u8>>,
    /// Final message.
    pub message: Option<String>,
}

/// Progress of a running job, stored with [`Txn::update_job`](crate::Txn::update_job).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobProgress {
    /// Items done.
    pub items_done: u64,
    /// Items failed.
    pub items_failed: u64,
    /// Bytes done.
    pub bytes_done: u64,
    /// Opaque resume state (replaces the stored one).
    pub resume_state: Option<Vec<u8>>,
}

/// One entry of a job's event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The job (none for catalog-wide events).
    pub job: Option<JobId>,
    /// When.
    pub at: Timestamp,
    /// Severity.
    pub level: EventLevel,
    /// Text.
    pub message: String,
}

/// A verification result to record: a pack on a volume (`location`), or a whole volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVerification {
    /// The verify job.
    pub job: Option<JobId>,
    /// The volume checked.
    pub volume: VolumeId,
    /// The pack location checked, or `None` for a whole-volume check.
    pub location: Option<LocationId>,
    /// Result.
    pub outcome: VerifyOutcome,
    /// Details (e.g. sense data, expected and found hash).
    pub detail: Option<String>,
}

/// A recorded verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The verify job.
    pub job: Option<JobId>,
    /// The volume.
    pub volume: VolumeId,
    /// The location, or `None` for a whole-volume check.
    pub location: Option<LocationId>,
    /// When.
    pub at: Timestamp,
    /// Result.
    pub outcome: VerifyOutcome,
    /// Details.
    pub detail: Option<String>,
}

/// Per-volume summary for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSummary {
    /// The volume.
    pub volume: Volume,
    /// Locations (pack parts) on it.
    pub locations: u64,
    /// Distinct packs with a part on it.
    pub packs: u64,
    /// Last verification of anything on it.
    pub last_verified: Option<Timestamp>,
    /// Verifications on it that did not end [`VerifyOutcome::Ok`].
    pub failed_verifications: u64,
}

/// Whole-catalog counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Sources.
    pub sources: u64,
    /// Files (paths).
    pub files: u64,
    /// Versions.
    pub versions: u64,
    /// Distinct contents.
    pub contents: u64,
    /// Total bytes of distinct contents (known sizes).
    pub content_bytes: u64,
    /// Latest versions still waiting for a fetch.
    pub versions_to_fetch: u64,
    /// Contents not in any pack.
    pub contents_to_pack: u64,
    /// Packs.
    pub packs: u64,
    /// Packs with no location at all.
    pub packs_unwritten: u64,
    /// Volumes by state.
    pub volumes: Vec<(VolumeState, u64)>,
    /// Jobs never ended (running or killed).
    pub jobs_unfinished: u64,
}

/// A search over files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileQuery {
    /// SQLite GLOB pattern over the path (`*` and `?` also match `/`; `[...]` classes;
    /// case-sensitive). `None`: all files.
    pub pattern: Option<String>,
    /// Only this source.
    pub source: Option<SourceId>,
    /// Which version of each file.
    pub selector: VersionSelector,
    /// Include files deleted at their source.
    pub include_deleted: bool,
    /// Only versions whose mtime is in this range.
    pub modified: TimeRange,
    /// Only versions with a copy on this volume.
    pub volume: Option<VolumeId>,
    /// At most this many results (in path order).
    pub limit: Option<u64>,
}

/// One copy of a file's pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCopy {
    /// The location.
    pub location: LocationId,
    /// The volume.
    pub volume: VolumeId,
    /// The volume's label.
    pub volume_label: String,
    /// Which part of the pack.
    pub part: Part,
    /// Where on the volume.
    pub position: Position,
}

/// A search result: a version and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The version.
    pub version: VersionInfo,
    /// Its source's name.
    pub source_name: String,
    /// The pack holding its content, if packed.
    pub pack: Option<PackInfo>,
    /// Offset of the content in the pack's plaintext.
    pub pack_offset: Option<u64>,
    /// Locations of the pack's parts.
    pub copies: Vec<FileCopy>,
}

/// What to restore.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreQuery {
    /// SQLite GLOB pattern over the path (see [`FileQuery::pattern`]); `None`: everything.
    pub pattern: Option<String>,
    /// Only this source.
    pub source: Option<SourceId>,
    /// Which version.
    pub selector: VersionSelector,
    /// Include files deleted at their source.
    pub include_deleted: bool,
}

/// A file to restore from a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreFile {
    /// The version.
    pub version: VersionId,
    /// Source name.
    pub source_name: String,
    /// Path under the source.
    pub path: String,
    /// Offset of its content in the pack's plaintext.
    pub offset: u64,
    /// Length of its content.
    pub length: Option<u64>,
    /// Expected content hash.
    pub hash: Digest,
    /// Modification time to set.
    pub mtime: Timestamp,
    /// Mode bits to set.
    pub mode: u32,
}

/// One read from a volume: a pack part, and the files that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRead {
    /// The location to read.
    pub location: LocationId,
    /// The pack.
    pub pack: PackId,
    /// The pack's name.
    pub pack_name: String,
    /// The pack's format.
    pub format: PackFormat,
    /// Which part.
    pub part: Part,
    /// Where on the volume.
    pub position: Position,
    /// Files restored from this pack. Listed on the read of part 0 only; a pack spanning
    /// volumes is complete once all its parts have been read.
    pub files: Vec<RestoreFile>,
}

/// All reads from one volume, in position order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRun {
    /// The volume.
    pub volume: VolumeId,
    /// Its label (barcode or bucket/prefix).
    pub label: String,
    /// Its state (an offsite volume must be brought back first).
    pub state: VolumeState,
    /// Reads ordered by (partition, start block) or object key.
    pub reads: Vec<PackRead>,
}

/// Why a selected file cannot be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingReason {
    /// Its content was never fetched.
    NotFetched,
    /// Its content is not in any pack.
    NotPacked,
    /// Its pack has no complete copy on a volume that is not retired.
    NoUsableCopy,
}

/// A selected file that cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingFile {
    /// The version.
    pub version: VersionId,
    /// Source name.
    pub source_name: String,
    /// Path.
    pub path: String,
    /// Why.
    pub reason: MissingReason,
}

/// A restore plan: ordered runs per volume, plus what cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestorePlan {
    /// Volumes in the order to read them (ascending volume id, i.e. write order, so a
    /// spanning pack's first part comes first).
    pub runs: Vec<VolumeRun>,
    /// Selected files that cannot be restored.
    pub missing: Vec<MissingFile>,
}

impl RestorePlan {
    /// Number of files the plan restores.
    pub fn file_count(&self) -> usize {
        self.runs
            .iter()
            .flat_map(|r| &r.reads)
            .map(|r| r.files.len())
            .sum()
    }
}

/// What a query for packs to write wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyTarget {
    /// Wanted number of complete copies.
    pub copies: u32,
    /// Count only copies on volumes of this pool (`None`: any pool).
    pub pool: Option<String>,
}

//! The objects of one archive in the store, and the two JSON documents describing it.
//!
//! Layout under the store: `<prefix>/<host>/<backup>/chunk-NNNNNN.tpk` (cryptpack packs of
//! consecutive `chunk_size`-byte pieces of the compressed tar stream), `journal.json`
//! (rewritten after each chunk lands; removed when complete) and `manifest.json` (written
//! last: its presence means the archive is complete). Both documents are JSON with the
//! fields of [`Manifest`] and [`Journal`]; hashes are lowercase hex.

use serde::{Deserialize, Serialize};

/// Format name in every manifest and journal.
pub const FORMAT: &str = "tapebackup-backuppc-archive";

/// One chunk that landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// 0-based index.
    pub index: u64,
    /// Object key relative to the store.
    pub key: String,
    /// Offset of the chunk in the compressed tar stream.
    pub offset: u64,
    /// Bytes of the compressed tar stream in this chunk.
    pub plain_size: u64,
    /// BLAKE3 of those bytes (cryptpack's plaintext hash; used to resume).
    pub plain_blake3: String,
    /// Size of the pack object.
    pub size: u64,
    /// SHA-256 of the pack object (what the restore script checks).
    pub sha256: String,
    /// BLAKE3 of the pack object (cryptpack's ciphertext hash).
    pub pack_blake3: String,
    /// When it landed (Unix seconds, UTC).
    pub uploaded: u64,
}

/// What the chunks were made with; a resume needs the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Compressor program (`""` = none).
    pub compressor: String,
    /// Shell command that decompresses the joined chunks (`cat` = none).
    pub decompress: String,
    /// File extension BackupPC asked for (`.gz`, `.bz2`, `.raw`, `""`, or `.zst` for zstd).
    pub extension: String,
    /// cryptpack key id the chunks are sealed with.
    pub key_id: String,
    /// Share (`*` = all).
    pub share: String,
}

/// The progress document of an archive in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// [`FORMAT`].
    pub format: String,
    /// Host.
    pub host: String,
    /// Backup number.
    pub backup: u64,
    /// Parameters.
    pub params: Params,
    /// Chunks that landed, in order.
    pub chunks: Vec<ChunkRecord>,
    /// When the first run started.
    pub started: u64,
}

/// The completion document, written last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Manifest format version (1).
    pub version: u32,
    /// `tapebackup <version>`.
    pub tool: String,
    /// Host.
    pub host: String,
    /// Backup number.
    pub backup: u64,
    /// Parameters.
    pub params: Params,
    /// Every chunk, in order.
    pub chunks: Vec<ChunkRecord>,
    /// Total bytes of the compressed tar stream.
    pub plain_size: u64,
    /// BLAKE3 of the whole compressed tar stream.
    pub stream_blake3: String,
    /// Total bytes stored.
    pub size: u64,
    /// When the archive was started and finished (Unix seconds, UTC).
    pub started: u64,
    /// See `started`.
    pub finished: u64,
}

/// `<prefix>/<host>/<backup>`.
pub fn archive_dir(prefix: &str, host: &str, backup: u64) -> String {
    format!("{prefix}/{host}/{backup}")
}

/// The key of chunk `index`.
pub fn chunk_key(dir: &str, index: u64) -> String {
    format!("{dir}/chunk-{index:06}.tpk")
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

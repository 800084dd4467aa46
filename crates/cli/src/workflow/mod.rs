//! The tapebackup workflow: the orchestration that composes the crates, usable by other
//! Rust programs as well as by the `tapebackup` binary.
//!
//! A backup is `get` (source → staging, versions recorded in the catalog) → `pack` (staging
//! → encrypted packs with generated names, recorded in one transaction; plaintext removed
//! only once the pack is synced and recorded) → `write` (packs → LTFS tapes chosen from the
//! library, locations recorded after each LTFS index is on tape, an encrypted catalog
//! snapshot at the end of each tape session). `verify` reads packs back; `restore` plans by
//! tape and position and checks every restored file's content hash.
//!
//! Every step is resumable: a step killed at any point leaves the catalog as of its last
//! committed transaction, and running it again finishes the work without recording
//! anything twice.

use std::sync::atomic::AtomicBool;

pub mod config;
pub mod exclude;
pub mod get;
pub mod legacy;
pub mod object;
pub mod pack;
pub mod raw;
pub mod recover;
pub mod restore;
pub mod run;
pub mod stream;
pub mod tape;
pub mod verify;

pub use config::{Config, ConfigFile, InitOptions, init, unlock_key};
pub use get::{GetOptions, GetReport, get};
pub use pack::{PackReport, pack};
pub use recover::{RecoverOptions, RecoverReport, recover};
pub use restore::{RestoreOptions, RestoreReport, restore};
pub use run::{RunReport, run};
pub use tape::{CatalogFeed, PackFeed, WriteReport, write, write_from};
pub use verify::{VerifyOptions, VerifyReport, verify};

/// Progress of the workflow's long steps. The CLI implements it with log lines or bars;
/// [`Silent`] shows nothing. Must be cheap: `advance` is called about once per MiB.
pub trait Progress: Sync {
    /// A message worth showing (a tape loaded, a file done).
    fn message(&self, text: &str);
    /// A new item (file or pack) of `total` bytes starts.
    fn item(&self, name: &str, total: Option<u64>) {
        let _ = (name, total);
    }
    /// Bytes processed since the last call.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn message(&self, _text: &str) {}
}

/// Adapts a workflow [`Progress`] to the crates' progress traits.
pub(crate) struct Adapt<'a>(pub &'a dyn Progress);

impl cryptpack::Progress for Adapt<'_> {
    fn advance(&self, bytes: u64) {
        self.0.advance(bytes);
    }
}

impl raw::RawProgress for Adapt<'_> {
    fn advance(&self, bytes: u64) {
        self.0.advance(bytes);
    }
}

impl ltfs::Progress for Adapt<'_> {
    fn item(&self, name: &str, total: Option<u64>) {
        self.0.item(name, total);
    }
    fn advance(&self, bytes: u64) {
        self.0.advance(bytes);
    }
    fn note(&self, message: &str) {
        self.0.message(message);
    }
}

/// A never-set cancel flag for callers that do not cancel.
pub fn no_cancel() -> &'static AtomicBool {
    static NEVER: AtomicBool = AtomicBool::new(false);
    &NEVER
}

/// Ends a job: records its counts and its outcome in one transaction. The job failed when
/// `result` is an error, or, when `failed_items` names the items (`"file(s)"`), when any of
/// them failed; otherwise it succeeded.
pub(crate) fn close_job(
    cat: &mut catalog::Catalog,
    job: catalog::JobId,
    result: &anyhow::Result<()>,
    progress: &catalog::JobProgress,
    failed_items: Option<&str>,
) -> anyhow::Result<()> {
    use catalog::JobOutcome;
    let (outcome, msg) = match (result, failed_items) {
        (Err(e), _) => (JobOutcome::Failed, Some(format!("{e:#}"))),
        (Ok(()), Some(what)) if progress.items_failed > 0 => (
            JobOutcome::Failed,
            Some(format!("{} {what} failed", progress.items_failed)),
        ),
        (Ok(()), _) => (JobOutcome::Succeeded, None),
    };
    cat.write(|tx| {
        tx.update_job(job, progress)?;
        tx.finish_job(job, outcome, msg.as_deref(), catalog::Timestamp::now())
    })?;
    Ok(())
}

/// Converts a cryptpack (or fetch) BLAKE3 digest into a catalog digest.
pub(crate) fn digest(bytes: &[u8; 32]) -> anyhow::Result<catalog::Digest> {
    Ok(catalog::Digest::new(
        catalog::HashAlgo::Blake3,
        bytes.to_vec(),
    )?)
}

/// One `syncfs(2)` for many files: everything written to the filesystem holding a
/// directory (file data, inodes, renames, removals) becomes durable with one journal
/// commit, instead of one `fsync` per file and one per directory.
///
/// The kernel reports a writeback error to `syncfs` on this descriptor when the error
/// happened after the descriptor was opened (Linux 5.8 and later): open it before the
/// writes it must cover, and keep it for the whole step.
pub(crate) struct FsSync {
    dir: std::fs::File,
    path: std::path::PathBuf,
}

impl FsSync {
    /// Opens `dir` (a directory on the filesystem to sync).
    pub(crate) fn open(dir: &std::path::Path) -> anyhow::Result<FsSync> {
        use anyhow::Context as _;
        Ok(FsSync {
            dir: std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?,
            path: dir.to_path_buf(),
        })
    }

    /// Makes everything written to the filesystem so far durable.
    pub(crate) fn sync(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        nix::unistd::syncfs(&self.dir)
            .map_err(std::io::Error::from)
            .with_context(|| format!("syncing the filesystem of {}", self.path.display()))
    }
}

/// `fsync` of a directory, so a rename in it is durable.
pub(crate) fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Opens the configured catalog.
pub fn open_catalog(config: &Config) -> anyhow::Result<catalog::Catalog> {
    use anyhow::Context as _;
    catalog::Catalog::open(&config.file.catalog)
        .with_context(|| format!("catalog {}", config.file.catalog.display()))
}

//! Where the BackupPC commands find their store, key and settings.
//!
//! BackupPC passes no options of ours to `ArchiveClientCmd`, so the configuration is a TOML
//! file: `--store FILE` (list/prune/restore-script), else the global `--config FILE` /
//! `$TAPEBACKUP_CONFIG`, else `/etc/tapebackup/config.toml`. Secrets are never in it: the
//! S3 secret comes from `secret_access_key_file` (mode 0600) or the environment
//! (`TAPEBACKUP_S3_SECRET_ACCESS_KEY`, `AWS_SECRET_ACCESS_KEY`); the cryptpack key from
//! `key_file` (0600) or a passphrase from `passphrase_file` (0600). See docs/backuppc.md.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use cloud::Store;
use serde::Deserialize;
use tapebackup::workflow::object::{BackuppcConfig, StoreConfig};

/// Default configuration file when neither `--store` nor `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/tapebackup/config.toml";

#[derive(Debug, Deserialize)]
struct FileConfig {
    /// The catalog (relative to the file's directory; default `catalog.db` next to it).
    catalog: Option<PathBuf>,
    store: StoreConfig,
    #[serde(default)]
    backuppc: BackuppcConfig,
}

/// How the chunks are compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compression {
    /// As BackupPC asks (its `compPath`: gzip, bzip2, `cat` = none, …).
    FromBackupPc,
    /// zstd, whatever BackupPC asks.
    Zstd,
    /// None.
    None,
}

/// The secret the chunks are sealed with.
#[derive(Debug)]
pub enum SealWith {
    /// A key file.
    Key(PathBuf),
    /// A passphrase file.
    Passphrase(PathBuf),
}

/// Everything the BackupPC commands need.
#[derive(Debug)]
pub struct Settings {
    /// The object store.
    pub store: Box<dyn Store>,
    /// Key prefix of the archives inside the store (default `backuppc`).
    pub prefix: String,
    /// Chunk size when BackupPC sends split size 0 (default 1 GiB).
    pub chunk_size: u64,
    /// Compression choice.
    pub compression: Compression,
    /// Sealing secret (needed by `archive` only).
    pub seal: Option<SealWith>,
    /// The file the settings came from.
    pub source: PathBuf,
    /// The catalog the archives are recorded in.
    pub catalog: PathBuf,
    /// Bucket and prefix of the store: its volume in the catalog.
    pub volume: (String, String),
}

fn parse_size(what: &str, s: &str) -> anyhow::Result<u64> {
    crate::cmd::crypt::parse_size(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// The configuration file to use: `--store`, else `--config`/`$TAPEBACKUP_CONFIG`, else the
/// default path.
pub fn config_path(store: Option<&Path>, global: Option<&Path>) -> PathBuf {
    store
        .or(global)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

/// Loads the settings from `path`.
pub fn load(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the configuration {} (set --store, --config or $TAPEBACKUP_CONFIG)",
            path.display()
        )
    })?;
    let file: FileConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("/"));
    let resolve = |p: &Path| {
        if p.is_relative() {
            base.join(p)
        } else {
            p.to_path_buf()
        }
    };
    let opened = file.store.open(base)?;
    let b = file.backuppc;
    let catalog = resolve(file.catalog.as_deref().unwrap_or(Path::new("catalog.db")));
    let seal = match (&b.key_file, &b.passphrase_file) {
        (Some(k), None) => Some(SealWith::Key(resolve(k))),
        (None, Some(p)) => Some(SealWith::Passphrase(resolve(p))),
        (None, None) => None,
        (Some(_), Some(_)) => bail!("backuppc: set key_file or passphrase_file, not both"),
    };
    let compression = match b.compression.as_deref().unwrap_or("backuppc") {
        "backuppc" => Compression::FromBackupPc,
        "zstd" => Compression::Zstd,
        "none" => Compression::None,
        other => bail!("backuppc.compression must be backuppc, zstd or none, not {other:?}"),
    };
    let chunk_size = match &b.chunk_size {
        Some(c) => parse_size("backuppc.chunk_size", c)?,
        None => 1 << 30,
    };
    if chunk_size == 0 {
        bail!("backuppc.chunk_size must not be 0");
    }
    let prefix = b.prefix.unwrap_or_else(|| "backuppc".into());
    cloud::validate_key(&prefix).context("backuppc.prefix")?;
    Ok(Settings {
        store: opened.store,
        prefix,
        chunk_size,
        compression,
        seal,
        source: path.to_path_buf(),
        catalog,
        volume: (opened.bucket, opened.prefix),
    })
}

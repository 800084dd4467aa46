//! Where the BackupPC commands find their store, key and settings.
//!
//! BackupPC passes no options of ours to `ArchiveClientCmd`, so the configuration is a TOML
//! file: `--store FILE` (list/prune/restore-script), else the global `--config FILE` /
//! `$TAPEBACKUP_CONFIG`, else `/etc/tapebackup/config.toml`. Secrets are never in it: the
//! S3 secret comes from `secret_access_key_file` (mode 0600) or the environment
//! (`TAPEBACKUP_S3_SECRET_ACCESS_KEY`, `AWS_SECRET_ACCESS_KEY`); the cryptpack key from
//! `key_file` (0600) or a passphrase from `passphrase_file` (0600). See docs/backuppc.md.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use cloud::{LocalStore, S3Config, S3Store, Secret, Store, TransferOptions};
use serde::Deserialize;

/// Default configuration file when neither `--store` nor `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/tapebackup/config.toml";

#[derive(Debug, Deserialize)]
struct FileConfig {
    store: StoreSection,
    #[serde(default)]
    backuppc: BackuppcSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    /// `s3` (default) or `local`.
    kind: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
    access_key_id: Option<String>,
    secret_access_key_file: Option<PathBuf>,
    allow_http: Option<bool>,
    part_size: Option<String>,
    concurrency: Option<usize>,
    /// Retries per request (default 10).
    retries: Option<usize>,
    /// Give up retrying a request after this many seconds (default 180).
    retry_timeout: Option<u64>,
    /// Directory for `kind = "local"`.
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackuppcSection {
    key_file: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
    chunk_size: Option<String>,
    compression: Option<String>,
    prefix: Option<String>,
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
}

fn parse_size(what: &str, s: &str) -> anyhow::Result<u64> {
    crate::cmd::crypt::parse_size(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// Reads a secret file, refusing one that others may read.
pub fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is readable by group or others (mode {:o}): chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
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
    let s = file.store;
    let b = file.backuppc;
    let mut transfer = TransferOptions::default();
    if let Some(p) = &s.part_size {
        transfer.part_size = parse_size("store.part_size", p)?;
    }
    if let Some(c) = s.concurrency {
        transfer.concurrency = c;
    }
    let store: Box<dyn Store> = match s.kind.as_deref().unwrap_or("s3") {
        "local" => {
            let dir = s
                .path
                .clone()
                .context("store.path is required for kind = \"local\"")?;
            Box::new(LocalStore::new(&dir, transfer)?)
        }
        "s3" => {
            let secret = match &s.secret_access_key_file {
                Some(f) => read_secret_file(f)?,
                None => String::new(),
            };
            let mut c = S3Config::new(
                s.endpoint.clone().unwrap_or_default(),
                s.region.clone().unwrap_or_default(),
                s.bucket.clone().unwrap_or_default(),
                s.access_key_id.clone().unwrap_or_default(),
                Secret::new(secret),
            );
            c.prefix = s.prefix.clone().unwrap_or_default();
            c.transfer = transfer;
            if let Some(r) = s.retries {
                c.retry.max_retries = r;
            }
            if let Some(t) = s.retry_timeout {
                c.retry.timeout = std::time::Duration::from_secs(t);
            }
            c = c.fill_from_env();
            if let Some(h) = s.allow_http {
                c.allow_http = h;
            }
            if c.region.is_empty() {
                c.region = "us-east-1".into();
            }
            Box::new(S3Store::new(&c)?)
        }
        other => bail!("store.kind must be \"s3\" or \"local\", not {other:?}"),
    };
    let seal = match (&b.key_file, &b.passphrase_file) {
        (Some(k), None) => Some(SealWith::Key(k.clone())),
        (None, Some(p)) => Some(SealWith::Passphrase(p.clone())),
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
        store,
        prefix,
        chunk_size,
        compression,
        seal,
        source: path.to_path_buf(),
    })
}

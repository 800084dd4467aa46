//! Packs on object storage: `write --to s3://bucket/prefix` uploads the packs `write` would
//! put on tape to an S3-compatible bucket instead, and `restore`/`verify` read them back.
//!
//! - The `[store]` section of the config ([`StoreConfig`], the same shape as the BackupPC
//!   archive host's) says how to reach the store: endpoint, region, access key id, the file
//!   holding the secret (mode 0600), part size, parallel parts, retries. Every key may be
//!   left out and come from the environment (`TAPEBACKUP_S3_*`, then `AWS_*`); secrets are
//!   never in the file nor on a command line. The bucket and prefix come from the `--to` URL.
//! - A bucket + prefix is one object-store volume in the catalog (pool: `tapes.pool`, so a
//!   pack written there no longer counts as pending for tape).
//! - Each pack is uploaded (multipart, parallel parts) as `<prefix>/<pack name>`, its
//!   ciphertext BLAKE3 checked against the catalog on the way out, then what landed is
//!   checked (size by HEAD, SHA-256 by reading it back), and only then its location and
//!   that verification are recorded, in one transaction. A run killed at any point leaves
//!   the pack pending: the next run uploads it again (the same key, replaced).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use catalog::{
    Catalog, JobKind, JobOutcome, JobProgress, Medium, NewLocation, NewObjectVolume,
    NewVerification, Part, Position, Timestamp, Txn, VerifyOutcome, VolumeId,
};
use cloud::{Expected, LocalStore, S3Config, S3Store, Secret, Store, TransferOptions, VerifyDepth};
use serde::{Deserialize, Serialize};

use super::tape::CatalogFeed;
use super::{Config, Progress};

/// Bucket name of a volume that is a local directory (`kind = "local"` stores): the
/// directory as a `file://` URL.
const FILE_SCHEME: &str = "file://";

/// The `[store]` section: how to reach an S3-compatible store (or a local directory).
/// Every key is optional; S3 settings left out come from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `s3` (default) or `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `https://s3.us-west-004.backblazeb2.com`, `http://127.0.0.1:8333`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Bucket (the BackupPC archive host's; `write --to` names its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Access key id (or `TAPEBACKUP_S3_ACCESS_KEY_ID` / `AWS_ACCESS_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// File holding the secret access key (mode 0600); else `TAPEBACKUP_S3_SECRET_ACCESS_KEY`
    /// / `AWS_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<PathBuf>,
    /// Allow plain HTTP (implied by an `http://` endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// Multipart part size (5MiB..5GiB; default 100MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<String>,
    /// Parts in flight (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Retries per request (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<usize>,
    /// Give up retrying a request after this many seconds (default 180).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_timeout: Option<u64>,
    /// Directory for `kind = "local"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// The `[backuppc]` section: the BackupPC archive host's settings (docs/backuppc.md), read
/// by `tapebackup backuppc`; here so that one file can configure both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackuppcConfig {
    /// Key file the chunks are sealed with (0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Or a passphrase file (0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// Chunk size when BackupPC sends split size 0 (default 1GiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<String>,
    /// `backuppc` (as BackupPC asks), `zstd` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Key prefix of the archives in the store (default `backuppc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A store opened from a [`StoreConfig`], with the bucket and prefix that make its
/// catalog volume.
#[derive(Debug)]
pub struct OpenedStore {
    /// The store (keys relative to `prefix`).
    pub store: Box<dyn Store>,
    /// The volume's bucket (`file:///dir` for a local directory).
    pub bucket: String,
    /// The volume's prefix.
    pub prefix: String,
}

/// Reads a secret file, refusing one that group or others may read. The first line,
/// trimmed, is the secret.
pub fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
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

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_relative() {
        base.join(p)
    } else {
        p.to_path_buf()
    }
}

impl StoreConfig {
    fn transfer(&self) -> anyhow::Result<TransferOptions> {
        let mut t = TransferOptions::default();
        if let Some(p) = &self.part_size {
            t.part_size = parse_size::parse_size(p)
                .map_err(|e| anyhow::anyhow!("store.part_size {p:?}: {e}"))?;
        }
        if let Some(c) = self.concurrency {
            t.concurrency = c;
        }
        Ok(t)
    }

    /// The S3 settings: this section, then the environment for what it leaves out, with
    /// `bucket`/`prefix` replaced when given. Relative paths are relative to `base`.
    pub fn s3_config(
        &self,
        base: &Path,
        bucket: Option<&str>,
        prefix: Option<&str>,
    ) -> anyhow::Result<S3Config> {
        let secret = match &self.secret_access_key_file {
            Some(f) => read_secret_file(&resolve(base, f))?,
            None => String::new(),
        };
        let mut c = S3Config::new(
            self.endpoint.clone().unwrap_or_default(),
            self.region.clone().unwrap_or_default(),
            bucket
                .map(str::to_owned)
                .or_else(|| self.bucket.clone())
                .unwrap_or_default(),
            self.access_key_id.clone().unwrap_or_default(),
            Secret::new(secret),
        );
        c.prefix = prefix
            .map(str::to_owned)
            .or_else(|| self.prefix.clone())
            .unwrap_or_default();
        c.transfer = self.transfer()?;
        if let Some(r) = self.retries {
            c.retry.max_retries = r;
        }
        if let Some(t) = self.retry_timeout {
            c.retry.timeout = std::time::Duration::from_secs(t);
        }
        // A prefix given explicitly (even empty) is not filled from the environment.
        let explicit_prefix = prefix.is_some();
        let wanted_prefix = c.prefix.clone();
        c = c.fill_from_env();
        if explicit_prefix {
            c.prefix = wanted_prefix;
        }
        if let Some(h) = self.allow_http {
            c.allow_http = h;
        }
        if c.region.is_empty() {
            c.region = "us-east-1".into();
        }
        Ok(c)
    }

    /// Opens the store this section describes (the BackupPC archive host's store).
    pub fn open(&self, base: &Path) -> anyhow::Result<OpenedStore> {
        match self.kind.as_deref().unwrap_or("s3") {
            "local" => {
                let dir = resolve(
                    base,
                    self.path
                        .as_deref()
                        .context("store.path is required for kind = \"local\"")?,
                );
                let store = LocalStore::new(&dir, self.transfer()?)?;
                let abs = std::path::absolute(&dir)?;
                Ok(OpenedStore {
                    store: Box::new(store),
                    bucket: format!("{FILE_SCHEME}{}", abs.display()),
                    prefix: String::new(),
                })
            }
            "s3" => {
                let c = self.s3_config(base, None, None)?;
                let store = S3Store::new(&c)?;
                Ok(OpenedStore {
                    store: Box::new(store),
                    bucket: c.bucket.clone(),
                    prefix: c.prefix.clone(),
                })
            }
            other => bail!("store.kind must be \"s3\" or \"local\", not {other:?}"),
        }
    }

    /// Opens the store holding an object-store volume: a `file://` directory, or the
    /// volume's bucket and prefix on this section's endpoint with its credentials.
    pub fn open_volume(
        &self,
        base: &Path,
        bucket: &str,
        prefix: &str,
    ) -> anyhow::Result<Box<dyn Store>> {
        if let Some(dir) = bucket.strip_prefix(FILE_SCHEME) {
            let dir = Path::new(dir).join(prefix);
            return Ok(Box::new(LocalStore::new(&dir, self.transfer()?)?));
        }
        let c = self.s3_config(base, Some(bucket), Some(prefix))?;
        Ok(Box::new(S3Store::new(&c)?))
    }
}

/// An `s3://bucket/prefix` URL (the prefix may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTarget {
    /// Bucket.
    pub bucket: String,
    /// Key prefix inside it (no leading or trailing `/`).
    pub prefix: String,
}

impl FromStr for ObjectTarget {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<ObjectTarget> {
        let Some(rest) = s.strip_prefix("s3://") else {
            bail!("{s:?} is not an s3://bucket/prefix URL");
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        {
            bail!("{s:?}: bad bucket name {bucket:?} (lowercase letters, digits, '-' and '.')");
        }
        if !prefix.is_empty() {
            cloud::validate_key(prefix).with_context(|| format!("{s:?}: prefix"))?;
        }
        Ok(ObjectTarget {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl std::fmt::Display for ObjectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The object-store volume for `bucket` + `prefix`, registered (appendable, in `pool`) if
/// the catalog does not know it yet.
pub fn object_volume(
    tx: &mut Txn<'_>,
    bucket: &str,
    prefix: &str,
    pool: &str,
    now: Timestamp,
) -> catalog::Result<VolumeId> {
    let known = tx.read().volumes()?.into_iter().find(|v| {
        matches!(&v.medium, Medium::Object { bucket: b, prefix: p } if b == bucket && p == prefix)
    });
    match known {
        Some(v) => Ok(v.id),
        None => tx.add_object_volume(
            &NewObjectVolume {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                pool: pool.to_owned(),
            },
            now,
        ),
    }
}

/// The configured `[store]` section (all from the environment when absent).
fn store_config(config: &Config) -> StoreConfig {
    config.file.store.clone().unwrap_or_default()
}

fn config_dir(config: &Config) -> &Path {
    config.path.parent().unwrap_or(Path::new("/"))
}

/// Opens the store holding an object-store volume, with the config's `[store]` settings.
pub fn open_volume_store(config: &Config, medium: &Medium) -> anyhow::Result<Box<dyn Store>> {
    let Medium::Object { bucket, prefix } = medium else {
        bail!("not an object-store volume");
    };
    store_config(config).open_volume(config_dir(config), bucket, prefix)
}

/// What [`write_to`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectWriteReport {
    /// The write job.
    pub job: i64,
    /// Where the packs went.
    pub target: String,
    /// Packs uploaded, checked and recorded.
    pub packs: u64,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// A reader that hashes what passes through (BLAKE3) and reports progress.
struct Hashing<'a, R> {
    inner: R,
    hasher: blake3::Hasher,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Uploads every pending pack (those [`write`](super::write()) would put on tape: fewer
/// than `tapes.copies` copies in `tapes.pool`) to `target`, checks what landed, and records
/// each location. Pack files stay in the packs directory.
pub fn write_to(
    config: &Config,
    cat: &mut Catalog,
    target: &ObjectTarget,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<ObjectWriteReport> {
    super::pack::repair_pending(config, cat)?;
    let store = store_config(config)
        .open_volume(config_dir(config), &target.bucket, &target.prefix)
        .with_context(|| format!("opening {target}"))?;
    let pool = config.file.tapes.pool.clone();
    let volume =
        cat.write(|tx| object_volume(tx, &target.bucket, &target.prefix, &pool, Timestamp::now()))?;
    let feed = CatalogFeed::new(config, cat)?;
    let mut report = ObjectWriteReport {
        target: target.to_string(),
        ..ObjectWriteReport::default()
    };
    if feed.is_empty() {
        return Ok(report);
    }
    let job = cat.write(|tx| {
        let job = tx.start_job(JobKind::Write, Timestamp::now())?;
        tx.log_event(
            Some(job),
            catalog::EventLevel::Info,
            &format!("writing {} pack(s) to {target}", feed.len()),
            Timestamp::now(),
        )?;
        Ok::<_, catalog::Error>(job)
    })?;
    report.job = job.get();
    let result = (|| {
        while let Some(pack) = feed.next_pack()? {
            if cancel.load(Ordering::Relaxed) {
                bail!("cancelled; run `write --to {target}` again to continue");
            }
            // Already there (e.g. `tapes.copies` > 1): one copy per volume.
            if cat
                .read()
                .locations_of_pack(pack.id)?
                .iter()
                .any(|l| l.volume == volume)
            {
                continue;
            }
            let size = upload_pack(
                config,
                cat,
                store.as_ref(),
                &pack,
                volume,
                job,
                progress,
                cancel,
            )
            .with_context(|| format!("pack {} to {target}", pack.name))?;
            report.packs += 1;
            report.bytes += size;
            cat.write(|tx| {
                tx.update_job(
                    job,
                    &JobProgress {
                        items_done: report.packs,
                        items_failed: 0,
                        bytes_done: report.bytes,
                        resume_state: None,
                    },
                )
            })?;
        }
        anyhow::Ok(())
    })();
    let (outcome, msg) = match &result {
        Ok(()) => (
            JobOutcome::Succeeded,
            format!(
                "{} pack(s), {} bytes to {target}",
                report.packs, report.bytes
            ),
        ),
        Err(e) if cancel.load(Ordering::Relaxed) => (JobOutcome::Cancelled, format!("{e:#}")),
        Err(e) => (JobOutcome::Failed, format!("{e:#}")),
    };
    cat.write(|tx| tx.finish_job(job, outcome, Some(&msg), Timestamp::now()))?;
    result.map(|()| report)
}

/// Uploads one pack file, checks it on the way out (BLAKE3 against the catalog) and after
/// landing (size and SHA-256), and records its location and the check. Returns its size.
#[allow(clippy::too_many_arguments, reason = "one internal call site")]
fn upload_pack(
    config: &Config,
    cat: &mut Catalog,
    store: &dyn Store,
    pack: &catalog::PackInfo,
    volume: VolumeId,
    job: catalog::JobId,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<u64> {
    let path = super::pack::pack_path(config, &pack.name);
    let file = std::fs::File::open(&path)
        .with_context(|| format!("pack file {} (recorded, not yet written)", path.display()))?;
    let key = pack.name.clone();
    progress.item(&pack.name, pack.cipher_size);
    let mut reader = Hashing {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        progress,
    };
    let up = store.upload(&key, &mut reader, &cloud::NoProgress, cancel)?;
    let sent = super::digest(reader.hasher.finalize().as_bytes())?;
    if pack.cipher_hash.as_ref().is_some_and(|h| *h != sent)
        || pack.cipher_size.is_some_and(|s| s != up.size)
    {
        // The local file is not the pack the catalog knows: never record it as a copy.
        let _ = store.delete(&key);
        bail!(
            "pack file {} ({} bytes, {sent}) differs from the catalog's pack ({:?} bytes, {:?}): \
             not recorded",
            path.display(),
            up.size,
            pack.cipher_size,
            pack.cipher_hash.as_ref().map(ToString::to_string)
        );
    }
    store
        .verify(
            &key,
            &Expected {
                size: up.size,
                sha256: up.sha256,
            },
            VerifyDepth::Content,
        )
        .context("checking what landed")?;
    let now = Timestamp::now();
    cat.write(|tx| {
        let loc = tx.record_location(
            &NewLocation {
                pack: pack.id,
                volume,
                part: Part::whole(up.size),
                position: Position::Object { key: key.clone() },
                job: Some(job),
            },
            now,
        )?;
        tx.record_verification(
            &NewVerification {
                job: Some(job),
                volume,
                location: Some(loc),
                outcome: VerifyOutcome::Ok,
                detail: Some(format!(
                    "after upload: {} bytes, sha256 {}",
                    up.size, up.sha256
                )),
            },
            now,
        )
    })?;
    Ok(up.size)
}

/// Streams one object into `consume` (a pipe between a download thread and the caller).
/// When both fail, the one that failed first explains it: the download's error (the
/// consumer then only saw a short stream), unless the download only failed because the
/// consumer stopped reading (a broken pipe), which is then never reported as such.
pub fn with_object_reader<T>(
    store: &dyn Store,
    key: &str,
    cancel: &AtomicBool,
    consume: impl FnOnce(&mut dyn Read) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (mut rx, mut tx) = std::io::pipe()?;
    std::thread::scope(|s| {
        let down = s.spawn(move || {
            let r = store.download(key, &mut tx, &cloud::NoProgress, cancel);
            drop(tx);
            r
        });
        let got = consume(&mut rx);
        // Unblock the download if the consumer stopped early.
        drop(rx);
        match down.join() {
            Ok(Ok(_)) => got,
            Ok(Err(e)) if got.is_err() && broken_pipe(&e) => got,
            Ok(Err(e)) => Err(anyhow::Error::new(e).context(format!("downloading {key}"))),
            Err(_) => bail!("the download of {key} panicked"),
        }
    })
}

/// Restores the reads of `plan` that are on object-store volumes (for
/// [`restore`](super::restore())); returns the rest of the plan (the tape runs), or `None`
/// when nothing is left and the restore job was finished here.
#[allow(
    clippy::too_many_arguments,
    reason = "the restore's own state, passed through"
)]
pub(crate) fn restore_objects(
    config: &Config,
    cat: &mut Catalog,
    key: &super::config::Unlocked,
    job: catalog::JobId,
    plan: catalog::RestorePlan,
    to: &Path,
    report: &mut super::RestoreReport,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<Option<catalog::RestorePlan>> {
    let mut rest = catalog::RestorePlan {
        runs: Vec::new(),
        missing: plan.missing,
    };
    for run in plan.runs {
        let medium = cat.read().volume(run.volume)?.medium;
        if !matches!(medium, Medium::Object { .. }) {
            rest.runs.push(run);
            continue;
        }
        let store = open_volume_store(config, &medium)
            .with_context(|| format!("opening object-store volume {}", run.label))?;
        report.tapes.push(run.label.clone());
        for read in &run.reads {
            if cancel.load(Ordering::Relaxed) {
                bail!("cancelled; resume with `tapebackup restore --resume {job}`");
            }
            let Position::Object { key: object } = &read.position else {
                bail!("pack {} on {} has no object key", read.pack_name, run.label);
            };
            if read.format != catalog::PackFormat::Cryptpack || read.part.count != 1 {
                bail!(
                    "pack {} on {}: only whole cryptpack packs are read from object storage",
                    read.pack_name,
                    run.label
                );
            }
            if read.files.is_empty() {
                continue;
            }
            with_object_reader(store.as_ref(), object, cancel, |r| {
                super::restore::restore_pack(
                    cat,
                    key,
                    job,
                    r,
                    &read.files,
                    to,
                    report,
                    progress,
                    cancel,
                )
            })
            .with_context(|| format!("pack {} on {}", read.pack_name, run.label))?;
        }
    }
    if rest.runs.is_empty() {
        let (done, total) = cat.read().restore_progress(job)?;
        if done == total {
            cat.write(|tx| tx.finish_job(job, JobOutcome::Succeeded, None, Timestamp::now()))?;
        }
        return Ok(None);
    }
    Ok(Some(rest))
}

/// Checks one pack object: without a key its ciphertext BLAKE3 and size against the
/// catalog, with the key a full decryption (every segment authenticated) and the
/// plaintext hash.
fn check_object(
    store: &dyn Store,
    object: &str,
    pack: &catalog::PackInfo,
    key: Option<&super::config::Unlocked>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> (VerifyOutcome, Option<String>, u64) {
    match store.head(object) {
        Err(cloud::Error::NotFound { .. }) => {
            return (
                VerifyOutcome::Missing,
                Some(format!("object {object} is not in the store")),
                0,
            );
        }
        Err(e) => return (VerifyOutcome::Unreadable, Some(e.to_string()), 0),
        Ok(info) if pack.cipher_size.is_some_and(|s| s != info.size) => {
            return (
                VerifyOutcome::Mismatch,
                Some(format!(
                    "object is {} bytes, the pack {:?}",
                    info.size, pack.cipher_size
                )),
                0,
            );
        }
        Ok(_) => {}
    }
    let got = with_object_reader(store, object, cancel, |r| match key {
        None => {
            let (n, h) = cryptpack::ciphertext_hash(r, &super::Adapt(progress), cancel)?;
            let found = super::digest(&h.0)?;
            Ok(if Some(&found) == pack.cipher_hash.as_ref() {
                (VerifyOutcome::Ok, None, n)
            } else {
                (
                    VerifyOutcome::Mismatch,
                    Some(format!(
                        "ciphertext {n} bytes {found}, expected {:?}",
                        pack.cipher_hash.as_ref().map(ToString::to_string)
                    )),
                    n,
                )
            })
        }
        Some(k) => match cryptpack::decrypt_stream(
            r,
            std::io::sink(),
            cryptpack::Secret::Key(&k.key),
            &cryptpack::DecryptOptions::default(),
            &super::Adapt(progress),
            cancel,
        ) {
            Err(e) if e.is_authentication_failure() => {
                Ok((VerifyOutcome::Mismatch, Some(e.to_string()), 0))
            }
            Err(e) => Err(e.into()),
            Ok(s) => {
                let plain = super::digest(&s.plaintext_hash.0)?;
                Ok(if Some(&plain) == pack.plain_hash.as_ref() {
                    (VerifyOutcome::Ok, None, s.ciphertext_len)
                } else {
                    (
                        VerifyOutcome::Mismatch,
                        Some(
                            "authenticated, but the plaintext hash differs from the catalog".into(),
                        ),
                        s.ciphertext_len,
                    )
                })
            }
        },
    });
    got.unwrap_or_else(|e| (VerifyOutcome::Unreadable, Some(format!("{e:#}")), 0))
}

/// Verifies the packs on every object-store volume (for [`verify`](super::verify())), as one
/// verify job; results are recorded per location and added to `report`.
pub(crate) fn verify_objects(
    config: &Config,
    cat: &mut Catalog,
    key: Option<&super::config::Unlocked>,
    sample_percent: Option<f64>,
    report: &mut super::VerifyReport,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let volumes: Vec<_> = cat
        .read()
        .volumes()?
        .into_iter()
        .filter(|v| matches!(v.medium, Medium::Object { .. }) && v.bytes_used > 0)
        .collect();
    if volumes.is_empty() {
        return Ok(());
    }
    let job = cat.write(|tx| tx.start_job(JobKind::Verify, Timestamp::now()))?;
    let (mut ok, mut failed, mut bytes) = (0u64, 0u64, 0u64);
    let result = (|| {
        for v in &volumes {
            let label = v.label();
            let store = open_volume_store(config, &v.medium)
                .with_context(|| format!("opening object-store volume {label}"))?;
            let mut locs = cat.read().locations_on_volume(v.id)?;
            if let Some(p) = sample_percent {
                let idx = super::verify::sample(locs.len(), p);
                locs = idx.into_iter().map(|i| locs[i].clone()).collect();
            }
            for loc in &locs {
                if cancel.load(Ordering::Relaxed) {
                    bail!("cancelled");
                }
                let Position::Object { key: object } = &loc.position else {
                    continue;
                };
                let pack = cat.read().pack(loc.pack)?;
                progress.item(&pack.name, loc.part.length);
                let (outcome, detail, n) =
                    check_object(store.as_ref(), object, &pack, key, progress, cancel);
                report.bytes += n;
                bytes += n;
                if outcome == VerifyOutcome::Ok {
                    ok += 1;
                } else {
                    failed += 1;
                }
                super::verify::record_check(
                    cat,
                    report,
                    job,
                    (v, &label),
                    (loc, &pack.name),
                    outcome,
                    detail,
                )?;
            }
        }
        anyhow::Ok(())
    })();
    let progress = JobProgress {
        items_done: ok,
        items_failed: failed,
        bytes_done: bytes,
        resume_state: None,
    };
    super::close_job(cat, job, &result, &progress, Some("object location(s)"))?;
    result
}

fn broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t: ObjectTarget = "s3://my-bucket/some/prefix/".parse().unwrap();
        assert_eq!(t.bucket, "my-bucket");
        assert_eq!(t.prefix, "some/prefix");
        assert_eq!(t.to_string(), "s3://my-bucket/some/prefix");
        let t: ObjectTarget = "s3://b".parse().unwrap();
        assert_eq!((t.bucket.as_str(), t.prefix.as_str()), ("b", ""));
        for bad in [
            "b/p",
            "s3://",
            "s3://Upper/p",
            "s3://b/a//c",
            "file:///x",
            "s3://b/../x",
        ] {
            assert!(bad.parse::<ObjectTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn store_section_rejects_unknown_keys() {
        assert!(toml::from_str::<StoreConfig>("endpoint = \"x\"\nsecret = \"s\"\n").is_err());
        let s: StoreConfig =
            toml::from_str("endpoint = \"http://h:1\"\nconcurrency = 2\n").unwrap();
        assert_eq!(s.concurrency, Some(2));
    }
}

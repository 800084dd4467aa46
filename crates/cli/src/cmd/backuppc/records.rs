//! What `backuppc archive` records in the catalog, and how a rerun finds it again.
//!
//! Each chunk of an archive is a file of the source `backuppc`, at
//! `<host>/<backup>/<host>.<backup>.tar<ext>.<NNNNNN>` (so `tapebackup restore` of
//! `<host>/<backup>/*` gives the pieces that `cat` joins into BackupPC's archive), whose
//! content is the chunk's plaintext (BLAKE3). Its pack is the uploaded object (cryptpack,
//! ciphertext BLAKE3 and size), located on the object-store volume of the store's bucket and
//! prefix (pool `backuppc`) under the chunk's key, with a verification (size by HEAD after
//! upload). One `write` job per run carries the outcome, and its resume state is the
//! archive's journal (the same JSON as `journal.json` in the bucket): a rerun of the same
//! host and backup number trusts the chunks recorded there whose objects are still in the
//! store with their recorded size. Everything of one chunk is one transaction.
//!
//! The bucket's `manifest.json` stays the truth for restore scripts: they work without the
//! catalog.

use anyhow::Context as _;
use catalog::{
    Catalog, Digest, EventLevel, FileQuery, HashAlgo, JobId, JobKind, JobOutcome, JobProgress,
    NewLocation, NewPack, NewVerification, PackFormat, PackMember, Part, Position, ScannedFile,
    SourceId, Timestamp, Txn, VerifyOutcome, VolumeId,
};

use super::config::Settings;
use super::manifest::{ChunkRecord, FORMAT, Journal, Manifest};

/// Name of the catalog source the archives' chunks are files of.
pub const SOURCE: &str = "backuppc";
/// Pool of the object-store volumes of BackupPC archives.
pub const POOL: &str = "backuppc";
/// How many of the latest jobs a rerun searches for the archive's journal.
const JOBS_SEARCHED: u64 = 1000;

/// The catalog side of one `archive` run.
pub struct Recorder {
    cat: Catalog,
    source: SourceId,
    volume: VolumeId,
    job: Option<JobId>,
    host: String,
    backup: u64,
    key_id: String,
    ext: String,
    done: u64,
    bytes: u64,
}

/// `[` `*` `?` made literal for a SQLite GLOB.
fn glob_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// The catalog path of chunk `index` of an archive.
pub fn chunk_path(host: &str, backup: u64, ext: &str, index: u64) -> String {
    format!("{host}/{backup}/{host}.{backup}.tar{ext}.{index:06}")
}

impl Recorder {
    /// Opens the configured catalog (created if missing) and registers the source and the
    /// store's volume if they are new.
    pub fn open(
        settings: &Settings,
        host: &str,
        backup: u64,
        key_id: &str,
        ext: &str,
    ) -> anyhow::Result<Recorder> {
        if let Some(dir) = settings.catalog.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut cat = Catalog::open(&settings.catalog)
            .with_context(|| format!("catalog {}", settings.catalog.display()))?;
        let location = settings.store.location();
        let (bucket, prefix) = (settings.volume.0.clone(), settings.volume.1.clone());
        let (source, volume) = cat.write(|tx| {
            let now = Timestamp::now();
            let source = match tx.read().source_by_name(SOURCE)? {
                Some(s) => s.id,
                None => tx.add_source(SOURCE, &location, now)?,
            };
            let volume =
                tapebackup::workflow::object::object_volume(tx, &bucket, &prefix, POOL, now)?;
            Ok::<_, catalog::Error>((source, volume))
        })?;
        Ok(Recorder {
            cat,
            source,
            volume,
            job: None,
            host: host.to_owned(),
            backup,
            key_id: key_id.to_owned(),
            ext: ext.to_owned(),
            done: 0,
            bytes: 0,
        })
    }

    /// The journal of the latest run of this archive recorded in the catalog.
    pub fn journal(&self) -> anyhow::Result<Option<Journal>> {
        for job in self.cat.read().jobs(JOBS_SEARCHED)? {
            if job.kind != JobKind::Write {
                continue;
            }
            let Some(state) = &job.resume_state else {
                continue;
            };
            let Ok(j) = serde_json::from_slice::<Journal>(state) else {
                continue;
            };
            if j.format == FORMAT && j.host == self.host && j.backup == self.backup {
                return Ok(Some(j));
            }
        }
        Ok(None)
    }

    /// Starts this run's job.
    pub fn start(&mut self, journal: &Journal, location: &str) -> anyhow::Result<()> {
        let msg = format!(
            "backuppc archive {} #{} to {location}",
            self.host, self.backup
        );
        let state = serde_json::to_vec(journal)?;
        let job = self.cat.write(|tx| {
            let now = Timestamp::now();
            let job = tx.start_job(JobKind::Write, now)?;
            tx.log_event(Some(job), EventLevel::Info, &msg, now)?;
            tx.update_job(
                job,
                &JobProgress {
                    resume_state: Some(state),
                    ..JobProgress::default()
                },
            )?;
            Ok::<_, catalog::Error>(job)
        })?;
        self.job = Some(job);
        Ok(())
    }

    /// Records one chunk that landed and was checked, and the journal that now lists it,
    /// in one transaction.
    pub fn chunk(&mut self, rec: &ChunkRecord, journal: &Journal) -> anyhow::Result<()> {
        let state = serde_json::to_vec(journal)?;
        self.done += 1;
        self.bytes += rec.size;
        let progress = JobProgress {
            items_done: self.done,
            items_failed: 0,
            bytes_done: self.bytes,
            resume_state: Some(state),
        };
        let (job, path) = (
            self.job,
            chunk_path(&self.host, self.backup, &self.ext, rec.index),
        );
        let (source, volume, key_id) = (self.source, self.volume, self.key_id.clone());
        self.cat
            .write(|tx| {
                ensure_recorded(tx, source, volume, job, &key_id, &path, rec)?;
                if let Some(job) = job {
                    tx.update_job(job, &progress)?;
                }
                anyhow::Ok(())
            })
            .with_context(|| format!("recording chunk {} in the catalog", rec.index))
    }

    /// Records every chunk of a complete archive the catalog may not know yet (an archive
    /// made before the catalog was configured), in one transaction.
    pub fn backfill(&mut self, m: &Manifest) -> anyhow::Result<()> {
        let (source, volume, key_id) = (self.source, self.volume, self.key_id.clone());
        let (host, backup, ext) = (self.host.clone(), self.backup, self.ext.clone());
        self.cat
            .write(|tx| {
                for c in &m.chunks {
                    let path = chunk_path(&host, backup, &ext, c.index);
                    ensure_recorded(tx, source, volume, None, &key_id, &path, c)?;
                }
                anyhow::Ok(())
            })
            .context("recording the archive in the catalog")
    }

    /// Ends the job with the run's outcome.
    pub fn finish(&mut self, outcome: Result<&Manifest, &anyhow::Error>) -> anyhow::Result<()> {
        let Some(job) = self.job.take() else {
            return Ok(());
        };
        let (state, msg) = match outcome {
            Ok(m) => (
                JobOutcome::Succeeded,
                format!(
                    "backuppc {} #{}: {} chunk(s), {} bytes stored, complete",
                    m.host,
                    m.backup,
                    m.chunks.len(),
                    m.size
                ),
            ),
            Err(e) => (
                JobOutcome::Failed,
                format!("backuppc {} #{}: {e:#}", self.host, self.backup),
            ),
        };
        self.cat
            .write(|tx| tx.finish_job(job, state, Some(&msg), Timestamp::now()))?;
        Ok(())
    }
}

/// Records a chunk (file version, pack, location, verification) unless the catalog has it
/// already. A chunk whose plaintext is already in another pack (the same bytes archived
/// before) keeps that one pack: the catalog stores each content once.
fn ensure_recorded(
    tx: &mut Txn<'_>,
    source: SourceId,
    volume: VolumeId,
    job: Option<JobId>,
    key_id: &str,
    path: &str,
    rec: &ChunkRecord,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let plain = Digest::from_hex(HashAlgo::Blake3, &rec.plain_blake3)?;
    let cipher = Digest::from_hex(HashAlgo::Blake3, &rec.pack_blake3)?;
    let scanned = ScannedFile {
        path: path.to_owned(),
        size: rec.plain_size,
        mtime: Timestamp::from_unix_seconds(i64::try_from(rec.uploaded).unwrap_or(i64::MAX)),
        mode: 0o100_600,
        hash: Some(plain.clone()),
    };
    let version = tx.record_scan(source, &scanned, now)?.version;
    let entry = tx
        .read()
        .search(&FileQuery {
            pattern: Some(glob_literal(path)),
            source: Some(source),
            limit: Some(1),
            ..FileQuery::default()
        })?
        .pop()
        .with_context(|| format!("{path}: recorded but not found"))?;
    let pack = match entry.pack {
        Some(p) => p,
        None => tx.record_pack(
            &NewPack {
                format: PackFormat::Cryptpack,
                key_id: key_id.to_owned(),
                plain_size: rec.plain_size,
                plain_hash: plain,
                cipher_size: rec.size,
                cipher_hash: cipher.clone(),
                members: vec![PackMember {
                    version,
                    offset: 0,
                    length: rec.plain_size,
                }],
            },
            now,
        )?,
    };
    let position = Position::Object {
        key: rec.key.clone(),
    };
    let located = entry
        .copies
        .iter()
        .any(|c| c.volume == volume && c.position == position);
    if pack.cipher_hash.as_ref() == Some(&cipher) && !located {
        let loc = tx.record_location(
            &NewLocation {
                pack: pack.id,
                volume,
                part: Part::whole(rec.size),
                position,
                job,
            },
            now,
        )?;
        tx.record_verification(
            &NewVerification {
                job,
                volume,
                location: Some(loc),
                outcome: VerifyOutcome::Ok,
                detail: Some(format!(
                    "after upload: {} bytes by HEAD, sha256 {} sent",
                    rec.size, rec.sha256
                )),
            },
            now,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_literal() {
        assert_eq!(glob_literal("a*b?c[d]"), "a[*]b[?]c[[]d]");
        assert_eq!(chunk_path("h", 3, ".gz", 12), "h/3/h.3.tar.gz.000012");
    }
}

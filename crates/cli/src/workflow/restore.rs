//! `restore`: plan by tape and position, load tapes in that order, decrypt, check every
//! file's content hash, and only then put it in place. Progress is recorded per file, so
//! `--resume JOB` finishes an interrupted restore.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context as _, bail};
use catalog::{
    Catalog, JobId, JobOutcome, PackFormat, Position, RestoreFile, RestoreQuery, Timestamp,
    VersionSelector, VolumeRun,
};
use tape_scsi::Library;

use super::config::Unlocked;
use super::tape::{MissingCartridge, TapeReader, empty_drive, load_barcode, open_library};
use super::{Config, Progress};

/// Options for [`restore`].
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// SQLite GLOB over paths (`*` also matches `/`); `None`: everything.
    pub pattern: Option<String>,
    /// Which version of each file.
    pub selector: VersionSelector,
    /// Destination directory: files land in `<to>/<source>/<path>`.
    pub to: PathBuf,
    /// Resume this restore job instead of planning a new one.
    pub resume: Option<JobId>,
}

/// What [`restore`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreReport {
    /// The restore job (pass it to `--resume`).
    pub job: i64,
    /// Files restored and checked.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// Tapes read, in order.
    pub tapes: Vec<String>,
    /// Selected files that cannot be restored, with the reason.
    pub missing: Vec<String>,
}

/// Error when a selected path would escape the destination.
#[derive(Debug, thiserror::Error)]
#[error("refusing to restore {path:?}: absolute paths and `..` components are not allowed")]
pub struct UnsafePath {
    /// The path.
    pub path: String,
}

pub(crate) fn dest_of(to: &Path, f: &RestoreFile) -> Result<PathBuf, UnsafePath> {
    let bad = || UnsafePath {
        path: format!("{}/{}", f.source_name, f.path),
    };
    if !fetch::is_safe_relative_path(f.source_name.as_bytes())
        || f.source_name.contains('/')
        || !fetch::is_safe_relative_path(f.path.as_bytes())
    {
        return Err(bad());
    }
    Ok(to.join(&f.source_name).join(&f.path))
}

/// Restores the selected files.
pub fn restore(
    config: &Config,
    cat: &mut Catalog,
    key: &Unlocked,
    options: &RestoreOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<RestoreReport> {
    let (job, plan) = match options.resume {
        Some(job) => (job, cat.read().plan_restore_job(job)?),
        None => {
            let plan = cat.read().plan_restore(&RestoreQuery {
                pattern: options.pattern.clone(),
                selector: options.selector,
                ..RestoreQuery::default()
            })?;
            if plan.file_count() == 0 && plan.missing.is_empty() {
                bail!(
                    "nothing in the catalog matches {:?}",
                    options.pattern.as_deref().unwrap_or("*")
                );
            }
            // Check every path before anything is written.
            for f in plan
                .runs
                .iter()
                .flat_map(|r| &r.reads)
                .flat_map(|r| &r.files)
            {
                dest_of(&options.to, f)?;
            }
            let job = cat.write(|tx| tx.start_restore(&plan, Timestamp::now()))?;
            (job, plan)
        }
    };
    let mut report = RestoreReport {
        job: job.get(),
        missing: plan
            .missing
            .iter()
            .map(|m| format!("{}/{}: {:?}", m.source_name, m.path, m.reason))
            .collect(),
        ..RestoreReport::default()
    };
    for f in plan
        .runs
        .iter()
        .flat_map(|r| &r.reads)
        .flat_map(|r| &r.files)
    {
        dest_of(&options.to, f)?;
    }
    std::fs::create_dir_all(&options.to)?;
    let _temp = TempRoot::fresh(&options.to, job)?;
    // Packs on object-store volumes first (no library needed); the tape runs remain.
    let Some(plan) = super::object::restore_objects(
        config,
        cat,
        key,
        job,
        plan,
        &options.to,
        &mut report,
        progress,
        cancel,
    )?
    else {
        return Ok(report);
    };
    let mut lib = open_library(config)?;
    // Say every cartridge to insert at once.
    let inv = lib.changer().inventory()?;
    let absent: Vec<String> = plan
        .runs
        .iter()
        .map(|r| r.label.clone())
        .filter(|b| inv.find_barcode(b).is_none())
        .collect();
    if !absent.is_empty() {
        return Err(anyhow::Error::new(MissingCartridge {
            barcode: absent.join(", "),
        }))
        .with_context(|| {
            format!("restore job {job}: run `tapebackup restore --resume {job}` after inserting")
        });
    }
    // The seed tool's passphrase (see `legacy`), asked for before any tape moves.
    let mut legacy_pass = super::legacy::LegacyPassphrase::default();
    if plan
        .runs
        .iter()
        .flat_map(|r| &r.reads)
        .any(|r| r.format == PackFormat::LegacyOpensslAes256CbcPbkdf2)
    {
        legacy_pass.get()?;
    }
    let drives = super::tape::write_drives(config);
    let shared = Shared {
        key,
        job,
        to: &options.to,
        progress,
        cancel,
        queue: Mutex::new(plan.runs.iter().collect()),
        changer: Mutex::new(()),
        spans: Mutex::new(HashMap::new()),
        legacy: Mutex::new(legacy_pass),
        failed: AtomicBool::new(false),
    };
    let results: Vec<(RestoreReport, anyhow::Result<()>)> = if drives.len() <= 1 {
        let drive_no = drives.first().copied().unwrap_or(config.file.tapes.drive);
        vec![drive_loop(&shared, cat, lib, drive_no, None)]
    } else {
        drop(lib);
        // Each drive gets its first tape before any starts, so every drive works when
        // there are enough tapes; the rest go to whichever drive is free first.
        let firsts: Vec<Option<&VolumeRun>> = {
            let mut q = shared
                .queue
                .lock()
                .map_err(|_| anyhow::anyhow!("tape queue poisoned"))?;
            drives.iter().map(|_| q.pop_front()).collect()
        };
        super::tape::on_drives(
            drives.into_iter().zip(firsts).collect(),
            &shared.failed,
            |d, first| {
                let mut c = super::open_catalog(config)?;
                let lib = open_library(config)?;
                Ok(drive_loop(&shared, &mut c, lib, d, first))
            },
        )
    };
    let mut result = Ok(());
    for (r, res) in results {
        report.files += r.files;
        report.bytes += r.bytes;
        report.tapes.extend(r.tapes);
        if result.is_ok() {
            result = res;
        }
    }
    result?;
    let spans = shared
        .spans
        .into_inner()
        .map_err(|_| anyhow::anyhow!("span state poisoned by a panicked drive thread"))?;
    if !spans.is_empty() {
        bail!(
            "{} spanning pack(s) had parts missing from the plan",
            spans.len()
        );
    }
    let (done, total) = cat.read().restore_progress(job)?;
    if done == total {
        cat.write(|tx| tx.finish_job(job, JobOutcome::Succeeded, None, Timestamp::now()))?;
    }
    Ok(report)
}

/// A spanning pack being assembled: its ciphertext so far (parts written at their
/// offsets), the parts in, and the files listed on its parts.
type Span = (tempfile::NamedTempFile, u32, Vec<RestoreFile>);

/// State shared by the drive threads of one restore.
struct Shared<'a> {
    key: &'a Unlocked,
    job: JobId,
    to: &'a Path,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
    /// Tapes not yet taken by a drive, in plan order.
    queue: Mutex<VecDeque<&'a VolumeRun>>,
    /// Held for every changer move (one robot, several drives).
    changer: Mutex<()>,
    /// Spanning packs by pack id: their parts may be read by different drives.
    spans: Mutex<HashMap<i64, Span>>,
    legacy: Mutex<super::legacy::LegacyPassphrase>,
    /// Set when a drive failed: the others finish their current tape and stop.
    failed: AtomicBool,
}

impl<'a> Shared<'a> {
    fn changer(&self) -> anyhow::Result<MutexGuard<'_, ()>> {
        self.changer
            .lock()
            .map_err(|_| anyhow::anyhow!("changer lock poisoned by a panicked drive thread"))
    }

    fn next_run(&self) -> anyhow::Result<Option<&'a VolumeRun>> {
        if self.failed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut q = self
            .queue
            .lock()
            .map_err(|_| anyhow::anyhow!("tape queue poisoned by a panicked drive thread"))?;
        Ok(q.pop_front())
    }
}

/// One drive's share of a restore: take the next tape of the plan, load it, restore its
/// reads, unload; until no tape is left or another drive failed.
fn drive_loop<'a>(
    sh: &Shared<'a>,
    cat: &mut Catalog,
    mut lib: Library,
    drive_no: u16,
    first: Option<&'a VolumeRun>,
) -> (RestoreReport, anyhow::Result<()>) {
    let mut report = RestoreReport::default();
    let result = (|| {
        let mut run = first;
        if run.is_none() {
            run = sh.next_run()?;
        }
        while let Some(r) = run {
            restore_tape(sh, cat, &mut lib, drive_no, r, &mut report)?;
            run = sh.next_run()?;
        }
        anyhow::Ok(())
    })();
    super::tape::after_drive_work(&result, &sh.failed, &sh.changer, &mut lib, drive_no);
    (report, result)
}

/// Restores every read of one tape with one drive.
fn restore_tape(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    lib: &mut Library,
    drive_no: u16,
    run: &VolumeRun,
    report: &mut RestoreReport,
) -> anyhow::Result<()> {
    let (key, job, to, progress, cancel) = (sh.key, sh.job, sh.to, sh.progress, sh.cancel);
    let mut drive = {
        let _guard = sh.changer()?;
        load_barcode(lib, drive_no, &run.label, progress)?
    };
    report.tapes.push(run.label.clone());
    let mut tape = TapeReader::open(cat, run.volume, &run.label, &mut *drive)?;
    for read in &run.reads {
        if cancel.load(Ordering::Relaxed) {
            bail!("cancelled; resume with `tapebackup restore --resume {job}`");
        }
        if read.format == PackFormat::LegacyOpensslAes256CbcPbkdf2 {
            let (TapeReader::Ltfs(volume), Position::LtfsFile { name, .. }) =
                (&mut tape, &read.position)
            else {
                bail!(
                    "legacy pack {} is not an LTFS file on {}",
                    read.pack_name,
                    run.label
                );
            };
            let mut pass = sh
                .legacy
                .lock()
                .map_err(|_| anyhow::anyhow!("passphrase poisoned by a panicked drive thread"))?;
            super::legacy::restore_read(
                cat, job, volume, &run.label, name, read, to, &mut pass, report, progress, cancel,
            )
            .with_context(|| format!("legacy pack {} on {}", read.pack_name, run.label))?;
            continue;
        }
        if read.format != PackFormat::Cryptpack {
            bail!(
                "pack {} is in the {} format, which this version does not restore",
                read.pack_name,
                read.format
            );
        }
        let mut reader = tape
            .open_pack(&read.position, &read.pack_name, read.part.offset)
            .with_context(|| format!("pack {} on {}", read.pack_name, run.label))?;
        if read.part.count > 1 {
            // Spanning packs: ciphertext assembled part by part (each at its offset, in
            // whatever order the drives read them); restored once every part is in.
            let complete = {
                let mut spans = sh
                    .spans
                    .lock()
                    .map_err(|_| anyhow::anyhow!("span state poisoned by a panicked drive"))?;
                let entry = match spans.entry(read.pack.get()) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert((
                        tempfile::NamedTempFile::new_in(temp_root(to, job))?,
                        0,
                        Vec::new(),
                    )),
                };
                entry
                    .0
                    .as_file_mut()
                    .seek(SeekFrom::Start(read.part.offset))?;
                std::io::copy(&mut reader, entry.0.as_file_mut())?;
                entry.1 += 1;
                entry.2.extend(read.files.iter().cloned());
                if entry.1 == read.part.count {
                    spans.remove(&read.pack.get())
                } else {
                    None
                }
            };
            if let Some((tmp, _, files)) = complete {
                let mut f = tmp.reopen()?;
                f.seek(SeekFrom::Start(0))?;
                restore_pack(cat, key, job, f, &files, to, report, progress, cancel)?;
            }
        } else {
            restore_pack(
                cat,
                key,
                job,
                reader,
                &read.files,
                to,
                report,
                progress,
                cancel,
            )
            .with_context(|| format!("pack {} on {}", read.pack_name, run.label))?;
        }
    }
    drop(tape);
    drive.unload()?;
    drop(drive);
    let _guard = sh.changer()?;
    empty_drive(lib, drive_no)?;
    Ok(())
}

/// Decrypts one pack stream and restores its files (sorted by offset; files with the
/// same content are copies of the first one restored).
///
/// Files are written under temporary names and made durable in groups of up to
/// [`RESTORE_GROUP_FILES`] ([`Group::land`]): one `syncfs` of the destination's filesystem,
/// then the renames to their real names, one `syncfs` more, then one transaction marks the
/// group restored. So a file under its real name is always complete, and a file marked
/// restored is durable where it belongs (instead of an `fsync` and a commit per file: 200k
/// small files took 155 s, 44 s of it in the kernel).
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_pack(
    cat: &mut Catalog,
    key: &Unlocked,
    job: JobId,
    input: impl Read,
    files: &[RestoreFile],
    to: &Path,
    report: &mut RestoreReport,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let _ = cancel;
    let mut files: Vec<&RestoreFile> = files.iter().collect();
    files.sort_by_key(|f| (f.offset, f.version));
    let mut dec = cryptpack::Decryptor::new(input, cryptpack::Secret::Key(&key.key))?;
    let mut pos = 0u64;
    // The bytes restored last: (offset, length, where they are now).
    let mut last: Option<(u64, Option<u64>, PathBuf)> = None;
    let mut group = Group::open(to, job)?;
    let mut buf = vec![0u8; COPY_BUFFER];
    for f in files {
        let dest = dest_of(to, f)?;
        let dir = dest.parent().unwrap_or(to);
        std::fs::create_dir_all(dir)?;
        progress.item(&format!("{}/{}", f.source_name, f.path), f.length);
        // Written in the job's temporary directory, or next to its destination when that
        // is another filesystem (a mount below the destination): renamed from there.
        let elsewhere = group.elsewhere(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".restore-")
            .tempfile_in(if elsewhere { dir } else { &group.temp })?;
        match &last {
            // The same bytes of the pack (same offset and length): a copy of that file.
            Some((off, len, prev)) if *off == f.offset && *len == f.length => {
                std::io::copy(&mut std::fs::File::open(prev)?, tmp.as_file_mut())?;
            }
            _ => {
                if f.offset < pos {
                    bail!("overlapping pack members at offset {}", f.offset);
                }
                std::io::copy(&mut (&mut dec).take(f.offset - pos), &mut std::io::sink())?;
                pos = f.offset;
                let len = f.length.unwrap_or(u64::MAX);
                let (n, got) = copy_hashed(&mut dec, tmp.as_file_mut(), len, &mut buf)?;
                pos += n;
                if f.hash.algo() != catalog::HashAlgo::Blake3 || got.as_bytes() != f.hash.bytes() {
                    bail!(
                        "{}/{}: restored content hash {} does not match the catalog's {}",
                        f.source_name,
                        f.path,
                        got.to_hex(),
                        f.hash
                    );
                }
                if f.length.is_some_and(|l| l != n) {
                    bail!("{}/{}: pack ended early", f.source_name, f.path);
                }
            }
        }
        let file = tmp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(f.mode & 0o7777))?;
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(f.mtime.unix_seconds()).unwrap_or(0));
        file.set_modified(mtime)?;
        if elsewhere {
            // Not on the destination's filesystem (a mount below it): synced on its own.
            file.sync_all()?;
        }
        let tmp = tmp.into_temp_path();
        last = Some((f.offset, f.length, tmp.to_path_buf()));
        group.pending.push(Pending {
            tmp,
            dest,
            version: f.version,
            bytes: f.length.unwrap_or(0),
            elsewhere,
        });
        if group.pending.len() >= RESTORE_GROUP_FILES {
            let landed = group.land(cat, job, report)?;
            if let (Some(l), Some(dest)) = (&mut last, landed) {
                l.2 = dest;
            }
        }
    }
    group.land(cat, job, report)?;
    Ok(())
}

/// Most restored files made durable and marked restored together ([`Group::land`]).
const RESTORE_GROUP_FILES: usize = 512;

/// A restored file under its temporary name, waiting for its group to land.
struct Pending {
    /// Removed when dropped unless renamed: a failed group leaves no temporary file.
    tmp: tempfile::TempPath,
    dest: PathBuf,
    version: catalog::VersionId,
    bytes: u64,
    /// On another filesystem than the destination directory (synced on its own).
    elsewhere: bool,
}

/// The temporary directory of restore job `job` in the destination `to`: restored files
/// are written there and renamed to their places once durable.
pub(crate) fn temp_root(to: &Path, job: JobId) -> PathBuf {
    to.join(format!(".tapebackup-restore-{job}"))
}

/// A restore job's [`temp_root`] for one run of the job: what a killed earlier run left
/// there is removed first (those files were never renamed to their places nor marked
/// restored), and the directory goes when the run ends.
struct TempRoot(PathBuf);

impl TempRoot {
    fn fresh(to: &Path, job: JobId) -> anyhow::Result<TempRoot> {
        let path = temp_root(to, job);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempRoot(path))
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        // Empty unless the process is dying: every file in it was renamed or dropped.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The files of one pack restored but not yet durable under their names.
struct Group {
    durable: super::FsSync,
    /// The job's temporary directory ([`temp_root`]).
    temp: PathBuf,
    /// Device of the destination directory.
    dev: u64,
    pending: Vec<Pending>,
}

impl Group {
    fn open(to: &Path, job: JobId) -> anyhow::Result<Group> {
        use std::os::unix::fs::MetadataExt as _;
        let temp = temp_root(to, job);
        std::fs::create_dir_all(&temp)?;
        Ok(Group {
            durable: super::FsSync::open(to)?,
            temp,
            dev: std::fs::metadata(to)?.dev(),
            pending: Vec::new(),
        })
    }

    /// Whether directory `dir` is on another filesystem than the destination.
    fn elsewhere(&self, dir: &Path) -> anyhow::Result<bool> {
        use std::os::unix::fs::MetadataExt as _;
        Ok(std::fs::metadata(dir)?.dev() != self.dev)
    }

    /// Makes the pending files durable, renames them to their names, makes the renames
    /// durable and marks them restored in one transaction. Returns where the last one is
    /// now (`None` when nothing was pending).
    fn land(
        &mut self,
        cat: &mut Catalog,
        job: JobId,
        report: &mut RestoreReport,
    ) -> anyhow::Result<Option<PathBuf>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        super::tape::kill_point("restore-pending");
        self.durable.sync()?;
        let pending = std::mem::take(&mut self.pending);
        let mut landed = Vec::with_capacity(pending.len());
        for p in pending {
            p.tmp.persist(&p.dest).map_err(|e| e.error)?;
            if p.elsewhere {
                super::sync_dir(p.dest.parent().unwrap_or(&p.dest))?;
            }
            landed.push((p.dest, p.version, p.bytes));
        }
        self.durable.sync()?;
        let now = Timestamp::now();
        cat.write(|tx| {
            for (_, version, _) in &landed {
                tx.mark_restored(job, *version, now)?;
            }
            Ok::<_, catalog::Error>(())
        })?;
        report.files += landed.len() as u64;
        report.bytes += landed.iter().map(|l| l.2).sum::<u64>();
        Ok(landed.pop().map(|l| l.0))
    }
}

/// Bytes moved at a time from a decrypted pack into a restored file: enough for BLAKE3 to
/// hash 16 chunks at once (`std::io::copy` moves 8 KiB, half its SIMD width), small enough
/// to stay in the CPU cache between the copy out of the decryptor, the hash and the write
/// (with 1 MiB pieces the kernel's copy into the page cache took 4x as long).
const COPY_BUFFER: usize = 64 << 10;

/// Copies up to `limit` bytes of `from` into `to`, `buf.len()` at a time, and hashes them
/// (BLAKE3). Returns how many and their hash.
fn copy_hashed(
    from: &mut impl Read,
    to: &mut std::fs::File,
    limit: u64,
    buf: &mut [u8],
) -> std::io::Result<(u64, blake3::Hash)> {
    let mut hasher = blake3::Hasher::new();
    let mut done = 0u64;
    while done < limit {
        let want = usize::try_from(limit - done).map_or(buf.len(), |l| l.min(buf.len()));
        let mut got = 0;
        while got < want {
            match from.read(&mut buf[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
        to.write_all(&buf[..got])?;
        done += got as u64;
    }
    Ok((done, hasher.finalize()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(source: &str, path: &str) -> RestoreFile {
        RestoreFile {
            version: catalog::VersionId::from_raw(1),
            source_name: source.into(),
            path: path.into(),
            offset: 0,
            length: Some(0),
            hash: catalog::Digest::new(catalog::HashAlgo::Blake3, vec![0; 32]).unwrap(),
            mtime: Timestamp::from_unix_seconds(0),
            mode: 0o644,
        }
    }

    #[test]
    fn copy_hashed_copies_and_hashes_up_to_the_limit() {
        use std::io::{Read as _, Seek as _};
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        for (limit, buf_len) in [
            (0, 7),
            (1, 7),
            (4_321, 7),
            (10_000, 7),
            (u64::MAX, 7),
            (4_321, 1 << 20),
            (u64::MAX, 1 << 20),
        ] {
            let mut out = tempfile::tempfile().unwrap();
            let mut buf = vec![0u8; buf_len];
            let (n, hash) = copy_hashed(&mut &data[..], &mut out, limit, &mut buf).unwrap();
            let want = &data[..usize::try_from(limit).unwrap_or(usize::MAX).min(data.len())];
            assert_eq!(n, want.len() as u64, "limit {limit}");
            assert_eq!(hash, blake3::hash(want), "limit {limit}");
            let mut written = Vec::new();
            out.rewind().unwrap();
            out.read_to_end(&mut written).unwrap();
            assert_eq!(written, want, "limit {limit}");
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        let to = Path::new("/r");
        assert_eq!(
            dest_of(to, &file("s", "a/b")).unwrap(),
            Path::new("/r/s/a/b")
        );
        assert!(dest_of(to, &file("s", "../x")).is_err());
        assert!(dest_of(to, &file("s", "a/../../x")).is_err());
        assert!(dest_of(to, &file("s", "/etc/passwd")).is_err());
        assert!(dest_of(to, &file("..", "x")).is_err());
        assert!(dest_of(to, &file("a/b", "x")).is_err());
    }
}

//! `verify`: read packs back from tape and check them: the ciphertext hash (no key needed)
//! or, with the key, decrypt and authenticate every segment and compare the plaintext
//! hash. Results are recorded in the catalog per pack location.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use anyhow::bail;
use catalog::{
    Catalog, JobKind, JobProgress, Medium, NewVerification, Position, Timestamp, VerifyOutcome,
    Volume,
};
use tape_scsi::Library;

use super::config::Unlocked;
use super::tape::{TapeReader, empty_drive, load_barcode, open_library};
use super::{Adapt, Config, Progress, digest};

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Only this tape (else every tape with packs on it).
    pub tape: Option<String>,
    /// Check this percentage of the locations on each tape, spread evenly (else all).
    pub sample_percent: Option<f64>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Pack locations checked.
    pub checked: u64,
    /// Locations that passed.
    pub ok: u64,
    /// Bytes read.
    pub bytes: u64,
    /// True when packs were decrypted and authenticated (a key was given).
    pub decrypted: bool,
    /// Failures: tape, pack, reason.
    pub failed: Vec<String>,
}

/// Indices of an even sample of `percent` % of `n` items (at least one when `n > 0`).
pub fn sample(n: usize, percent: f64) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let want = ((n as f64) * percent.clamp(0.0, 100.0) / 100.0)
        .ceil()
        .max(1.0) as usize;
    let want = want.min(n);
    (0..want).map(|i| i * n / want).collect()
}

/// Verifies tapes. With `key`, decrypts and authenticates; without, checks ciphertext
/// hashes only.
pub fn verify(
    config: &Config,
    cat: &mut Catalog,
    key: Option<&Unlocked>,
    options: &VerifyOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<VerifyReport> {
    let volumes: Vec<_> = match &options.tape {
        Some(b) => match cat.read().volume_by_barcode(b)? {
            Some(v) => vec![v],
            None => bail!("tape {b} is not in the catalog"),
        },
        None => cat
            .read()
            .volumes()?
            .into_iter()
            .filter(|v| matches!(v.medium, Medium::Tape { .. }) && v.bytes_used > 0)
            .collect(),
    };
    let mut report = VerifyReport {
        decrypted: key.is_some(),
        ..VerifyReport::default()
    };
    if options.tape.is_none() {
        super::object::verify_objects(
            config,
            cat,
            key,
            options.sample_percent,
            &mut report,
            progress,
            cancel,
        )?;
    }
    if volumes.is_empty() {
        return Ok(report);
    }
    let lib = open_library(config)?;
    let job = cat.write(|tx| tx.start_job(JobKind::Verify, Timestamp::now()))?;
    let shared = Shared {
        key,
        options,
        progress,
        cancel,
        job,
        queue: Mutex::new(volumes.iter().collect()),
        changer: Mutex::new(()),
        failed: AtomicBool::new(false),
    };
    // Several drives (`tapes.drives`): each verifies the next tape, as `restore` reads.
    let drives = super::tape::write_drives(config);
    let results = if drives.len() <= 1 {
        let drive_no = drives.first().copied().unwrap_or(config.file.tapes.drive);
        vec![drive_loop(&shared, cat, lib, drive_no)]
    } else {
        drop(lib);
        super::tape::on_drives(
            drives.into_iter().map(|d| (d, ())).collect(),
            &shared.failed,
            |d, ()| {
                let mut c = super::open_catalog(config)?;
                let lib = open_library(config)?;
                Ok(drive_loop(&shared, &mut c, lib, d))
            },
        )
    };
    let mut result = Ok(());
    for (r, res) in results {
        report.checked += r.checked;
        report.ok += r.ok;
        report.bytes += r.bytes;
        report.failed.extend(r.failed);
        if result.is_ok() {
            result = res;
        }
    }
    let progress = JobProgress {
        items_done: report.ok,
        items_failed: report.failed.len() as u64,
        bytes_done: report.bytes,
        resume_state: None,
    };
    super::close_job(cat, job, &result, &progress, Some("location(s)"))?;
    result.map(|()| report)
}

/// State shared by the drive threads of one verify.
struct Shared<'a> {
    key: Option<&'a Unlocked>,
    options: &'a VerifyOptions,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
    job: catalog::JobId,
    /// Tapes not yet taken by a drive.
    queue: Mutex<VecDeque<&'a Volume>>,
    /// Held for every changer move.
    changer: Mutex<()>,
    /// Set when a drive failed: the others stop after their current tape.
    failed: AtomicBool,
}

impl Shared<'_> {
    fn changer(&self) -> anyhow::Result<MutexGuard<'_, ()>> {
        self.changer
            .lock()
            .map_err(|_| anyhow::anyhow!("changer lock poisoned by a panicked drive thread"))
    }
}

/// One drive's share of a verify: the next tape until none is left or a drive failed.
fn drive_loop(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    mut lib: Library,
    drive_no: u16,
) -> (VerifyReport, anyhow::Result<()>) {
    let mut report = VerifyReport::default();
    let result = (|| {
        loop {
            if sh.failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let next = sh
                .queue
                .lock()
                .map_err(|_| anyhow::anyhow!("tape queue poisoned"))?
                .pop_front();
            let Some(v) = next else { return Ok(()) };
            verify_tape(sh, cat, &mut lib, drive_no, v, &mut report)?;
        }
    })();
    super::tape::after_drive_work(&result, &sh.failed, &sh.changer, &mut lib, drive_no);
    (report, result)
}

/// Checks the locations of one tape with one drive, recording each result.
fn verify_tape(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    lib: &mut Library,
    drive_no: u16,
    v: &Volume,
    report: &mut VerifyReport,
) -> anyhow::Result<()> {
    let (key, progress, cancel, job) = (sh.key, sh.progress, sh.cancel, sh.job);
    let barcode = v.label();
    let mut locs = cat.read().locations_on_volume(v.id)?;
    if let Some(p) = sh.options.sample_percent {
        let idx = sample(locs.len(), p);
        locs = idx.into_iter().map(|i| locs[i].clone()).collect();
    }
    if locs.is_empty() {
        return Ok(());
    }
    let mut drive = {
        let _guard = sh.changer()?;
        load_barcode(lib, drive_no, &barcode, progress)?
    };
    let mut tape = TapeReader::open(cat, v.id, &barcode, &mut *drive)?;
    for loc in &locs {
        if cancel.load(Ordering::Relaxed) {
            bail!("cancelled");
        }
        let pack = cat.read().pack(loc.pack)?;
        // Only positions this tape's format can address (LTFS files on LTFS volumes, tape
        // file numbers on raw ones).
        if !matches!(
            (&tape, &loc.position),
            (TapeReader::Ltfs(_), Position::LtfsFile { .. })
                | (TapeReader::Raw(_), Position::Tape { .. })
        ) {
            continue;
        }
        progress.item(&pack.name, loc.part.length);
        let (outcome, detail, bytes) =
            match tape.open_pack(&loc.position, &pack.name, loc.part.offset) {
                Err(e)
                    if e.downcast_ref::<ltfs::Error>()
                        .is_some_and(|e| matches!(e, ltfs::Error::NotFound { .. })) =>
                {
                    (VerifyOutcome::Missing, Some(format!("{e:#}")), 0)
                }
                Err(e) => (VerifyOutcome::Unreadable, Some(format!("{e:#}")), 0),
                Ok(reader) => check_one(reader, &pack, loc.part, key, progress, cancel),
            };
        report.bytes += bytes;
        record_check(
            cat,
            report,
            job,
            (v, &barcode),
            (loc, &pack.name),
            outcome,
            detail,
        )?;
    }
    drop(tape);
    drive.unload()?;
    drop(drive);
    let _guard = sh.changer()?;
    empty_drive(lib, drive_no)?;
    Ok(())
}

/// Counts one checked location in `report` (a failure with the volume's label, the pack
/// and why) and records the verification in the catalog.
pub(crate) fn record_check(
    cat: &mut Catalog,
    report: &mut VerifyReport,
    job: catalog::JobId,
    (volume, label): (&Volume, &str),
    (loc, pack_name): (&catalog::Location, &str),
    outcome: VerifyOutcome,
    detail: Option<String>,
) -> anyhow::Result<()> {
    report.checked += 1;
    if outcome == VerifyOutcome::Ok {
        report.ok += 1;
    } else {
        report.failed.push(format!(
            "{label} {pack_name}: {}",
            detail.as_deref().unwrap_or_default()
        ));
    }
    let rec = NewVerification {
        job: Some(job),
        volume: volume.id,
        location: Some(loc.id),
        outcome,
        detail,
    };
    cat.write(|tx| tx.record_verification(&rec, Timestamp::now()))?;
    Ok(())
}

fn check_one(
    reader: impl std::io::Read,
    pack: &catalog::PackInfo,
    part: catalog::Part,
    key: Option<&Unlocked>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> (VerifyOutcome, Option<String>, u64) {
    if pack.format == catalog::PackFormat::LegacyOpensslAes256CbcPbkdf2 {
        // The seed tool's openssl files: MD5 and length of the ciphertext (see `legacy`).
        return super::legacy::verify_ciphertext(reader, pack, progress, cancel);
    }
    if part.count > 1 {
        // One part of a spanning pack: only its length can be checked alone.
        let (n, _) = match cryptpack::ciphertext_hash(reader, &Adapt(progress), cancel) {
            Ok(x) => x,
            Err(e) => return (VerifyOutcome::Unreadable, Some(e.to_string()), 0),
        };
        return if Some(n) == part.length {
            (VerifyOutcome::Ok, Some("part length checked".into()), n)
        } else {
            (
                VerifyOutcome::Mismatch,
                Some(format!("part is {n} bytes, expected {:?}", part.length)),
                n,
            )
        };
    }
    match key {
        None => match cryptpack::ciphertext_hash(reader, &Adapt(progress), cancel) {
            Err(e) => (VerifyOutcome::Unreadable, Some(e.to_string()), 0),
            Ok((n, h)) => {
                let found = digest(&h.0).ok();
                if found.is_some() && found == pack.cipher_hash && Some(n) == pack.cipher_size {
                    (VerifyOutcome::Ok, None, n)
                } else {
                    (
                        VerifyOutcome::Mismatch,
                        Some(format!(
                            "ciphertext {n} bytes {}, expected {:?}",
                            h.to_hex(),
                            pack.cipher_hash.as_ref().map(|d| d.to_hex())
                        )),
                        n,
                    )
                }
            }
        },
        Some(k) => match cryptpack::decrypt_stream(
            reader,
            std::io::sink(),
            cryptpack::Secret::Key(&k.key),
            &cryptpack::DecryptOptions::default(),
            &Adapt(progress),
            cancel,
        ) {
            Err(e) if e.is_authentication_failure() => {
                (VerifyOutcome::Mismatch, Some(e.to_string()), 0)
            }
            Err(e) => (VerifyOutcome::Unreadable, Some(e.to_string()), 0),
            Ok(s) => {
                let plain = digest(&s.plaintext_hash.0).ok();
                if plain.is_some() && plain == pack.plain_hash {
                    (VerifyOutcome::Ok, None, s.ciphertext_len)
                } else {
                    (
                        VerifyOutcome::Mismatch,
                        Some(
                            "authenticated, but the plaintext hash differs from the catalog".into(),
                        ),
                        s.ciphertext_len,
                    )
                }
            }
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::sample;

    #[test]
    fn samples_are_spread_and_bounded() {
        assert_eq!(sample(0, 5.0), Vec::<usize>::new());
        assert_eq!(sample(10, 5.0), vec![0]);
        assert_eq!(sample(10, 50.0), vec![0, 2, 4, 6, 8]);
        assert_eq!(sample(3, 100.0), vec![0, 1, 2]);
        assert_eq!(sample(3, 500.0), vec![0, 1, 2]);
    }
}

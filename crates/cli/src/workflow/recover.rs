//! `catalog recover --from-tape BARCODE`: rebuild the catalog from any one tape plus the
//! key.
//!
//! Every write session ends with an encrypted snapshot of the whole catalog on the tape: on
//! LTFS `tapebackup/catalog/catalog-<unix seconds>.tbpack`, in the raw format a snapshot
//! tape file (docs/RAW-FORMAT.md); either is a cryptpack pack sealed with the configured
//! key. [`recover`] loads the cartridge, finds the format (a raw label, else LTFS), decrypts
//! the newest snapshot and either installs it as the catalog (no catalog yet: written next
//! to the destination, checked, then linked into place, so the destination is either absent
//! or complete) or, with [`RecoverOptions::merge`], merges it into the existing catalog
//! ([`catalog::Catalog::merge_snapshot`]).
//!
//! A snapshot cannot know what was written after it: a session killed before its own
//! snapshot leaves packs on the tape that the newest snapshot does not list. [`recover`]
//! compares the tape's pack files (LTFS index, raw headers) with the recovered catalog:
//! - a pack the catalog knows (it was packed before the snapshot) but without a location on
//!   this tape is read back; if the tape holds it whole (not a part of a pack spanning
//!   tapes) and its length and ciphertext BLAKE3 are the catalog's, its location is recorded
//!   (*reattached*; the tape is added to the catalog, in the configured pool, if the catalog
//!   does not know it);
//! - a pack the catalog does not know is reported (*unknown*): its file mapping (which file
//!   versions it holds) was only in the lost catalog, so it cannot be restored by path.
//!   Its ciphertext is intact on the tape; a newer catalog snapshot (from another tape, or a
//!   later session) may still know it.
//!
//! A tape without any snapshot (its only session was killed) cannot rebuild a catalog and
//! gives [`RecoverError::NoSnapshot`]; with `merge` and an existing catalog (recovered from
//! another tape first) its pack files are still reconciled as above.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, bail};
use catalog::{
    Catalog, JobKind, JobOutcome, Medium, MergeStats, NewLocation, NewTape, Part, Position,
    Timestamp,
};
use tape_scsi::TapeDrive;

use super::config::Unlocked;
use super::raw;
use super::tape::{
    PACK_DIR, RAW_UUID_PREFIX, SNAPSHOT_DIR, empty_drive, load_barcode, open_library,
};
use super::{Adapt, Config, Progress, sync_dir};

/// Options for [`recover`].
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    /// The cartridge to read.
    pub barcode: String,
    /// The catalog to write; `None`: the configured one.
    pub to: Option<PathBuf>,
    /// Merge into an existing catalog instead of refusing to touch it.
    pub merge: bool,
}

/// Errors of [`recover`] a caller may branch on.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The destination catalog exists and `merge` was not asked for.
    #[error(
        "catalog {} already exists: not overwriting it (pass --merge to merge the tape's \
         snapshot into it, or --to another path)",
        path.display()
    )]
    CatalogExists {
        /// The existing catalog.
        path: PathBuf,
    },
    /// The tape holds no catalog snapshot.
    #[error(
        "{barcode} holds no tapebackup catalog snapshot ({packs} pack file(s)): every write \
         session ends with one, so this tape's first session never finished; recover from \
         another tape"
    )]
    NoSnapshot {
        /// The cartridge.
        barcode: String,
        /// Pack files found on it.
        packs: u64,
    },
    /// The decrypted snapshot is not a sound catalog.
    #[error("the catalog snapshot {name} on {barcode} fails its integrity check: {problem}")]
    BadSnapshot {
        /// The cartridge.
        barcode: String,
        /// The snapshot's name on tape.
        name: String,
        /// The first problem found.
        problem: String,
    },
}

/// A pack file on tape that the recovered catalog does not list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TapePack {
    /// Pack name (file name on tape).
    pub name: String,
    /// Its path on the tape.
    pub path: String,
    /// Bytes on this tape (known without reading on LTFS; `None` on a raw tape).
    pub bytes: Option<u64>,
    /// Part number of a pack spanning tapes (1 is the first), when the tape says so.
    pub span_part: Option<u32>,
    /// Why it is listed.
    pub reason: String,
}

/// Counts of [`MergeStats`], for reports.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MergeCounts {
    /// Sources added.
    pub sources: u64,
    /// Files added.
    pub files: u64,
    /// Versions added.
    pub versions: u64,
    /// Packs added.
    pub packs: u64,
    /// Volumes added.
    pub volumes: u64,
    /// Locations added.
    pub locations: u64,
    /// Verifications added.
    pub verifications: u64,
}

impl From<MergeStats> for MergeCounts {
    fn from(s: MergeStats) -> MergeCounts {
        MergeCounts {
            sources: s.sources,
            files: s.files,
            versions: s.versions,
            packs: s.packs,
            volumes: s.volumes,
            locations: s.locations,
            verifications: s.verifications,
        }
    }
}

/// What [`recover`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecoverReport {
    /// The cartridge read.
    pub barcode: String,
    /// The catalog written.
    pub catalog: PathBuf,
    /// The snapshot used (path on tape); `None` when the tape has none and only its packs
    /// were reconciled with the existing catalog.
    pub snapshot: Option<String>,
    /// Snapshots found on the tape.
    pub snapshots_on_tape: u64,
    /// True when the snapshot was installed as a new catalog.
    pub installed: bool,
    /// Rows the merge added (merge only).
    pub merged: Option<MergeCounts>,
    /// Pack files on the tape.
    pub packs_on_tape: u64,
    /// Of those, recorded on this tape in the catalog (after reattaching).
    pub packs_recorded: u64,
    /// Packs the catalog knew but not on this tape; their location was recorded from the
    /// tape's LTFS index.
    pub reattached: Vec<String>,
    /// Pack files the catalog cannot account for (written after the snapshot).
    pub unknown: Vec<TapePack>,
    /// True when the tape was not in the catalog and was added to it (to record the
    /// reattached packs).
    pub tape_added: bool,
    /// The import job recorded for this recovery.
    pub job: i64,
}

/// A pack file seen on the tape.
struct SeenPack {
    name: String,
    /// Where, for people: the LTFS path or `tape file N`.
    path: String,
    /// Bytes on this tape when known without reading (LTFS).
    bytes: Option<u64>,
    /// Offset of this part in the pack (0: a whole pack or its first part).
    offset: u64,
    /// Part number of a pack spanning tapes, when the tape says so (LTFS).
    span_part: Option<u32>,
    position: Position,
}

/// A catalog snapshot seen on the tape.
struct Snapshot {
    /// Ordering key: creation time, then position on tape.
    key: (i64, i128),
    name: String,
    position: Position,
}

/// The loaded tape, in its format.
enum Tape<'d> {
    Ltfs(Box<ltfs::Volume<'d>>),
    Raw(raw::RawReader<'d>),
}

impl<'d> Tape<'d> {
    /// A raw label means the raw format; anything else is opened as LTFS.
    fn open(drive: &'d mut dyn TapeDrive, barcode: &str) -> anyhow::Result<Tape<'d>> {
        let label = raw::probe(drive).with_context(|| format!("reading {barcode}"))?;
        if label.is_some() {
            return Ok(Tape::Raw(
                raw::RawReader::open(drive)
                    .with_context(|| format!("reading the raw label on {barcode}"))?,
            ));
        }
        Ok(Tape::Ltfs(Box::new(
            ltfs::Volume::open(drive)
                .with_context(|| format!("reading the LTFS volume on {barcode}"))?,
        )))
    }

    /// The volume's UUID as the catalog stores it (`raw:<uuid>` for the raw format).
    fn catalog_uuid(&self) -> String {
        match self {
            Tape::Ltfs(v) => v.label().volume_uuid.clone(),
            Tape::Raw(r) => format!("{RAW_UUID_PREFIX}{}", r.label().volume_uuid),
        }
    }

    /// The snapshots (oldest first) and pack files on the tape.
    fn scan(&mut self) -> anyhow::Result<(Vec<Snapshot>, Vec<SeenPack>)> {
        let mut snaps = Vec::new();
        let mut packs = Vec::new();
        match self {
            Tape::Ltfs(v) => {
                let snap_prefix = format!("{SNAPSHOT_DIR}/");
                let pack_prefix = format!("{PACK_DIR}/");
                for (path, file) in v.index().root.walk_files() {
                    if file.symlink.is_some() {
                        continue;
                    }
                    if let Some(name) = path.strip_prefix(&snap_prefix) {
                        let secs = name
                            .strip_prefix("catalog-")
                            .and_then(|n| n.strip_suffix(".tbpack"))
                            .and_then(|n| n.parse::<i64>().ok());
                        if let Some(secs) = secs {
                            snaps.push(Snapshot {
                                key: (secs, file.times.modify.unix_nanos()),
                                name: path.clone(),
                                position: Position::LtfsFile {
                                    name: path.clone(),
                                    start_block: None,
                                },
                            });
                        }
                    } else if let Some(name) = path.strip_prefix(&pack_prefix)
                        && !name.contains('/')
                    {
                        let span = ltfs::SpanInfo::of(file);
                        packs.push(SeenPack {
                            name: name.to_owned(),
                            path: path.clone(),
                            bytes: Some(file.length),
                            offset: span.map_or(0, |s| s.offset),
                            span_part: span.map(|s| s.part),
                            position: Position::LtfsFile {
                                name: path.clone(),
                                start_block: file.extents.first().map(|e| e.start_block),
                            },
                        });
                    }
                }
            }
            Tape::Raw(r) => {
                for h in r.files()? {
                    let position = Position::Tape {
                        partition: 0,
                        start_block: h.file,
                    };
                    match h.kind {
                        raw::FileKind::Snapshot { created_at, .. } => snaps.push(Snapshot {
                            key: (created_at, i128::from(h.file)),
                            name: format!("tape file {}", h.file),
                            position,
                        }),
                        raw::FileKind::Pack { name, offset, .. } => packs.push(SeenPack {
                            name,
                            path: format!("tape file {}", h.file),
                            bytes: None,
                            offset,
                            span_part: None,
                            position,
                        }),
                    }
                }
            }
        }
        snaps.sort_by_key(|s| s.key);
        Ok((snaps, packs))
    }

    /// A reader over the file at `position` (on a raw tape the data is checked against its
    /// trailer at the end).
    fn open_at(&mut self, position: &Position) -> anyhow::Result<Box<dyn Read + '_>> {
        match (self, position) {
            (Tape::Ltfs(v), Position::LtfsFile { name, .. }) => Ok(Box::new(v.open_file(name)?)),
            (Tape::Raw(r), Position::Tape { start_block, .. }) => {
                if r.seek_file(*start_block)?.is_none() {
                    bail!("tape file {start_block} is past the end of data");
                }
                Ok(Box::new(r.data()))
            }
            (_, p) => bail!("internal: position {p:?} does not fit the tape's format"),
        }
    }
}

/// Rebuilds (or merges) the catalog from the newest snapshot on one tape; see the module
/// documentation.
pub fn recover(
    config: &Config,
    key: &Unlocked,
    options: &RecoverOptions,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<RecoverReport> {
    let dest = options
        .to
        .clone()
        .unwrap_or_else(|| config.file.catalog.clone());
    let dest = std::path::absolute(&dest)?;
    let exists = dest.exists();
    if exists && !options.merge {
        return Err(RecoverError::CatalogExists { path: dest }.into());
    }
    if !exists {
        for suffix in ["-wal", "-journal"] {
            let mut side = dest.as_os_str().to_owned();
            side.push(suffix);
            if Path::new(&side).exists() {
                bail!(
                    "{} exists without its catalog {}: move it away first (SQLite would apply \
                     it to the recovered catalog)",
                    Path::new(&side).display(),
                    dest.display()
                );
            }
        }
    }
    let dir = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".recover-")
        .tempdir_in(&dir)
        .with_context(|| format!("creating a temporary directory in {}", dir.display()))?;
    let job = Job {
        config,
        key,
        options,
        dest: &dest,
        exists,
        plain: &tmp.path().join("catalog.db"),
        progress,
        cancel,
    };
    let mut lib = open_library(config)?;
    let drive_no = config.file.tapes.drive;
    let result = (|| {
        let mut drive = load_barcode(&mut lib, drive_no, &options.barcode, progress)?;
        let report = job.run(&mut *drive)?;
        drive.unload()?;
        anyhow::Ok(report)
    })();
    // Leave the drive empty whatever happened; the first error is what matters.
    let emptied = empty_drive(&mut lib, drive_no);
    let report = result?;
    emptied?;
    Ok(report)
}

/// One recovery, with the tape loaded.
struct Job<'a> {
    config: &'a Config,
    key: &'a Unlocked,
    options: &'a RecoverOptions,
    dest: &'a Path,
    exists: bool,
    plain: &'a Path,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
}

impl Job<'_> {
    fn run(&self, drive: &mut dyn TapeDrive) -> anyhow::Result<RecoverReport> {
        let barcode = self.options.barcode.as_str();
        let mut tape = Tape::open(drive, barcode)?;
        let (snaps, packs) = tape.scan()?;
        let mut report = RecoverReport {
            barcode: barcode.to_owned(),
            catalog: self.dest.to_path_buf(),
            snapshot: snaps.last().map(|s| s.name.clone()),
            snapshots_on_tape: snaps.len() as u64,
            packs_on_tape: packs.len() as u64,
            ..RecoverReport::default()
        };
        match snaps.last() {
            None if !self.exists => {
                return Err(RecoverError::NoSnapshot {
                    barcode: barcode.to_owned(),
                    packs: packs.len() as u64,
                }
                .into());
            }
            None => self.progress.message(&format!(
                "{barcode}: no catalog snapshot; reconciling its packs with {}",
                self.dest.display()
            )),
            Some(snap) => self.restore_snapshot(&mut tape, snap, &mut report)?,
        }
        let mut cat =
            Catalog::open(self.dest).with_context(|| format!("catalog {}", self.dest.display()))?;
        reconcile(
            &mut cat,
            &mut tape,
            barcode,
            &self.config.file.tapes.pool,
            &packs,
            &mut report,
            self.progress,
        )?;
        Ok(report)
    }

    /// Decrypts `snap`, checks it, installs or merges it.
    fn restore_snapshot(
        &self,
        tape: &mut Tape<'_>,
        snap: &Snapshot,
        report: &mut RecoverReport,
    ) -> anyhow::Result<()> {
        let barcode = &self.options.barcode;
        let name = &snap.name;
        self.progress.message(&format!(
            "{barcode}: decrypting the catalog snapshot {name} ({} on the tape)",
            report.snapshots_on_tape
        ));
        let reader = tape.open_at(&snap.position)?;
        cryptpack::decrypt_to_path(
            reader,
            self.plain,
            cryptpack::Secret::Key(&self.key.key),
            &cryptpack::DecryptOptions::default(),
            &Adapt(self.progress),
            self.cancel,
        )
        .with_context(|| format!("decrypting the catalog snapshot {name} on {barcode}"))?;
        let check = Catalog::open_snapshot(self.plain, self.cancel)
            .with_context(|| format!("opening the decrypted snapshot {name}"))?
            .check()?;
        if let Some(p) = check.problems.first() {
            return Err(RecoverError::BadSnapshot {
                barcode: barcode.clone(),
                name: name.clone(),
                problem: p.to_string(),
            }
            .into());
        }
        if self.exists {
            self.progress
                .message(&format!("merging {name} into {}", self.dest.display()));
            let mut cat = Catalog::open(self.dest)
                .with_context(|| format!("catalog {}", self.dest.display()))?;
            let stats = cat.merge_snapshot(self.plain, &catalog::Silent, self.cancel)?;
            report.merged = Some(stats.into());
        } else {
            install(self.plain, self.dest)?;
            report.installed = true;
            self.progress
                .message(&format!("installed {name} as {}", self.dest.display()));
        }
        Ok(())
    }
}

/// Puts the complete, synced snapshot file at `dest`, which must not exist: a hard link
/// fails rather than replace a catalog created meanwhile.
fn install(plain: &Path, dest: &Path) -> anyhow::Result<()> {
    std::fs::File::open(plain)?.sync_all()?;
    match std::fs::hard_link(plain, dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RecoverError::CatalogExists {
                path: dest.to_path_buf(),
            }
            .into());
        }
        // Filesystems without hard links: a rename, after checking again.
        Err(_) if !dest.exists() => std::fs::rename(plain, dest)
            .with_context(|| format!("installing {}", dest.display()))?,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("installing {}", dest.display())));
        }
    }
    if let Some(dir) = dest.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads a pack file back: its length and ciphertext BLAKE3.
fn read_back(
    tape: &mut Tape<'_>,
    p: &SeenPack,
    progress: &dyn Progress,
) -> anyhow::Result<(u64, blake3::Hash)> {
    let mut reader = tape.open_at(&p.position)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = reader.read(&mut buf)?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
        n += got as u64;
        progress.advance(got as u64);
    }
    Ok((n, hasher.finalize()))
}

/// Compares the tape's pack files with the catalog: reattaches known packs missing their
/// location on this tape (after reading them back), reports unknown ones; records the
/// recovery as an import job. One transaction.
fn reconcile(
    cat: &mut Catalog,
    tape: &mut Tape<'_>,
    barcode: &str,
    pool: &str,
    packs: &[SeenPack],
    report: &mut RecoverReport,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let volume = cat.read().volume_by_barcode(barcode)?;
    let uuid = tape.catalog_uuid();
    // A catalog volume of this barcode holding another volume is another cartridge.
    let other_uuid = match volume.as_ref().map(|v| &v.medium) {
        Some(Medium::Tape {
            ltfs_uuid: Some(u), ..
        }) if *u != uuid => Some(u.clone()),
        _ => None,
    };
    let mut attach: Vec<(catalog::PackId, &SeenPack, u64)> = Vec::new();
    for p in packs {
        let unknown = |reason: String| TapePack {
            name: p.name.clone(),
            path: p.path.clone(),
            bytes: p.bytes,
            span_part: p.span_part,
            reason,
        };
        let Some(pack) = cat.read().pack_by_name(&p.name)? else {
            report.unknown.push(unknown(
                "not in the catalog: written after the snapshot; which files it holds is \
                 unknown, so it cannot be restored by path"
                    .to_owned(),
            ));
            continue;
        };
        if let Some(u) = &other_uuid {
            report.unknown.push(unknown(format!(
                "the catalog knows {barcode} as volume {u}, the cartridge holds {uuid}: \
                 location not recorded"
            )));
            continue;
        }
        let recorded = match &volume {
            Some(vol) => cat
                .read()
                .locations_of_pack(pack.id)?
                .iter()
                .any(|l| l.volume == vol.id && l.part.offset == p.offset),
            None => false,
        };
        if recorded {
            report.packs_recorded += 1;
            continue;
        }
        if p.offset > 0 || p.span_part.is_some() {
            report.unknown.push(unknown(
                "a part of a pack spanning tapes, written after the snapshot: where its other \
                 parts are is unknown; location not recorded"
                    .to_owned(),
            ));
            continue;
        }
        progress.message(&format!(
            "{barcode}: reading back pack {} ({}) to reattach it",
            p.name, p.path
        ));
        let (n, hash) = match read_back(tape, p, progress) {
            Ok(r) => r,
            Err(e) => {
                report.unknown.push(unknown(format!(
                    "the catalog knows the pack; reading it back failed ({e:#}); location not \
                     recorded"
                )));
                continue;
            }
        };
        let hash_ok = match &pack.cipher_hash {
            Some(h) if h.algo() == catalog::HashAlgo::Blake3 => h.bytes() == hash.as_bytes(),
            _ => true,
        };
        if pack.cipher_size == Some(n) && hash_ok {
            attach.push((pack.id, p, n));
        } else if pack.cipher_size.is_some_and(|size| n < size) && hash_ok {
            report.unknown.push(unknown(format!(
                "the first {n} bytes of a pack of {} spanning tapes, written after the snapshot: \
                 where its other parts are is unknown; location not recorded",
                pack.cipher_size.unwrap_or(0)
            )));
        } else {
            report.unknown.push(unknown(format!(
                "the catalog knows the pack as {} bytes with ciphertext BLAKE3 {}, the tape \
                 holds {n} bytes with {}; location not recorded",
                pack.cipher_size
                    .map_or_else(|| "an unknown number of".to_owned(), |n| n.to_string()),
                pack.cipher_hash
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |h| h.to_hex()),
                hash.to_hex()
            )));
        }
    }
    let now = Timestamp::now();
    let message = format!(
        "catalog recovered from {barcode} ({}): {} pack(s) on the tape, {} reattached, {} \
         unknown",
        match (&report.snapshot, report.installed) {
            (Some(s), true) => format!("{s}, installed"),
            (Some(s), false) => format!("{s}, merged"),
            (None, _) => "no snapshot, packs reconciled".to_owned(),
        },
        packs.len(),
        attach.len(),
        report.unknown.len()
    );
    let known = volume.map(|v| v.id);
    let add_tape = known.is_none() && !attach.is_empty();
    let job = cat.write(|tx| {
        let job = tx.start_job(JobKind::Import, now)?;
        let vol = match known {
            Some(v) => Some(v),
            None if add_tape => Some(tx.add_tape(
                &NewTape {
                    barcode: barcode.to_owned(),
                    ltfs_uuid: Some(uuid.clone()),
                    generation: None,
                    capacity: None,
                    pool: pool.to_owned(),
                },
                now,
            )?),
            None => None,
        };
        if let Some(vol) = vol {
            for (pack, p, n) in &attach {
                tx.record_location(
                    &NewLocation {
                        pack: *pack,
                        volume: vol,
                        part: Part::whole(*n),
                        position: p.position.clone(),
                        job: Some(job),
                    },
                    now,
                )?;
            }
        }
        tx.finish_job(job, JobOutcome::Succeeded, Some(&message), now)?;
        Ok::<_, catalog::Error>(job)
    })?;
    report.job = job.get();
    report.tape_added = add_tape;
    report.packs_recorded += attach.len() as u64;
    report.reattached = attach.iter().map(|(_, p, _)| p.name.clone()).collect();
    Ok(())
}

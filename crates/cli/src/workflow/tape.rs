//! `write`: packs onto LTFS tapes chosen from the library, and the tape handling shared by
//! `verify` and `restore` (loading a cartridge by barcode, unloading).
//!
//! Tape choice: cartridges in storage or I/E slots whose barcode the config allows (never
//! `CLN*`); appendable tapes of the configured pool first, then tapes the catalog does not
//! know (or knows as blank) that are really blank on tape. A tape holding data the catalog
//! does not know is skipped, never formatted. A write-protected tape is skipped (and
//! reported); the write fails with the write-protected error only when no usable tape is
//! left and a protected one was passed over.
//!
//! Formatting: the volume (barcode, the UUID about to be written, state blank) is recorded
//! in one transaction before the format, and marked appendable after it. A run killed in
//! between leaves a tape whose label carries the UUID the catalog holds for a blank volume
//! without locations: the next run recognises it as its own and formats it again (same
//! UUID). A label with any other UUID is someone else's data and is left alone.
//!
//! Durability: locations are recorded only after an LTFS index covering them is on tape
//! (`sync`), so a location in the catalog is always readable. Killed in between, the next
//! run rolls the volume back to its last index and writes those packs again.

use std::collections::VecDeque;
use std::io::BufReader;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use catalog::{
    Catalog, CopyTarget, JobKind, JobProgress, Medium, NewLocation, NewTape, PackId, PackInfo,
    Part, Position, Timestamp, VolumeId, VolumeState,
};
use tape_scsi::{ElementType, Library, ReadOutcome, TapeDrive};

use super::config::TapeFormat;
use super::config::Unlocked;
use super::pack::{Unit, pack_path, repair_pending};
use super::stream::{PackStream, StreamSealed};
use super::{Adapt, Config, Progress, raw};

/// Directory on each tape holding the packs.
pub const PACK_DIR: &str = "tapebackup/packs";
/// Directory on each tape holding the encrypted catalog snapshots.
pub const SNAPSHOT_DIR: &str = "tapebackup/catalog";

/// Error for a cartridge the catalog needs that is not in the library.
#[derive(Debug, thiserror::Error)]
#[error("cartridge {barcode} is not in the library: insert it (an I/E slot will do) and run again")]
pub struct MissingCartridge {
    /// Its barcode.
    pub barcode: String,
}

/// Error for a cartridge whose volume is not the one the catalog knows under its barcode
/// (someone put another tape in the slot, or relabelled it): never written to.
#[derive(Debug, thiserror::Error)]
#[error(
    "wrong cartridge: {barcode} holds LTFS volume {found} but the catalog knows it as \
     {expected}: put the right cartridge in"
)]
pub struct WrongCartridge {
    /// Its barcode.
    pub barcode: String,
    /// The volume UUID found on the tape.
    pub found: String,
    /// The volume UUID the catalog knows.
    pub expected: String,
}

/// What [`write`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteReport {
    /// Packs (or pack parts) written and recorded.
    pub packs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Tapes written to.
    pub tapes: Vec<String>,
    /// Tapes that became full.
    pub filled: Vec<String>,
    /// Tapes newly formatted.
    pub formatted: Vec<String>,
    /// Those of `formatted` that got the raw format (docs/RAW-FORMAT.md) rather than LTFS.
    pub raw: Vec<String>,
    /// Tapes skipped (with the reason).
    pub skipped: Vec<String>,
}

/// Opens the configured library.
pub fn open_library(config: &Config) -> anyhow::Result<Library> {
    config
        .library_spec()
        .open()
        .with_context(|| "opening the tape library".to_string())
}

/// Ejects whatever is in drive `drive` and puts it back in a slot.
pub fn empty_drive(lib: &mut Library, drive: u16) -> anyhow::Result<()> {
    let inv = lib.changer().inventory()?;
    let Some(el) = inv.drive(drive) else {
        bail!("the library has no drive {drive}");
    };
    if el.full {
        let mut d = lib.drive(drive)?;
        d.unload()?;
        drop(d);
        lib.changer().unload(drive, None)?;
    }
    Ok(())
}

/// Loads the cartridge `barcode` into drive `drive` (from a storage or I/E slot, or
/// leaving it if already there) and returns the ready drive.
pub fn load_barcode(
    lib: &mut Library,
    drive: u16,
    barcode: &str,
    progress: &dyn Progress,
) -> anyhow::Result<Box<dyn TapeDrive>> {
    let inv = lib.changer().inventory()?;
    if let Some(el) = inv.drive(drive)
        && el.full
        && el.barcode.as_deref() == Some(barcode)
    {
        let mut d = lib.drive(drive)?;
        settle(&mut *d)?;
        return Ok(d);
    }
    let slot = inv
        .storage
        .iter()
        .chain(&inv.import_export)
        .find(|e| e.full && e.barcode.as_deref() == Some(barcode))
        .map(|e| e.number);
    let Some(slot) = slot else {
        return Err(MissingCartridge {
            barcode: barcode.to_owned(),
        }
        .into());
    };
    empty_drive(lib, drive)?;
    progress.message(&format!(
        "loading {barcode} from slot {slot} into drive {drive}"
    ));
    lib.changer().load(slot, drive)?;
    let mut d = lib.drive(drive)?;
    settle(&mut *d)?;
    Ok(d)
}

/// Threads the cartridge, sets variable blocks and rewinds, acknowledging the one unit
/// attention a drive reports after a load (the medium changed, as expected); a second one
/// in a row is an error.
fn settle(d: &mut dyn TapeDrive) -> anyhow::Result<()> {
    d.load()?;
    d.set_block_size(0)?;
    match d.rewind() {
        Err(tape_scsi::Error::UnitAttention { .. }) => d.rewind()?,
        r => r?,
    }
    Ok(())
}

/// True when the loaded medium holds no data at all (nothing on partition 0).
fn medium_is_blank(drive: &mut dyn TapeDrive) -> anyhow::Result<bool> {
    drive.rewind()?;
    let mut buf = vec![0u8; 1 << 20];
    let blank = match drive.read_record(&mut buf) {
        Ok(ReadOutcome::EndOfData) => true,
        Ok(_) => false,
        Err(tape_scsi::Error::RecordTooLong { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    drive.rewind()?;
    Ok(blank)
}

/// A pack being written: possibly continued from an earlier tape.
struct Pending {
    body: Body,
    /// Parts already on earlier tapes: (volume, part offset, length, position).
    parts: Vec<(VolumeId, u64, u64, Position)>,
}

/// Where a pending pack's bytes come from.
enum Body {
    /// A recorded pack, from its file.
    File(PackInfo),
    /// Contents not sealed yet (from `run`): a session seals them.
    Unit(Unit),
    /// Sealed on the fly into the tape (an LTFS session started it).
    Stream(PackStream),
}

impl Pending {
    fn new(fed: Fed) -> Pending {
        Pending {
            body: match fed {
                Fed::Recorded(p) => Body::File(p),
                Fed::Unsealed(u) => Body::Unit(u),
            },
            parts: Vec::new(),
        }
    }

    /// Back to what the feed handed out, for a pack nothing of which was written: a
    /// stream is stopped and its unit given back whole.
    fn into_fed(self) -> anyhow::Result<Fed> {
        if !self.parts.is_empty() {
            bail!("internal: {} is partly written", self.label());
        }
        Ok(match self.body {
            Body::File(p) => Fed::Recorded(p),
            Body::Unit(u) => Fed::Unsealed(u),
            Body::Stream(s) => Fed::Unsealed(s.abandon()?),
        })
    }

    /// What it is, for messages.
    fn label(&self) -> String {
        match &self.body {
            Body::File(p) => format!("pack {}", p.name),
            Body::Unit(u) => u.describe(),
            Body::Stream(s) => format!("pack {}", s.name()),
        }
    }
}

/// A pack handed out by a [`PackFeed`].
#[derive(Debug)]
pub enum Fed {
    /// Recorded in the catalog, its file complete and synced at
    /// [`pack_path`]`(config, &pack.name)` (only read).
    Recorded(PackInfo),
    /// Contents to seal while they are written (see [`super::stream`]): recorded, with
    /// their locations, once on tape.
    Unsealed(Unit),
}

/// The answer of [`PackFeed::next`].
#[derive(Debug)]
pub enum Next {
    /// The next pack to write.
    Pack(Fed),
    /// Nothing ready yet, and the producer waits for packs written but not recorded
    /// (their staged plaintext is deleted only then): make them durable and record them,
    /// then ask again.
    Flush,
    /// No more packs will come.
    Done,
}

/// Unsealed contents that landed: sealed onto a tape and recorded with their locations,
/// staged plaintext deleted. A feed learns of them through [`PackFeed::landed`].
#[derive(Debug, Default, Clone)]
pub struct Landed {
    /// Files (contents) now in packs.
    pub files: u64,
    /// Packs recorded (0 when every member had changed).
    pub packs: u64,
    /// Plaintext bytes packed.
    pub plain_bytes: u64,
    /// Pack bytes.
    pub pack_bytes: u64,
    /// Plaintext bytes of the unit(s) that were waiting in staging (now deleted).
    pub staged_bytes: u64,
    /// Files read in place that changed since `get` (not packed; read again next time):
    /// "path: why".
    pub changed: Vec<String>,
}

/// Where [`write_from`] gets its packs: the seam between writing tapes and whatever
/// produces packs.
///
/// [`write`] feeds from the catalog ([`CatalogFeed`]: every pack lacking its copies when
/// the write starts). A pipelined producer (packs sealed while tapes are written) implements
/// it to hand packs over as they become durable.
///
/// Contract:
/// - A write session calls [`PackFeed::next`] whenever it has nothing left to write;
///   the call may block until a pack is ready. [`Next::Done`] means no more packs will
///   ever come: the sessions end (catalog snapshot, unload) and the write returns.
/// - `unrecorded` tells whether the session holds packs written but not yet recorded;
///   only then may the feed answer [`Next::Flush`] instead of blocking.
/// - No tape is chosen or loaded before the first pack arrives.
/// - With several drives (`tapes.drives`) it is called from several threads at once, so
///   each pack must be handed out exactly once.
/// - A [`Fed::Recorded`] pack must be recorded in the catalog and its file complete and
///   synced at [`pack_path`]`(config, &pack.name)`; the file is only read.
/// - When `cancel` is set it should return promptly ([`Next::Done`] or an error).
pub trait PackFeed: Sync {
    /// The next pack to write (see the contract above).
    fn next(&self, cancel: &AtomicBool, unrecorded: bool) -> anyhow::Result<Next>;

    /// [`Fed::Unsealed`] contents landed (called after the transaction that recorded them).
    fn landed(&self, landed: Landed) {
        let _ = landed;
    }

    /// The next pack if one is ready now, without waiting: a session takes it to seal
    /// ahead while it writes another. `None` (the default) when none is ready.
    fn try_next(&self) -> anyhow::Result<Option<Fed>> {
        Ok(None)
    }

    /// A pack taken with [`PackFeed::try_next`] that the session did not write (its tape
    /// filled up): hand it out again first. Only called for packs from `try_next`.
    fn put_back(&self, fed: Fed) {
        let _ = fed;
    }
}

/// A [`PackFeed`] over a fixed list of packs (for [`write`]: what the catalog says lacks
/// its copies in the configured pool).
#[derive(Debug, Default)]
pub struct CatalogFeed {
    queue: Mutex<VecDeque<PackInfo>>,
}

impl CatalogFeed {
    /// Every pack lacking its copies in the configured pool, in the catalog's order.
    pub fn new(config: &Config, cat: &Catalog) -> anyhow::Result<CatalogFeed> {
        let target = CopyTarget {
            copies: config.file.tapes.copies,
            pool: Some(config.file.tapes.pool.clone()),
        };
        let packs = cat.read().packs_to_write(&target, u64::MAX >> 1)?;
        Ok(CatalogFeed::from_packs(packs))
    }

    /// A feed handing out `packs` in order.
    pub fn from_packs(packs: Vec<PackInfo>) -> CatalogFeed {
        CatalogFeed {
            queue: Mutex::new(packs.into()),
        }
    }

    /// Packs not yet handed out.
    pub fn len(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// True when every pack was handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CatalogFeed {
    /// The next pack, or `None` when every pack was handed out.
    pub fn next_pack(&self) -> anyhow::Result<Option<PackInfo>> {
        let mut q = self
            .queue
            .lock()
            .map_err(|_| anyhow::anyhow!("pack queue poisoned by a panicked writer"))?;
        Ok(q.pop_front())
    }
}

impl PackFeed for CatalogFeed {
    fn next(&self, _cancel: &AtomicBool, _unrecorded: bool) -> anyhow::Result<Next> {
        Ok(match self.next_pack()? {
            Some(p) => Next::Pack(Fed::Recorded(p)),
            None => Next::Done,
        })
    }
}

/// The drives a write uses: `tapes.drives`, or else `[tapes.drive]`.
pub fn write_drives(config: &Config) -> Vec<u16> {
    let t = &config.file.tapes;
    if t.drives.is_empty() {
        vec![t.drive]
    } else {
        let mut d = t.drives.clone();
        d.dedup();
        d
    }
}

/// Writes every pack that lacks its copies in the configured pool (see [`CatalogFeed`]).
pub fn write(
    config: &Config,
    cat: &mut Catalog,
    key: &Unlocked,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<WriteReport> {
    repair_pending(config, cat)?;
    let feed = CatalogFeed::new(config, cat)?;
    if feed.is_empty() {
        return Ok(WriteReport::default());
    }
    {
        let q = feed
            .queue
            .lock()
            .map_err(|_| anyhow::anyhow!("pack queue poisoned"))?;
        for p in q.iter() {
            let path = pack_path(config, &p.name);
            if !path.exists() {
                bail!(
                    "pack file {} is missing (recorded in the catalog, not yet on tape)",
                    path.display()
                );
            }
        }
    }
    write_from(config, cat, key, &feed, progress, cancel)
}

/// State shared by the drive threads of one write.
struct Shared<'a> {
    config: &'a Config,
    key: &'a Unlocked,
    feed: &'a dyn PackFeed,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
    job: catalog::JobId,
    /// Held for every changer move and tape choice (one robot, several drives).
    changer: Mutex<()>,
    /// Barcodes chosen (or found unusable) by any drive during this write.
    tried: Mutex<Vec<String>>,
    /// Set when a drive failed: the others finish their tape and stop.
    failed: AtomicBool,
    /// Cartridges skipped because they are write protected (the error when no usable
    /// tape is left).
    protected: Mutex<Vec<String>>,
}

/// Writes the packs `feed` hands out, on every drive of [`write_drives`] at once (one
/// thread and one catalog connection per drive; changer moves serialized; each drive's
/// locations recorded in its own transactions). Returns when the feed is exhausted.
pub fn write_from(
    config: &Config,
    cat: &mut Catalog,
    key: &Unlocked,
    feed: &dyn PackFeed,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<WriteReport> {
    let drives = write_drives(config);
    let job = cat.write(|tx| tx.start_job(JobKind::Write, Timestamp::now()))?;
    let shared = Shared {
        config,
        key,
        feed,
        progress,
        cancel,
        job,
        changer: Mutex::new(()),
        tried: Mutex::new(Vec::new()),
        failed: AtomicBool::new(false),
        protected: Mutex::new(Vec::new()),
    };
    let results: Vec<(WriteReport, anyhow::Result<()>)> = if drives.len() == 1 {
        vec![drive_loop(&shared, cat, drives[0])]
    } else {
        on_drives(
            drives.into_iter().map(|d| (d, ())).collect(),
            &shared.failed,
            |d, ()| {
                let mut c = super::open_catalog(shared.config)?;
                Ok(drive_loop(&shared, &mut c, d))
            },
        )
    };
    let mut report = WriteReport::default();
    let mut result = Ok(());
    for (r, res) in results {
        report.packs += r.packs;
        report.bytes += r.bytes;
        report.tapes.extend(r.tapes);
        report.filled.extend(r.filled);
        report.formatted.extend(r.formatted);
        report.raw.extend(r.raw);
        report.skipped.extend(r.skipped);
        if result.is_ok() {
            result = res;
        }
    }
    let progress = JobProgress {
        items_done: report.packs,
        items_failed: 0,
        bytes_done: report.bytes,
        resume_state: None,
    };
    super::close_job(cat, job, &result, &progress, None)?;
    result.map(|()| report)
}

/// Runs `work` for each drive (with its share, e.g. its first tape) on a thread of its own
/// and returns each drive's report and outcome, in the order given. Setup that fails
/// before the drive's work starts (`Err` from `work`: its catalog connection, its library
/// handle) and a panicking thread count as that drive failing and set `failed`, so the
/// other drives stop after their current tape.
pub(super) fn on_drives<T: Send, R: Default + Send>(
    drives: Vec<(u16, T)>,
    failed: &AtomicBool,
    work: impl Fn(u16, T) -> anyhow::Result<(R, anyhow::Result<()>)> + Sync,
) -> Vec<(R, anyhow::Result<()>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = drives
            .into_iter()
            .map(|(d, share)| {
                let work = &work;
                s.spawn(move || {
                    work(d, share).unwrap_or_else(|e| {
                        failed.store(true, Ordering::Relaxed);
                        (R::default(), Err(e))
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    failed.store(true, Ordering::Relaxed);
                    (
                        R::default(),
                        Err(anyhow::anyhow!("a drive thread panicked")),
                    )
                })
            })
            .collect()
    })
}

/// One drive's share of a write: take packs, choose and load tapes, run sessions.
fn drive_loop(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    drive_no: u16,
) -> (WriteReport, anyhow::Result<()>) {
    let mut report = WriteReport::default();
    let mut lib = match open_library(sh.config) {
        Ok(l) => l,
        Err(e) => {
            sh.failed.store(true, Ordering::Relaxed);
            return (report, Err(e));
        }
    };
    let result = drive_sessions(sh, cat, &mut lib, drive_no, &mut report);
    after_drive_work(&result, &sh.failed, &sh.changer, &mut lib, drive_no);
    (report, result)
}

/// After one drive's share of a write, restore or verify: when it failed, tell the other
/// drives to stop after their current tape and leave this drive empty, so the next run
/// starts clean (the error is what matters, not one from unloading).
pub(super) fn after_drive_work(
    result: &anyhow::Result<()>,
    failed: &AtomicBool,
    changer: &Mutex<()>,
    lib: &mut Library,
    drive_no: u16,
) {
    if result.is_err() {
        failed.store(true, Ordering::Relaxed);
        let _guard = changer.lock();
        let _ = empty_drive(lib, drive_no);
    }
}

fn drive_sessions(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    lib: &mut Library,
    drive_no: u16,
    report: &mut WriteReport,
) -> anyhow::Result<()> {
    let pool = &sh.config.file.tapes.pool;
    // The rest of a pack cut at early warning, continued on the next tape.
    let mut carry: Option<Pending> = None;
    loop {
        if sh.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let first = match carry.take() {
            Some(p) => p,
            None => match next_pending(sh, false)? {
                Some(Step::Write(p)) => p,
                Some(Step::Flush) => bail!("internal: flush asked with nothing unrecorded"),
                None => return Ok(()),
            },
        };
        let (barcode, volume, drive) = {
            let _guard = sh
                .changer
                .lock()
                .map_err(|_| anyhow::anyhow!("changer lock poisoned"))?;
            let Some((barcode, volume)) = choose_tape(sh, cat, lib, drive_no, report)? else {
                let protected = sh
                    .protected
                    .lock()
                    .map_err(|_| anyhow::anyhow!("tape list poisoned"))?
                    .join(", ");
                if !protected.is_empty() {
                    // The write-protected ones would have been used: that is the fault.
                    return Err(anyhow::Error::new(tape_scsi::Error::WriteProtected {
                        device: protected,
                    })
                    .context(format!(
                        "no usable tape left in the library for pool {pool:?} ({} still to \
                         write) except write-protected ones",
                        first.label()
                    )));
                }
                bail!(
                    "no usable tape left in the library for pool {pool:?} ({} still to \
                     write): add blank cartridges",
                    first.label()
                );
            };
            let drive = load_barcode(lib, drive_no, &barcode, sh.progress)?;
            (barcode, volume, drive)
        };
        carry = session(sh, cat, drive, &barcode, volume, first, report)
            .with_context(|| format!("writing tape {barcode}"))?;
        if !report.tapes.contains(&barcode) {
            report.tapes.push(barcode.clone());
        }
        let _guard = sh
            .changer
            .lock()
            .map_err(|_| anyhow::anyhow!("changer lock poisoned"))?;
        empty_drive(lib, drive_no)?;
    }
}

/// The next pack from the feed (a recorded pack's file checked), or what to do instead.
fn next_pending(sh: &Shared<'_>, unrecorded: bool) -> anyhow::Result<Option<Step>> {
    let fed = match sh.feed.next(sh.cancel, unrecorded)? {
        Next::Pack(fed) => fed,
        Next::Flush => return Ok(Some(Step::Flush)),
        Next::Done => return Ok(None),
    };
    if let Fed::Recorded(pack) = &fed {
        let path = pack_path(sh.config, &pack.name);
        if !path.exists() {
            bail!(
                "pack file {} is missing (recorded in the catalog, not yet on tape)",
                path.display()
            );
        }
    }
    Ok(Some(Step::Write(Pending::new(fed))))
}

/// What a session does next.
enum Step {
    Write(Pending),
    /// Record what is written (see [`Next::Flush`]).
    Flush,
}

/// Picks the next tape: appendable in the pool first, then blank.
fn choose_tape(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    lib: &mut Library,
    drive_no: u16,
    report: &mut WriteReport,
) -> anyhow::Result<Option<(String, Option<VolumeId>)>> {
    let config = sh.config;
    let progress = sh.progress;
    let mut tried = sh
        .tried
        .lock()
        .map_err(|_| anyhow::anyhow!("tape list poisoned"))?;
    let pool = &config.file.tapes.pool;
    let inv = lib.changer().inventory()?;
    let mut appendable = Vec::new();
    let mut fresh = Vec::new();
    let candidates = inv
        .drives
        .iter()
        .filter(|e| e.number == drive_no)
        .chain(inv.storage.iter())
        .chain(inv.import_export.iter())
        .filter(|e| e.full && e.installed);
    for e in candidates {
        let Some(b) = &e.barcode else { continue };
        if tried.contains(b) || !config.barcode_allowed(b) {
            continue;
        }
        if e.kind == ElementType::Drive && e.number != drive_no {
            continue;
        }
        match cat.read().volume_by_barcode(b)? {
            Some(v) if v.pool != *pool => {}
            Some(v) if v.state == VolumeState::Appendable => {
                appendable.push((b.clone(), Some(v.id)))
            }
            Some(v) if v.state == VolumeState::Blank => fresh.push((b.clone(), Some(v.id))),
            Some(_) => {}
            None => fresh.push((b.clone(), None)),
        }
    }
    let mut protected = sh
        .protected
        .lock()
        .map_err(|_| anyhow::anyhow!("tape list poisoned"))?;
    let mut skip_protected = |b: &str, report: &mut WriteReport| {
        report.skipped.push(format!("{b}: write protected"));
        progress.message(&format!("{b} is write protected: skipped"));
        protected.push(b.to_owned());
    };
    for (b, v) in appendable {
        tried.push(b.clone());
        let mut d = load_barcode(lib, drive_no, &b, progress)?;
        if d.status()?.write_protected {
            skip_protected(&b, report);
            continue;
        }
        return Ok(Some((b, v)));
    }
    for (b, v) in fresh {
        tried.push(b.clone());
        let mut d = load_barcode(lib, drive_no, &b, progress)?;
        if d.status()?.write_protected {
            skip_protected(&b, report);
            continue;
        }
        if !medium_is_blank(&mut *d)? {
            if let Some(id) = v
                && half_initialised(cat, id, &mut *d)?
            {
                progress.message(&format!(
                    "{b}: formatted by an interrupted run of this catalog, holds nothing \
                     recorded: formatting it again"
                ));
                return Ok(Some((b, v)));
            }
            report.skipped.push(format!(
                "{b}: holds data this catalog does not know; not overwritten"
            ));
            progress.message(&format!("{b} holds unknown data: skipped"));
            continue;
        }
        return Ok(Some((b, v)));
    }
    Ok(None)
}

/// True when the loaded tape is one this catalog began to initialise and a crash cut
/// short: the catalog knows the barcode as blank, with no locations, under the volume
/// UUID recorded before formatting (see [`session`]), and the tape's label (raw or LTFS,
/// either partition) carries that same UUID. Anything else is someone's data.
fn half_initialised(
    cat: &Catalog,
    id: VolumeId,
    drive: &mut dyn TapeDrive,
) -> anyhow::Result<bool> {
    let v = cat.read().volume(id)?;
    let Some(expected) = reserved_uuid(&v) else {
        return Ok(false);
    };
    if !cat.read().locations_on_volume(id)?.is_empty() {
        return Ok(false);
    }
    Ok(tape_label_uuid(drive).as_deref() == Some(expected.as_str()))
}

/// The bare volume UUID recorded for a volume the catalog still knows as blank (so
/// recorded before formatting), without the `raw:` prefix.
fn reserved_uuid(v: &catalog::Volume) -> Option<String> {
    if v.state != VolumeState::Blank {
        return None;
    }
    let Medium::Tape {
        ltfs_uuid: Some(u), ..
    } = &v.medium
    else {
        return None;
    };
    let bare = u.strip_prefix(RAW_UUID_PREFIX).unwrap_or(u);
    uuid::Uuid::parse_str(bare)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The volume UUID in the label of the loaded tape: a raw label, else an LTFS label on
/// partition 0 or 1 (a format cut short may have labelled only one). `None` when there is
/// none or it cannot be read. Leaves the tape rewound.
fn tape_label_uuid(drive: &mut dyn TapeDrive) -> Option<String> {
    let found = if let Ok(r) = raw::RawReader::open(&mut *drive) {
        Some(r.label().volume_uuid.clone())
    } else {
        (0..drive.partition_count().unwrap_or(1).min(2)).find_map(|p| ltfs_label_uuid(drive, p))
    };
    let _ = drive.rewind();
    found.and_then(|u| {
        uuid::Uuid::parse_str(&u)
            .ok()
            .map(|u| u.hyphenated().to_string())
    })
}

/// The UUID of the LTFS label construct (VOL1, filemark, XML label) at the start of
/// `partition`, if it is there and parses.
fn ltfs_label_uuid(drive: &mut dyn TapeDrive, partition: u8) -> Option<String> {
    drive
        .locate(tape_scsi::Position {
            partition,
            block: 0,
        })
        .ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut read = |drive: &mut dyn TapeDrive| drive.read_record(&mut buf).ok();
    let (Some(ReadOutcome::Record(ltfs::VOL1_LEN)), Some(ReadOutcome::Filemark)) =
        (read(drive), read(drive))
    else {
        return None;
    };
    let Some(ReadOutcome::Record(n)) = read(drive) else {
        return None;
    };
    let label = ltfs::LtfsLabel::from_xml(&buf[..n]).ok()?;
    Some(label.volume_uuid)
}

/// Prefix of the catalog's `ltfs_uuid` field for a raw-format volume: `raw:<label uuid>`
/// (the catalog has no format column; docs/RAW-FORMAT.md).
pub const RAW_UUID_PREFIX: &str = "raw:";

/// The raw label UUID of a tape the catalog knows as a raw-format volume.
pub fn raw_volume_uuid(medium: &Medium) -> Option<&str> {
    match medium {
        Medium::Tape {
            ltfs_uuid: Some(u), ..
        } => u.strip_prefix(RAW_UUID_PREFIX),
        _ => None,
    }
}

/// Error when `tapes.format = "ltfs"` meets a drive that cannot make two partitions.
#[derive(Debug, thiserror::Error)]
#[error(
    "{barcode}: the drive cannot partition the medium, so it cannot hold LTFS; set \
     tapes.format = \"auto\" (or \"raw\") to use the raw on-tape format on this drive"
)]
pub struct LtfsUnsupported {
    /// The tape's barcode.
    pub barcode: String,
}

fn cannot_partition(e: &ltfs::Error) -> bool {
    matches!(
        e,
        ltfs::Error::Drive {
            source: tape_scsi::Error::Unsupported { .. },
            ..
        }
    )
}

/// One tape session: open or format (LTFS, or raw when the drive cannot partition or the
/// config says so), write packs until the feed is exhausted or early warning, snapshot,
/// unload.
///
/// Starts with `first` and then takes packs from the feed until it is exhausted (or another
/// drive failed, or the tape filled up). Returns the rest of a pack cut at early warning.
fn session(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    mut drive: Box<dyn TapeDrive>,
    barcode: &str,
    volume: Option<VolumeId>,
    first: Pending,
    report: &mut WriteReport,
) -> anyhow::Result<Option<Pending>> {
    let (config, progress) = (sh.config, sh.progress);
    let pool = config.file.tapes.pool.clone();
    let now = Timestamp::now();
    let known = volume.map(|v| cat.read().volume(v)).transpose()?;
    let fresh = known.as_ref().is_none_or(|v| v.state == VolumeState::Blank);
    if drive.status()?.write_protected {
        return Err(tape_scsi::Error::WriteProtected {
            device: barcode.to_owned(),
        }
        .into());
    }
    let carry = if fresh {
        let mode = config.file.tapes.format;
        // The UUID the tape gets: the one an interrupted format already recorded (so a
        // tape labelled before the crash is still recognised), else a new one.
        let uuid = known
            .as_ref()
            .and_then(reserved_uuid)
            .unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string());
        if mode == TapeFormat::Raw {
            raw_session(
                sh,
                cat,
                &mut *drive,
                barcode,
                RawStart::Format(uuid),
                first,
                report,
            )?
        } else {
            let id = reserve_volume(cat, barcode, &pool, &uuid, now)?;
            progress.message(&format!("formatting {barcode} (LTFS)"));
            let options = ltfs::FormatOptions {
                uuid: Some(uuid.clone()),
                ..ltfs::FormatOptions::new(barcode)
            };
            match ltfs::Volume::format(&mut *drive, &options) {
                Ok(volume) => {
                    kill_point("format");
                    cat.write(|tx| tx.set_volume_state(id, VolumeState::Appendable, now))?;
                    report.formatted.push(barcode.to_owned());
                    ltfs_session(sh, cat, volume, id, barcode, first, report)?
                }
                Err(e) if cannot_partition(&e) && mode == TapeFormat::Auto => {
                    progress.message(&format!(
                        "{barcode}: the drive cannot partition: using the raw on-tape format"
                    ));
                    raw_session(
                        sh,
                        cat,
                        &mut *drive,
                        barcode,
                        RawStart::Format(uuid),
                        first,
                        report,
                    )?
                }
                Err(e) if cannot_partition(&e) => {
                    return Err(anyhow::Error::new(e).context(LtfsUnsupported {
                        barcode: barcode.to_owned(),
                    }));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("formatting {barcode} as LTFS"));
                }
            }
        }
    } else {
        let Some(known) = known else {
            bail!("internal: no volume")
        };
        if let Some(uuid) = raw_volume_uuid(&known.medium) {
            let uuid = uuid.to_owned();
            raw_session(
                sh,
                cat,
                &mut *drive,
                barcode,
                RawStart::Append(known.id, uuid),
                first,
                report,
            )?
        } else {
            let mut volume = ltfs::Volume::open(&mut *drive)?;
            if let Medium::Tape {
                ltfs_uuid: Some(u), ..
            } = &known.medium
                && *u != volume.label().volume_uuid
            {
                return Err(WrongCartridge {
                    barcode: barcode.to_owned(),
                    found: volume.label().volume_uuid.clone(),
                    expected: u.clone(),
                }
                .into());
            }
            if !volume.is_consistent() {
                progress.message(&format!(
                    "{barcode}: interrupted session found, rolling back to its last index"
                ));
                drop(volume);
                ltfs::recover(&mut *drive, ltfs::Recovery::RollBack)?;
                volume = ltfs::Volume::open(&mut *drive)?;
            }
            ltfs_session(sh, cat, volume, known.id, barcode, first, report)?
        }
    };
    drive.unload()?;
    Ok(carry)
}

/// Takes the next step for a session: `next`, or one from the feed unless another drive
/// failed. `None`: the session ends.
fn take_next(
    sh: &Shared<'_>,
    next: &mut Option<Pending>,
    unrecorded: bool,
) -> anyhow::Result<Option<Step>> {
    match next.take() {
        Some(p) => Ok(Some(Step::Write(p))),
        None if sh.failed.load(Ordering::Relaxed) => Ok(None),
        None => next_pending(sh, unrecorded),
    }
}

/// The locations of a pack whose last part was just written.
fn locations_of(
    pack: PackId,
    parts: &[(VolumeId, u64, u64, Position)],
    job: catalog::JobId,
) -> Vec<NewLocation> {
    let count = parts.len() as u32;
    parts
        .iter()
        .enumerate()
        .map(|(i, (vol, off, l, pos))| NewLocation {
            pack,
            volume: *vol,
            part: if count == 1 {
                Part::whole(*l)
            } else {
                Part {
                    index: i as u32,
                    count,
                    offset: *off,
                    length: Some(*l),
                }
            },
            position: pos.clone(),
            job: Some(job),
        })
        .collect()
}

/// Records the tape about to be formatted, in one transaction: its barcode (registered if
/// new), the volume UUID the format will write, state blank. A run killed after the format
/// and before the tape is marked appendable finds this UUID on the tape and formats it
/// again ([`half_initialised`]) instead of taking it for someone else's data.
fn reserve_volume(
    cat: &mut Catalog,
    barcode: &str,
    pool: &str,
    uuid: &str,
    now: Timestamp,
) -> anyhow::Result<VolumeId> {
    Ok(cat.write(|tx| {
        let id = volume_id_or(tx, barcode, pool, now)?;
        tx.set_ltfs_uuid(id, uuid)?;
        tx.set_volume_state(id, VolumeState::Blank, now)?;
        Ok::<_, catalog::Error>(id)
    })?)
}

/// Test hook: with `TAPEBACKUP_KILL_AFTER` set to `point`, announce it on stderr and wait
/// to be killed (the crash tests SIGKILL the process there, deterministically).
pub(crate) fn kill_point(point: &str) {
    if std::env::var_os("TAPEBACKUP_KILL_AFTER").is_some_and(|v| v == point) {
        eprintln!("TAPEBACKUP_KILL_AFTER={point}: waiting for SIGKILL");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// How a raw session starts.
enum RawStart {
    /// Format the tape with this (bare) volume UUID.
    Format(String),
    /// Append to the catalog's volume with this (bare) label UUID.
    Append(VolumeId, String),
}

/// A raw-format session (docs/RAW-FORMAT.md): format or append after
/// the last tape file; one tape file per pack (part), each location recorded in its own
/// transaction right after the filemark that ends it; a catalog snapshot file at the end.
/// Positions are tape file numbers (`Position::Tape { partition: 0, start_block: file }`).
fn raw_session(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    drive: &mut dyn TapeDrive,
    barcode: &str,
    start: RawStart,
    first: Pending,
    report: &mut WriteReport,
) -> anyhow::Result<Option<Pending>> {
    let (config, progress, cancel, job) = (sh.config, sh.progress, sh.cancel, sh.job);
    let (mut writer, vol_id) = match start {
        RawStart::Format(volume_uuid) => {
            let label = raw::Label {
                volume_uuid,
                barcode: barcode.to_owned(),
                created_at: Timestamp::now().unix_seconds(),
                writer: format!("tapebackup {}", env!("CARGO_PKG_VERSION")),
                block_size: raw_block_size(config)?,
            };
            let uuid = format!("{RAW_UUID_PREFIX}{}", label.volume_uuid);
            let now = Timestamp::now();
            let id = reserve_volume(cat, barcode, &config.file.tapes.pool, &uuid, now)?;
            progress.message(&format!("formatting {barcode} (raw)"));
            let writer = raw::RawWriter::format(drive, label)
                .with_context(|| format!("writing the raw label on {barcode}"))?;
            kill_point("format");
            cat.write(|tx| tx.set_volume_state(id, VolumeState::Appendable, now))?;
            report.formatted.push(barcode.to_owned());
            report.raw.push(barcode.to_owned());
            (writer, id)
        }
        RawStart::Append(id, uuid) => {
            let known_file = cat
                .read()
                .locations_on_volume(id)?
                .iter()
                .filter_map(|l| match l.position {
                    Position::Tape { start_block, .. } => Some(start_block),
                    _ => None,
                })
                .max()
                .unwrap_or(1);
            let writer = raw::RawWriter::append(drive, Some(&uuid), known_file)
                .with_context(|| format!("finding the end of the raw volume on {barcode}"))?;
            progress.message(&format!(
                "{barcode}: appending at tape file {}",
                writer.next_file()
            ));
            (writer, id)
        }
    };
    let buffer = usize::try_from(config.file.tapes.buffer.0)
        .unwrap_or(64 << 20)
        .max(64 << 10);
    let mut full = false;
    let mut carry = None;
    let mut next = Some(first);
    loop {
        let p = match take_next(sh, &mut next, false)? {
            Some(Step::Write(p)) => p,
            // Never asked for: each pack is recorded as soon as it is written.
            Some(Step::Flush) => continue,
            None => break,
        };
        let Some((mut p, pack)) = raw_pack(sh, cat, p)? else {
            continue;
        };
        let path = pack_path(config, &pack.name);
        let offset: u64 = p.parts.iter().map(|x| x.2).sum();
        let file = std::fs::File::open(&path)?;
        let len = file.metadata()?.len();
        let mut src = BufReader::with_capacity(buffer.min(len as usize + 1), file);
        if offset > 0 {
            std::io::Seek::seek(&mut src, std::io::SeekFrom::Start(offset))?;
        }
        progress.item(&pack.name, Some(len - offset.min(len)));
        let kind = raw::FileKind::Pack {
            pack_id: pack.id.get(),
            name: pack.name.clone(),
            pack_length: len,
            offset,
        };
        let written = match writer.write_file(
            kind,
            &mut src,
            raw::OnEarlyWarning::Cut,
            &Adapt(progress),
            cancel,
        ) {
            Err(e) if is_end_of_medium(&e) => {
                // No early warning came in time (or its reserve is used up): the tape is
                // full. This part was not recorded; the pack goes on on the next tape
                // (the partial file is never appended to: the volume is full).
                progress.message(&format!("{barcode}: end of medium, the tape is full"));
                cat.write(|tx| tx.mark_volume_full(vol_id, Timestamp::now()))?;
                report.filled.push(barcode.to_owned());
                return Ok(Some(p));
            }
            r => r?,
        };
        report.bytes += written.length;
        p.parts.push((
            vol_id,
            offset,
            written.length,
            Position::Tape {
                partition: 0,
                start_block: written.file,
            },
        ));
        if written.complete {
            record(
                sh,
                cat,
                &mut locations_of(pack.id, &p.parts, job),
                &mut Vec::new(),
            )?;
            report.packs += 1;
        } else {
            carry = Some(p);
        }
        if written.early_warning {
            progress.message(&format!("{barcode}: early warning, finishing the tape"));
            full = true;
            break;
        }
    }
    if full {
        cat.write(|tx| tx.mark_volume_full(vol_id, Timestamp::now()))?;
        report.filled.push(barcode.to_owned());
    }
    let (_tmp, sealed) = seal_snapshot(config, cat, sh.key, cancel)?;
    let length = std::fs::metadata(&sealed)?.len();
    progress.message("writing the encrypted catalog snapshot");
    match writer.write_file(
        raw::FileKind::Snapshot {
            created_at: Timestamp::now().unix_seconds(),
            length,
        },
        &mut BufReader::new(std::fs::File::open(&sealed)?),
        raw::OnEarlyWarning::Finish,
        &Adapt(progress),
        cancel,
    ) {
        Err(e) if is_end_of_medium(&e) => {
            // The reserve after early warning is too small for the snapshot: the packs
            // are recorded; the next tape's snapshot covers them.
            progress.message(&format!(
                "{barcode}: no room left for the catalog snapshot; the tape is full"
            ));
            if !full {
                cat.write(|tx| tx.mark_volume_full(vol_id, Timestamp::now()))?;
                report.filled.push(barcode.to_owned());
            }
        }
        r => {
            r?;
        }
    }
    Ok(carry)
}

/// The recorded pack a raw session writes for `p`. The raw format puts a pack's id and
/// length before its bytes, so contents not sealed yet are packed into a pack file first
/// (as `pack` does), and a stream cut on an earlier (LTFS) tape is sealed again from its
/// start (its part on that tape stays there, referenced by nothing). `None`: nothing to
/// write (every member changed since `get`).
fn raw_pack(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    p: Pending,
) -> anyhow::Result<Option<(Pending, PackInfo)>> {
    let unit = match p.body {
        Body::File(info) => {
            let pack = info.clone();
            return Ok(Some((
                Pending {
                    body: Body::File(info),
                    parts: p.parts,
                },
                pack,
            )));
        }
        Body::Unit(u) => u,
        Body::Stream(s) => {
            sh.progress.message(&format!(
                "pack {} goes on on a raw tape: sealing it again from its start",
                s.name()
            ));
            s.abandon()?
        }
    };
    let packed = unit
        .pack_to_file(sh.config, cat, sh.key, sh.progress, sh.cancel)
        .with_context(|| format!("packing {}", unit.describe()))?;
    sh.feed.landed(Landed {
        files: packed.files,
        packs: packed.packs.len() as u64,
        plain_bytes: packed.packs.iter().map(|x| x.1).sum(),
        pack_bytes: packed.packs.iter().map(|x| x.2).sum(),
        staged_bytes: unit.staged_bytes(),
        changed: packed.changed.clone(),
    });
    Ok(packed.packs.into_iter().next().map(|(info, _, _)| {
        (
            Pending {
                body: Body::File(info.clone()),
                parts: Vec::new(),
            },
            info,
        )
    }))
}

fn is_end_of_medium(e: &raw::RawError) -> bool {
    matches!(
        e,
        raw::RawError::Drive {
            source: tape_scsi::Error::EndOfMedium { .. },
            ..
        }
    )
}

/// The configured raw block size, checked.
fn raw_block_size(config: &Config) -> anyhow::Result<u32> {
    let b = config.file.tapes.block_size.0;
    match u32::try_from(b) {
        Ok(b) if (raw::MIN_BLOCK_SIZE..=raw::MAX_BLOCK_SIZE).contains(&b) => Ok(b),
        _ => bail!(
            "tapes.block_size {b} must be between {} and {} bytes",
            raw::MIN_BLOCK_SIZE,
            raw::MAX_BLOCK_SIZE
        ),
    }
}

/// An LTFS session on an opened or freshly formatted volume.
fn ltfs_session(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    volume: ltfs::Volume<'_>,
    vol_id: VolumeId,
    barcode: &str,
    first: Pending,
    report: &mut WriteReport,
) -> anyhow::Result<Option<Pending>> {
    let (config, key, progress, cancel, job) = (sh.config, sh.key, sh.progress, sh.cancel, sh.job);
    let mut writer = volume.into_writer(ltfs::WriterOptions::default())?;
    let buffer = usize::try_from(config.file.tapes.buffer.0)
        .unwrap_or(64 << 20)
        .max(64 << 10);
    // Written since the last index: recorded once an index covers them.
    let mut unrecorded: Vec<NewLocation> = Vec::new();
    let mut streamed: Vec<Streamed> = Vec::new();
    let mut unrecorded_bytes = 0u64;
    let mut full = false;
    let mut carry = None;
    let mut next = Some(first);
    loop {
        let unrecorded_any = !unrecorded.is_empty() || !streamed.is_empty();
        let mut p = match take_next(sh, &mut next, unrecorded_any)? {
            Some(Step::Write(p)) => p,
            Some(Step::Flush) => {
                writer.sync()?;
                record(sh, cat, &mut unrecorded, &mut streamed)?;
                unrecorded_bytes = 0;
                continue;
            }
            None => break,
        };
        p.body = start_stream(p.body, key, buffer)?;
        // Seal the next unit while this one is written: sealing one unit and writing
        // another overlap, instead of the drive waiting for each pack's first bytes.
        if next.is_none()
            && !sh.failed.load(Ordering::Relaxed)
            && let Some(fed) = sh.feed.try_next()?
        {
            let mut q = Pending::new(fed);
            q.body = start_stream(q.body, key, buffer)?;
            next = Some(q);
        }
        let offset: u64 = p.parts.iter().map(|x| x.2).sum();
        let part_no = p.parts.len() as u32 + 1;
        let options = ltfs::FileOptions {
            span: (part_no > 1).then_some(ltfs::SpanPart {
                part: part_no,
                offset,
            }),
            ..ltfs::FileOptions::default()
        };
        let (name, written) = match &mut p.body {
            Body::File(pack) => {
                let name = format!("{PACK_DIR}/{}", pack.name);
                let file = std::fs::File::open(pack_path(config, &pack.name))?;
                let len = file.metadata()?.len();
                let mut src = BufReader::with_capacity(buffer.min(len as usize + 1), file);
                if offset > 0 {
                    std::io::Seek::seek(&mut src, std::io::SeekFrom::Start(offset))?;
                }
                let w = writer.write_file(&name, &mut src, &options, &Adapt(progress), cancel)?;
                (name, w)
            }
            Body::Stream(stream) => {
                let name = format!("{PACK_DIR}/{}", stream.name());
                let w = writer.write_file(&name, stream, &options, &Adapt(progress), cancel)?;
                (name, w)
            }
            Body::Unit(_) => bail!("internal: unit not started"),
        };
        report.bytes += written.length;
        unrecorded_bytes += written.length;
        let position = Position::LtfsFile {
            name: name.clone(),
            start_block: written.extents.first().map(|e| e.start_block),
        };
        p.parts.push((vol_id, offset, written.length, position));
        if written.complete {
            match p.body {
                Body::File(pack) => unrecorded.extend(locations_of(pack.id, &p.parts, job)),
                Body::Stream(stream) => {
                    let name = stream.name().to_owned();
                    let done = stream.finish()?;
                    streamed.push(Streamed {
                        name,
                        done,
                        parts: p.parts,
                    });
                }
                Body::Unit(_) => bail!("internal: unit not started"),
            }
            report.packs += 1;
        } else {
            // Cut at early warning: the rest goes to the next tape.
            carry = Some(p);
        }
        if written.early_warning {
            progress.message(&format!("{barcode}: early warning, finishing the tape"));
            full = true;
            // The unit sealed ahead goes back to the feed, from its start, for the next
            // tape (what it had sealed is dropped).
            if let Some(q) = next.take() {
                let fed = q.into_fed()?;
                let what = match &fed {
                    Fed::Recorded(p) => format!("pack {}", p.name),
                    Fed::Unsealed(u) => u.describe(),
                };
                progress.message(&format!("{barcode}: {what} goes to the next tape"));
                sh.feed.put_back(fed);
            }
            break;
        }
        if unrecorded_bytes >= 1 << 30 {
            writer.sync()?;
            record(sh, cat, &mut unrecorded, &mut streamed)?;
            unrecorded_bytes = 0;
        }
    }
    writer.sync()?;
    record(sh, cat, &mut unrecorded, &mut streamed)?;
    if full {
        cat.write(|tx| tx.mark_volume_full(vol_id, Timestamp::now()))?;
        report.filled.push(barcode.to_owned());
    }
    write_snapshot(config, cat, key, &mut writer, progress, cancel)?;
    writer.finish()?;
    Ok(carry)
}

fn volume_id_or(
    tx: &mut catalog::Txn<'_>,
    barcode: &str,
    pool: &str,
    now: Timestamp,
) -> catalog::Result<VolumeId> {
    match tx.read().volume_by_barcode(barcode)? {
        Some(v) => Ok(v.id),
        None => tx.add_tape(
            &NewTape {
                barcode: barcode.to_owned(),
                ltfs_uuid: None,
                generation: None,
                capacity: None,
                pool: pool.to_owned(),
            },
            now,
        ),
    }
}

/// Starts sealing a unit (LTFS sessions seal as they write; other bodies are kept).
/// Each stream gets half of `tapes.buffer`: one is written while the next is sealed.
fn start_stream(body: Body, key: &Unlocked, buffer: usize) -> anyhow::Result<Body> {
    Ok(match body {
        Body::Unit(unit) => {
            let name = catalog::generate_pack_name()?;
            Body::Stream(PackStream::start(unit, key.key.clone(), name, buffer / 2)?)
        }
        other => other,
    })
}

/// A streamed pack written whole, waiting for the next sync point to be recorded.
struct Streamed {
    name: String,
    done: StreamSealed,
    parts: Vec<(VolumeId, u64, u64, Position)>,
}

/// Records, in one transaction, the locations of recorded packs (`locs`) and the streamed
/// packs with theirs (members that changed since `get` get their fetch forgotten); then
/// deletes the streamed packs' staged plaintext and tells the feed. Both lists are emptied.
fn record(
    sh: &Shared<'_>,
    cat: &mut Catalog,
    locs: &mut Vec<NewLocation>,
    streamed: &mut Vec<Streamed>,
) -> anyhow::Result<()> {
    if locs.is_empty() && streamed.is_empty() {
        return Ok(());
    }
    if !streamed.is_empty() {
        // Streamed packs are on tape under an index, not yet in the catalog.
        kill_point("streamed");
    }
    let now = Timestamp::now();
    let job = sh.job;
    cat.write(|tx| {
        if !locs.is_empty() {
            tx.record_locations(locs, now)?;
        }
        for s in streamed.iter() {
            if let Some(pack) = &s.done.sealed.pack {
                let info = tx.record_pack_named(pack, &s.name, now)?;
                tx.record_locations(&locations_of(info.id, &s.parts, job), now)?;
            }
            for (i, _) in &s.done.sealed.gone {
                if let Some((version, _, _)) = s.done.unit.item(*i) {
                    tx.forget_fetched(version)?;
                }
            }
        }
        Ok::<_, catalog::Error>(())
    })?;
    locs.clear();
    for s in streamed.drain(..) {
        let (unit, sealed) = (&s.done.unit, &s.done.sealed);
        unit.remove_staged(&sealed.packed)?;
        sh.feed.landed(Landed {
            files: sealed.packed.len() as u64,
            packs: u64::from(sealed.pack.is_some()),
            plain_bytes: sealed.pack.as_ref().map_or(0, |p| p.plain_size),
            pack_bytes: sealed.pack.as_ref().map_or(0, |p| p.cipher_size),
            staged_bytes: unit.staged_bytes(),
            changed: sealed
                .gone
                .iter()
                .filter_map(|(i, why)| unit.item(*i).map(|(_, path, _)| format!("{path}: {why}")))
                .collect(),
        });
    }
    Ok(())
}

/// Takes a snapshot of the catalog and encrypts it into a temporary file (removed with the
/// returned directory).
fn seal_snapshot(
    config: &Config,
    cat: &Catalog,
    key: &Unlocked,
    cancel: &AtomicBool,
) -> anyhow::Result<(tempfile::TempDir, std::path::PathBuf)> {
    let tmp = tempfile::Builder::new()
        .prefix(".snapshot-")
        .tempdir_in(&config.file.packs)?;
    let plain = tmp.path().join("catalog.db");
    cat.snapshot(&plain, &catalog::Silent, cancel)?;
    let sealed = tmp.path().join("catalog.tbpack");
    let out = std::fs::File::create(&sealed)?;
    let mut w = std::io::BufWriter::new(out);
    cryptpack::encrypt_stream(
        std::fs::File::open(&plain)?,
        &mut w,
        cryptpack::Secret::Key(&key.key),
        &cryptpack::EncryptOptions::default(),
        &cryptpack::Silent,
        cancel,
    )?;
    std::io::Write::flush(&mut w)?;
    drop(w);
    std::fs::remove_file(&plain)?;
    Ok((tmp, sealed))
}

/// Writes an encrypted snapshot of the catalog onto the LTFS tape being written.
fn write_snapshot(
    config: &Config,
    cat: &Catalog,
    key: &Unlocked,
    writer: &mut ltfs::VolumeWriter<'_>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let (_tmp, sealed) = seal_snapshot(config, cat, key, cancel)?;
    let name = format!(
        "{SNAPSHOT_DIR}/catalog-{}.tbpack",
        Timestamp::now().unix_seconds()
    );
    let mut src = BufReader::new(std::fs::File::open(&sealed)?);
    let options = ltfs::FileOptions {
        early_warning: ltfs::EarlyWarningPolicy::Finish,
        ..ltfs::FileOptions::default()
    };
    progress.message("writing the encrypted catalog snapshot");
    writer.write_file(&name, &mut src, &options, &Adapt(progress), cancel)?;
    Ok(())
}

/// The pack id of a location (helper for restore/verify messages).
pub fn pack_label(cat: &Catalog, id: PackId) -> String {
    cat.read()
        .pack(id)
        .map(|p| p.name)
        .unwrap_or_else(|_| id.to_string())
}

/// A loaded tape opened for reading in its on-tape format (the catalog says which).
pub enum TapeReader<'d> {
    /// An LTFS volume.
    Ltfs(Box<ltfs::Volume<'d>>),
    /// A raw-format volume (docs/RAW-FORMAT.md).
    Raw(raw::RawReader<'d>),
}

impl<'d> TapeReader<'d> {
    /// Opens the tape in `drive` as the catalog's `volume` (barcode `label`) says: raw when
    /// its UUID field is `raw:<uuid>` (checked against the tape's label), else LTFS.
    pub fn open(
        cat: &Catalog,
        volume: VolumeId,
        label: &str,
        drive: &'d mut dyn TapeDrive,
    ) -> anyhow::Result<TapeReader<'d>> {
        let v = cat.read().volume(volume)?;
        if let Some(uuid) = raw_volume_uuid(&v.medium) {
            let r = raw::RawReader::open(drive)
                .with_context(|| format!("reading the raw label on {label}"))?;
            if r.label().volume_uuid != uuid {
                return Err(raw::RawError::WrongVolume {
                    found: r.label().volume_uuid.clone(),
                    expected: uuid.to_owned(),
                })
                .with_context(|| format!("wrong cartridge in the drive for {label}"));
            }
            Ok(TapeReader::Raw(r))
        } else {
            Ok(TapeReader::Ltfs(Box::new(
                ltfs::Volume::open(drive)
                    .with_context(|| format!("reading the LTFS volume on {label}"))?,
            )))
        }
    }

    /// A reader over the pack (part) at `position`. On a raw tape the file's header must
    /// name `pack` at part offset `offset`, and the data is checked against the trailer
    /// when read to its end.
    pub fn open_pack(
        &mut self,
        position: &Position,
        pack: &str,
        offset: u64,
    ) -> anyhow::Result<Box<dyn std::io::Read + '_>> {
        match (self, position) {
            (TapeReader::Ltfs(v), Position::LtfsFile { name, .. }) => Ok(Box::new(
                v.open_file(name)
                    .with_context(|| format!("LTFS file {name}"))?,
            )),
            (TapeReader::Raw(r), Position::Tape { start_block, .. }) => {
                let file = *start_block;
                let Some(h) = r.seek_file(file)? else {
                    return Err(raw::RawError::Unexpected {
                        file,
                        reason: "the tape ends before it".into(),
                    }
                    .into());
                };
                match &h.kind {
                    raw::FileKind::Pack {
                        name, offset: o, ..
                    } if name == pack && *o == offset => {}
                    other => {
                        return Err(raw::RawError::Unexpected {
                            file,
                            reason: format!(
                                "expected pack {pack} at offset {offset}, found {other:?}"
                            ),
                        }
                        .into());
                    }
                }
                Ok(Box::new(r.data()))
            }
            (TapeReader::Ltfs(_), p) => bail!("position {p:?} is not an LTFS file"),
            (TapeReader::Raw(_), p) => bail!("position {p:?} is not a raw tape file"),
        }
    }
}

impl std::fmt::Debug for TapeReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TapeReader::Ltfs(_) => f.write_str("TapeReader::Ltfs"),
            TapeReader::Raw(r) => f.debug_tuple("TapeReader::Raw").field(r).finish(),
        }
    }
}

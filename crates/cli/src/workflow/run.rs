//! `run`: get, pack and write in one pipelined pass.
//!
//! Three threads, each with its own catalog connection (SQLite WAL: readers never wait,
//! one writer at a time; every step's changes are its own short `BEGIN IMMEDIATE`
//! transactions, exactly as when the steps run alone):
//!
//! ```text
//!  get thread ──(staging/content/<blake3>, version recorded)──▶ pack thread
//!     ▲ pauses while staged plaintext > run.staging_limit          │ pack recorded, renamed
//!     └───────────────── staged bytes go down as packs land ◀──────┤
//!                                                                   ▼
//!                                     queue of packs ready ──▶ write thread (PackFeed)
//! ```
//!
//! - **get** fetches in chunks ([`super::get`]'s pacing); before each chunk it waits until
//!   the plaintext staged and not yet packed, plus the chunk, fits under
//!   `run.staging_limit` (a chunk is always admitted into an empty staging, so one file
//!   larger than the limit still goes through, alone).
//! - **pack** packs every recorded, staged content as soon as it is recorded (the same
//!   [`super::pack`] code: encrypt to a pending file, sync, record, rename, delete the
//!   plaintext) and puts the recorded pack on the queue.
//! - **write** hands the queue to the tape writer through the [`PackFeed`] seam: packs
//!   already recorded but not on tape (an interrupted earlier run) first, then each new
//!   pack as it is sealed. A tape session waits for the next pack while the queue is empty
//!   and ends (index, catalog snapshot, unload) once packing is finished.
//!
//! Failures: a failed pack stops get; a failed write stops get and pack (each at a point
//! that is safe: nothing half-recorded). A failed get or pack lets the writer finish the
//! packs already sealed, so the tape session ends cleanly with its index and snapshot. The
//! first real error is returned. Killed at any point, the next run (or the single steps)
//! finishes the work without loss or duplicates, for the same reasons each step alone is
//! resumable.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use catalog::{Catalog, JobKind, PackInfo, Timestamp};

use super::config::Unlocked;
use super::get::{GetOptions, GetReport, Pace, content_dir, get_paced};
use super::pack::{
    PackReport, clean_staging, in_place_roots, pack_groups, pack_many, repair_pending,
};
use super::tape::{CatalogFeed, PackFeed, WriteReport, write_from};
use super::{Config, Progress, no_cancel, open_catalog};

/// What [`run`] did, step by step.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// The get step.
    pub get: GetReport,
    /// The pack step.
    pub pack: PackReport,
    /// The write step.
    pub write: WriteReport,
    /// Most plaintext bytes waiting in staging at once (the bound `run.staging_limit`
    /// enforces, up to one chunk or one file larger than the limit).
    pub staged_peak: u64,
}

/// The error of a step that stopped because another step failed (not reported itself).
#[derive(Debug, thiserror::Error)]
#[error("stopped because another step failed")]
struct Halted;

/// State shared by the three threads, under one mutex.
#[derive(Default)]
struct State {
    /// Plaintext bytes staged and recorded, not yet packed (an upper estimate: contents
    /// fetched again that were packed already are counted until packing goes idle).
    staged: u64,
    /// Highest `staged` seen.
    staged_peak: u64,
    /// Bumped each time get records a chunk.
    recorded: u64,
    /// Get finished (or failed).
    get_done: bool,
    /// Pack finished (or failed): no more packs will be queued.
    pack_done: bool,
    /// Packs recorded and ready for the tape.
    ready: VecDeque<PackInfo>,
}

struct Pipe<'a> {
    state: Mutex<State>,
    cv: Condvar,
    limit: u64,
    /// Stop fetching (pack or write failed, or cancelled).
    halt_get: AtomicBool,
    /// Stop packing (write failed, or cancelled).
    halt_pack: AtomicBool,
    /// The caller's cancel flag.
    cancel: &'a AtomicBool,
}

/// How long a waiting thread sleeps before it looks at the cancel flags again.
const POLL: Duration = Duration::from_millis(100);

impl Pipe<'_> {
    fn lock(&self) -> anyhow::Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| anyhow::anyhow!("run: pipeline state poisoned by a panicked step"))
    }

    fn wait<'g>(&self, g: MutexGuard<'g, State>) -> anyhow::Result<MutexGuard<'g, State>> {
        if self.cancel.load(Ordering::Relaxed) {
            self.halt_get.store(true, Ordering::Relaxed);
            self.halt_pack.store(true, Ordering::Relaxed);
        }
        self.cv
            .wait_timeout(g, POLL)
            .map(|(g, _)| g)
            .map_err(|_| anyhow::anyhow!("run: pipeline state poisoned by a panicked step"))
    }

    fn notify(&self) {
        self.cv.notify_all();
    }
}

impl Pace for Pipe<'_> {
    fn chunk_limits(&self) -> (u64, usize) {
        // Small enough that packing starts early and staging stays near its bound, large
        // enough that a remote source's transfer runs in few processes.
        // Never more than the limit itself, so that only a single file can exceed it.
        (
            ((self.limit / 4).clamp(64 << 10, 256 << 20)).min(self.limit),
            512,
        )
    }

    fn admit(&self, bytes: u64) -> anyhow::Result<()> {
        let mut g = self.lock()?;
        loop {
            if self.halt_get.load(Ordering::Relaxed) || self.cancel.load(Ordering::Relaxed) {
                return Err(Halted.into());
            }
            if g.staged == 0 || g.staged.saturating_add(bytes) <= self.limit {
                return Ok(());
            }
            g = self.wait(g)?;
        }
    }

    fn staged(&self, bytes: u64) {
        if let Ok(mut g) = self.lock() {
            g.staged += bytes;
            g.staged_peak = g.staged_peak.max(g.staged);
            g.recorded += 1;
        }
        self.notify();
    }
}

impl PackFeed for Pipe<'_> {
    fn next_pack(&self, cancel: &AtomicBool) -> anyhow::Result<Option<PackInfo>> {
        let mut g = self.lock()?;
        loop {
            if let Some(p) = g.ready.pop_front() {
                return Ok(Some(p));
            }
            if g.pack_done || cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            g = self.wait(g)?;
        }
    }
}

/// Wraps a [`Progress`] for one step: messages are prefixed with the step; only the write
/// step moves the byte counter (bytes on tape are what the bar shows).
struct Step<'a> {
    inner: &'a dyn Progress,
    name: &'static str,
    bytes: bool,
}

impl Progress for Step<'_> {
    fn message(&self, text: &str) {
        self.inner.message(&format!("{}: {text}", self.name));
    }
    fn item(&self, name: &str, total: Option<u64>) {
        if self.bytes {
            self.inner.item(name, total);
        }
    }
    fn advance(&self, bytes: u64) {
        if self.bytes {
            self.inner.advance(bytes);
        }
    }
}

/// Bytes of plaintext in staging now (what an interrupted earlier run left).
fn staged_bytes(config: &Config) -> u64 {
    let Ok(rd) = std::fs::read_dir(content_dir(config)) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Runs get, pack and write at once (see the module documentation).
pub fn run(
    config: &Config,
    key: &Unlocked,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> anyhow::Result<RunReport> {
    std::fs::create_dir_all(&config.file.packs)?;
    // Finish what an interrupted run left between recording a pack and renaming it, and
    // queue the packs already recorded but not yet on tape: they go first.
    let earlier = {
        let cat = open_catalog(config)?;
        repair_pending(config, &cat)?;
        CatalogFeed::new(config, &cat)?
    };
    let mut first = VecDeque::new();
    while let Some(p) = earlier.next_pack(cancel)? {
        first.push_back(p);
    }
    let pipe = Pipe {
        state: Mutex::new(State {
            staged: staged_bytes(config),
            ready: first,
            ..State::default()
        }),
        cv: Condvar::new(),
        limit: config.file.run.staging_limit.0.max(1),
        halt_get: AtomicBool::new(false),
        halt_pack: AtomicBool::new(false),
        cancel,
    };
    // Errors in the order they happened, each marked `true` when its step had been told
    // to stop because another failed (then it is only a consequence).
    let errors: Mutex<Vec<(bool, anyhow::Error)>> = Mutex::new(Vec::new());
    let fail = |halted: &AtomicBool, e: anyhow::Error| {
        let consequence = halted.load(Ordering::Relaxed) || e.chain().any(|c| c.is::<Halted>());
        if let Ok(mut v) = errors.lock() {
            v.push((consequence, e));
        }
    };
    let get_p = Step {
        inner: progress,
        name: "get",
        bytes: false,
    };
    let pack_p = Step {
        inner: progress,
        name: "pack",
        bytes: false,
    };
    let write_p = Step {
        inner: progress,
        name: "write",
        bytes: true,
    };

    let (get, pack, write) = std::thread::scope(|s| {
        let pipe = &pipe;
        let fail = &fail;
        let (get_p, pack_p, write_p) = (&get_p, &pack_p, &write_p);
        let get = s.spawn(move || {
            let r = open_catalog(config).and_then(|mut cat| {
                get_paced(
                    config,
                    &mut cat,
                    &GetOptions::default(),
                    pipe,
                    get_p,
                    &pipe.halt_get,
                )
            });
            if let Ok(mut g) = pipe.lock() {
                g.get_done = true;
            }
            pipe.notify();
            match r {
                Ok(r) => r,
                Err(e) => {
                    fail(&pipe.halt_get, e.context("get"));
                    GetReport::default()
                }
            }
        });
        let pack = s.spawn(move || {
            let mut report = PackReport::default();
            let r = open_catalog(config)
                .and_then(|mut cat| pack_loop(config, &mut cat, key, pipe, &mut report, pack_p));
            if r.is_err() {
                pipe.halt_get.store(true, Ordering::Relaxed);
            }
            if let Ok(mut g) = pipe.lock() {
                g.pack_done = true;
            }
            pipe.notify();
            if let Err(e) = r {
                fail(&pipe.halt_pack, e.context("pack"));
            }
            report
        });
        let write = s.spawn(move || {
            let r = write_step(config, key, pipe, write_p);
            if r.is_err() {
                pipe.halt_get.store(true, Ordering::Relaxed);
                pipe.halt_pack.store(true, Ordering::Relaxed);
                pipe.notify();
            }
            match r {
                Ok(r) => r,
                Err(e) => {
                    fail(no_cancel(), e);
                    WriteReport::default()
                }
            }
        });
        let join = |what: &str| anyhow::anyhow!("run: the {what} thread panicked");
        (
            get.join().map_err(|_| join("get")),
            pack.join().map_err(|_| join("pack")),
            write.join().map_err(|_| join("write")),
        )
    });
    let mut errors = errors
        .into_inner()
        .map_err(|_| anyhow::anyhow!("run: error list poisoned"))?;
    let report = RunReport {
        get: get?,
        pack: pack?,
        write: write?,
        staged_peak: pipe.lock()?.staged_peak,
    };
    // The first error that is not a consequence of another; the others are shown.
    if let Some(i) = errors
        .iter()
        .position(|(consequence, _)| !consequence)
        .or((!errors.is_empty()).then_some(0))
    {
        let (_, first) = errors.remove(i);
        for (consequence, later) in &errors {
            if !consequence {
                progress.message(&format!("also: {later:#}"));
            }
        }
        return Err(first);
    }
    if cancel.load(Ordering::Relaxed) {
        anyhow::bail!("run cancelled");
    }
    // Contents fetched again although already packed (the same bytes under a new path)
    // wait in staging until here.
    clean_staging(config, &open_catalog(config)?)?;
    Ok(report)
}

/// The write thread: waits for the first pack (no tape is touched and no write job is
/// recorded when there is nothing to write), then writes from the queue until packing is
/// done and the queue is empty.
fn write_step(
    config: &Config,
    key: &Unlocked,
    pipe: &Pipe<'_>,
    progress: &dyn Progress,
) -> anyhow::Result<WriteReport> {
    {
        let mut g = pipe.lock()?;
        while g.ready.is_empty() {
            if g.pack_done || pipe.cancel.load(Ordering::Relaxed) {
                return Ok(WriteReport::default());
            }
            g = pipe.wait(g)?;
        }
    }
    let mut cat = open_catalog(config)?;
    write_from(config, &mut cat, key, pipe, progress, pipe.cancel)
}

/// The pack thread: packs whatever get has recorded, until get is done and nothing is
/// left; each pack goes on the queue once recorded.
fn pack_loop(
    config: &Config,
    cat: &mut Catalog,
    key: &Unlocked,
    pipe: &Pipe<'_>,
    report: &mut PackReport,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let mut job = None;
    let mut missing: HashSet<catalog::VersionId> = HashSet::new();
    let result = (|| {
        loop {
            if pipe.halt_pack.load(Ordering::Relaxed) {
                return Err(Halted.into());
            }
            let (seen, get_done) = {
                let g = pipe.lock()?;
                (g.recorded, g.get_done)
            };
            let todo = cat.read().versions_to_pack(u64::MAX >> 1)?;
            let mut packed_any = false;
            // Looked up each time: get adds a new source to the catalog while this runs.
            let in_place = in_place_roots(config, cat)?;
            let (groups, absent) = pack_groups(config, &in_place, &todo);
            for v in absent {
                if missing.insert(v.id) {
                    report.missing.push(v.path.clone());
                }
            }
            for group in &groups {
                if job.is_none() {
                    job = Some(cat.write(|tx| tx.start_job(JobKind::Pack, Timestamp::now()))?);
                }
                let packed = pack_many(config, cat, key, group, progress, &pipe.halt_pack)?;
                report.changed.extend(packed.changed);
                report.files += packed.files;
                {
                    let mut g = pipe.lock()?;
                    g.staged = g.staged.saturating_sub(packed.changed_bytes);
                    for (info, plain, cipher) in packed.packs {
                        report.packs += 1;
                        report.plain_bytes += plain;
                        report.pack_bytes += cipher;
                        packed_any = true;
                        g.staged = g.staged.saturating_sub(plain);
                        g.ready.push_back(info);
                    }
                }
                pipe.notify();
                if pipe.halt_pack.load(Ordering::Relaxed) {
                    return Err(Halted.into());
                }
            }
            if packed_any {
                continue;
            }
            // Nothing to pack: done when get is done (it was before the query), else wait
            // for get to record more. Nothing recorded is waiting, so whatever `staged`
            // still counts is plaintext already packed under another path: forget it.
            if get_done {
                return Ok(());
            }
            let mut g = pipe.lock()?;
            if g.recorded == seen && !g.get_done {
                g.staged = 0;
                pipe.notify();
                g = pipe.wait(g)?;
            }
            drop(g);
        }
    })();
    if let Some(job) = job {
        super::close_job(cat, job, &result, &report.job_progress(), None)?;
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pipe(limit: u64, staged: u64, cancel: &AtomicBool) -> Pipe<'_> {
        Pipe {
            state: Mutex::new(State {
                staged,
                ..State::default()
            }),
            cv: Condvar::new(),
            limit,
            halt_get: AtomicBool::new(false),
            halt_pack: AtomicBool::new(false),
            cancel,
        }
    }

    #[test]
    fn admission_against_the_staging_limit() {
        let never = AtomicBool::new(false);
        // (limit, staged, chunk, admitted at once)
        for (limit, staged, chunk, admitted) in [
            (100, 0, 50, true),
            (100, 0, 500, true), // an empty staging admits any chunk
            (100, 50, 50, true),
            (100, 51, 50, false),
            (100, 100, 1, false),
        ] {
            let p = pipe(limit, staged, &never);
            // A halted get fails instead of waiting, so "not admitted" shows as Halted.
            p.halt_get.store(!admitted, Ordering::Relaxed);
            let r = p.admit(chunk);
            assert_eq!(r.is_ok(), admitted, "{limit} {staged} {chunk}");
            if let Err(e) = r {
                assert!(e.is::<Halted>());
            }
        }
    }

    #[test]
    fn a_waiting_get_goes_on_once_pack_makes_room() {
        let never = AtomicBool::new(false);
        let p = pipe(100, 90, &never);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| p.admit(50));
            // What the pack thread does after each pack.
            {
                let mut g = p.lock().unwrap();
                g.staged -= 60;
            }
            p.notify();
            assert!(waiter.join().unwrap().is_ok());
        });
        p.staged(50);
        let g = p.lock().unwrap();
        assert_eq!((g.staged, g.staged_peak, g.recorded), (80, 80, 1));
    }

    #[test]
    fn cancel_stops_a_waiting_get() {
        let cancel = AtomicBool::new(false);
        let p = pipe(100, 90, &cancel);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| p.admit(50));
            cancel.store(true, Ordering::Relaxed);
            p.notify();
            assert!(waiter.join().unwrap().unwrap_err().is::<Halted>());
        });
    }
}

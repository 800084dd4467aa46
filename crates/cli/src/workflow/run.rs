//! `run`: get, pack and write in one pipelined pass.
//!
//! Three threads, each with its own catalog connection (SQLite WAL: readers never wait,
//! one writer at a time; every change is a short `BEGIN IMMEDIATE` transaction: get's are
//! those of `get` alone, a streamed pack is recorded together with its locations by the
//! writer):
//!
//! ```text
//!  get thread ──(version recorded; plaintext staged or read in place)──▶ pack thread
//!     ▲ pauses while staged plaintext > run.staging_limit                 │ units: the
//!     │                                                                   │ contents of
//!     └──────── staged bytes go down as packs land ◀─────┐                ▼ one pack each
//!                                      write thread (PackFeed) ◀── queue of units
//!                                      seals each unit straight onto the tape,
//!                                      records pack + locations after the index
//! ```
//!
//! - **get** fetches in chunks ([`super::get`]'s pacing); before each chunk it waits until
//!   the plaintext staged and not yet packed, plus the chunk, fits under
//!   `run.staging_limit` (a chunk is always admitted into an empty staging, so one file
//!   larger than the limit still goes through, alone).
//! - **pack** groups every recorded content as soon as it is recorded into units (the
//!   same grouping as [`super::pack`]: one content of 1 MiB or more, or a bundle of
//!   smaller ones) and queues them ([`Fed::Unsealed`]); it seals nothing itself.
//! - **write** takes the queue through the [`PackFeed`] seam: packs already recorded but
//!   not on tape (an interrupted earlier run) first, then the units. An LTFS session seals
//!   each unit on the fly into the tape file ([`super::stream`]: no pack file, each byte
//!   written once) and records the pack with its locations once an index covers it; a
//!   raw-format session packs the unit into a pack file first (that format needs the
//!   pack's length up front). Staged plaintext is deleted after that transaction. While
//!   get waits for room in staging, the writer records what it has written as soon as
//!   the queue runs dry ([`Next::Flush`]), so staging drains.
//!
//! Failures: a failed pack stops get; a failed write stops get and pack (each at a point
//! that is safe: nothing half-recorded). A failed get or pack lets the writer finish the
//! units already queued, so the tape session ends cleanly with its index and snapshot. The
//! first real error is returned. Killed at any point, the next run (or the single steps)
//! finishes the work without loss or duplicates: what get recorded stays recorded, and a
//! pack on its way to the tape is not in the catalog yet, so its contents are packed again.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use catalog::{Catalog, JobKind, Timestamp};

use super::config::Unlocked;
use super::get::{GetOptions, GetReport, Pace, content_dir, get_paced};
use super::pack::{PackReport, Unit, clean_staging, in_place_roots, pack_groups, repair_pending};
use super::tape::{CatalogFeed, Fed, Landed, Next, PackFeed, WriteReport, write_from};
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
    /// Packs (recorded, from an earlier run) and units ready for the tape.
    ready: VecDeque<Fed>,
    /// Staged plaintext bytes of the units queued or handed out that have not landed yet.
    in_flight_staged: u64,
    /// Get waits for room in staging.
    get_waiting: bool,
    /// The pack step's figures, from the units that landed.
    pack: PackReport,
    /// When the first unit was queued.
    pack_started: Option<Timestamp>,
}

/// Most units queued for the writer at once (they hold only paths and hashes; sealing
/// happens as they are written).
const MAX_READY: usize = 16;

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
                g.get_waiting = false;
                return Ok(());
            }
            g.get_waiting = true;
            self.notify();
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
    fn next(&self, cancel: &AtomicBool, unrecorded: bool) -> anyhow::Result<Next> {
        let mut g = self.lock()?;
        loop {
            if let Some(p) = g.ready.pop_front() {
                drop(g);
                self.notify();
                return Ok(Next::Pack(p));
            }
            if g.pack_done || cancel.load(Ordering::Relaxed) {
                return Ok(Next::Done);
            }
            if unrecorded && (g.get_waiting || g.get_done) {
                return Ok(Next::Flush);
            }
            g = self.wait(g)?;
        }
    }

    fn try_next(&self) -> anyhow::Result<Option<Fed>> {
        let p = self.lock()?.ready.pop_front();
        if p.is_some() {
            self.notify();
        }
        Ok(p)
    }

    fn put_back(&self, fed: Fed) {
        if let Ok(mut g) = self.lock() {
            g.ready.push_front(fed);
        }
        self.notify();
    }

    fn landed(&self, landed: Landed) {
        if let Ok(mut g) = self.lock() {
            g.in_flight_staged = g.in_flight_staged.saturating_sub(landed.staged_bytes);
            g.staged = g.staged.saturating_sub(landed.staged_bytes);
            let r = &mut g.pack;
            r.files += landed.files;
            r.packs += landed.packs;
            r.plain_bytes += landed.plain_bytes;
            r.pack_bytes += landed.pack_bytes;
            r.changed.extend(landed.changed);
        }
        self.notify();
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
    while let Some(p) = earlier.next_pack()? {
        first.push_back(Fed::Recorded(p));
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
    let write_p = Step {
        inner: progress,
        name: "write",
        bytes: true,
    };

    let (get, pack, write) = std::thread::scope(|s| {
        let pipe = &pipe;
        let fail = &fail;
        let (get_p, write_p) = (&get_p, &write_p);
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
            let r = open_catalog(config).and_then(|cat| unit_loop(config, &cat, pipe));
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
    pack?;
    let (pack, pack_started, staged_peak) = {
        let g = pipe.lock()?;
        (g.pack.clone(), g.pack_started, g.staged_peak)
    };
    let report = RunReport {
        get: get?,
        pack,
        write: write?,
        staged_peak,
    };
    // The pack job: what the units that landed made.
    if let Some(started) = pack_started {
        let mut cat = open_catalog(config)?;
        let job = cat.write(|tx| tx.start_job(JobKind::Pack, started))?;
        let outcome = match errors.iter().find(|(consequence, _)| !consequence) {
            Some((_, e)) => Err(anyhow::anyhow!("{e:#}")),
            None if cancel.load(Ordering::Relaxed) => Err(anyhow::anyhow!("run cancelled")),
            None => Ok(()),
        };
        super::close_job(&mut cat, job, &outcome, &report.pack.job_progress(), None)?;
    }
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

/// The pack thread: groups whatever get has recorded into units and queues them for the
/// writer, until get is done and every content is queued.
fn unit_loop(config: &Config, cat: &Catalog, pipe: &Pipe<'_>) -> anyhow::Result<()> {
    let mut queued: HashSet<catalog::Digest> = HashSet::new();
    let mut missing: HashSet<catalog::VersionId> = HashSet::new();
    // Contents up to `after` were read before: each pass reads only newer ones (reading
    // everything unpacked on every pass made this loop quadratic in the files of a run:
    // 34% of the CPU of `run` over 200k small files). `sweep`: get is done, read every
    // unpacked content once more (an id can be given again, see
    // `Reader::versions_to_pack_after`) before stopping.
    let mut after: Option<catalog::ContentId> = None;
    let mut sweep = false;
    loop {
        if pipe.halt_pack.load(Ordering::Relaxed) {
            return Err(Halted.into());
        }
        let (seen, get_done) = {
            let g = pipe.lock()?;
            (g.recorded, g.get_done)
        };
        let listed = cat
            .read()
            .versions_to_pack_after(if sweep { None } else { after }, u64::MAX >> 1)?;
        after = after.max(listed.iter().filter_map(|v| v.content).max());
        let todo: Vec<_> = listed
            .into_iter()
            .filter(|v| v.hash.as_ref().is_some_and(|h| !queued.contains(h)))
            .collect();
        // Looked up each time: get adds a new source to the catalog while this runs.
        let in_place = in_place_roots(config, cat)?;
        let (groups, absent) = pack_groups(config, &in_place, &todo);
        let mut absent_paths = Vec::new();
        for v in absent {
            if missing.insert(v.id) {
                absent_paths.push(v.path.clone());
            }
        }
        if !absent_paths.is_empty() {
            pipe.lock()?.pack.missing.extend(absent_paths);
        }
        let mut queued_any = false;
        for unit in groups.iter().flat_map(|g| Unit::of_group(g)) {
            queued.extend(unit.hashes().cloned());
            let mut g = pipe.lock()?;
            while g.ready.len() >= MAX_READY {
                if pipe.halt_pack.load(Ordering::Relaxed) {
                    return Err(Halted.into());
                }
                g = pipe.wait(g)?;
            }
            g.in_flight_staged += unit.staged_bytes();
            g.pack_started.get_or_insert_with(Timestamp::now);
            g.ready.push_back(Fed::Unsealed(unit));
            drop(g);
            pipe.notify();
            queued_any = true;
        }
        if queued_any {
            continue;
        }
        // Nothing new: done when get is done (it was before the query) and a sweep found
        // nothing either, else wait for get to record more. Whatever `staged` counts
        // beyond the units on their way is plaintext already packed under another path:
        // forget it.
        if get_done {
            if sweep {
                return Ok(());
            }
            sweep = true;
            continue;
        }
        let mut g = pipe.lock()?;
        if g.recorded == seen && !g.get_done {
            g.staged = g.in_flight_staged;
            pipe.notify();
            g = pipe.wait(g)?;
        }
        drop(g);
    }
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

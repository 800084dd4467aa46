//! The fetcher: admits a plan against the staging limit, runs parallel batches with
//! retries, hashes what lands, and reports a result per file.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::entry::{ContentHash, Entry, Mtime};
use crate::error::Error;
use crate::land::partial_path;
use crate::plan::{Change, Plan, PlannedFile};
use crate::progress::{Progress, Snapshot};
use crate::source::{RateLimit, Sink, Source, Transfer};

/// How often and how patiently a failed batch is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub initial_backoff: Duration,
    /// Longest wait between tries.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 4 tries, waiting 2 s, 4 s, 8 s.
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Limits on the staging area. A file is admitted only when it fits under both; the run
/// stops before the first file that does not (the seed's `max_storage_usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StagingLimit {
    /// Most bytes the staging directory may hold (what is already there counts).
    pub max_bytes: Option<u64>,
    /// Least free space to leave on the staging filesystem.
    pub min_free_bytes: Option<u64>,
}

/// Options of a [`Fetcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// Most batches (rsync processes, SFTP sessions, copy threads) running at once.
    pub parallel: usize,
    /// Least bytes per batch: a small plan runs in fewer batches than `parallel`, since a
    /// process per few megabytes costs more than it brings (default 64 MiB; 0 = always
    /// `parallel` batches when there are enough files).
    pub min_batch_bytes: u64,
    /// Total bandwidth for the run, bytes per second (split between batches).
    pub bandwidth_limit: Option<u64>,
    /// Retries of failed batches.
    pub retry: RetryPolicy,
    /// Staging space limits.
    pub staging_limit: StagingLimit,
}

impl Default for FetchOptions {
    /// Up to 4 parallel batches of at least 64 MiB, no bandwidth or staging limit, default
    /// retries.
    fn default() -> Self {
        FetchOptions {
            parallel: 4,
            min_batch_bytes: 64 << 20,
            bandwidth_limit: None,
            retry: RetryPolicy::default(),
            staging_limit: StagingLimit::default(),
        }
    }
}

/// A file that arrived in staging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// Where it is.
    pub staged_path: PathBuf,
    /// Its size as it landed.
    pub size: u64,
    /// Its mtime as it landed (the source's).
    pub mtime: Mtime,
    /// BLAKE3 of what landed.
    pub hash: ContentHash,
    /// True when the source listed a hash and it matched.
    pub remote_hash_verified: bool,
    /// True when size or mtime differ from the listing: the file changed in between;
    /// record what landed.
    pub changed_since_listing: bool,
}

/// The result for one file: record `Ok` ones as a new version in the catalog.
#[derive(Debug)]
pub struct FileResult {
    /// The entry as listed.
    pub entry: Entry,
    /// New or changed.
    pub change: Change,
    /// What happened.
    pub outcome: Result<Landed, Error>,
}

/// What a fetch did.
#[derive(Debug, Default)]
pub struct FetchReport {
    /// One result per attempted file, in plan order.
    pub files: Vec<FileResult>,
    /// Planned files not attempted (staging limit reached, cancelled, or a fatal error).
    pub not_attempted: usize,
    /// Why the run stopped early, if it did: [`Error::StagingFull`], [`Error::Cancelled`],
    /// an authentication or host-key error, or a transfer error retries did not cure.
    pub stopped: Option<Error>,
    /// Bytes received over the wire, when the transport counts them.
    pub wire_bytes: Option<u64>,
    /// Wall time of the transfer.
    pub elapsed: Duration,
}

impl FetchReport {
    /// The files that landed.
    pub fn landed(&self) -> impl Iterator<Item = (&FileResult, &Landed)> {
        self.files
            .iter()
            .filter_map(|f| f.outcome.as_ref().ok().map(|l| (f, l)))
    }

    /// The files that failed.
    pub fn failed(&self) -> impl Iterator<Item = (&FileResult, &Error)> {
        self.files
            .iter()
            .filter_map(|f| f.outcome.as_ref().err().map(|e| (f, e)))
    }

    /// True when every planned file landed.
    pub fn is_complete(&self) -> bool {
        self.stopped.is_none() && self.not_attempted == 0 && self.failed().next().is_none()
    }
}

/// Transfers a [`Plan`] from a [`Source`] into a staging directory.
#[derive(Debug)]
pub struct Fetcher<'a> {
    source: &'a dyn Source,
    staging: PathBuf,
    options: FetchOptions,
}

impl<'a> Fetcher<'a> {
    /// A fetcher with default options; `staging` is created if missing.
    pub fn new(source: &'a dyn Source, staging: impl Into<PathBuf>) -> Self {
        Fetcher {
            source,
            staging: staging.into(),
            options: FetchOptions::default(),
        }
    }

    /// Replaces all options.
    pub fn options(mut self, options: FetchOptions) -> Self {
        self.options = options;
        self
    }

    /// Batches at once (at least 1).
    pub fn parallel(mut self, n: usize) -> Self {
        self.options.parallel = n.max(1);
        self
    }

    /// Least bytes per batch (see [`FetchOptions::min_batch_bytes`]).
    pub fn min_batch_bytes(mut self, bytes: u64) -> Self {
        self.options.min_batch_bytes = bytes;
        self
    }

    /// Total bandwidth in bytes per second.
    pub fn bandwidth_limit(mut self, bytes_per_sec: u64) -> Self {
        self.options.bandwidth_limit = Some(bytes_per_sec);
        self
    }

    /// Retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.options.retry = retry;
        self
    }

    /// Staging limits.
    pub fn staging_limit(mut self, limit: StagingLimit) -> Self {
        self.options.staging_limit = limit;
        self
    }

    /// The staging directory.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// Fetches the plan. Never panics on I/O; everything that went wrong is in the report:
    /// record `files` first, then look at `stopped`.
    pub fn fetch(&self, plan: &Plan, progress: &dyn Progress, cancel: &AtomicBool) -> FetchReport {
        let started = Instant::now();
        let mut report = FetchReport::default();
        if let Err(e) = fs::create_dir_all(&self.staging) {
            report.not_attempted = plan.files.len();
            report.stopped = Some(Error::io("create staging", &self.staging, e));
            return report;
        }
        let (admitted, staging_full) = match self.admit(plan) {
            Ok(x) => x,
            Err(e) => {
                report.not_attempted = plan.files.len();
                report.stopped = Some(e);
                return report;
            }
        };
        let files: &[PlannedFile] = &plan.files[..admitted];
        let entries: Vec<Entry> = files.iter().map(|f| f.entry.clone()).collect();
        let shared = Shared {
            staging: &self.staging,
            files,
            progress,
            started,
            total_bytes: entries.iter().map(|e| e.size).sum(),
            state: Mutex::new(State {
                results: (0..files.len()).map(|_| None).collect(),
                files_done: 0,
                bytes_done: 0,
                wire_bytes: None,
                stopped: None,
            }),
        };
        progress.start(files.len() as u64, shared.total_bytes);

        let rate = self.options.bandwidth_limit.map(RateLimit::new);
        let by_size = match self.options.min_batch_bytes {
            0 => usize::MAX,
            min => usize::try_from(shared.total_bytes.div_ceil(min)).unwrap_or(usize::MAX),
        };
        let batches = split_batches(&entries, self.options.parallel.min(by_size).max(1));
        let stop = AtomicBool::new(cancel.load(Ordering::Relaxed));
        let running = AtomicUsize::new(batches.len());
        std::thread::scope(|s| {
            for batch in &batches {
                let shared = &shared;
                let entries = &entries;
                let stop = &stop;
                let running = &running;
                let rate = rate.as_ref();
                let parallel = batches.len();
                s.spawn(move || {
                    self.run_batch(batch, entries, shared, rate, parallel, stop);
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // Copies the caller's cancel flag into ours, which fatal errors also set.
            while running.load(Ordering::SeqCst) > 0 {
                if cancel.load(Ordering::Relaxed) {
                    stop.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });

        let state = match shared.state.into_inner() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        report.not_attempted =
            plan.files.len() - admitted + state.results.iter().filter(|r| r.is_none()).count();
        report.files = state.results.into_iter().flatten().collect();
        report.wire_bytes = state.wire_bytes;
        report.stopped = state
            .stopped
            .or_else(|| cancel.load(Ordering::Relaxed).then_some(Error::Cancelled))
            .or(staging_full);
        report.elapsed = started.elapsed();
        report
    }

    /// How many plan files fit under the staging limit, and the error for the first that
    /// does not.
    fn admit(&self, plan: &Plan) -> Result<(usize, Option<Error>), Error> {
        let limit = self.options.staging_limit;
        if limit.max_bytes.is_none() && limit.min_free_bytes.is_none() {
            return Ok((plan.files.len(), None));
        }
        let used = dir_usage(&self.staging)?;
        let available = match limit.min_free_bytes {
            Some(_) => Some(free_space(&self.staging)?),
            None => None,
        };
        let mut admitted_bytes = 0u64;
        for (i, f) in plan.files.iter().enumerate() {
            // What is already staged for this path (an earlier partial or complete copy)
            // is replaced, not added to.
            // rsync's --partial-dir and our own streams use the same partial path.
            let already = file_len(&f.entry.staged_path(&self.staging))
                + file_len(&partial_path(&f.entry, &self.staging));
            let needed = f.entry.size.saturating_sub(already);
            if let Some(max) = limit.max_bytes
                && used + admitted_bytes + needed > max
            {
                return Ok((
                    i,
                    Some(Error::StagingFull {
                        staging: self.staging.clone(),
                        kind: "max bytes in staging",
                        used: used + admitted_bytes,
                        needed,
                        limit: max,
                    }),
                ));
            }
            if let (Some(min_free), Some(avail)) = (limit.min_free_bytes, available)
                && avail < admitted_bytes + needed + min_free
            {
                return Ok((
                    i,
                    Some(Error::StagingFull {
                        staging: self.staging.clone(),
                        kind: "min free bytes on disk",
                        used: used + admitted_bytes,
                        needed,
                        limit: min_free,
                    }),
                ));
            }
            admitted_bytes += needed;
        }
        Ok((plan.files.len(), None))
    }

    fn run_batch(
        &self,
        batch: &[usize],
        entries: &[Entry],
        shared: &Shared<'_>,
        rate: Option<&RateLimit>,
        parallel: usize,
        stop: &AtomicBool,
    ) {
        let policy = self.options.retry;
        let mut backoff = policy.initial_backoff;
        let mut attempt = 1u32;
        loop {
            let remaining: Vec<usize> = batch
                .iter()
                .copied()
                .filter(|&i| !shared.is_landed(i))
                .collect();
            if remaining.is_empty() || stop.load(Ordering::Relaxed) {
                return;
            }
            let job_entries: Vec<Entry> = remaining.iter().map(|&i| entries[i].clone()).collect();
            let sink = BatchSink {
                shared,
                map: &remaining,
            };
            let job = Transfer {
                entries: &job_entries,
                staging: &self.staging,
                rate,
                parallel,
                cancel: stop,
            };
            let result = self.source.transfer(&job, &sink);
            // Files may be complete in staging without the transport saying so (already
            // up to date, or done just before a connection dropped).
            for &i in &remaining {
                if !shared.is_landed(i) && staged_matches(&entries[i], &self.staging) {
                    shared.land(i, None);
                }
            }
            match result {
                Ok(stats) => {
                    shared.add_wire(stats.wire_bytes);
                    for &i in &remaining {
                        if !shared.has_result(i) {
                            shared.fail(
                                i,
                                Error::NotTransferred {
                                    path: entries[i].display_path(),
                                    detail: "the transfer ended without it (vanished?)".into(),
                                },
                            );
                        }
                    }
                    return;
                }
                Err(Error::Cancelled) => return,
                Err(e) if e.is_retryable() && attempt < policy.attempts => {
                    shared.progress.retrying(attempt, backoff, &e);
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    backoff = (backoff * 2).min(policy.max_backoff);
                    attempt += 1;
                }
                Err(e) => {
                    if !e.is_retryable() {
                        // Wrong key, host key, full disk: the other batches stop too.
                        stop.store(true, Ordering::Relaxed);
                    }
                    for &i in &remaining {
                        if !shared.has_result(i) {
                            shared.fail(
                                i,
                                Error::NotTransferred {
                                    path: entries[i].display_path(),
                                    detail: e.to_string(),
                                },
                            );
                        }
                    }
                    shared.set_stopped(e);
                    return;
                }
            }
        }
    }
}

struct State {
    results: Vec<Option<FileResult>>,
    files_done: u64,
    bytes_done: u64,
    wire_bytes: Option<u64>,
    stopped: Option<Error>,
}

struct Shared<'a> {
    staging: &'a Path,
    files: &'a [PlannedFile],
    progress: &'a dyn Progress,
    started: Instant,
    total_bytes: u64,
    state: Mutex<State>,
}

impl Shared<'_> {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn is_landed(&self, i: usize) -> bool {
        self.with(|s| matches!(&s.results[i], Some(r) if r.outcome.is_ok()))
    }

    fn has_result(&self, i: usize) -> bool {
        self.with(|s| s.results[i].is_some())
    }

    fn add_wire(&self, n: Option<u64>) {
        if let Some(n) = n {
            self.with(|s| s.wire_bytes = Some(s.wire_bytes.unwrap_or(0) + n));
        }
    }

    fn set_stopped(&self, e: Error) {
        self.with(|s| {
            // An authentication or host-key error explains more than a retry that ran out.
            if s.stopped
                .as_ref()
                .is_none_or(|old| old.is_retryable() && !e.is_retryable())
            {
                s.stopped = Some(e);
            }
        });
    }

    fn snapshot(&self, s: &State) -> Snapshot {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            s.bytes_done as f64 / secs
        } else {
            0.0
        };
        let left = self.total_bytes.saturating_sub(s.bytes_done);
        Snapshot {
            files_done: s.files_done,
            files_total: self.files.len() as u64,
            bytes_done: s.bytes_done,
            bytes_total: self.total_bytes,
            bytes_per_sec: rate,
            eta: (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate)),
        }
    }

    fn record(&self, i: usize, outcome: Result<Landed, Error>) {
        let f = &self.files[i];
        let result = FileResult {
            entry: f.entry.clone(),
            change: f.change,
            outcome,
        };
        self.progress.file_done(&result);
        self.with(|s| {
            if s.results[i].is_none() {
                s.files_done += 1;
            }
            s.results[i] = Some(result);
            let snap = self.snapshot(s);
            self.progress.update(&snap);
        });
    }

    fn land(&self, i: usize, hash: Option<ContentHash>) {
        let entry = &self.files[i].entry;
        let staged = entry.staged_path(self.staging);
        let outcome = landed_file(entry, staged, hash);
        self.record(i, outcome);
    }

    fn fail(&self, i: usize, e: Error) {
        if !self.is_landed(i) {
            self.record(i, Err(e));
        }
    }
}

fn landed_file(entry: &Entry, staged: PathBuf, hash: Option<ContentHash>) -> Result<Landed, Error> {
    let meta = fs::metadata(&staged).map_err(|e| Error::io("stat staged", &staged, e))?;
    let hash = match hash {
        Some(h) => h,
        None => hash_file(&staged)?,
    };
    let mtime = meta
        .modified()
        .map(Mtime::from_system_time)
        .map_err(|e| Error::io("stat staged", &staged, e))?;
    if let Some(expected) = entry.hash
        && expected != hash
    {
        return Err(Error::HashMismatch {
            path: entry.display_path(),
            expected,
            actual: hash,
        });
    }
    Ok(Landed {
        changed_since_listing: meta.len() != entry.size || mtime != entry.mtime,
        staged_path: staged,
        size: meta.len(),
        mtime,
        hash,
        remote_hash_verified: entry.hash.is_some(),
    })
}

struct BatchSink<'a> {
    shared: &'a Shared<'a>,
    map: &'a [usize],
}

impl Sink for BatchSink<'_> {
    fn bytes(&self, n: u64) {
        self.shared.with(|s| {
            s.bytes_done += n;
            let snap = self.shared.snapshot(s);
            self.shared.progress.update(&snap);
        });
    }

    fn landed(&self, index: usize, hash: Option<ContentHash>) {
        if let Some(&i) = self.map.get(index) {
            self.shared.land(i, hash);
        }
    }

    fn failed(&self, index: usize, error: Error) {
        if let Some(&i) = self.map.get(index) {
            self.shared.fail(i, error);
        }
    }
}

/// BLAKE3 of a file's content.
pub fn hash_file(path: &Path) -> Result<ContentHash, Error> {
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io("read", path, e))?;
    Ok(ContentHash(*h.finalize().as_bytes()))
}

/// True when the staged copy has the listed size and mtime.
fn staged_matches(entry: &Entry, staging: &Path) -> bool {
    fs::metadata(entry.staged_path(staging)).is_ok_and(|m| {
        m.is_file()
            && m.len() == entry.size
            && m.modified().map(Mtime::from_system_time).ok() == Some(entry.mtime)
    })
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn dir_usage(dir: &Path) -> Result<u64, Error> {
    let mut total = 0;
    for item in walkdir::WalkDir::new(dir) {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            Error::io("walk staging", path, std::io::Error::other(e.to_string()))
        })?;
        if item.file_type().is_file() {
            total += item.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(total)
}

fn free_space(dir: &Path) -> Result<u64, Error> {
    let st = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| Error::io("statvfs", dir, std::io::Error::from(e)))?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

/// Splits entry indices into `n` batches of similar byte totals (largest first into the
/// lightest batch); each batch keeps listing order.
fn split_batches(entries: &[Entry], n: usize) -> Vec<Vec<usize>> {
    let n = n.min(entries.len()).max(1);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(entries[i].size));
    let mut batches: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); n];
    for i in order {
        if let Some(lightest) = batches
            .iter_mut()
            .min_by_key(|(bytes, v)| (*bytes, v.len()))
        {
            lightest.0 += entries[i].size;
            lightest.1.push(i);
        }
    }
    batches
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(_, mut v)| {
            v.sort_unstable();
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(sizes: &[u64]) -> Vec<Entry> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Entry {
                path: format!("f{i}").into_bytes(),
                size,
                mtime: Mtime::default(),
                mode: 0o644,
                hash: None,
            })
            .collect()
    }

    #[test]
    fn batches_balance_bytes_and_cover_everything() {
        let e = entries(&[100, 1, 1, 1, 50, 50, 1]);
        let b = split_batches(&e, 3);
        assert_eq!(b.len(), 3);
        let mut all: Vec<usize> = b.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        assert_eq!(b[0], vec![0]);
        assert!(split_batches(&entries(&[]), 4).is_empty());
        assert_eq!(split_batches(&entries(&[5, 5]), 8).len(), 2);
    }
}

//! Progress reporting.

use std::time::Duration;

use crate::fetcher::FileResult;

/// A point-in-time view of a running fetch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    /// Files finished (landed or failed).
    pub files_done: u64,
    /// Files admitted to this run.
    pub files_total: u64,
    /// Payload bytes processed so far (may pass `bytes_total` slightly after retries).
    pub bytes_done: u64,
    /// Payload bytes admitted to this run.
    pub bytes_total: u64,
    /// Average rate since the start, bytes per second.
    pub bytes_per_sec: f64,
    /// Estimated time left at that rate; `None` before any byte arrived.
    pub eta: Option<Duration>,
}

/// Receives progress from a fetch. Called from the transfer threads: implementations must
/// be cheap and thread-safe. Every method has an empty default.
pub trait Progress: Sync {
    /// Files and bytes admitted to the run (after the staging limit).
    fn start(&self, _files: u64, _bytes: u64) {}
    /// Bytes moved; called often (throttle rendering yourself).
    fn update(&self, _snapshot: &Snapshot) {}
    /// A file finished, landed or failed. The caller records it from the final report too.
    fn file_done(&self, _result: &FileResult) {}
    /// A batch failed and will be retried after `backoff`.
    fn retrying(&self, _attempt: u32, _backoff: Duration, _error: &crate::Error) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

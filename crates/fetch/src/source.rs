//! The `Source` seam and what a transfer gets from the fetcher.

use std::fmt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::entry::{ContentHash, Entry};
use crate::error::Error;

/// The name of the directory (inside each staged file's directory) that holds partly
/// transferred files between runs. rsync's `--partial-dir` uses the same name.
pub const PARTIAL_DIR: &str = ".tapebackup-partial";

/// A listing: the regular files under a source root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Regular files, in the order the source produced them. Symlinks, devices and
    /// directories are not listed.
    pub entries: Vec<Entry>,
    /// Non-fatal complaints (an unreadable directory): the listing may be incomplete.
    pub warnings: Vec<String>,
}

/// A place files come from: a local directory, a remote directory over SSH (rsync), or
/// over SFTP. The fetcher drives it; implement it to add a transport.
pub trait Source: Send + Sync + fmt::Debug {
    /// A short human description, e.g. `ssh://backup@host/srv/data`.
    fn describe(&self) -> String;

    /// Lists the regular files under the root.
    fn list(&self, cancel: &AtomicBool) -> Result<Listing, Error>;

    /// Transfers `job.entries` into `job.staging`, each to `entry.staged_path(staging)`,
    /// with the entry's mtime. Calls `sink.landed(i, ..)` once file `i` is complete at its
    /// final path. Keeps partial data in [`PARTIAL_DIR`] so a later call resumes.
    ///
    /// Returns `Ok` when the batch ran to its end, even if some files did not arrive
    /// (vanished, unreadable); the fetcher notices the missing ones.
    fn transfer(&self, job: &Transfer<'_>, sink: &dyn Sink) -> Result<TransferStats, Error>;
}

/// One batch for [`Source::transfer`].
#[derive(Debug)]
pub struct Transfer<'a> {
    /// The files, in order; `sink` indices refer to this slice.
    pub entries: &'a [Entry],
    /// The staging directory (exists).
    pub staging: &'a Path,
    /// A bandwidth limit shared by all batches of the run.
    pub rate: Option<&'a RateLimit>,
    /// How many batches run at once (to split a per-process limit).
    pub parallel: usize,
    /// Set to stop; the transfer then returns [`Error::Cancelled`] and keeps partial data.
    pub cancel: &'a AtomicBool,
}

/// What a transfer reports back while it runs.
pub trait Sink: Sync {
    /// `n` more payload bytes were processed.
    fn bytes(&self, n: u64);
    /// Entry `index` is complete at its staged path. `hash` is the BLAKE3 of its content
    /// when the transfer computed it on the way; otherwise the fetcher hashes the file.
    fn landed(&self, index: usize, hash: Option<ContentHash>);
    /// Entry `index` could not be transferred (the batch goes on with the others).
    fn failed(&self, index: usize, error: Error);
}

/// Counters a transfer returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Bytes received over the wire, when the transport knows (rsync's
    /// "Total bytes received"; SFTP counts payload bytes read).
    pub wire_bytes: Option<u64>,
}

/// A token bucket shared by every transfer thread of a run.
#[derive(Debug)]
pub struct RateLimit {
    bytes_per_sec: u64,
    state: Mutex<(Instant, f64)>,
}

impl RateLimit {
    /// A limit of `bytes_per_sec` (at least 1), with up to a quarter second of burst.
    pub fn new(bytes_per_sec: u64) -> Self {
        RateLimit {
            bytes_per_sec: bytes_per_sec.max(1),
            state: Mutex::new((Instant::now(), 0.0)),
        }
    }

    /// The configured rate.
    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Takes `n` bytes' worth of tokens, sleeping as long as needed.
    pub fn take(&self, n: u64) {
        let wait = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            let rate = self.bytes_per_sec as f64;
            let now = Instant::now();
            let elapsed = now.duration_since(st.0).as_secs_f64();
            // Tokens accumulate up to a quarter second of burst.
            let tokens = (st.1 + elapsed * rate).min(rate / 4.0) - n as f64;
            *st = (now, tokens);
            if tokens < 0.0 {
                Duration::from_secs_f64(-tokens / rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Which paths a listing leaves out: called with a path relative to the source's root
/// (`/`-separated bytes) and whether it is a directory; `true` leaves it out, and with a
/// directory everything under it, which is then not read at all (so an unreadable
/// directory that is left out makes no warning).
#[derive(Clone)]
pub struct Prune(Arc<PruneFn>);

/// The predicate inside a [`Prune`].
type PruneFn = dyn Fn(&[u8], bool) -> bool + Send + Sync;

impl Prune {
    /// A prune predicate (see [`Prune`]).
    pub fn new(f: impl Fn(&[u8], bool) -> bool + Send + Sync + 'static) -> Prune {
        Prune(Arc::new(f))
    }

    /// Whether the listing leaves `path` (a directory when `is_dir`) out.
    pub fn leaves_out(&self, path: &[u8], is_dir: bool) -> bool {
        (self.0)(path, is_dir)
    }
}

impl fmt::Debug for Prune {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Prune(..)")
    }
}

//! Progress reporting and cancellation for long operations.

/// Receives progress of a long operation (snapshot, merge, legacy import). Implement it
/// with a progress bar or log lines; [`Silent`] ignores everything.
pub trait Progress {
    /// The total amount of work, in the operation's unit (pages, rows), once known.
    fn set_total(&self, total: u64) {
        let _ = total;
    }
    /// Work done so far, in the same unit.
    fn set_done(&self, done: u64) {
        let _ = done;
    }
    /// A phase change ("copying files", "checking").
    fn phase(&self, name: &str) {
        let _ = name;
    }
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

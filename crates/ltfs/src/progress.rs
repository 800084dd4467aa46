//! Progress reporting for long operations.

/// Receives progress of a long operation (writing files, reading a file, checking).
///
/// Methods take `&self` so one reporter can be shared; implementations use interior
/// mutability (an indicatif bar already does).
pub trait Progress {
    /// A new item (file) starts; `total` is its size when known.
    fn item(&self, name: &str, total: Option<u64>) {
        let _ = (name, total);
    }
    /// `bytes` more bytes were transferred.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
    /// A notable event (an index written, early warning reached).
    fn note(&self, message: &str) {
        let _ = message;
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

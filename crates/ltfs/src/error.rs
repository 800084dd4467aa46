//! The crate's error type.

/// Everything that can go wrong reading or writing an LTFS volume.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The drive failed an operation.
    #[error("{operation}: {source}")]
    Drive {
        /// What we were doing (`reading the index`, `writing data`, ...).
        operation: &'static str,
        /// The drive's error.
        #[source]
        source: tape_scsi::Error,
    },
    /// The tape is full: the drive refused a write past its end-of-medium reserve.
    #[error("{device}: tape is full (end of medium) while {operation}")]
    EndOfMedium {
        /// Drive name.
        device: String,
        /// What we were writing.
        operation: &'static str,
    },
    /// The cartridge is not an LTFS volume (or not one we understand).
    #[error("not an LTFS volume: {reason}")]
    NotLtfs {
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// The medium has fewer than two partitions.
    #[error("LTFS needs two partitions, the medium has {partitions}")]
    NotPartitioned {
        /// Partitions found.
        partitions: u8,
    },
    /// A label or index is not well-formed XML of the expected shape.
    #[error("malformed LTFS {what}: {message}")]
    Xml {
        /// `label` or `index`.
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A value in a label or index is out of range or has the wrong form.
    #[error("malformed {what}: {value:?}")]
    Malformed {
        /// Which field.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// The document has a format version we do not read.
    #[error("unsupported LTFS format version {version}")]
    UnsupportedVersion {
        /// The version attribute.
        version: String,
    },
    /// The labels or indexes on the two partitions disagree.
    #[error("LTFS label mismatch: {what}")]
    LabelMismatch {
        /// What differs.
        what: &'static str,
    },
    /// No readable index was found on either partition.
    #[error("no valid LTFS index found on the volume")]
    NoIndex,
    /// The volume was not closed cleanly; run check/recover before writing to it.
    #[error("volume needs recovery before it can be written: {reason}")]
    NeedsRecovery {
        /// Why.
        reason: &'static str,
    },
    /// The volume is write protected or its index is locked.
    #[error("volume is read-only: {reason}")]
    ReadOnly {
        /// Why.
        reason: &'static str,
    },
    /// No entry at this path.
    #[error("{path}: no such file or directory on the volume")]
    NotFound {
        /// The path.
        path: String,
    },
    /// The path names a directory where a file was expected.
    #[error("{path}: is a directory")]
    IsADirectory {
        /// The path.
        path: String,
    },
    /// A path component is a file where a directory was expected.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path.
        path: String,
    },
    /// A name cannot be stored in LTFS (empty, `.`/`..`, a `/`, NUL, or over 255 characters).
    #[error("invalid LTFS file name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An extent points outside what is recorded on tape, or a record is shorter than
    /// the index says.
    #[error("file {path}: extent at partition {partition} block {block} is unreadable: {reason}")]
    BadExtent {
        /// The file.
        path: String,
        /// Partition.
        partition: u8,
        /// Block.
        block: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// Reading the source of a file being written failed.
    #[error("reading source for {path}: {source}")]
    Source {
        /// The volume path being written.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The operation was cancelled through its cancel flag.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Wraps a drive error, mapping end of medium to [`Error::EndOfMedium`].
    pub(crate) fn drive(operation: &'static str) -> impl FnOnce(tape_scsi::Error) -> Error {
        move |source| match source {
            tape_scsi::Error::EndOfMedium { device } => Error::EndOfMedium { device, operation },
            source => Error::Drive { operation, source },
        }
    }
}

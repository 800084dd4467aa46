//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong talking to a changer or a drive.
///
/// Conditions a caller branches on have their own variants; context (device, slot, block)
/// lives in fields. The SCSI-level variants are extended by the transport and sense modules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a device node or state file failed.
    #[error("{path}: {source}")]
    Io {
        /// The device node or file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The device does not implement this operation.
    #[error("{device}: {what} is not supported by this device")]
    Unsupported {
        /// Device name.
        device: String,
        /// The operation.
        what: &'static str,
    },
    /// No cartridge is loaded, or the drive is not ready.
    #[error("{device}: drive not ready (no cartridge loaded?)")]
    NotReady {
        /// Device name.
        device: String,
    },
    /// The cartridge is write protected.
    #[error("{device}: cartridge is write protected")]
    WriteProtected {
        /// Device name.
        device: String,
    },
    /// A write went past the end of the medium's reserve: the tape is full.
    #[error("{device}: end of medium reached, tape is full")]
    EndOfMedium {
        /// Device name.
        device: String,
    },
    /// A record on tape is longer than the buffer given to read it.
    #[error("{device}: record of {record_len} bytes is longer than the {buffer_len}-byte buffer")]
    RecordTooLong {
        /// Device name.
        device: String,
        /// The record's real length, when known.
        record_len: usize,
        /// The buffer's length.
        buffer_len: usize,
    },
    /// Space or locate ran into end of data or a filemark before the count was done.
    #[error("{device}: positioning stopped early at {what}")]
    PositionStoppedEarly {
        /// Device name.
        device: String,
        /// Where it stopped ("end of data", "filemark", "beginning of partition").
        what: &'static str,
    },
    /// The medium returned an unrecoverable read or write error.
    #[error("{device}: medium error at block {block}")]
    MediumError {
        /// Device name.
        device: String,
        /// Logical block where it happened.
        block: u64,
    },
    /// An element address that the library does not have (21/01), or a slot or drive
    /// number outside the inventory.
    #[error("{device}: no such element: {what}")]
    NoSuchElement {
        /// Changer device name.
        device: String,
        /// The slot, drive or address asked for.
        what: String,
    },
    /// ILLEGAL REQUEST: the device rejected a field of the CDB or parameter list.
    #[error("{device}: {command} rejected: {asc:02X}/{ascq:02X} ({asc_name})")]
    IllegalRequest {
        /// Device name.
        device: String,
        /// The command.
        command: &'static str,
        /// Additional sense code.
        asc: u8,
        /// Additional sense code qualifier.
        ascq: u8,
        /// Readable name of ASC/ASCQ.
        asc_name: &'static str,
        /// The offending CDB (or parameter list) byte, when the device says so.
        field_byte: Option<u16>,
    },
    /// A drive is open in another handle or process (like `EBUSY` on `/dev/nstN`).
    #[error("{device}: drive is in use by another process")]
    Busy {
        /// Device name.
        device: String,
    },
    /// A unit attention (e.g. medium changed, reset) ended the command; retry it.
    #[error("{device}: unit attention: {reason}")]
    UnitAttention {
        /// Device name.
        device: String,
        /// What the device reported.
        reason: &'static str,
    },
    /// A request the device or virtual library cannot carry out as asked (a partition that
    /// does not exist, an empty record, a full slot...).
    #[error("{device}: invalid request: {what}")]
    InvalidRequest {
        /// Device or library name.
        device: String,
        /// What was wrong.
        what: String,
    },
    /// A virtual cartridge directory holds something it should not (a missing block, a
    /// malformed attribute or configuration file).
    #[error("{path}: corrupt virtual cartridge: {reason}")]
    CartridgeCorrupt {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The virtual library's state file is malformed or inconsistent.
    #[error("{path}: bad virtual library state: {reason}")]
    VtlState {
        /// The state file or library directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::sense::{Sense, SenseKey};

/// Everything that can go wrong talking to a changer or a drive.
///
/// Conditions a caller branches on have their own variants; context (device, slot, block)
/// lives in fields. The SCSI-level variants carry the sense key and ASC/ASCQ with names.
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
    /// The device kept reporting "becoming ready" (NOT READY 04/01) or a unit attention
    /// for longer than the retry budget allowed.
    #[error("{device}: still becoming ready after {attempts} attempts")]
    BecomingReady {
        /// Device name.
        device: String,
        /// How many times the command was tried.
        attempts: u32,
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
        /// The record's real length, 0 when the device does not say (the st driver
        /// reports only that the record was longer).
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
    /// The command ended with CHECK CONDITION and sense data that no more specific variant
    /// describes.
    #[error("{device}: {command} failed: {key} {asc:02X}/{ascq:02X} ({asc_name})")]
    Sense {
        /// Device name.
        device: String,
        /// The command (e.g. "READ ELEMENT STATUS").
        command: &'static str,
        /// Sense key.
        key: SenseKey,
        /// Additional sense code.
        asc: u8,
        /// Additional sense code qualifier.
        ascq: u8,
        /// Readable name of ASC/ASCQ.
        asc_name: &'static str,
        /// The full decoded sense data.
        sense: Box<Sense>,
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
    /// MOVE MEDIUM: the source element is empty (3B/0E).
    #[error("{device}: source element {address} is empty")]
    SourceEmpty {
        /// Changer device name.
        device: String,
        /// Source element address.
        address: u16,
    },
    /// MOVE MEDIUM: the destination element is full (3B/0D).
    #[error("{device}: destination element {address} is full")]
    DestinationFull {
        /// Changer device name.
        device: String,
        /// Destination element address.
        address: u16,
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
    /// The command ended with a SCSI status other than GOOD or CHECK CONDITION
    /// (BUSY, RESERVATION CONFLICT, TASK SET FULL...).
    #[error("{device}: {command} ended with SCSI status {status:#04x}")]
    Status {
        /// Device name.
        device: String,
        /// The command.
        command: &'static str,
        /// The status byte.
        status: u8,
    },
    /// The host adapter or the kernel driver reported a failure (SG_IO host/driver status).
    #[error(
        "{device}: {command}: transport failure (host status {host_status:#x}, driver status {driver_status:#x})"
    )]
    Transport {
        /// Device name.
        device: String,
        /// The command.
        command: &'static str,
        /// sg_io_hdr host_status (DID_*).
        host_status: u16,
        /// sg_io_hdr driver_status (DRIVER_*).
        driver_status: u16,
    },
    /// The command did not complete within its timeout.
    #[error("{device}: {command} timed out after {timeout:?}")]
    Timeout {
        /// Device name.
        device: String,
        /// The command.
        command: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A device reply could not be decoded.
    #[error("{device}: {command}: bad reply")]
    Decode {
        /// Device name.
        device: String,
        /// The command whose reply was bad.
        command: &'static str,
        /// What was wrong.
        #[source]
        source: DecodeError,
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
    /// A device asked for by serial number or path was not found.
    #[error("no {kind} with {what} found")]
    DeviceNotFound {
        /// "changer" or "tape drive".
        kind: &'static str,
        /// The serial or path that was looked for.
        what: String,
    },
}

/// A device reply (sense data, element status, log page, MAM...) is malformed.
///
/// Pure decoders return this; [`Error::Decode`] wraps it with the device and command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}: {problem}")]
pub struct DecodeError {
    /// The structure being decoded (e.g. "element status page header").
    pub what: &'static str,
    /// Byte offset in the reply where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub problem: DecodeProblem,
}

/// The kind of problem a [`DecodeError`] reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeProblem {
    /// The reply ends before the structure does.
    #[error("reply too short (need {needed} bytes, have {available})")]
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// A field holds a value the standard does not allow.
    #[error("unexpected value {value:#x}")]
    BadValue {
        /// The offending value.
        value: u64,
    },
}

impl DecodeError {
    pub(crate) fn truncated(
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    ) -> Self {
        DecodeError {
            what,
            offset,
            problem: DecodeProblem::Truncated { needed, available },
        }
    }
    pub(crate) fn bad_value(what: &'static str, offset: usize, value: u64) -> Self {
        DecodeError {
            what,
            offset,
            problem: DecodeProblem::BadValue { value },
        }
    }
}

impl Error {
    /// The sense data behind this error, when it came from a CHECK CONDITION that no more
    /// specific variant describes.
    pub fn sense(&self) -> Option<&Sense> {
        match self {
            Error::Sense { sense, .. } => Some(sense),
            _ => None,
        }
    }

    /// Maps a CHECK CONDITION to the most specific variant.
    ///
    /// `element` gives the source and destination addresses of a MOVE MEDIUM so that
    /// "source empty" and "destination full" name the element.
    pub(crate) fn from_sense(
        device: String,
        command: &'static str,
        sense: Sense,
        element: Option<(u16, u16)>,
    ) -> Error {
        let (asc, ascq) = (sense.asc, sense.ascq);
        let asc_name = crate::sense::asc_name(asc, ascq);
        match sense.key {
            SenseKey::NotReady if asc == 0x3A => return Error::NotReady { device },
            SenseKey::NotReady if asc == 0x04 && ascq == 0x01 => {
                return Error::BecomingReady {
                    device,
                    attempts: 1,
                };
            }
            SenseKey::DataProtect if asc == 0x27 => return Error::WriteProtected { device },
            SenseKey::VolumeOverflow => return Error::EndOfMedium { device },
            SenseKey::IllegalRequest => {
                if asc == 0x20 && ascq == 0x00 {
                    return Error::Unsupported {
                        device,
                        what: command,
                    };
                }
                if let Some((src, dst)) = element {
                    if asc == 0x3B && ascq == 0x0E {
                        return Error::SourceEmpty {
                            device,
                            address: src,
                        };
                    }
                    if asc == 0x3B && ascq == 0x0D {
                        return Error::DestinationFull {
                            device,
                            address: dst,
                        };
                    }
                    if asc == 0x21 && ascq == 0x01 {
                        return Error::NoSuchElement {
                            device,
                            what: format!("element address {src} or {dst}"),
                        };
                    }
                }
                return Error::IllegalRequest {
                    device,
                    command,
                    asc,
                    ascq,
                    asc_name,
                    field_byte: sense.field_pointer.filter(|f| f.in_cdb).map(|f| f.byte),
                };
            }
            _ => {}
        }
        Error::Sense {
            device,
            command,
            key: sense.key,
            asc,
            ascq,
            asc_name,
            sense: Box::new(sense),
        }
    }
}

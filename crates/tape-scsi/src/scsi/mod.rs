//! SCSI commands as pure functions: CDB builders (`*_cdb`) and reply decoders (`decode_*`),
//! plus the one place that turns a [`Completion`] into `Ok` or a typed [`Error`].
//!
//! Opcodes are named constants; every CDB field is commented with its SPC/SSC/SMC name.

pub mod inquiry;
pub mod position;
pub mod smc;

use std::time::Duration;

use crate::Error;
use crate::sense::parse_sense;
use crate::transport::{Completion, DataDirection, ScsiTransport, status};

/// Operation codes used by this crate.
pub mod opcode {
    /// TEST UNIT READY (SPC).
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// REWIND (SSC).
    pub const REWIND: u8 = 0x01;
    /// REQUEST SENSE (SPC).
    pub const REQUEST_SENSE: u8 = 0x03;
    /// INITIALIZE ELEMENT STATUS (SMC).
    pub const INITIALIZE_ELEMENT_STATUS: u8 = 0x07;
    /// INQUIRY (SPC).
    pub const INQUIRY: u8 = 0x12;
    /// MODE SENSE(6) (SPC).
    pub const MODE_SENSE_6: u8 = 0x1A;
    /// LOAD UNLOAD (SSC).
    pub const LOAD_UNLOAD: u8 = 0x1B;
    /// PREVENT ALLOW MEDIUM REMOVAL (SPC/SMC).
    pub const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
    /// READ POSITION (SSC).
    pub const READ_POSITION: u8 = 0x34;
    /// LOG SENSE (SPC).
    pub const LOG_SENSE: u8 = 0x4D;
    /// MODE SENSE(10) (SPC).
    pub const MODE_SENSE_10: u8 = 0x5A;
    /// READ ATTRIBUTE (SPC).
    pub const READ_ATTRIBUTE: u8 = 0x8C;
    /// WRITE ATTRIBUTE (SPC).
    pub const WRITE_ATTRIBUTE: u8 = 0x8D;
    /// MOVE MEDIUM (SMC).
    pub const MOVE_MEDIUM: u8 = 0xA5;
    /// READ ELEMENT STATUS (SMC).
    pub const READ_ELEMENT_STATUS: u8 = 0xB8;
}

/// Per-command timeouts. Libraries take minutes to move a cartridge and far longer to
/// inventory a large library with a barcode scan; LOCATE and FORMAT can cross a whole tape.
pub mod timeouts {
    use std::time::Duration;
    /// INQUIRY, TEST UNIT READY, MODE SENSE, LOG SENSE, REQUEST SENSE, PREVENT ALLOW.
    pub const SHORT: Duration = Duration::from_secs(60);
    /// READ ELEMENT STATUS (may trigger a scan), READ/WRITE ATTRIBUTE, READ POSITION.
    pub const MEDIUM: Duration = Duration::from_secs(5 * 60);
    /// MOVE MEDIUM (robot move, may include a drive unload).
    pub const MOVE_MEDIUM: Duration = Duration::from_secs(15 * 60);
    /// INITIALIZE ELEMENT STATUS (full library barcode scan).
    pub const INITIALIZE_ELEMENT_STATUS: Duration = Duration::from_secs(60 * 60);
    /// LOCATE / SPACE / REWIND across a whole tape.
    pub const LOCATE: Duration = Duration::from_secs(3 * 60 * 60);
    /// FORMAT MEDIUM (partitioning).
    pub const FORMAT: Duration = Duration::from_secs(4 * 60 * 60);
}

/// TEST UNIT READY: `00h`, all other bytes zero.
pub fn test_unit_ready_cdb() -> [u8; 6] {
    [opcode::TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// REQUEST SENSE with an 8-bit allocation length.
pub fn request_sense_cdb(allocation: u8) -> [u8; 6] {
    // byte 1 bit 0 DESC = 0: fixed format.
    [opcode::REQUEST_SENSE, 0, 0, 0, allocation, 0]
}

/// PREVENT ALLOW MEDIUM REMOVAL: `prevent` = true locks the medium (or the magazine).
pub fn prevent_allow_medium_removal_cdb(prevent: bool) -> [u8; 6] {
    // byte 4 bits 1..0 PREVENT: 01b prevent, 00b allow.
    [
        opcode::PREVENT_ALLOW_MEDIUM_REMOVAL,
        0,
        0,
        0,
        u8::from(prevent),
        0,
    ]
}

/// LOG SENSE for the current cumulative values (PC = 01b) of `page`/`subpage`.
pub fn log_sense_cdb(page: u8, subpage: u8, allocation: u16) -> [u8; 10] {
    let a = allocation.to_be_bytes();
    [
        opcode::LOG_SENSE,
        0,                    // PPC = 0, SP = 0
        0x40 | (page & 0x3F), // PC = 01b (cumulative values) | PAGE CODE
        subpage,              // SUBPAGE CODE
        0,                    // reserved
        0,                    // PARAMETER POINTER (MSB)
        0,                    // PARAMETER POINTER (LSB)
        a[0],                 // ALLOCATION LENGTH (MSB)
        a[1],                 // ALLOCATION LENGTH (LSB)
        0,                    // CONTROL
    ]
}

/// READ ATTRIBUTE service actions.
pub mod attribute_service {
    /// ATTRIBUTE VALUES: attribute headers and values from FIRST ATTRIBUTE IDENTIFIER on.
    pub const VALUES: u8 = 0x00;
    /// ATTRIBUTE LIST: the identifiers present.
    pub const LIST: u8 = 0x01;
}

/// READ ATTRIBUTE (16 bytes).
pub fn read_attribute_cdb(
    service_action: u8,
    partition: u8,
    first_attribute: u16,
    allocation: u32,
) -> [u8; 16] {
    let id = first_attribute.to_be_bytes();
    let a = allocation.to_be_bytes();
    [
        opcode::READ_ATTRIBUTE,
        service_action & 0x1F, // SERVICE ACTION
        0,                     // obsolete / restricted (element address, MSB)
        0,                     // (element address, LSB)
        0,                     // restricted
        0,                     // reserved
        0,                     // reserved
        0,                     // LOGICAL VOLUME NUMBER
        0,                     // reserved
        partition,             // PARTITION NUMBER
        id[0],                 // FIRST ATTRIBUTE IDENTIFIER (MSB)
        id[1],                 // FIRST ATTRIBUTE IDENTIFIER (LSB)
        a[0],                  // ALLOCATION LENGTH (4 bytes)
        a[1],
        a[2],
        a[3],
    ]
}

/// WRITE ATTRIBUTE (16 bytes) of a `parameter_len`-byte parameter list, write-through.
pub fn write_attribute_cdb(partition: u8, parameter_len: u32) -> [u8; 16] {
    let a = parameter_len.to_be_bytes();
    [
        opcode::WRITE_ATTRIBUTE,
        0x01, // WTC = 1: write through to the cartridge memory
        0,
        0,
        0,
        0,
        0,         // restricted / reserved
        0,         // LOGICAL VOLUME NUMBER
        0,         // reserved
        partition, // PARTITION NUMBER
        0,
        0, // reserved
        a[0],
        a[1],
        a[2],
        a[3], // PARAMETER LIST LENGTH
    ]
}

/// How a command that was expected to succeed is checked.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ctx {
    /// MOVE MEDIUM source and destination, for "source empty" / "destination full".
    pub(crate) element: Option<(u16, u16)>,
}

/// Runs one command and maps a non-GOOD completion to a typed error. Returns the number
/// of bytes transferred. RECOVERED ERROR and NO SENSE without flags count as success.
pub(crate) fn execute<T: ScsiTransport + ?Sized>(
    t: &mut T,
    command: &'static str,
    cdb: &[u8],
    data: DataDirection<'_>,
    timeout: Duration,
    ctx: Ctx,
) -> Result<usize, Error> {
    let completion = t.execute(cdb, data, timeout)?;
    check(&t.name(), command, completion, ctx)
}

/// Maps a completion to the transferred length or a typed error.
pub(crate) fn check(
    device: &str,
    command: &'static str,
    c: Completion,
    ctx: Ctx,
) -> Result<usize, Error> {
    match c.status {
        status::GOOD | status::CONDITION_MET => Ok(c.transferred),
        status::CHECK_CONDITION => {
            let sense = parse_sense(&c.sense).map_err(|source| Error::Decode {
                device: device.to_owned(),
                command,
                source,
            })?;
            use crate::sense::SenseKey;
            let harmless = sense.key == SenseKey::RecoveredError
                || (sense.key == SenseKey::NoSense && !sense.filemark && !sense.eom && !sense.ili);
            if harmless {
                return Ok(c.transferred);
            }
            Err(Error::from_sense(
                device.to_owned(),
                command,
                sense,
                ctx.element,
            ))
        }
        other => Err(Error::Status {
            device: device.to_owned(),
            command,
            status: other,
        }),
    }
}

/// How often to retry a command while the device is becoming ready or reports a unit
/// attention (reset, medium changed). Libraries report NOT READY 04/01 for minutes after
/// power-on or a door close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (at least 1).
    pub attempts: u32,
    /// Pause between attempts.
    pub delay: Duration,
}

impl Default for RetryPolicy {
    /// 60 attempts, 5 s apart: five minutes.
    fn default() -> Self {
        RetryPolicy {
            attempts: 60,
            delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            delay: Duration::ZERO,
        }
    }
}

/// Runs `op` and retries it while the device reports "becoming ready" or a unit
/// attention, up to `policy.attempts` times.
pub(crate) fn with_retry<R>(
    device: &str,
    policy: RetryPolicy,
    mut op: impl FnMut() -> Result<R, Error>,
) -> Result<R, Error> {
    let attempts = policy.attempts.max(1);
    let mut tried = 0;
    loop {
        tried += 1;
        let result = op();
        let transient = match &result {
            Err(Error::BecomingReady { .. }) => true,
            Err(Error::Sense { sense, .. }) => sense.is_transient(),
            _ => false,
        };
        if !transient {
            return result;
        }
        if tried >= attempts {
            return match result {
                Err(Error::BecomingReady { .. }) => Err(Error::BecomingReady {
                    device: device.to_owned(),
                    attempts: tried,
                }),
                other => other,
            };
        }
        if !policy.delay.is_zero() {
            std::thread::sleep(policy.delay);
        }
    }
}

pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([byte(b, off), byte(b, off + 1)])
}

pub(crate) fn be24(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([0, byte(b, off), byte(b, off + 1), byte(b, off + 2)])
}

pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([
        byte(b, off),
        byte(b, off + 1),
        byte(b, off + 2),
        byte(b, off + 3),
    ])
}

pub(crate) fn be64(b: &[u8], off: usize) -> u64 {
    let mut v = [0u8; 8];
    for (i, x) in v.iter_mut().enumerate() {
        *x = byte(b, off + i);
    }
    u64::from_be_bytes(v)
}

/// Byte at `off`, or 0 past the end (callers check lengths first; this keeps it panic-free).
pub(crate) fn byte(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

/// ASCII field with trailing (and leading) spaces and NULs trimmed; non-printable bytes
/// replaced. Empty after trimming gives an empty string.
pub(crate) fn ascii_field(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .map(|&c| {
            if (0x20..0x7F).contains(&c) {
                c as char
            } else if c == 0 {
                ' '
            } else {
                '?'
            }
        })
        .collect();
    s.trim().to_owned()
}

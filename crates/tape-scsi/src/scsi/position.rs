//! READ POSITION (SSC-5 §6.6), long form: partition and logical object number in 64 bits,
//! which the st driver's MTIOCPOS (32-bit block number, no partition) cannot give.

use super::{be32, be64, opcode};
use crate::error::DecodeError;

/// READ POSITION service action LONG FORM.
pub const READ_POSITION_LONG: u8 = 0x06;

/// READ POSITION CDB with the long form service action.
pub fn read_position_long_cdb() -> [u8; 10] {
    // byte 1 SERVICE ACTION; bytes 7-8 ALLOCATION LENGTH (0 for short/long forms).
    [
        opcode::READ_POSITION,
        READ_POSITION_LONG,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// A decoded long-form READ POSITION reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPosition {
    /// BOP: at the beginning of the partition.
    pub beginning_of_partition: bool,
    /// EOP: at or past the end of the partition.
    pub end_of_partition: bool,
    /// BPEW: beyond the programmable early warning.
    pub beyond_early_warning: bool,
    /// PARTITION NUMBER, `None` when MPU (mapped position unknown) is set.
    pub partition: Option<u32>,
    /// LOGICAL OBJECT NUMBER, `None` when LONU (position unknown) is set.
    pub logical_object: Option<u64>,
    /// LOGICAL FILE IDENTIFIER (filemarks before this position), with the object number.
    pub logical_file: Option<u64>,
}

/// Decodes the 32-byte long form.
pub fn decode_read_position_long(b: &[u8]) -> Result<LongPosition, DecodeError> {
    if b.len() < 24 {
        return Err(DecodeError::truncated(
            "READ POSITION long form",
            0,
            32,
            b.len(),
        ));
    }
    let flags = b[0];
    // Bits 5..4 are reserved in the long form. tgt puts its reply length there (20h) and
    // zeros everywhere else: a stub, so treat any reserved bit as "position unknown".
    let stub = flags & 0x30 != 0;
    let mpu = stub || flags & 0x08 != 0;
    let lonu = stub || flags & 0x04 != 0;
    Ok(LongPosition {
        beginning_of_partition: flags & 0x80 != 0,
        end_of_partition: flags & 0x40 != 0,
        beyond_early_warning: flags & 0x01 != 0,
        partition: (!mpu).then(|| be32(b, 4)),
        logical_object: (!lonu).then(|| be64(b, 8)),
        logical_file: (!lonu).then(|| be64(b, 16)),
    })
}

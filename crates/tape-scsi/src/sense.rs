//! Sense data: fixed (70h/71h) and descriptor (72h/73h) formats (SPC-5 §4.4).
//!
//! [`parse_sense`] is a pure function over untrusted bytes; it never panics and reads only
//! what the reply contains and its ADDITIONAL SENSE LENGTH covers.

use std::fmt;

use crate::error::DecodeError;

/// The SENSE KEY (SPC-5 table 51).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SenseKey {
    /// 0h: no sense (may still carry FILEMARK, EOM or ILI).
    NoSense,
    /// 1h: the command succeeded after recovery.
    RecoveredError,
    /// 2h: the logical unit is not ready.
    NotReady,
    /// 3h: unrecoverable error on the medium.
    MediumError,
    /// 4h: hardware failure.
    HardwareError,
    /// 5h: the CDB or parameter list is wrong for this device.
    IllegalRequest,
    /// 6h: unit attention (reset, medium changed, mode parameters changed...).
    UnitAttention,
    /// 7h: write protected.
    DataProtect,
    /// 8h: blank check (end of data on tape).
    BlankCheck,
    /// 9h: vendor specific.
    VendorSpecific,
    /// Ah: copy aborted.
    CopyAborted,
    /// Bh: the device aborted the command.
    AbortedCommand,
    /// Dh: volume overflow (physical end of medium).
    VolumeOverflow,
    /// Eh: miscompare.
    Miscompare,
    /// Fh and Ch: reserved values.
    Reserved(u8),
}

impl SenseKey {
    /// The key for its 4-bit code.
    pub fn from_code(code: u8) -> SenseKey {
        match code & 0x0F {
            0x0 => SenseKey::NoSense,
            0x1 => SenseKey::RecoveredError,
            0x2 => SenseKey::NotReady,
            0x3 => SenseKey::MediumError,
            0x4 => SenseKey::HardwareError,
            0x5 => SenseKey::IllegalRequest,
            0x6 => SenseKey::UnitAttention,
            0x7 => SenseKey::DataProtect,
            0x8 => SenseKey::BlankCheck,
            0x9 => SenseKey::VendorSpecific,
            0xA => SenseKey::CopyAborted,
            0xB => SenseKey::AbortedCommand,
            0xD => SenseKey::VolumeOverflow,
            0xE => SenseKey::Miscompare,
            other => SenseKey::Reserved(other),
        }
    }

    /// The 4-bit code.
    pub fn code(self) -> u8 {
        match self {
            SenseKey::NoSense => 0x0,
            SenseKey::RecoveredError => 0x1,
            SenseKey::NotReady => 0x2,
            SenseKey::MediumError => 0x3,
            SenseKey::HardwareError => 0x4,
            SenseKey::IllegalRequest => 0x5,
            SenseKey::UnitAttention => 0x6,
            SenseKey::DataProtect => 0x7,
            SenseKey::BlankCheck => 0x8,
            SenseKey::VendorSpecific => 0x9,
            SenseKey::CopyAborted => 0xA,
            SenseKey::AbortedCommand => 0xB,
            SenseKey::VolumeOverflow => 0xD,
            SenseKey::Miscompare => 0xE,
            SenseKey::Reserved(c) => c & 0x0F,
        }
    }

    /// Name as SPC writes it.
    pub fn name(self) -> &'static str {
        match self {
            SenseKey::NoSense => "NO SENSE",
            SenseKey::RecoveredError => "RECOVERED ERROR",
            SenseKey::NotReady => "NOT READY",
            SenseKey::MediumError => "MEDIUM ERROR",
            SenseKey::HardwareError => "HARDWARE ERROR",
            SenseKey::IllegalRequest => "ILLEGAL REQUEST",
            SenseKey::UnitAttention => "UNIT ATTENTION",
            SenseKey::DataProtect => "DATA PROTECT",
            SenseKey::BlankCheck => "BLANK CHECK",
            SenseKey::VendorSpecific => "VENDOR SPECIFIC",
            SenseKey::CopyAborted => "COPY ABORTED",
            SenseKey::AbortedCommand => "ABORTED COMMAND",
            SenseKey::VolumeOverflow => "VOLUME OVERFLOW",
            SenseKey::Miscompare => "MISCOMPARE",
            SenseKey::Reserved(_) => "RESERVED",
        }
    }
}

impl fmt::Display for SenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SENSE KEY SPECIFIC field pointer (SKSV set, ILLEGAL REQUEST): which byte was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPointer {
    /// True: the error is in the CDB; false: in the parameter list.
    pub in_cdb: bool,
    /// The bit within the byte, when the device gives one.
    pub bit: Option<u8>,
    /// The byte number.
    pub byte: u16,
}

/// Decoded sense data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sense {
    /// RESPONSE CODE (70h, 71h, 72h, 73h).
    pub response_code: u8,
    /// Deferred error (71h/73h) rather than current (70h/72h).
    pub deferred: bool,
    /// Descriptor format (72h/73h) rather than fixed (70h/71h).
    pub descriptor_format: bool,
    /// SENSE KEY.
    pub key: SenseKey,
    /// ADDITIONAL SENSE CODE (0 when the sense is too short to carry it).
    pub asc: u8,
    /// ADDITIONAL SENSE CODE QUALIFIER.
    pub ascq: u8,
    /// FILEMARK: a filemark was read or spaced over.
    pub filemark: bool,
    /// EOM: end of medium (early warning on write, beginning/end of partition on space).
    pub eom: bool,
    /// ILI: the record length did not match the requested length.
    pub ili: bool,
    /// The INFORMATION field when VALID is set, sign-extended: for a read with ILI it is
    /// the requested length minus the record length (negative when the record was longer),
    /// for a space the residual count, for a write the residue.
    pub information: Option<i64>,
    /// Where in the CDB or parameter list the device found an invalid field.
    pub field_pointer: Option<FieldPointer>,
}

impl Sense {
    /// Readable name of ASC/ASCQ (see [`asc_name`]).
    pub fn asc_name(&self) -> &'static str {
        asc_name(self.asc, self.ascq)
    }

    /// True for NOT READY, 04/01 "becoming ready" and unit attentions, which a retry cures.
    pub fn is_transient(&self) -> bool {
        matches!(self.key, SenseKey::UnitAttention)
            || (self.key == SenseKey::NotReady
                && self.asc == 0x04
                && matches!(self.ascq, 0x01 | 0x07 | 0x08))
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02X}/{:02X} ({})",
            self.key,
            self.asc,
            self.ascq,
            self.asc_name()
        )?;
        if self.filemark {
            f.write_str(" FILEMARK")?;
        }
        if self.eom {
            f.write_str(" EOM")?;
        }
        if self.ili {
            f.write_str(" ILI")?;
        }
        if let Some(info) = self.information {
            write!(f, " information={info}")?;
        }
        Ok(())
    }
}

fn sks_field_pointer(b: [u8; 3], key: SenseKey) -> Option<FieldPointer> {
    // SKSV (byte 0 bit 7); for ILLEGAL REQUEST: C/D bit 6, BPV bit 3, BIT POINTER 2..0.
    if b[0] & 0x80 == 0 || key != SenseKey::IllegalRequest {
        return None;
    }
    Some(FieldPointer {
        in_cdb: b[0] & 0x40 != 0,
        bit: (b[0] & 0x08 != 0).then_some(b[0] & 0x07),
        byte: u16::from_be_bytes([b[1], b[2]]),
    })
}

/// Decodes sense data in fixed or descriptor format.
///
/// Reads at most `8 + ADDITIONAL SENSE LENGTH` bytes (fixed: `8 + byte 7`). Fields beyond
/// what the data carries are left at zero/`None`, as SPC allows devices to return short
/// sense. Errors: empty input, an unknown response code, or a descriptor-format header
/// shorter than 4 bytes.
pub fn parse_sense(bytes: &[u8]) -> Result<Sense, DecodeError> {
    let first = *bytes
        .first()
        .ok_or_else(|| DecodeError::truncated("sense data", 0, 1, 0))?;
    let response_code = first & 0x7F;
    match response_code {
        0x70 | 0x71 => parse_fixed(bytes, response_code),
        0x72 | 0x73 => parse_descriptor(bytes, response_code),
        other => Err(DecodeError::bad_value(
            "sense response code",
            0,
            u64::from(other),
        )),
    }
}

fn parse_fixed(bytes: &[u8], response_code: u8) -> Result<Sense, DecodeError> {
    // Byte 7 = ADDITIONAL SENSE LENGTH; the sense ends at 8 + that, or where the bytes end.
    let end = match bytes.get(7) {
        Some(&n) => bytes.len().min(8 + usize::from(n)),
        None => bytes.len(),
    };
    let b = &bytes[..end];
    let byte = |i: usize| b.get(i).copied().unwrap_or(0);
    if b.len() < 3 {
        return Err(DecodeError::truncated(
            "fixed sense data",
            b.len(),
            3,
            b.len(),
        ));
    }
    let flags = byte(2);
    let key = SenseKey::from_code(flags);
    let valid = bytes[0] & 0x80 != 0;
    // INFORMATION, bytes 3..7, a signed 32-bit quantity for residues.
    let information = (valid && b.len() >= 7)
        .then(|| i64::from(i32::from_be_bytes([byte(3), byte(4), byte(5), byte(6)])));
    let field_pointer = if b.len() >= 18 {
        sks_field_pointer([byte(15), byte(16), byte(17)], key)
    } else {
        None
    };
    Ok(Sense {
        response_code,
        deferred: response_code == 0x71,
        descriptor_format: false,
        key,
        asc: byte(12),
        ascq: byte(13),
        filemark: flags & 0x80 != 0,
        eom: flags & 0x40 != 0,
        ili: flags & 0x20 != 0,
        information,
        field_pointer,
    })
}

fn parse_descriptor(bytes: &[u8], response_code: u8) -> Result<Sense, DecodeError> {
    if bytes.len() < 4 {
        return Err(DecodeError::truncated(
            "descriptor sense header",
            0,
            4,
            bytes.len(),
        ));
    }
    let key = SenseKey::from_code(bytes[1]);
    let mut sense = Sense {
        response_code,
        deferred: response_code == 0x73,
        descriptor_format: true,
        key,
        asc: bytes[2],
        ascq: bytes[3],
        filemark: false,
        eom: false,
        ili: false,
        information: None,
        field_pointer: None,
    };
    // Byte 7 = ADDITIONAL SENSE LENGTH: the descriptors that follow the 8-byte header.
    let Some(&addl) = bytes.get(7) else {
        return Ok(sense);
    };
    let end = bytes.len().min(8 + usize::from(addl));
    let mut off = 8;
    while off + 2 <= end {
        let kind = bytes[off];
        let len = usize::from(bytes[off + 1]);
        let body_end = off + 2 + len;
        if body_end > end {
            break; // A cut descriptor: keep what was decoded so far.
        }
        let d = &bytes[off..body_end];
        match kind {
            // Information: 00h, 0Ah, VALID in byte 2 bit 7, 8-byte INFORMATION at 4..12.
            0x00 if d.len() >= 12 && d[2] & 0x80 != 0 => {
                let mut v = [0u8; 8];
                v.copy_from_slice(&d[4..12]);
                sense.information = Some(i64::from_be_bytes(v));
            }
            // Sense key specific: 02h, 06h, SKSV + 2 bytes at 4..7.
            0x02 if d.len() >= 7 => {
                sense.field_pointer = sks_field_pointer([d[4], d[5], d[6]], key);
            }
            // Stream commands: 04h, 02h, byte 3 = FILEMARK | EOM | ILI.
            0x04 if d.len() >= 4 => {
                sense.filemark = d[3] & 0x80 != 0;
                sense.eom = d[3] & 0x40 != 0;
                sense.ili = d[3] & 0x20 != 0;
            }
            _ => {}
        }
        off = body_end;
    }
    Ok(sense)
}

/// Encodes fixed-format sense (70h, 18 bytes, or longer with `extra` zero bytes).
///
/// The inverse of [`parse_sense`] for the fields fixed format carries; emulators (the
/// virtual library) answer CHECK CONDITION with it.
pub fn encode_fixed_sense(sense: &Sense) -> Vec<u8> {
    let mut b = vec![0u8; 18];
    b[0] = if sense.deferred { 0x71 } else { 0x70 };
    if let Some(info) = sense.information {
        b[0] |= 0x80;
        // Fixed format keeps 32 bits of INFORMATION.
        b[3..7].copy_from_slice(&(info as i32).to_be_bytes());
    }
    b[2] = sense.key.code()
        | if sense.filemark { 0x80 } else { 0 }
        | if sense.eom { 0x40 } else { 0 }
        | if sense.ili { 0x20 } else { 0 };
    b[7] = 10; // ADDITIONAL SENSE LENGTH: bytes 8..18.
    b[12] = sense.asc;
    b[13] = sense.ascq;
    if let Some(fp) = sense.field_pointer {
        b[15] =
            0x80 | if fp.in_cdb { 0x40 } else { 0 } | fp.bit.map_or(0, |bit| 0x08 | (bit & 0x07));
        b[16..18].copy_from_slice(&fp.byte.to_be_bytes());
    }
    b
}

/// Readable names of the additional sense codes tape drives and changers report
/// (SPC-5 / SSC-5 / SMC-3 annex). Unknown pairs get a generic name.
pub fn asc_name(asc: u8, ascq: u8) -> &'static str {
    match (asc, ascq) {
        (0x00, 0x00) => "no additional sense information",
        (0x00, 0x01) => "filemark detected",
        (0x00, 0x02) => "end-of-partition/medium detected",
        (0x00, 0x03) => "setmark detected",
        (0x00, 0x04) => "beginning-of-partition/medium detected",
        (0x00, 0x05) => "end-of-data detected",
        (0x00, 0x16) => "operation in progress",
        (0x00, 0x17) => "cleaning requested",
        (0x03, 0x02) => "excessive write errors",
        (0x04, 0x00) => "logical unit not ready, cause not reportable",
        (0x04, 0x01) => "logical unit is in process of becoming ready",
        (0x04, 0x02) => "logical unit not ready, initializing command required",
        (0x04, 0x03) => "logical unit not ready, manual intervention required",
        (0x04, 0x04) => "logical unit not ready, format in progress",
        (0x04, 0x07) => "logical unit not ready, operation in progress",
        (0x04, 0x08) => "logical unit not ready, long write in progress",
        (0x04, 0x12) => "logical unit not ready, offline",
        (0x04, 0x83) => "logical unit not ready, door open",
        (0x08, 0x00) => "logical unit communication failure",
        (0x0C, 0x00) => "write error",
        (0x11, 0x00) => "unrecovered read error",
        (0x14, 0x00) => "recorded entity not found",
        (0x14, 0x01) => "record not found",
        (0x14, 0x03) => "end-of-data not found",
        (0x1A, 0x00) => "parameter list length error",
        (0x20, 0x00) => "invalid command operation code",
        (0x21, 0x01) => "invalid element address",
        (0x24, 0x00) => "invalid field in CDB",
        (0x25, 0x00) => "logical unit not supported",
        (0x26, 0x00) => "invalid field in parameter list",
        (0x26, 0x01) => "parameter not supported",
        (0x26, 0x02) => "parameter value invalid",
        (0x27, 0x00) => "write protected",
        (0x28, 0x00) => "not ready to ready change, medium may have changed",
        (0x28, 0x01) => "import or export element accessed",
        (0x29, 0x00) => "power on, reset, or bus device reset occurred",
        (0x29, 0x01) => "power on occurred",
        (0x29, 0x02) => "SCSI bus reset occurred",
        (0x29, 0x03) => "bus device reset function occurred",
        (0x29, 0x04) => "device internal reset",
        (0x2A, 0x01) => "mode parameters changed",
        (0x2A, 0x02) => "log parameters changed",
        (0x2C, 0x00) => "command sequence error",
        (0x30, 0x00) => "incompatible medium installed",
        (0x30, 0x01) => "cannot read medium, unknown format",
        (0x30, 0x02) => "cannot read medium, incompatible format",
        (0x30, 0x03) => "cleaning cartridge installed",
        (0x30, 0x05) => "cannot write medium, incompatible format",
        (0x30, 0x07) => "cleaning failure",
        (0x31, 0x00) => "medium format corrupted",
        (0x33, 0x00) => "tape length error",
        (0x37, 0x00) => "rounded parameter",
        (0x39, 0x00) => "saving parameters not supported",
        (0x3A, 0x00) => "medium not present",
        (0x3A, 0x01) => "medium not present, tray closed",
        (0x3A, 0x02) => "medium not present, tray open",
        (0x3A, 0x04) => "medium not present, medium auxiliary memory accessible",
        (0x3B, 0x00) => "sequential positioning error",
        (0x3B, 0x01) => "tape position error at beginning-of-medium",
        (0x3B, 0x02) => "tape position error at end-of-medium",
        (0x3B, 0x08) => "reposition error",
        (0x3B, 0x0D) => "medium destination element full",
        (0x3B, 0x0E) => "medium source element empty",
        (0x3B, 0x11) => "medium magazine not accessible",
        (0x3B, 0x12) => "medium magazine removed",
        (0x3B, 0x13) => "medium magazine inserted",
        (0x3B, 0x14) => "medium magazine locked",
        (0x3B, 0x15) => "medium magazine unlocked",
        (0x3B, 0x1A) => "data transfer device removed",
        (0x3B, 0x1B) => "data transfer device inserted",
        (0x3D, 0x00) => "invalid bits in identify message",
        (0x3E, 0x00) => "logical unit has not self-configured yet",
        (0x3F, 0x01) => "microcode has been changed",
        (0x40, 0x00) => "diagnostic failure",
        (0x44, 0x00) => "internal target failure",
        (0x47, 0x00) => "SCSI parity error",
        (0x4E, 0x00) => "overlapped commands attempted",
        (0x50, 0x00) => "write append error",
        (0x51, 0x00) => "erase failure",
        (0x52, 0x00) => "cartridge fault",
        (0x53, 0x00) => "media load or eject failed",
        (0x53, 0x01) => "unload tape failure",
        (0x53, 0x02) => "medium removal prevented",
        (0x53, 0x04) => "medium thread or unthread failure",
        (0x55, 0x06) => "auxiliary memory out of space",
        (0x5A, 0x01) => "operator medium removal request",
        (0x5B, 0x01) => "threshold condition met",
        (0x5D, 0x00) => "failure prediction threshold exceeded",
        (0x80..=0xFF, _) => "vendor specific",
        (0x04, _) => "logical unit not ready",
        (0x3A, _) => "medium not present",
        _ => "unknown additional sense code",
    }
}

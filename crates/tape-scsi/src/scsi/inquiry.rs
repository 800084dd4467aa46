//! INQUIRY: standard data and the vital product data pages 80h (unit serial number) and
//! 83h (device identification).

use super::{ascii_field, be16, byte, opcode};
use crate::error::DecodeError;

/// INQUIRY CDB. `vpd_page = None` asks for standard data, `Some(p)` sets EVPD and page `p`.
pub fn inquiry_cdb(vpd_page: Option<u8>, allocation: u16) -> [u8; 6] {
    let a = allocation.to_be_bytes();
    [
        opcode::INQUIRY,
        u8::from(vpd_page.is_some()), // EVPD
        vpd_page.unwrap_or(0),        // PAGE CODE
        a[0],                         // ALLOCATION LENGTH (MSB)
        a[1],                         // ALLOCATION LENGTH (LSB)
        0,                            // CONTROL
    ]
}

/// Peripheral device type of a sequential-access device (tape drive).
pub const PDT_TAPE: u8 = 0x01;
/// Peripheral device type of a medium changer.
pub const PDT_CHANGER: u8 = 0x08;

/// Standard INQUIRY data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    /// PERIPHERAL DEVICE TYPE (1 = tape, 8 = medium changer).
    pub device_type: u8,
    /// PERIPHERAL QUALIFIER (0 = connected).
    pub qualifier: u8,
    /// RMB: removable medium.
    pub removable: bool,
    /// VERSION (SPC level).
    pub version: u8,
    /// T10 VENDOR IDENTIFICATION, trimmed.
    pub vendor: String,
    /// PRODUCT IDENTIFICATION, trimmed.
    pub product: String,
    /// PRODUCT REVISION LEVEL, trimmed.
    pub revision: String,
}

/// Decodes standard INQUIRY data. Needs at least 8 bytes; vendor, product and revision
/// are taken from whatever of bytes 8..36 the reply holds.
pub fn decode_inquiry(b: &[u8]) -> Result<Inquiry, DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::truncated(
            "standard INQUIRY data",
            0,
            8,
            b.len(),
        ));
    }
    let field = |from: usize, to: usize| ascii_field(b.get(from..to.min(b.len())).unwrap_or(&[]));
    Ok(Inquiry {
        device_type: b[0] & 0x1F,
        qualifier: b[0] >> 5,
        removable: b[1] & 0x80 != 0,
        version: b[2],
        vendor: field(8, 16),
        product: field(16, 32),
        revision: field(32, 36),
    })
}

/// Returns the page's payload (after the 4-byte header), checking the page code and
/// bounding the PAGE LENGTH by what arrived.
fn vpd_payload<'a>(b: &'a [u8], page: u8, what: &'static str) -> Result<&'a [u8], DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::truncated(what, 0, 4, b.len()));
    }
    if b[1] != page {
        return Err(DecodeError::bad_value(what, 1, u64::from(b[1])));
    }
    let len = usize::from(be16(b, 2));
    Ok(&b[4..(4 + len).min(b.len())])
}

/// Decodes VPD page 80h: PRODUCT SERIAL NUMBER, with padding (spaces, NULs, either side)
/// trimmed.
pub fn decode_vpd_serial(b: &[u8]) -> Result<String, DecodeError> {
    Ok(ascii_field(vpd_payload(b, 0x80, "VPD page 80h")?))
}

/// One designation descriptor of VPD page 83h.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Designator {
    /// CODE SET: 1 binary, 2 ASCII, 3 UTF-8.
    pub code_set: u8,
    /// ASSOCIATION: 0 logical unit, 1 target port, 2 target device.
    pub association: u8,
    /// DESIGNATOR TYPE: 1 T10 vendor ID, 2 EUI-64, 3 NAA, 8 SCSI name string...
    pub designator_type: u8,
    /// The designator bytes.
    pub value: Vec<u8>,
}

impl Designator {
    /// Text form: ASCII designators trimmed, binary ones as hex.
    pub fn to_text(&self) -> String {
        if matches!(self.code_set, 2 | 3) {
            ascii_field(&self.value)
        } else {
            self.value.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// Decodes VPD page 83h into its designators. A descriptor cut off by the end of the
/// reply is an error.
pub fn decode_vpd_device_id(b: &[u8]) -> Result<Vec<Designator>, DecodeError> {
    let payload = vpd_payload(b, 0x83, "VPD page 83h")?;
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        if off + 4 > payload.len() {
            return Err(DecodeError::truncated(
                "designation descriptor header",
                4 + off,
                4,
                payload.len() - off,
            ));
        }
        let len = usize::from(payload[off + 3]);
        let end = off + 4 + len;
        let Some(value) = payload.get(off + 4..end) else {
            return Err(DecodeError::truncated(
                "designation descriptor",
                4 + off,
                4 + len,
                payload.len() - off,
            ));
        };
        out.push(Designator {
            code_set: byte(payload, off) & 0x0F,
            association: (byte(payload, off + 1) >> 4) & 0x03,
            designator_type: byte(payload, off + 1) & 0x0F,
            value: value.to_vec(),
        });
        off = end;
    }
    Ok(out)
}

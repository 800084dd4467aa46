//! MAM (Medium Auxiliary Memory) attributes: the READ ATTRIBUTE reply and the WRITE
//! ATTRIBUTE parameter list (SPC-5 §7.4). Pure functions; the virtual library reuses the
//! encoder.
//!
//! Byte layout of both: a 4-byte AVAILABLE DATA (READ) / PARAMETER DATA (WRITE) LENGTH,
//! then attributes, each `id: u16 BE | flags: u8 (bit 7 READ ONLY, bits 1..0 FORMAT) |
//! length: u16 BE | value`.

use crate::drive::MamAttribute;
use crate::error::DecodeError;
use crate::scsi::{ascii_field, be16, be32};

/// A decoded attribute and its READ ONLY flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MamEntry {
    /// The attribute.
    pub attribute: MamAttribute,
    /// READ ONLY: the device will not let it be written.
    pub read_only: bool,
}

/// Attribute format codes.
pub mod format {
    /// Binary.
    pub const BINARY: u8 = 0;
    /// ASCII, left-aligned, space-padded.
    pub const ASCII: u8 = 1;
    /// Text in the locale of attribute 0806h.
    pub const TEXT: u8 = 2;
}

/// Decodes a READ ATTRIBUTE (ATTRIBUTE VALUES) reply. Stops at AVAILABLE DATA or the end
/// of the reply; an attribute cut off by the end is an error.
pub fn decode_attributes(b: &[u8]) -> Result<Vec<MamEntry>, DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::truncated(
            "attribute data header",
            0,
            4,
            b.len(),
        ));
    }
    let end = (4usize.saturating_add(be32(b, 0) as usize)).min(b.len());
    let mut out = Vec::new();
    let mut off = 4;
    while off < end {
        if off + 5 > end {
            return Err(DecodeError::truncated(
                "attribute header",
                off,
                5,
                end - off,
            ));
        }
        let len = usize::from(be16(b, off + 3));
        let value = b
            .get(off + 5..off + 5 + len)
            .filter(|_| off + 5 + len <= end)
            .ok_or_else(|| DecodeError::truncated("attribute value", off, 5 + len, end - off))?;
        out.push(MamEntry {
            attribute: MamAttribute {
                id: be16(b, off),
                format: b[off + 2] & 0x03,
                value: value.to_vec(),
            },
            read_only: b[off + 2] & 0x80 != 0,
        });
        off += 5 + len;
    }
    Ok(out)
}

/// Encodes attributes as a READ ATTRIBUTE reply or WRITE ATTRIBUTE parameter list.
/// Values longer than 65535 bytes are cut to fit the 16-bit length.
pub fn encode_attributes(entries: &[MamEntry]) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    for e in entries {
        let value = &e.attribute.value[..e.attribute.value.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&e.attribute.id.to_be_bytes());
        out.push((e.attribute.format & 0x03) | if e.read_only { 0x80 } else { 0 });
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    let len = (out.len() - 4) as u32;
    out[0..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Decodes a READ ATTRIBUTE (ATTRIBUTE LIST) reply: the identifiers present.
pub fn decode_attribute_list(b: &[u8]) -> Result<Vec<u16>, DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::truncated(
            "attribute list header",
            0,
            4,
            b.len(),
        ));
    }
    let end = (4usize.saturating_add(be32(b, 0) as usize)).min(b.len());
    Ok(b[4..end]
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

/// The value as display text: ASCII/text trimmed, binary as a number (up to 8 bytes) or
/// hex.
pub fn attribute_text(a: &MamAttribute) -> String {
    match a.format {
        format::ASCII | format::TEXT => ascii_field(&a.value),
        _ if a.value.len() <= 8 => a
            .value
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            .to_string(),
        _ => a.value.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The standard name of an attribute identifier (SPC-5 tables 373, 374, 375).
pub fn attribute_name(id: u16) -> &'static str {
    match id {
        0x0000 => "remaining capacity in partition (MiB)",
        0x0001 => "maximum capacity in partition (MiB)",
        0x0002 => "TapeAlert flags",
        0x0003 => "load count",
        0x0004 => "MAM space remaining",
        0x0005 => "assigning organization",
        0x0006 => "format density code",
        0x0007 => "initialization count",
        0x0008 => "volume identifier",
        0x0009 => "volume change reference",
        0x020A => "device vendor/serial at last load",
        0x020B => "device vendor/serial at load-1",
        0x020C => "device vendor/serial at load-2",
        0x020D => "device vendor/serial at load-3",
        0x0220 => "total MiB written in medium life",
        0x0221 => "total MiB read in medium life",
        0x0222 => "total MiB written in current/last load",
        0x0223 => "total MiB read in current/last load",
        0x0224 => "logical position of first encrypted block",
        0x0225 => "logical position of first unencrypted block after first encrypted block",
        0x0340 => "medium usage history",
        0x0341 => "partition usage history",
        0x0400 => "medium manufacturer",
        0x0401 => "medium serial number",
        0x0402 => "medium length",
        0x0403 => "medium width",
        0x0404 => "assigning organization",
        0x0405 => "medium density code",
        0x0406 => "medium manufacture date",
        0x0407 => "MAM capacity",
        0x0408 => "medium type",
        0x0409 => "medium type information",
        0x040A => "numeric medium serial number",
        0x0800 => "application vendor",
        0x0801 => "application name",
        0x0802 => "application version",
        0x0803 => "user medium text label",
        0x0804 => "date and time last written",
        0x0805 => "text localization identifier",
        0x0806 => "barcode",
        0x0807 => "owning host textual name",
        0x0808 => "media pool",
        0x0809 => "partition user text label",
        0x080A => "load/unload at partition",
        0x080B => "application format version",
        0x080C => "volume coherency information",
        0x0820 => "medium globally unique identifier",
        0x0821 => "media pool globally unique identifier",
        0x1000..=0x17FF => "vendor specific (device)",
        0x1800..=0x1FFF => "vendor specific (medium)",
        _ => "unknown attribute",
    }
}

//! The MAM (cartridge memory) attributes LTFS maintains, byte-exact as the reference writes
//! them (see the `attr_*` files of the reference cartridge).
//!
//! | id | name | format | length | value we write |
//! |---|---|---|---|---|
//! | 0x0800 | application vendor | ASCII | 8 | `TAPEBKUP` |
//! | 0x0801 | application name | ASCII | 32 | `tapebackup` |
//! | 0x0802 | application version | ASCII | 8 | crate version |
//! | 0x0803 | user medium text label | text | 160 | volume name, NUL padded |
//! | 0x0804 | date and time last written | ASCII | 12 | `YYYYMMDDHHMM` (UTC) |
//! | 0x0805 | text localization identifier | binary | 1 | 0x81 (UTF-8) |
//! | 0x0806 | barcode | ASCII | 32 | barcode |
//! | 0x0808 | media pool | text | 160 | empty (NUL) |
//! | 0x080B | application format version | ASCII | 16 | `2.4.0` |
//! | 0x080C | volume coherency information | binary | 70 | see [`Coherency`] |
//!
//! ASCII values are left aligned and space padded; text values are UTF-8, NUL padded.

use tape_scsi::{MamAttribute, TapeDrive};

use crate::index::{FORMAT_VERSION, Timestamp};

/// Volume change reference, kept by the drive (4 or 8 bytes).
pub(crate) const VOLUME_CHANGE_REFERENCE: u16 = 0x0009;
/// Volume coherency information.
pub const COHERENCY: u16 = 0x080C;

const BINARY: u8 = 0;
const ASCII: u8 = 1;
const TEXT: u8 = 2;

fn ascii(id: u16, len: usize, s: &str) -> MamAttribute {
    let mut value = vec![b' '; len];
    for (d, c) in value.iter_mut().zip(s.bytes()) {
        *d = if c.is_ascii_graphic() || c == b' ' {
            c
        } else {
            b'?'
        };
    }
    MamAttribute {
        id,
        format: ASCII,
        value,
    }
}

fn text(id: u16, len: usize, s: &str) -> MamAttribute {
    let mut value = vec![0u8; len];
    // Truncate on a character boundary, leaving at least one NUL.
    let mut end = s.len().min(len - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].copy_from_slice(&s.as_bytes()[..end]);
    MamAttribute {
        id,
        format: TEXT,
        value,
    }
}

/// The application attributes (everything but coherency) for a volume.
pub(crate) fn application_attributes(
    volume_name: &str,
    barcode: &str,
    now: Timestamp,
) -> Vec<MamAttribute> {
    let stamp = now.to_string();
    // 2026-11-21T20:45:26... -> 202611212045
    let date: String = stamp
        .chars()
        .filter(char::is_ascii_digit)
        .take(12)
        .collect();
    vec![
        ascii(0x0800, 8, "TAPEBKUP"),
        ascii(0x0801, 32, "tapebackup"),
        ascii(0x0802, 8, env!("CARGO_PKG_VERSION")),
        text(0x0803, 160, volume_name),
        ascii(0x0804, 12, &date),
        MamAttribute {
            id: 0x0805,
            format: BINARY,
            value: vec![0x81],
        },
        ascii(0x0806, 32, barcode),
        text(0x0808, 160, ""),
        ascii(0x080B, 16, FORMAT_VERSION),
    ]
}

/// Volume coherency information (attribute 0x080C): which index generation is the last
/// one on a partition, and where it is.
///
/// | offset | length | field |
/// |---|---|---|
/// | 0 | 1 | length of the volume change reference (8) |
/// | 1 | 8 | volume change reference (drive attribute 0x0009 when written), big endian |
/// | 9 | 8 | generation number of the index, big endian |
/// | 17 | 8 | block number of the index on this partition, big endian |
/// | 25 | 2 | length of the application part (43), big endian |
/// | 27 | 5 | `LTFS\0` |
/// | 32 | 37 | volume UUID, NUL terminated |
/// | 69 | 1 | version of this layout (1) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coherency {
    /// Volume change reference.
    pub volume_change_reference: u64,
    /// Index generation.
    pub generation: u64,
    /// Block of that index on the partition.
    pub index_block: u64,
    /// Volume UUID.
    pub volume_uuid: String,
}

impl Coherency {
    /// The 70 attribute value bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(70);
        v.push(8);
        v.extend_from_slice(&self.volume_change_reference.to_be_bytes());
        v.extend_from_slice(&self.generation.to_be_bytes());
        v.extend_from_slice(&self.index_block.to_be_bytes());
        v.extend_from_slice(&43u16.to_be_bytes());
        v.extend_from_slice(b"LTFS\0");
        let mut uuid = [0u8; 37];
        for (d, c) in uuid.iter_mut().take(36).zip(self.volume_uuid.bytes()) {
            *d = c;
        }
        v.extend_from_slice(&uuid);
        v.push(1);
        v
    }

    /// Parses the attribute value; `None` when it is not an LTFS coherency record.
    pub fn parse(v: &[u8]) -> Option<Coherency> {
        let vcr_len = usize::from(*v.first()?);
        if vcr_len > 8 {
            return None;
        }
        let be = |s: &[u8]| s.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let mut at = 1;
        let vcr = be(v.get(at..at + vcr_len)?);
        at += vcr_len;
        let generation = be(v.get(at..at + 8)?);
        let index_block = be(v.get(at + 8..at + 16)?);
        at += 16;
        let app_len = usize::from(u16::from_be_bytes([*v.get(at)?, *v.get(at + 1)?]));
        at += 2;
        let app = v.get(at..at + app_len)?;
        let uuid = app.strip_prefix(b"LTFS\0")?;
        let uuid = uuid.get(..36)?;
        Some(Coherency {
            volume_change_reference: vcr,
            generation,
            index_block,
            volume_uuid: String::from_utf8(uuid.to_vec()).ok()?,
        })
    }
}

/// The drive's current volume change reference for `partition`, 0 when it has none.
pub(crate) fn volume_change_reference(drive: &mut dyn TapeDrive, partition: u8) -> u64 {
    match drive.read_attribute(partition, VOLUME_CHANGE_REFERENCE) {
        Ok(Some(a)) if a.value.len() <= 8 => a
            .value
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        _ => 0,
    }
}

/// Writes an attribute; a drive without MAM support is not an error.
pub(crate) fn write(
    drive: &mut dyn TapeDrive,
    partition: u8,
    attr: &MamAttribute,
) -> Result<(), crate::Error> {
    match drive.write_attribute(partition, attr) {
        Ok(()) | Err(tape_scsi::Error::Unsupported { .. }) => Ok(()),
        Err(e) => Err(crate::Error::drive("writing MAM attributes")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 0x080C value from the reference cartridge, partition 0.
    const REFERENCE_P0: &str = "08000000000000000200000000000000020000000000000005002b4c5446530035396261313233612d366636652d343439652d383632382d62323233376639646463373700 01";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn coherency_matches_reference_bytes() {
        let bytes = unhex(REFERENCE_P0);
        let c = Coherency::parse(&bytes).unwrap();
        assert_eq!(
            c,
            Coherency {
                volume_change_reference: 2,
                generation: 2,
                index_block: 5,
                volume_uuid: "59ba123a-6f6e-449e-8628-b2237f9ddc77".into()
            }
        );
        assert_eq!(c.to_bytes(), bytes);
    }

    #[test]
    fn ascii_and_text_padding() {
        let a = ascii(0x0806, 32, "TST001");
        assert_eq!(&a.value[..7], b"TST001 ");
        assert_eq!(a.value.len(), 32);
        let t = text(0x0803, 160, "testvol");
        assert_eq!(&t.value[..8], b"testvol\0");
        assert_eq!(t.value.len(), 160);
        let long = "é".repeat(100);
        let t = text(0x0803, 160, &long);
        assert_eq!(t.value[159], 0);
        assert!(std::str::from_utf8(&t.value[..158]).is_ok());
    }
}

//! The two labels at the start of each partition: the 80-byte ANSI VOL1 label and the LTFS
//! XML label (LTFS format 2.4.0, sections 5.2 and 7.1).

use crate::Error;
use crate::index::{FORMAT_VERSION, Timestamp, check_version, partition_letter, partition_number};
use crate::xml::{XLabel, XLabelLocation, XPartitions};

/// Length of a VOL1 label record.
pub const VOL1_LEN: usize = 80;

/// The ANSI VOL1 label LTFS writes as the first record of each partition.
///
/// Byte layout (all ASCII, space padded):
///
/// | offset | length | field | LTFS value |
/// |---|---|---|---|
/// | 0 | 4 | label identifier | `VOL1` |
/// | 4 | 6 | volume identifier | barcode (first 6 characters) |
/// | 10 | 1 | volume accessibility | `L` |
/// | 11 | 13 | reserved | spaces |
/// | 24 | 13 | implementation identifier | `LTFS` |
/// | 37 | 14 | owner identifier | spaces |
/// | 51 | 28 | reserved | spaces |
/// | 79 | 1 | label standard version | `4` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vol1Label {
    /// Volume identifier: the barcode (at most 6 characters, trailing spaces removed).
    pub volume_id: String,
}

impl Vol1Label {
    /// Builds the 80 bytes. The volume identifier is truncated to 6 characters and
    /// non-printable or non-ASCII characters become spaces.
    pub fn to_bytes(&self) -> [u8; VOL1_LEN] {
        let mut b = [b' '; VOL1_LEN];
        b[0..4].copy_from_slice(b"VOL1");
        for (dst, c) in b[4..10].iter_mut().zip(self.volume_id.bytes()) {
            *dst = if c.is_ascii_graphic() { c } else { b' ' };
        }
        b[10] = b'L';
        b[24..28].copy_from_slice(b"LTFS");
        b[79] = b'4';
        b
    }

    /// Parses and checks a VOL1 record as LTFS requires it.
    pub fn parse(bytes: &[u8]) -> Result<Vol1Label, Error> {
        let bad = |why: &'static str| Error::NotLtfs { reason: why };
        if bytes.len() != VOL1_LEN {
            return Err(bad("first record is not an 80-byte VOL1 label"));
        }
        if &bytes[0..4] != b"VOL1" {
            return Err(bad("first record does not start with VOL1"));
        }
        if bytes[10] != b'L' {
            return Err(bad("VOL1 accessibility is not 'L'"));
        }
        if &bytes[24..37] != b"LTFS         " {
            return Err(bad("VOL1 implementation identifier is not LTFS"));
        }
        if bytes[79] != b'4' {
            return Err(bad("VOL1 label standard version is not 4"));
        }
        let id = std::str::from_utf8(&bytes[4..10])
            .map_err(|_| bad("VOL1 volume identifier is not ASCII"))?;
        Ok(Vol1Label {
            volume_id: id.trim_end().to_string(),
        })
    }
}

/// The LTFS XML label (`ltfslabel`), one per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtfsLabel {
    /// Format version (`2.4.0` when we write it).
    pub version: String,
    /// Software that formatted the volume.
    pub creator: String,
    /// When the volume was formatted.
    pub format_time: Timestamp,
    /// Volume UUID, shared by both labels and every index.
    pub volume_uuid: String,
    /// The partition this label copy is on.
    pub location: u8,
    /// The index partition (normally 0 = `a`).
    pub index_partition: u8,
    /// The data partition (normally 1 = `b`).
    pub data_partition: u8,
    /// Block size for data records, in bytes.
    pub block_size: u64,
    /// Whether the drive compresses data.
    pub compression: bool,
}

/// Largest block size we accept in a label (the st driver's limit is far lower).
pub const MAX_BLOCK_SIZE: u64 = 16 * 1024 * 1024;

impl LtfsLabel {
    /// Parses a label document.
    pub fn from_xml(bytes: &[u8]) -> Result<LtfsLabel, Error> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::Malformed {
            what: "label encoding",
            value: "not UTF-8".to_string(),
        })?;
        let x: XLabel = quick_xml::de::from_str(text).map_err(|e| Error::Xml {
            what: "label",
            message: e.to_string(),
        })?;
        check_version(&x.version)?;
        if x.blocksize < 4096 || x.blocksize > MAX_BLOCK_SIZE {
            return Err(Error::Malformed {
                what: "label block size",
                value: x.blocksize.to_string(),
            });
        }
        let index_partition = partition_number(&x.partitions.index)?;
        let data_partition = partition_number(&x.partitions.data)?;
        if index_partition == data_partition {
            return Err(Error::Malformed {
                what: "label partitions (index and data are the same)",
                value: x.partitions.index,
            });
        }
        Ok(LtfsLabel {
            version: x.version,
            creator: x.creator,
            format_time: Timestamp::parse(&x.formattime)?,
            volume_uuid: x.volumeuuid.trim().to_string(),
            location: partition_number(&x.location.partition)?,
            index_partition,
            data_partition,
            block_size: x.blocksize,
            compression: x.compression,
        })
    }

    /// Serializes the label as an LTFS 2.4.0 document.
    pub fn to_xml(&self) -> Result<String, Error> {
        let x = XLabel {
            version: FORMAT_VERSION.to_string(),
            creator: self.creator.clone(),
            formattime: self.format_time.to_string(),
            volumeuuid: self.volume_uuid.clone(),
            location: XLabelLocation {
                partition: partition_letter(self.location),
            },
            partitions: XPartitions {
                index: partition_letter(self.index_partition),
                data: partition_letter(self.data_partition),
            },
            blocksize: self.block_size,
            compression: self.compression,
        };
        crate::xml::to_document(&x, 4).map_err(|e| Error::Xml {
            what: "label (writing)",
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vol1_round_trip() {
        let v = Vol1Label {
            volume_id: "TST001".into(),
        };
        let b = v.to_bytes();
        assert_eq!(Vol1Label::parse(&b).unwrap(), v);
        let short = Vol1Label {
            volume_id: "AB".into(),
        };
        assert_eq!(Vol1Label::parse(&short.to_bytes()).unwrap(), short);
    }

    #[test]
    fn vol1_rejects_other_labels() {
        let mut b = Vol1Label {
            volume_id: "X".into(),
        }
        .to_bytes();
        b[24..28].copy_from_slice(b"ABCD");
        assert!(matches!(Vol1Label::parse(&b), Err(Error::NotLtfs { .. })));
        assert!(Vol1Label::parse(&b[..79]).is_err());
    }
}

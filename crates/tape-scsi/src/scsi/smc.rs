//! SCSI Media Changer commands (SMC-3): MODE SENSE page 1Dh, READ ELEMENT STATUS,
//! MOVE MEDIUM, INITIALIZE ELEMENT STATUS.

use super::{ascii_field, be16, be24, byte, opcode};
use crate::error::DecodeError;

/// The four element types of a medium changer (SMC-3 table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElementType {
    /// 1: medium transport element (the robot's picker).
    Transport,
    /// 2: storage element (slot).
    Storage,
    /// 3: import/export element (mail slot).
    ImportExport,
    /// 4: data transfer element (drive).
    Drive,
}

impl ElementType {
    /// The ELEMENT TYPE CODE.
    pub fn code(self) -> u8 {
        match self {
            ElementType::Transport => 1,
            ElementType::Storage => 2,
            ElementType::ImportExport => 3,
            ElementType::Drive => 4,
        }
    }

    /// The type for an ELEMENT TYPE CODE, `None` for 0 (all) and reserved codes.
    pub fn from_code(code: u8) -> Option<ElementType> {
        match code {
            1 => Some(ElementType::Transport),
            2 => Some(ElementType::Storage),
            3 => Some(ElementType::ImportExport),
            4 => Some(ElementType::Drive),
            _ => None,
        }
    }

    /// The abbreviation SMC uses: MT, ST, IE, DT.
    pub fn abbreviation(self) -> &'static str {
        match self {
            ElementType::Transport => "MT",
            ElementType::Storage => "ST",
            ElementType::ImportExport => "IE",
            ElementType::Drive => "DT",
        }
    }
}

/// First address and count of one element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ElementRange {
    /// First element address.
    pub first: u16,
    /// Number of elements.
    pub count: u16,
}

impl ElementRange {
    /// True when `address` is one of this range's elements.
    pub fn contains(&self, address: u16) -> bool {
        address >= self.first && u32::from(address) < u32::from(self.first) + u32::from(self.count)
    }
}

/// Mode page 1Dh, ELEMENT ADDRESS ASSIGNMENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ElementAddressAssignment {
    /// Medium transport elements.
    pub transport: ElementRange,
    /// Storage elements.
    pub storage: ElementRange,
    /// Import/export elements.
    pub import_export: ElementRange,
    /// Data transfer elements.
    pub drives: ElementRange,
}

impl ElementAddressAssignment {
    /// The range of one element type.
    pub fn range(&self, t: ElementType) -> ElementRange {
        match t {
            ElementType::Transport => self.transport,
            ElementType::Storage => self.storage,
            ElementType::ImportExport => self.import_export,
            ElementType::Drive => self.drives,
        }
    }
}

/// Mode page code of ELEMENT ADDRESS ASSIGNMENT.
pub const PAGE_ELEMENT_ADDRESS_ASSIGNMENT: u8 = 0x1D;

/// MODE SENSE(6) of `page` with DBD set (no block descriptors).
pub fn mode_sense6_cdb(page: u8, allocation: u8) -> [u8; 6] {
    [
        opcode::MODE_SENSE_6,
        0x08,        // DBD
        page & 0x3F, // PC = 00b (current) | PAGE CODE
        0,           // SUBPAGE CODE
        allocation,  // ALLOCATION LENGTH
        0,           // CONTROL
    ]
}

/// MODE SENSE(10) of `page` with DBD set.
pub fn mode_sense10_cdb(page: u8, allocation: u16) -> [u8; 10] {
    let a = allocation.to_be_bytes();
    [
        opcode::MODE_SENSE_10,
        0x08,
        page & 0x3F,
        0,
        0,
        0,
        0,
        a[0],
        a[1],
        0,
    ]
}

/// Returns the mode page that follows the mode parameter header and block descriptors.
/// `ten` = the reply is from MODE SENSE(10) (8-byte header) rather than (6) (4 bytes).
pub fn mode_page(b: &[u8], ten: bool) -> Result<&[u8], DecodeError> {
    let (hdr, bdl) = if ten {
        if b.len() < 8 {
            return Err(DecodeError::truncated(
                "mode parameter header(10)",
                0,
                8,
                b.len(),
            ));
        }
        (8, usize::from(be16(b, 6)))
    } else {
        if b.len() < 4 {
            return Err(DecodeError::truncated(
                "mode parameter header(6)",
                0,
                4,
                b.len(),
            ));
        }
        (4, usize::from(b[3]))
    };
    let start = hdr + bdl;
    if b.len() < start + 2 {
        return Err(DecodeError::truncated(
            "mode page header",
            start,
            2,
            b.len().saturating_sub(start),
        ));
    }
    let len = usize::from(b[start + 1]);
    let end = start + 2 + len;
    b.get(start..end)
        .ok_or_else(|| DecodeError::truncated("mode page", start, 2 + len, b.len() - start))
}

/// Decodes the ELEMENT ADDRESS ASSIGNMENT page from a MODE SENSE reply.
pub fn decode_element_address_assignment(
    b: &[u8],
    ten: bool,
) -> Result<ElementAddressAssignment, DecodeError> {
    let page = mode_page(b, ten)?;
    if page[0] & 0x3F != PAGE_ELEMENT_ADDRESS_ASSIGNMENT {
        return Err(DecodeError::bad_value(
            "mode page code",
            0,
            u64::from(page[0] & 0x3F),
        ));
    }
    if page.len() < 18 {
        return Err(DecodeError::truncated(
            "element address assignment page",
            0,
            18,
            page.len(),
        ));
    }
    let range = |off: usize| ElementRange {
        first: be16(page, off),
        count: be16(page, off + 2),
    };
    Ok(ElementAddressAssignment {
        transport: range(2),
        storage: range(6),
        import_export: range(10),
        drives: range(14),
    })
}

/// What to ask READ ELEMENT STATUS for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementStatusRequest {
    /// Element type, `None` for all types.
    pub element_type: Option<ElementType>,
    /// STARTING ELEMENT ADDRESS.
    pub start: u16,
    /// NUMBER OF ELEMENTS.
    pub count: u16,
    /// VOLTAG: report volume tags (barcodes).
    pub volume_tags: bool,
    /// DVCID: report data transfer element device identifiers (serial numbers).
    pub device_id: bool,
    /// ALLOCATION LENGTH (24 bits on the wire; keep it at or below 0xFFFF, many
    /// libraries honour only the low 16 bits).
    pub allocation: u32,
}

/// READ ELEMENT STATUS CDB (12 bytes).
pub fn read_element_status_cdb(r: &ElementStatusRequest) -> [u8; 12] {
    let s = r.start.to_be_bytes();
    let n = r.count.to_be_bytes();
    let a = r.allocation.to_be_bytes();
    [
        opcode::READ_ELEMENT_STATUS,
        (if r.volume_tags { 0x10 } else { 0 }) | r.element_type.map_or(0, ElementType::code), // VOLTAG | ELEMENT TYPE CODE
        s[0], // STARTING ELEMENT ADDRESS
        s[1],
        n[0], // NUMBER OF ELEMENTS
        n[1],
        u8::from(r.device_id), // CURDATA = 0 | DVCID
        a[1],                  // ALLOCATION LENGTH (3 bytes)
        a[2],
        a[3],
        0, // reserved
        0, // CONTROL
    ]
}

/// MOVE MEDIUM CDB: move the cartridge in `source` to `destination` with `transport`.
pub fn move_medium_cdb(transport: u16, source: u16, destination: u16) -> [u8; 12] {
    let t = transport.to_be_bytes();
    let s = source.to_be_bytes();
    let d = destination.to_be_bytes();
    [
        opcode::MOVE_MEDIUM,
        0,    // reserved
        t[0], // MEDIUM TRANSPORT ADDRESS
        t[1],
        s[0], // SOURCE ADDRESS
        s[1],
        d[0], // DESTINATION ADDRESS
        d[1],
        0, // reserved
        0, // reserved
        0, // INVERT = 0
        0, // CONTROL
    ]
}

/// INITIALIZE ELEMENT STATUS CDB: the library rescans every element (barcodes too).
pub fn initialize_element_status_cdb() -> [u8; 6] {
    [opcode::INITIALIZE_ELEMENT_STATUS, 0, 0, 0, 0, 0]
}

/// A volume tag (PVolTag / AVolTag): the barcode and volume sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeTag {
    /// VOLUME IDENTIFICATION FIELD, with space/NUL padding trimmed.
    pub barcode: String,
    /// VOLUME SEQUENCE NUMBER, when the reply carried it.
    pub sequence: Option<u16>,
}

/// The device identifier of a data transfer element (DVCID), as in a VPD 83h designator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentifier {
    /// CODE SET: 1 binary, 2 ASCII.
    pub code_set: u8,
    /// IDENTIFIER TYPE: 0 vendor specific, 1 T10 vendor ID, 3 NAA...
    pub identifier_type: u8,
    /// The identifier bytes.
    pub value: Vec<u8>,
}

impl DeviceIdentifier {
    /// The drive's serial number: for a T10 vendor ID (type 1) the bytes after vendor (8)
    /// and product (16); for a vendor-specific ASCII identifier the whole value; for
    /// binary identifiers the value in hex. Padding is trimmed.
    pub fn serial(&self) -> String {
        match (self.code_set, self.identifier_type) {
            (2 | 3, 1) if self.value.len() > 24 => ascii_field(&self.value[24..]),
            (2 | 3, _) => ascii_field(&self.value),
            _ => self.value.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// Vendor and product from a T10 vendor ID identifier.
    pub fn vendor_product(&self) -> Option<(String, String)> {
        (matches!(self.code_set, 2 | 3) && self.identifier_type == 1 && self.value.len() >= 24)
            .then(|| {
                (
                    ascii_field(&self.value[..8]),
                    ascii_field(&self.value[8..24]),
                )
            })
    }
}

/// One element descriptor of a READ ELEMENT STATUS reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementStatus {
    /// The page's element type.
    pub element_type: ElementType,
    /// ELEMENT ADDRESS.
    pub address: u16,
    /// FULL: holds a cartridge.
    pub full: bool,
    /// EXCEPT: the element is in an abnormal state (see `asc`/`ascq`), e.g. not installed.
    pub except: bool,
    /// ACCESS: the transport can reach the element (not all libraries set it).
    pub access: bool,
    /// IMPEXP (I/E elements): the cartridge was put in by an operator.
    pub imported: bool,
    /// ADDITIONAL SENSE CODE describing an exception.
    pub asc: u8,
    /// ADDITIONAL SENSE CODE QUALIFIER.
    pub ascq: u8,
    /// SOURCE STORAGE ELEMENT ADDRESS when SVALID is set: where the cartridge came from.
    pub source: Option<u16>,
    /// MEDIUM TYPE (0 unspecified, 1 data, 2 cleaning...).
    pub medium_type: u8,
    /// PRIMARY VOLUME TAG, `None` when absent or blank.
    pub volume_tag: Option<VolumeTag>,
    /// ALTERNATE VOLUME TAG, `None` when absent or blank.
    pub alternate_tag: Option<VolumeTag>,
    /// Device identifier (DVCID), when reported and complete.
    pub identifier: Option<DeviceIdentifier>,
    /// The reply ended inside this descriptor: fields past the cut are `None`/0.
    pub truncated: bool,
}

/// A decoded READ ELEMENT STATUS reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementStatusReply {
    /// FIRST ELEMENT ADDRESS REPORTED from the header (some emulators get it wrong; the
    /// descriptors' own addresses are authoritative).
    pub first_address: u16,
    /// NUMBER OF ELEMENTS AVAILABLE from the header.
    pub available: u16,
    /// The elements, in reply order.
    pub elements: Vec<ElementStatus>,
    /// The reply was shorter than the report its headers describe.
    pub truncated: bool,
}

const DESCRIPTOR_BASE: usize = 12;
const VOLUME_TAG_LEN: usize = 36;

/// Decodes a READ ELEMENT STATUS reply (SMC-3 §6.11.2).
///
/// Short replies are normal (allocation smaller than the report, or emulators that stop
/// early): every descriptor whose 12-byte base arrived is returned; a volume tag is kept
/// when its 32 barcode bytes arrived; a device identifier only when complete. Such
/// elements and the reply are marked `truncated`. Errors: a reply shorter than the
/// 8-byte header, an unknown element type code, or a zero descriptor length on a page
/// with data.
pub fn decode_element_status(b: &[u8]) -> Result<ElementStatusReply, DecodeError> {
    if b.len() < 8 {
        return Err(DecodeError::truncated(
            "element status header",
            0,
            8,
            b.len(),
        ));
    }
    let first_address = be16(b, 0);
    let available = be16(b, 2);
    let report_len = be24(b, 5) as usize;
    let report_end = 8 + report_len;
    let end = report_end.min(b.len());
    let mut truncated = b.len() < report_end;
    let mut elements = Vec::new();
    let mut off = 8;
    while off < end {
        if off + 8 > end {
            truncated = true;
            break;
        }
        let type_code = b[off] & 0x0F;
        let element_type = ElementType::from_code(type_code).ok_or_else(|| {
            DecodeError::bad_value("element type code", off, u64::from(type_code))
        })?;
        let pvoltag = b[off + 1] & 0x80 != 0;
        let avoltag = b[off + 1] & 0x40 != 0;
        let desc_len = usize::from(be16(b, off + 2));
        let page_bytes = be24(b, off + 5) as usize;
        let page_start = off + 8;
        let page_end_claimed = page_start + page_bytes;
        let page_end = page_end_claimed.min(end);
        if page_end_claimed > end {
            truncated = true;
        }
        if page_bytes > 0 && desc_len == 0 {
            return Err(DecodeError::bad_value(
                "element descriptor length",
                off + 2,
                0,
            ));
        }
        let mut d = page_start;
        while d < page_end {
            let avail = (page_end - d).min(desc_len);
            if avail < 3 {
                truncated = true;
                break;
            }
            let desc = &b[d..d + avail];
            elements.push(decode_descriptor(
                element_type,
                desc,
                desc_len,
                pvoltag,
                avoltag,
            ));
            d += desc_len;
        }
        off = page_end_claimed.max(page_start);
    }
    Ok(ElementStatusReply {
        first_address,
        available,
        elements,
        truncated,
    })
}

fn decode_descriptor(
    element_type: ElementType,
    d: &[u8],
    desc_len: usize,
    pvoltag: bool,
    avoltag: bool,
) -> ElementStatus {
    let flags = byte(d, 2);
    let base_complete = d.len() >= DESCRIPTOR_BASE;
    // Byte 9: SVALID (bit 7), INVERT (bit 6), MEDIUM TYPE (bits 2..0); bytes 10-11 source.
    let svalid = base_complete && byte(d, 9) & 0x80 != 0;
    let mut at = DESCRIPTOR_BASE;
    let mut tag = |present: bool| -> Option<VolumeTag> {
        if !present {
            return None;
        }
        let start = at;
        at += VOLUME_TAG_LEN;
        let barcode_bytes = d.get(start..start + 32)?;
        let barcode = ascii_field(barcode_bytes);
        if barcode.is_empty() {
            return None;
        }
        let sequence = (d.len() >= start + VOLUME_TAG_LEN).then(|| be16(d, start + 34));
        Some(VolumeTag { barcode, sequence })
    };
    let volume_tag = tag(pvoltag);
    let alternate_tag = tag(avoltag);
    // The identification descriptor follows the tags, when the descriptor has room for it.
    let identifier = if desc_len >= at + 4 && d.len() >= at + 4 {
        let id_len = usize::from(byte(d, at + 3));
        d.get(at + 4..at + 4 + id_len)
            .filter(|_| id_len > 0)
            .map(|value| DeviceIdentifier {
                code_set: byte(d, at) & 0x0F,
                identifier_type: byte(d, at + 1) & 0x0F,
                value: value.to_vec(),
            })
    } else {
        None
    };
    ElementStatus {
        element_type,
        address: be16(d, 0),
        full: flags & 0x01 != 0,
        imported: element_type == ElementType::ImportExport && flags & 0x02 != 0,
        except: flags & 0x04 != 0,
        access: flags & 0x08 != 0,
        asc: byte(d, 4),
        ascq: byte(d, 5),
        source: svalid.then(|| be16(d, 10)),
        medium_type: if base_complete { byte(d, 9) & 0x07 } else { 0 },
        volume_tag,
        alternate_tag,
        identifier,
        truncated: d.len() < desc_len,
    }
}

/// Encodes a READ ELEMENT STATUS reply: one page per run of equal element types, with
/// PVolTag when `volume_tags` and a device identifier on drive elements when `device_id`.
///
/// The inverse of [`decode_element_status`] for complete replies; the virtual library's
/// SMC emulator and the tests use it.
pub fn encode_element_status(
    elements: &[ElementStatus],
    volume_tags: bool,
    device_id: bool,
) -> Vec<u8> {
    let mut out = vec![0u8; 8];
    let first = elements.first().map_or(0, |e| e.address);
    out[0..2].copy_from_slice(&first.to_be_bytes());
    out[2..4].copy_from_slice(&(elements.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    let mut i = 0;
    while i < elements.len() {
        let t = elements[i].element_type;
        let run: Vec<&ElementStatus> = elements[i..]
            .iter()
            .take_while(|e| e.element_type == t)
            .collect();
        i += run.len();
        let with_id = device_id && t == ElementType::Drive;
        let id_len = run
            .iter()
            .filter_map(|e| e.identifier.as_ref().map(|id| id.value.len().min(255)))
            .max()
            .unwrap_or(0);
        let desc_len = DESCRIPTOR_BASE
            + if volume_tags { VOLUME_TAG_LEN } else { 0 }
            + if with_id { 4 + id_len } else { 0 };
        let page_bytes = desc_len * run.len();
        let mut page = vec![0u8; 8];
        page[0] = t.code();
        page[1] = if volume_tags { 0x80 } else { 0 };
        page[2..4].copy_from_slice(&(desc_len as u16).to_be_bytes());
        page[5..8].copy_from_slice(&(page_bytes as u32).to_be_bytes()[1..]);
        for e in run {
            let mut d = vec![0u8; desc_len];
            d[0..2].copy_from_slice(&e.address.to_be_bytes());
            d[2] = u8::from(e.full)
                | if e.imported { 0x02 } else { 0 }
                | if e.except { 0x04 } else { 0 }
                | if e.access { 0x08 } else { 0 };
            d[4] = e.asc;
            d[5] = e.ascq;
            d[9] = e.medium_type & 0x07;
            if let Some(src) = e.source {
                d[9] |= 0x80;
                d[10..12].copy_from_slice(&src.to_be_bytes());
            }
            let mut at = DESCRIPTOR_BASE;
            if volume_tags {
                let mut tag = [b' '; 32];
                if let Some(v) = &e.volume_tag {
                    for (dst, src) in tag.iter_mut().zip(v.barcode.bytes()) {
                        *dst = src;
                    }
                    d[at + 34..at + 36].copy_from_slice(&v.sequence.unwrap_or(0).to_be_bytes());
                }
                d[at..at + 32].copy_from_slice(&tag);
                at += VOLUME_TAG_LEN;
            }
            if with_id && let Some(id) = &e.identifier {
                d[at] = id.code_set & 0x0F;
                d[at + 1] = id.identifier_type & 0x0F;
                let n = id.value.len().min(id_len);
                d[at + 3] = id_len as u8;
                d[at + 4..at + 4 + n].copy_from_slice(&id.value[..n]);
            }
            page.extend_from_slice(&d);
        }
        out.extend_from_slice(&page);
    }
    let report = (out.len() - 8) as u32;
    out[5..8].copy_from_slice(&report.to_be_bytes()[1..]);
    out
}

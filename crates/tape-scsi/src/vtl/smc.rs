//! [`SmcEmulator`]: the virtual library's medium changer behind [`ScsiTransport`].
//!
//! It parses the CDBs a changer driver sends and answers with SMC-3 / SPC-4 encoded bytes
//! and fixed-format sense, so the code that builds CDBs and decodes replies for real
//! libraries runs unchanged against the virtual one.
//!
//! Element address map (MODE SENSE page 1Dh):
//!
//! | element | first address | count |
//! |---|---|---|
//! | medium transport | `0x0001` | 1 |
//! | import/export | `0x0002` | I/E slots (≤ 254) |
//! | data transfer (drives) | `0x0100` | drives (≤ 3584) |
//! | storage | `0x1000` | slots (≤ 61439) |
//!
//! Supported commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (standard, VPD 00h, 80h,
//! 83h), MODE SENSE(6)/(10) pages 1Dh, 1Eh, 1Fh and 3Fh, READ ELEMENT STATUS (VOLTAG,
//! DVCID, any element type, paged by starting address and count), MOVE MEDIUM,
//! INITIALIZE ELEMENT STATUS (with and without range), PREVENT ALLOW MEDIUM REMOVAL.
//! Anything else is ILLEGAL REQUEST 20/00.

use std::time::Duration;

use super::state::{LibraryState, Occupant, Store};
use crate::{Completion, DataDirection, Error, ScsiTransport, status};

/// Address of the medium transport element.
pub const TRANSPORT_ADDRESS: u16 = 0x0001;
/// First import/export element address.
pub const FIRST_IE: u16 = 0x0002;
/// First data transfer element address.
pub const FIRST_DRIVE: u16 = 0x0100;
/// First storage element address.
pub const FIRST_SLOT: u16 = 0x1000;

/// T10 vendor identification of the virtual changer and drives (8 bytes).
pub const VENDOR: &str = "TAPEBKUP";
/// Product identification of the changer (16 bytes).
pub const CHANGER_PRODUCT: &str = "VIRTUAL LIBRARY";
/// Product identification of the drives (16 bytes).
pub const DRIVE_PRODUCT: &str = "VIRTUAL DRIVE";
/// Product revision (4 bytes).
pub const REVISION: &str = "0001";

// Operation codes (SPC-4, SMC-3).
const TEST_UNIT_READY: u8 = 0x00;
const REQUEST_SENSE: u8 = 0x03;
const INITIALIZE_ELEMENT_STATUS: u8 = 0x07;
const INQUIRY: u8 = 0x12;
const MODE_SENSE_6: u8 = 0x1A;
const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1E;
const INITIALIZE_ELEMENT_STATUS_WITH_RANGE: u8 = 0x37;
const MODE_SENSE_10: u8 = 0x5A;
const MOVE_MEDIUM: u8 = 0xA5;
const READ_ELEMENT_STATUS: u8 = 0xB8;

// Sense keys.
const NO_SENSE: u8 = 0x0;
const NOT_READY: u8 = 0x2;
const ILLEGAL_REQUEST: u8 = 0x5;

/// Element types (SMC-3 table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transport = 1,
    Storage = 2,
    ImportExport = 3,
    Drive = 4,
}

/// An element as the emulator reports it.
#[derive(Debug, Clone)]
struct Element {
    kind: Kind,
    address: u16,
    occupant: Option<Occupant>,
    /// Barcode as reported (a fault may make it differ from the real one).
    reported: Option<String>,
    drive_serial: Option<String>,
    /// A drive with its cartridge loaded: the transport cannot take it.
    loaded: bool,
}

/// A failed command: sense key, ASC/ASCQ and the CDB byte at fault, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Check {
    key: u8,
    asc: u8,
    ascq: u8,
    field: Option<u16>,
}

impl Check {
    fn illegal(asc: u8, ascq: u8, field: Option<u16>) -> Check {
        Check {
            key: ILLEGAL_REQUEST,
            asc,
            ascq,
            field,
        }
    }
}

/// Encodes fixed-format sense data (SPC-4 4.5.3), 18 bytes, current error.
fn fixed_sense(c: Check) -> Vec<u8> {
    let mut b = vec![0u8; 18];
    b[0] = 0x70; // RESPONSE CODE: current, fixed; VALID = 0 (no INFORMATION)
    b[2] = c.key & 0x0F; // SENSE KEY (FILEMARK, EOM, ILI = 0)
    b[7] = 10; // ADDITIONAL SENSE LENGTH: bytes 8..=17
    b[12] = c.asc; // ADDITIONAL SENSE CODE
    b[13] = c.ascq; // ADDITIONAL SENSE CODE QUALIFIER
    if let Some(byte) = c.field {
        b[15] = 0x80 | 0x40; // SKSV | C/D (the error is in the CDB), BPV = 0
        b[16..18].copy_from_slice(&byte.to_be_bytes()); // FIELD POINTER
    }
    b
}

/// Pads or cuts ASCII text to `n` bytes with spaces.
fn padded(text: &str, n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = text.bytes().take(n).collect();
    v.resize(n, b' ');
    v
}

/// The virtual library's changer: an SMC device behind [`ScsiTransport`].
///
/// Every command reads the library state under its lock (MOVE MEDIUM changes it under the
/// exclusive lock), so several processes share one consistent library.
#[derive(Debug, Clone)]
pub struct SmcEmulator {
    store: Store,
}

impl SmcEmulator {
    pub(crate) fn new(store: Store) -> SmcEmulator {
        SmcEmulator { store }
    }

    fn elements(state: &LibraryState) -> Vec<Element> {
        let reported = |o: &Option<Occupant>| {
            o.as_ref().map(|o| {
                state
                    .cartridges
                    .get(&o.barcode)
                    .and_then(|c| c.faults.reported_barcode.clone())
                    .unwrap_or_else(|| o.barcode.clone())
            })
        };
        let mut v = vec![Element {
            kind: Kind::Transport,
            address: TRANSPORT_ADDRESS,
            occupant: None,
            reported: None,
            drive_serial: None,
            loaded: false,
        }];
        for (i, o) in state.ie.iter().enumerate() {
            v.push(Element {
                kind: Kind::ImportExport,
                address: FIRST_IE + i as u16,
                occupant: o.clone(),
                reported: reported(o),
                drive_serial: None,
                loaded: false,
            });
        }
        for (i, d) in state.drives.iter().enumerate() {
            v.push(Element {
                kind: Kind::Drive,
                address: FIRST_DRIVE + i as u16,
                occupant: d.cartridge.clone(),
                reported: reported(&d.cartridge),
                drive_serial: Some(d.serial.clone()),
                loaded: d.loaded,
            });
        }
        for (i, o) in state.slots.iter().enumerate() {
            v.push(Element {
                kind: Kind::Storage,
                address: FIRST_SLOT + i as u16,
                occupant: o.clone(),
                reported: reported(o),
                drive_serial: None,
                loaded: false,
            });
        }
        v
    }

    fn inquiry(&self, cdb: &[u8]) -> Result<Vec<u8>, Check> {
        let evpd = cdb[1] & 0x01 != 0;
        let page = cdb[2];
        if !evpd {
            if page != 0 {
                return Err(Check::illegal(0x24, 0x00, Some(2)));
            }
            let mut b = vec![0u8; 36];
            b[0] = 0x08; // PERIPHERAL QUALIFIER 0 | DEVICE TYPE 08h medium changer
            b[1] = 0x80; // RMB: removable medium
            b[2] = 0x06; // VERSION: SPC-4
            b[3] = 0x02; // RESPONSE DATA FORMAT 2
            b[4] = 31; // ADDITIONAL LENGTH (36 - 5)
            b[8..16].copy_from_slice(&padded(VENDOR, 8));
            b[16..32].copy_from_slice(&padded(CHANGER_PRODUCT, 16));
            b[32..36].copy_from_slice(&padded(REVISION, 4));
            return Ok(b);
        }
        let serial = self
            .store
            .read()
            .map_err(|_| Check {
                key: NOT_READY,
                asc: 0x04,
                ascq: 0x00,
                field: None,
            })?
            .serial;
        let body: Vec<u8> = match page {
            0x00 => vec![0x00, 0x80, 0x83],
            0x80 => serial.into_bytes(),
            0x83 => {
                // One designator: T10 vendor ID based, ASCII, associated with the LU.
                let mut id = padded(VENDOR, 8);
                id.extend_from_slice(&padded(CHANGER_PRODUCT, 16));
                id.extend_from_slice(serial.as_bytes());
                let mut d = vec![0x02, 0x01, 0x00, id.len() as u8]; // CODE SET 2 | TYPE 1 | LENGTH
                d.extend_from_slice(&id);
                d
            }
            _ => return Err(Check::illegal(0x24, 0x00, Some(2))),
        };
        let mut b = vec![0x08, page];
        b.extend_from_slice(&(body.len() as u16).to_be_bytes()); // PAGE LENGTH
        b.extend_from_slice(&body);
        Ok(b)
    }

    fn mode_pages(state: &LibraryState, page: u8) -> Result<Vec<u8>, Check> {
        let p1d = || {
            let mut b = vec![0x1D, 0x12]; // PAGE CODE 1Dh, PAGE LENGTH 18
            for (first, count) in [
                (TRANSPORT_ADDRESS, 1u16),
                (FIRST_SLOT, state.slots.len() as u16),
                (FIRST_IE, state.ie.len() as u16),
                (FIRST_DRIVE, state.drives.len() as u16),
            ] {
                b.extend_from_slice(&first.to_be_bytes()); // FIRST ... ELEMENT ADDRESS
                b.extend_from_slice(&count.to_be_bytes()); // NUMBER OF ... ELEMENTS
            }
            b.extend_from_slice(&[0, 0]); // reserved
            b
        };
        // Transport geometry: one transport, cannot rotate media.
        let p1e = || vec![0x1E, 0x02, 0x00, 0x00];
        let p1f = || {
            let mut b = vec![0u8; 20];
            b[0] = 0x1F; // PAGE CODE 1Fh
            b[1] = 0x12; // PAGE LENGTH 18
            b[2] = 0x0F; // STORDT | STORIE | STORST | STORMT
            // MT->, ST->, IE->, DT-> move capabilities: to ST, IE and DT (bits 1..3).
            b[4..8].copy_from_slice(&[0x0E, 0x0E, 0x0E, 0x0E]);
            b
        };
        match page {
            0x1D => Ok(p1d()),
            0x1E => Ok(p1e()),
            0x1F => Ok(p1f()),
            0x3F => Ok([p1d(), p1e(), p1f()].concat()),
            _ => Err(Check::illegal(0x24, 0x00, Some(2))),
        }
    }

    fn mode_sense(&self, cdb: &[u8], ten: bool) -> Result<Vec<u8>, Check> {
        let pc = cdb[2] >> 6;
        if pc == 3 {
            return Err(Check::illegal(0x39, 0x00, Some(2))); // SAVING PARAMETERS NOT SUPPORTED
        }
        if cdb[3] != 0 && cdb[3] != 0xFF {
            return Err(Check::illegal(0x24, 0x00, Some(3))); // no subpages
        }
        let state = self.read_state()?;
        let mut pages = Self::mode_pages(&state, cdb[2] & 0x3F)?;
        if pc == 1 {
            // Changeable values: nothing is changeable.
            let mut off = 0;
            while off + 2 <= pages.len() {
                let len = usize::from(pages[off + 1]);
                let end = (off + 2 + len).min(pages.len());
                pages[off + 2..end].fill(0);
                off += 2 + len;
            }
        }
        let mut b = if ten {
            let mut h = vec![0u8; 8]; // MODE DATA LENGTH(2), MEDIUM TYPE, DEVICE-SPECIFIC, LONGLBA, reserved, BLOCK DESCRIPTOR LENGTH(2)
            h[0..2].copy_from_slice(&((6 + pages.len()) as u16).to_be_bytes());
            h
        } else {
            vec![(3 + pages.len()) as u8, 0, 0, 0] // MODE DATA LENGTH, MEDIUM TYPE, DEVICE-SPECIFIC, BLOCK DESCRIPTOR LENGTH
        };
        b.extend_from_slice(&pages);
        Ok(b)
    }

    fn read_state(&self) -> Result<LibraryState, Check> {
        // A library whose state cannot be read is not ready (04/00), not a crash.
        self.store.read().map_err(|_| Check {
            key: NOT_READY,
            asc: 0x04,
            ascq: 0x00,
            field: None,
        })
    }

    fn read_element_status(&self, cdb: &[u8]) -> Result<Vec<u8>, Check> {
        let voltag = cdb[1] & 0x10 != 0;
        let type_code = cdb[1] & 0x0F;
        let start = u16::from_be_bytes([cdb[2], cdb[3]]);
        let count = usize::from(u16::from_be_bytes([cdb[4], cdb[5]]));
        let dvcid = cdb[6] & 0x01 != 0;
        if type_code > 4 {
            return Err(Check::illegal(0x24, 0x00, Some(1)));
        }
        let state = self.read_state()?;
        let all = Self::elements(&state);
        // Ascending address order (the map puts MT < IE < DT < ST).
        let selected: Vec<&Element> = all
            .iter()
            .filter(|e| type_code == 0 || e.kind as u8 == type_code)
            .filter(|e| e.address >= start)
            .take(count)
            .collect();
        if selected.is_empty() && count > 0 {
            return Err(Check::illegal(0x21, 0x01, Some(2))); // INVALID ELEMENT ADDRESS
        }
        let mut pages = Vec::new();
        let mut i = 0;
        while i < selected.len() {
            let kind = selected[i].kind;
            let run: Vec<&Element> = selected[i..]
                .iter()
                .copied()
                .take_while(|e| e.kind == kind)
                .collect();
            i += run.len();
            let with_id = dvcid && kind == Kind::Drive;
            let desc_len = 12 + if voltag { 36 } else { 0 } + 4 + if with_id { 34 } else { 0 };
            let mut page = vec![0u8; 8];
            page[0] = kind as u8; // ELEMENT TYPE CODE
            page[1] = if voltag { 0x80 } else { 0 }; // PVOLTAG, AVOLTAG = 0
            page[2..4].copy_from_slice(&(desc_len as u16).to_be_bytes()); // ELEMENT DESCRIPTOR LENGTH
            let bytes = (desc_len * run.len()) as u32;
            page[5..8].copy_from_slice(&bytes.to_be_bytes()[1..]); // BYTE COUNT OF DESCRIPTOR DATA AVAILABLE
            for e in run {
                page.extend_from_slice(&Self::descriptor(e, voltag, with_id));
            }
            pages.extend_from_slice(&page);
        }
        let mut b = vec![0u8; 8];
        b[0..2].copy_from_slice(&selected.first().map_or(0, |e| e.address).to_be_bytes()); // FIRST ELEMENT ADDRESS REPORTED
        b[2..4].copy_from_slice(&(selected.len() as u16).to_be_bytes()); // NUMBER OF ELEMENTS AVAILABLE
        b[5..8].copy_from_slice(&(pages.len() as u32).to_be_bytes()[1..]); // BYTE COUNT OF REPORT AVAILABLE
        b.extend_from_slice(&pages);
        Ok(b)
    }

    fn descriptor(e: &Element, voltag: bool, with_id: bool) -> Vec<u8> {
        let mut d = vec![0u8; 12];
        d[0..2].copy_from_slice(&e.address.to_be_bytes()); // ELEMENT ADDRESS
        let full = e.occupant.is_some();
        let mut flags = u8::from(full); // FULL
        if !e.loaded {
            flags |= 0x08; // ACCESS: the transport can reach the element
        }
        if e.kind == Kind::ImportExport {
            flags |= 0x30; // INENAB | EXENAB
            if full && e.occupant.as_ref().is_some_and(|o| o.source.is_none()) {
                flags |= 0x02; // IMPEXP: placed by the operator
            }
        }
        d[2] = flags;
        // Bytes 4-5 ASC/ASCQ: no exception. Bytes 6-8: no SCSI bus address.
        if let Some(o) = &e.occupant {
            d[9] = 0x01; // MEDIUM TYPE: data medium
            if let Some(src) = o.source {
                d[9] |= 0x80; // SVALID
                d[10..12].copy_from_slice(&src.to_be_bytes()); // SOURCE STORAGE ELEMENT ADDRESS
            }
        }
        if voltag {
            let mut tag = vec![0u8; 36]; // PRIMARY VOLUME TAG: 32 bytes barcode, 2 reserved, 2 sequence
            if let Some(barcode) = &e.reported {
                tag[..32].copy_from_slice(&padded(barcode, 32));
            }
            d.extend_from_slice(&tag);
        }
        // Identification descriptor header: CODE SET, IDENTIFIER TYPE, reserved, LENGTH.
        if with_id {
            let serial = e.drive_serial.clone().unwrap_or_default();
            d.extend_from_slice(&[0x02, 0x01, 0x00, 34]); // ASCII, T10 vendor ID, 34 bytes
            d.extend_from_slice(&padded(VENDOR, 8));
            d.extend_from_slice(&padded(DRIVE_PRODUCT, 16));
            d.extend_from_slice(&padded(&serial, 10));
        } else {
            d.extend_from_slice(&[0, 0, 0, 0]);
        }
        d
    }

    fn move_medium(&self, cdb: &[u8]) -> Result<(), Check> {
        let transport = u16::from_be_bytes([cdb[2], cdb[3]]);
        let src = u16::from_be_bytes([cdb[4], cdb[5]]);
        let dst = u16::from_be_bytes([cdb[6], cdb[7]]);
        if cdb[10] & 0x01 != 0 {
            return Err(Check::illegal(0x24, 0x00, Some(10))); // INVERT: cannot rotate media
        }
        if transport != 0 && transport != TRANSPORT_ADDRESS {
            return Err(Check::illegal(0x21, 0x01, Some(2)));
        }
        let mut outcome = Ok(());
        let r = self.store.update(|s| {
            outcome = Self::apply_move(s, src, dst);
            Ok(())
        });
        if r.is_err() {
            return Err(Check {
                key: NOT_READY,
                asc: 0x04,
                ascq: 0x00,
                field: None,
            });
        }
        outcome
    }

    /// The state change of MOVE MEDIUM, or the sense that refuses it.
    fn apply_move(s: &mut LibraryState, src: u16, dst: u16) -> Result<(), Check> {
        #[derive(Clone, Copy)]
        enum Slot {
            Storage(usize),
            Ie(usize),
            Drive(usize),
            Transport,
        }
        let locate = |s: &LibraryState, a: u16, field: u16| -> Result<Slot, Check> {
            let i = |first: u16| usize::from(a.wrapping_sub(first));
            if a == TRANSPORT_ADDRESS {
                Ok(Slot::Transport)
            } else if a >= FIRST_SLOT && i(FIRST_SLOT) < s.slots.len() {
                Ok(Slot::Storage(i(FIRST_SLOT)))
            } else if (FIRST_DRIVE..FIRST_SLOT).contains(&a) && i(FIRST_DRIVE) < s.drives.len() {
                Ok(Slot::Drive(i(FIRST_DRIVE)))
            } else if (FIRST_IE..FIRST_DRIVE).contains(&a) && i(FIRST_IE) < s.ie.len() {
                Ok(Slot::Ie(i(FIRST_IE)))
            } else {
                Err(Check::illegal(0x21, 0x01, Some(field)))
            }
        };
        let from = locate(s, src, 4)?;
        let to = locate(s, dst, 6)?;
        let occupant = |s: &LibraryState, e: Slot| match e {
            Slot::Storage(i) => s.slots[i].clone(),
            Slot::Ie(i) => s.ie[i].clone(),
            Slot::Drive(i) => s.drives[i].cartridge.clone(),
            Slot::Transport => None,
        };
        let Some(mut cart) = occupant(s, from) else {
            return Err(Check::illegal(0x3B, 0x0E, None)); // MEDIUM SOURCE ELEMENT EMPTY
        };
        if src == dst {
            return Ok(());
        }
        if matches!(to, Slot::Transport) {
            return Err(Check::illegal(0x21, 0x01, Some(6)));
        }
        if occupant(s, to).is_some() {
            return Err(Check::illegal(0x3B, 0x0D, None)); // MEDIUM DESTINATION ELEMENT FULL
        }
        if let Slot::Drive(i) = from
            && s.drives[i].loaded
        {
            return Err(Check::illegal(0x53, 0x02, None)); // MEDIUM REMOVAL PREVENTED
        }
        // The source address reported later is the storage slot the cartridge came from.
        if matches!(from, Slot::Storage(_) | Slot::Ie(_)) || cart.source.is_none() {
            cart.source = Some(src);
        }
        match from {
            Slot::Storage(i) => s.slots[i] = None,
            Slot::Ie(i) => s.ie[i] = None,
            Slot::Drive(i) => {
                let d = &mut s.drives[i];
                d.cartridge = None;
                d.loaded = false;
                d.unit_attention = false;
                d.position = None;
            }
            Slot::Transport => {}
        }
        match to {
            Slot::Storage(i) => s.slots[i] = Some(cart),
            Slot::Ie(i) => s.ie[i] = Some(cart),
            Slot::Drive(i) => {
                let d = &mut s.drives[i];
                d.cartridge = Some(cart);
                // Like most libraries, the drive loads (threads) an inserted cartridge.
                d.loaded = true;
                d.unit_attention = d.faults.unit_attention_after_load;
                d.position = None;
            }
            Slot::Transport => {}
        }
        Ok(())
    }

    fn dispatch(&self, cdb: &[u8]) -> Result<Option<Vec<u8>>, Check> {
        let op = cdb.first().copied().unwrap_or(0xFF);
        let need = match op {
            0x00..=0x1F => 6,
            0x20..=0x5F => 10,
            0x80..=0x9F => 16,
            0xA0..=0xBF => 12,
            _ => 6,
        };
        if cdb.len() < need {
            return Err(Check::illegal(0x24, 0x00, Some(0)));
        }
        match op {
            TEST_UNIT_READY => {
                self.read_state()?;
                Ok(None)
            }
            REQUEST_SENSE => Ok(Some(fixed_sense(Check {
                key: NO_SENSE,
                asc: 0,
                ascq: 0,
                field: None,
            }))),
            INQUIRY => self.inquiry(cdb).map(Some),
            MODE_SENSE_6 => self.mode_sense(cdb, false).map(Some),
            MODE_SENSE_10 => self.mode_sense(cdb, true).map(Some),
            READ_ELEMENT_STATUS => self.read_element_status(cdb).map(Some),
            MOVE_MEDIUM => self.move_medium(cdb).map(|()| None),
            INITIALIZE_ELEMENT_STATUS | INITIALIZE_ELEMENT_STATUS_WITH_RANGE => {
                // The inventory is always known; check the state is readable.
                self.read_state()?;
                Ok(None)
            }
            PREVENT_ALLOW_MEDIUM_REMOVAL => Ok(None),
            _ => Err(Check::illegal(0x20, 0x00, Some(0))), // INVALID COMMAND OPERATION CODE
        }
    }

    /// Allocation length of a data-in command.
    fn allocation(cdb: &[u8]) -> usize {
        match cdb[0] {
            REQUEST_SENSE | MODE_SENSE_6 => usize::from(cdb[4]),
            INQUIRY => usize::from(u16::from_be_bytes([cdb[3], cdb[4]])),
            MODE_SENSE_10 => usize::from(u16::from_be_bytes([cdb[7], cdb[8]])),
            READ_ELEMENT_STATUS => u32::from_be_bytes([0, cdb[7], cdb[8], cdb[9]]) as usize,
            _ => 0,
        }
    }
}

impl ScsiTransport for SmcEmulator {
    fn name(&self) -> String {
        format!("vtl:{} changer", self.store.dir().display())
    }

    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
        _timeout: Duration,
    ) -> Result<Completion, Error> {
        match self.dispatch(cdb) {
            Ok(reply) => {
                let transferred = match (reply, data) {
                    (Some(reply), DataDirection::FromDevice(buf)) => {
                        let n = reply.len().min(buf.len()).min(Self::allocation(cdb));
                        buf[..n].copy_from_slice(&reply[..n]);
                        n
                    }
                    _ => 0,
                };
                Ok(Completion {
                    status: status::GOOD,
                    sense: Vec::new(),
                    transferred,
                })
            }
            Err(check) => Ok(Completion {
                status: status::CHECK_CONDITION,
                sense: fixed_sense(check),
                transferred: 0,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sense_layout() {
        let s = fixed_sense(Check::illegal(0x21, 0x01, Some(4)));
        assert_eq!(
            s,
            [
                0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x01, 0, 0xC0, 0, 4
            ]
        );
    }
}

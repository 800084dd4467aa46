//! The [`Changer`] trait and [`ScsiChanger`], its SMC implementation over any
//! [`ScsiTransport`] (SG_IO on hardware, the SMC emulator of the virtual library).

use std::fmt;

use crate::Error;
use crate::scsi::inquiry::{Inquiry, decode_inquiry, decode_vpd_serial, inquiry_cdb};
use crate::scsi::smc::{
    ElementAddressAssignment, ElementRange, ElementStatus, ElementStatusRequest, ElementType,
    PAGE_ELEMENT_ADDRESS_ASSIGNMENT, decode_element_address_assignment, decode_element_status,
    initialize_element_status_cdb, mode_sense6_cdb, mode_sense10_cdb, move_medium_cdb,
    read_element_status_cdb,
};
use crate::scsi::{Ctx, RetryPolicy, execute, test_unit_ready_cdb, timeouts, with_retry};
use crate::transport::{DataDirection, ScsiTransport};

/// One element of a library, as an inventory lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Element type.
    pub kind: ElementType,
    /// Number as `mtx` counts: storage slots 1.., import/export slots continue after the
    /// storage slots, drives 0.., transports 0...
    pub number: u16,
    /// SCSI element address.
    pub address: u16,
    /// Holds a cartridge.
    pub full: bool,
    /// Barcode (primary volume tag) of the cartridge, when the library reads barcodes.
    pub barcode: Option<String>,
    /// Element address the cartridge came from (SVALID), e.g. the home slot of a cartridge
    /// in a drive.
    pub source_address: Option<u16>,
    /// The same as an `mtx` slot number, when the source is a storage or I/E slot.
    pub source_slot: Option<u16>,
    /// Drive serial number (from DVCID), for drive elements whose library reports it.
    pub drive_serial: Option<String>,
    /// Drive vendor and product (from DVCID).
    pub drive_model: Option<(String, String)>,
    /// For I/E slots: the cartridge was put in by an operator.
    pub imported: bool,
    /// The element reports an exception (EXCEPT) with this ASC/ASCQ.
    pub exception: Option<(u8, u8)>,
    /// False when the library says the element is not installed (magazine or drive
    /// removed: EXCEPT with 3B/12, 3B/1A or 3A/xx on a drive bay). Such elements are never
    /// used for moves.
    pub installed: bool,
    /// The reply describing this element was cut short (emulator quirk): fields after
    /// the cut are missing.
    pub incomplete: bool,
}

impl Element {
    /// Name of the exception ASC/ASCQ, if any.
    pub fn exception_name(&self) -> Option<&'static str> {
        self.exception
            .map(|(asc, ascq)| crate::sense::asc_name(asc, ascq))
    }
}

/// A library's inventory, per element type, each in address order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// Medium transport elements (robot pickers).
    pub transports: Vec<Element>,
    /// Storage slots.
    pub storage: Vec<Element>,
    /// Import/export (mail) slots.
    pub import_export: Vec<Element>,
    /// Drives.
    pub drives: Vec<Element>,
}

impl Inventory {
    /// The storage or I/E slot with `mtx` number `number`.
    pub fn slot(&self, number: u16) -> Option<&Element> {
        self.storage
            .iter()
            .chain(&self.import_export)
            .find(|e| e.number == number)
    }

    /// Drive number `number` (0-based).
    pub fn drive(&self, number: u16) -> Option<&Element> {
        self.drives.get(usize::from(number))
    }

    /// The element holding the cartridge with `barcode`.
    pub fn find_barcode(&self, barcode: &str) -> Option<&Element> {
        self.all().find(|e| e.barcode.as_deref() == Some(barcode))
    }

    /// The drive whose serial number is `serial`.
    pub fn drive_by_serial(&self, serial: &str) -> Option<&Element> {
        self.drives
            .iter()
            .find(|e| e.drive_serial.as_deref() == Some(serial))
    }

    /// The element at `address`, of any type.
    pub fn by_address(&self, address: u16) -> Option<&Element> {
        self.all().find(|e| e.address == address)
    }

    /// All elements: transports, storage, I/E, drives.
    pub fn all(&self) -> impl Iterator<Item = &Element> {
        self.transports
            .iter()
            .chain(&self.storage)
            .chain(&self.import_export)
            .chain(&self.drives)
    }

    /// The first installed, empty storage slot.
    pub fn first_empty_storage(&self) -> Option<&Element> {
        self.storage.iter().find(|e| !e.full && e.installed)
    }

    /// Builds the inventory from element descriptors: numbers them like `mtx`, resolves
    /// source addresses to slot numbers and drive identifiers to serials.
    pub fn from_elements(mut elements: Vec<ElementStatus>) -> Inventory {
        elements.sort_by_key(|e| (e.element_type, e.address));
        elements.dedup_by_key(|e| (e.element_type, e.address));
        let mut inv = Inventory::default();
        for e in elements {
            let installed = !(e.except && not_installed(e.element_type, e.asc, e.ascq));
            let element = Element {
                kind: e.element_type,
                number: 0,
                address: e.address,
                full: e.full,
                barcode: e.volume_tag.as_ref().map(|t| t.barcode.clone()),
                source_address: e.source,
                source_slot: None,
                drive_serial: e
                    .identifier
                    .as_ref()
                    .map(|id| id.serial())
                    .filter(|s| !s.is_empty()),
                drive_model: e.identifier.as_ref().and_then(|id| id.vendor_product()),
                imported: e.imported,
                exception: e.except.then_some((e.asc, e.ascq)),
                installed,
                incomplete: e.truncated,
            };
            match e.element_type {
                ElementType::Transport => inv.transports.push(element),
                ElementType::Storage => inv.storage.push(element),
                ElementType::ImportExport => inv.import_export.push(element),
                ElementType::Drive => inv.drives.push(element),
            }
        }
        for (i, e) in inv.transports.iter_mut().enumerate() {
            e.number = i as u16;
        }
        for (i, e) in inv.drives.iter_mut().enumerate() {
            e.number = i as u16;
        }
        let mut n = 0u16;
        for e in inv.storage.iter_mut().chain(inv.import_export.iter_mut()) {
            n = n.saturating_add(1);
            e.number = n;
        }
        let slots: Vec<(u16, u16)> = inv
            .storage
            .iter()
            .chain(&inv.import_export)
            .map(|e| (e.address, e.number))
            .collect();
        let resolve = |e: &mut Element| {
            e.source_slot = e
                .source_address
                .and_then(|a| slots.iter().find(|(addr, _)| *addr == a).map(|(_, n)| *n));
        };
        inv.transports.iter_mut().for_each(resolve);
        inv.storage.iter_mut().for_each(resolve);
        inv.import_export.iter_mut().for_each(resolve);
        inv.drives.iter_mut().for_each(resolve);
        inv
    }
}

/// Element exception codes that mean "not installed".
fn not_installed(t: ElementType, asc: u8, ascq: u8) -> bool {
    matches!((asc, ascq), (0x3B, 0x12) | (0x3B, 0x1A)) || (t == ElementType::Drive && asc == 0x3A)
}

impl Inventory {
    /// The inventory in `mtx status` layout (barcodes trimmed), which scripts written for
    /// mtx recognise. `device` names the changer in the first line.
    pub fn mtx_status(&self, device: &str) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_mtx_status(device, &mut s);
        s
    }

    fn write_mtx_status(&self, device: &str, f: &mut impl fmt::Write) -> fmt::Result {
        writeln!(
            f,
            "  Storage Changer {device}:{} Drives, {} Slots ( {} Import/Export )",
            self.drives.len(),
            self.storage.len() + self.import_export.len(),
            self.import_export.len()
        )?;
        for d in &self.drives {
            write!(f, "Data Transfer Element {}:", d.number)?;
            if d.full {
                write!(f, "Full (")?;
                match d.source_slot {
                    Some(s) => write!(f, "Storage Element {s} Loaded")?,
                    None => write!(f, "Unknown Storage Element Loaded")?,
                }
                write!(f, ")")?;
                if let Some(b) = &d.barcode {
                    write!(f, ":VolumeTag = {b}")?;
                }
            } else {
                write!(f, "Empty")?;
            }
            if !d.installed {
                write!(f, " (not installed)")?;
            }
            writeln!(f)?;
        }
        for s in self.storage.iter().chain(&self.import_export) {
            let ie = if s.kind == ElementType::ImportExport {
                " IMPORT/EXPORT"
            } else {
                ""
            };
            write!(f, "      Storage Element {}{}:", s.number, ie)?;
            if s.full {
                write!(f, "Full ")?;
                if let Some(b) = &s.barcode {
                    write!(f, ":VolumeTag={b}")?;
                }
            } else {
                write!(f, "Empty")?;
            }
            if !s.installed {
                write!(f, " (not installed)")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A medium changer: inventory and cartridge moves.
///
/// Element numbers in the provided methods are `mtx` style (see [`Element::number`]);
/// [`Changer::move_medium`] takes SCSI element addresses.
pub trait Changer {
    /// Device name for messages.
    fn name(&self) -> String;
    /// Reads the status of every element.
    fn inventory(&mut self) -> Result<Inventory, Error>;
    /// Moves the cartridge at element address `source` to element address `destination`.
    fn move_medium(&mut self, source: u16, destination: u16) -> Result<(), Error>;
    /// Makes the library rescan its elements (barcodes included). Can take many minutes.
    fn initialize_element_status(&mut self) -> Result<(), Error>;

    /// Loads the cartridge in storage or I/E slot `slot` into drive `drive`.
    fn load(&mut self, slot: u16, drive: u16) -> Result<(), Error> {
        let inv = self.inventory()?;
        let s = usable(self.name(), inv.slot(slot), || format!("slot {slot}"))?;
        let d = usable(self.name(), inv.drive(drive), || format!("drive {drive}"))?;
        if !s.full {
            return Err(Error::SourceEmpty {
                device: self.name(),
                address: s.address,
            });
        }
        if d.full {
            return Err(Error::DestinationFull {
                device: self.name(),
                address: d.address,
            });
        }
        self.move_medium(s.address, d.address)
    }

    /// Moves the cartridge in drive `drive` to `slot`, or else back to the slot it came
    /// from when that is empty, or else to the first empty storage slot. The drive must
    /// have ejected the cartridge ([`crate::TapeDrive::unload`]) unless the library does
    /// that itself. Returns the slot number used.
    fn unload(&mut self, drive: u16, slot: Option<u16>) -> Result<u16, Error> {
        let inv = self.inventory()?;
        let d = usable(self.name(), inv.drive(drive), || format!("drive {drive}"))?;
        if !d.full {
            return Err(Error::SourceEmpty {
                device: self.name(),
                address: d.address,
            });
        }
        let target = match slot {
            Some(n) => usable(self.name(), inv.slot(n), || format!("slot {n}"))?,
            None => d
                .source_slot
                .and_then(|n| inv.slot(n))
                .filter(|s| !s.full && s.installed)
                .or_else(|| inv.first_empty_storage())
                .ok_or_else(|| Error::NoSuchElement {
                    device: self.name(),
                    what: "empty storage slot".into(),
                })?,
        };
        if target.full {
            return Err(Error::DestinationFull {
                device: self.name(),
                address: target.address,
            });
        }
        let number = target.number;
        self.move_medium(d.address, target.address)?;
        Ok(number)
    }

    /// Moves a cartridge between two storage or I/E slots.
    fn transfer(&mut self, from_slot: u16, to_slot: u16) -> Result<(), Error> {
        let inv = self.inventory()?;
        let s = usable(self.name(), inv.slot(from_slot), || {
            format!("slot {from_slot}")
        })?;
        let d = usable(self.name(), inv.slot(to_slot), || format!("slot {to_slot}"))?;
        if !s.full {
            return Err(Error::SourceEmpty {
                device: self.name(),
                address: s.address,
            });
        }
        if d.full {
            return Err(Error::DestinationFull {
                device: self.name(),
                address: d.address,
            });
        }
        self.move_medium(s.address, d.address)
    }
}

fn usable(
    device: String,
    e: Option<&Element>,
    what: impl Fn() -> String,
) -> Result<&Element, Error> {
    match e {
        Some(e) if e.installed => Ok(e),
        Some(_) => Err(Error::NoSuchElement {
            device,
            what: format!("{} (not installed)", what()),
        }),
        None => Err(Error::NoSuchElement {
            device,
            what: what(),
        }),
    }
}

impl<C: Changer + ?Sized> Changer for Box<C> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn inventory(&mut self) -> Result<Inventory, Error> {
        (**self).inventory()
    }
    fn move_medium(&mut self, source: u16, destination: u16) -> Result<(), Error> {
        (**self).move_medium(source, destination)
    }
    fn initialize_element_status(&mut self) -> Result<(), Error> {
        (**self).initialize_element_status()
    }
}

/// Largest allocation length used: many libraries honour only 16 bits of READ ELEMENT
/// STATUS's 24-bit ALLOCATION LENGTH.
const MAX_ALLOCATION: u32 = 0xFFFF;
/// Elements asked for per READ ELEMENT STATUS; at up to ~130 bytes per descriptor the
/// reply stays under [`MAX_ALLOCATION`].
const ELEMENTS_PER_REQUEST: u16 = 256;

/// The SCSI media changer (SMC-3) over any [`ScsiTransport`].
///
/// On hardware `T` is [`crate::SgDevice`]; in the virtual library it is the SMC emulator,
/// so both run this code.
#[derive(Debug)]
pub struct ScsiChanger<T: ScsiTransport> {
    transport: T,
    retry: RetryPolicy,
    addresses: Option<ElementAddressAssignment>,
    /// VOLTAG accepted (None: not tried yet).
    volume_tags: Option<bool>,
    /// DVCID accepted (None: not tried yet).
    device_ids: Option<bool>,
}

impl<T: ScsiTransport> ScsiChanger<T> {
    /// Wraps a transport to the changer with the default [`RetryPolicy`].
    pub fn new(transport: T) -> Self {
        ScsiChanger {
            transport,
            retry: RetryPolicy::default(),
            addresses: None,
            volume_tags: None,
            device_ids: None,
        }
    }

    /// Sets how long to retry while the library is becoming ready.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// TEST UNIT READY, retried while the library is becoming ready.
    pub fn test_unit_ready(&mut self) -> Result<(), Error> {
        let name = self.transport.name();
        let t = &mut self.transport;
        with_retry(&name, self.retry, || {
            execute(
                t,
                "TEST UNIT READY",
                &test_unit_ready_cdb(),
                DataDirection::None,
                timeouts::SHORT,
                Ctx::default(),
            )
        })
        .map(|_| ())
    }

    /// Standard INQUIRY data.
    pub fn inquiry(&mut self) -> Result<Inquiry, Error> {
        let mut buf = [0u8; 96];
        let n = execute(
            &mut self.transport,
            "INQUIRY",
            &inquiry_cdb(None, buf.len() as u16),
            DataDirection::FromDevice(&mut buf),
            timeouts::SHORT,
            Ctx::default(),
        )?;
        decode_inquiry(&buf[..n.min(buf.len())])
            .map_err(|source| self.decode_error("INQUIRY", source))
    }

    /// Unit serial number (VPD page 80h); `None` when the library has no such page.
    pub fn serial(&mut self) -> Result<Option<String>, Error> {
        let mut buf = [0u8; 255];
        let result = execute(
            &mut self.transport,
            "INQUIRY",
            &inquiry_cdb(Some(0x80), buf.len() as u16),
            DataDirection::FromDevice(&mut buf),
            timeouts::SHORT,
            Ctx::default(),
        );
        match result {
            Ok(n) => Ok(decode_vpd_serial(&buf[..n.min(buf.len())])
                .ok()
                .filter(|s| !s.is_empty())),
            Err(Error::IllegalRequest { .. } | Error::Unsupported { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Element address assignment (mode page 1Dh), read once and cached. Tries MODE
    /// SENSE(6) and falls back to MODE SENSE(10).
    pub fn element_addresses(&mut self) -> Result<ElementAddressAssignment, Error> {
        if let Some(a) = self.addresses {
            return Ok(a);
        }
        let name = self.transport.name();
        let mut buf = [0u8; 255];
        let t = &mut self.transport;
        let six = with_retry(&name, self.retry, || {
            execute(
                t,
                "MODE SENSE(6)",
                &mode_sense6_cdb(PAGE_ELEMENT_ADDRESS_ASSIGNMENT, 255),
                DataDirection::FromDevice(&mut buf),
                timeouts::SHORT,
                Ctx::default(),
            )
        });
        let a = match six {
            Ok(n) => decode_element_address_assignment(&buf[..n.min(buf.len())], false)
                .map_err(|source| self.decode_error("MODE SENSE(6)", source))?,
            Err(Error::IllegalRequest { .. } | Error::Unsupported { .. }) => {
                let mut buf = [0u8; 256];
                let n = execute(
                    &mut self.transport,
                    "MODE SENSE(10)",
                    &mode_sense10_cdb(PAGE_ELEMENT_ADDRESS_ASSIGNMENT, 256),
                    DataDirection::FromDevice(&mut buf),
                    timeouts::SHORT,
                    Ctx::default(),
                )?;
                decode_element_address_assignment(&buf[..n.min(buf.len())], true)
                    .map_err(|source| self.decode_error("MODE SENSE(10)", source))?
            }
            Err(e) => return Err(e),
        };
        self.addresses = Some(a);
        Ok(a)
    }

    /// READ ELEMENT STATUS for every element of `range` (of type `t`), in requests of at
    /// most 256 elements and 0xFFFF bytes. Asks for barcodes and
    /// drive identifiers and drops either if the library rejects it.
    pub fn read_element_status(
        &mut self,
        t: ElementType,
        range: ElementRange,
    ) -> Result<Vec<ElementStatus>, Error> {
        let mut out = Vec::new();
        let end = u32::from(range.first) + u32::from(range.count);
        let mut next = u32::from(range.first);
        let mut buf = vec![0u8; MAX_ALLOCATION as usize];
        while next < end {
            let count = (end - next).min(u32::from(ELEMENTS_PER_REQUEST)) as u16;
            let start = next as u16;
            let n = self.read_element_status_once(t, start, count, &mut buf)?;
            let reply = decode_element_status(&buf[..n.min(buf.len())])
                .map_err(|source| self.decode_error("READ ELEMENT STATUS", source))?;
            let got: Vec<ElementStatus> = reply
                .elements
                .into_iter()
                .filter(|e| {
                    e.element_type == t
                        && u32::from(e.address) >= next
                        && u32::from(e.address) < end
                })
                .collect();
            let Some(last) = got.iter().map(|e| e.address).max() else {
                break;
            };
            next = u32::from(last) + 1;
            out.extend(got);
        }
        Ok(out)
    }

    fn read_element_status_once(
        &mut self,
        t: ElementType,
        start: u16,
        count: u16,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        loop {
            let volume_tags = self.volume_tags.unwrap_or(true);
            let device_id = t == ElementType::Drive && self.device_ids.unwrap_or(true);
            let req = ElementStatusRequest {
                element_type: Some(t),
                start,
                count,
                volume_tags,
                device_id,
                allocation: MAX_ALLOCATION.min(buf.len() as u32),
            };
            let cdb = read_element_status_cdb(&req);
            let name = self.transport.name();
            let tr = &mut self.transport;
            let result = with_retry(&name, self.retry, || {
                execute(
                    tr,
                    "READ ELEMENT STATUS",
                    &cdb,
                    DataDirection::FromDevice(&mut *buf),
                    timeouts::MEDIUM,
                    Ctx::default(),
                )
            });
            match result {
                Ok(n) => {
                    if volume_tags {
                        self.volume_tags = Some(true);
                    }
                    if device_id {
                        self.device_ids = Some(true);
                    }
                    return Ok(n);
                }
                // Libraries without a barcode reader or DVCID support reject the bit:
                // drop DVCID first, then VOLTAG, and remember.
                Err(Error::IllegalRequest { asc: 0x24, .. })
                    if device_id && self.device_ids.is_none() =>
                {
                    self.device_ids = Some(false);
                }
                Err(Error::IllegalRequest { asc: 0x24, .. })
                    if volume_tags && self.volume_tags.is_none() =>
                {
                    self.volume_tags = Some(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn decode_error(&self, command: &'static str, source: crate::error::DecodeError) -> Error {
        Error::Decode {
            device: self.transport.name(),
            command,
            source,
        }
    }
}

impl<T: ScsiTransport> Changer for ScsiChanger<T> {
    fn name(&self) -> String {
        self.transport.name()
    }

    fn inventory(&mut self) -> Result<Inventory, Error> {
        let a = self.element_addresses()?;
        let mut elements = Vec::new();
        for t in [
            ElementType::Transport,
            ElementType::Storage,
            ElementType::ImportExport,
            ElementType::Drive,
        ] {
            let range = a.range(t);
            if range.count > 0 {
                elements.extend(self.read_element_status(t, range)?);
            }
        }
        Ok(Inventory::from_elements(elements))
    }

    fn move_medium(&mut self, source: u16, destination: u16) -> Result<(), Error> {
        let a = self.element_addresses()?;
        let cdb = move_medium_cdb(a.transport.first, source, destination);
        let name = self.transport.name();
        let t = &mut self.transport;
        with_retry(&name, self.retry, || {
            execute(
                t,
                "MOVE MEDIUM",
                &cdb,
                DataDirection::None,
                timeouts::MOVE_MEDIUM,
                Ctx {
                    element: Some((source, destination)),
                },
            )
        })
        .map(|_| ())
    }

    fn initialize_element_status(&mut self) -> Result<(), Error> {
        let name = self.transport.name();
        let t = &mut self.transport;
        with_retry(&name, self.retry, || {
            execute(
                t,
                "INITIALIZE ELEMENT STATUS",
                &initialize_element_status_cdb(),
                DataDirection::None,
                timeouts::INITIALIZE_ELEMENT_STATUS,
                Ctx::default(),
            )
        })
        .map(|_| ())
    }
}

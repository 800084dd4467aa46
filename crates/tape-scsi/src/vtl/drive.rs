//! [`VirtualDrive`]: a [`TapeDrive`] over a cartridge directory, with the st driver's
//! semantics.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::cartridge::{Cartridge, CartridgeMeta, Object, PARTITION_GRANULARITY, RecordRead};
use super::state::{CartridgeFaults, DriveFaults, FaultOp, SavedPosition, Stamp, Store};
use crate::{
    Capacity, DriveStatus, Error, MamAttribute, Position, ReadOutcome, Space, TapeDrive,
    WriteOutcome,
};

/// MAM 0x0000: REMAINING CAPACITY IN PARTITION (MiB).
const ATTR_REMAINING_CAPACITY: u16 = 0x0000;
/// MAM 0x0001: MAXIMUM CAPACITY IN PARTITION (MiB).
const ATTR_MAXIMUM_CAPACITY: u16 = 0x0001;
/// MAM 0x0009: VOLUME CHANGE REFERENCE (4 bytes), advanced when a load writes.
const ATTR_VOLUME_CHANGE_REFERENCE: u16 = 0x0009;
/// TapeAlert 03h: hard error.
const ALERT_HARD_ERROR: u8 = 0x03;
/// TapeAlert 05h: read failure.
const ALERT_READ_FAILURE: u8 = 0x05;
/// TapeAlert 06h: write failure.
const ALERT_WRITE_FAILURE: u8 = 0x06;
/// TapeAlert 09h: write protect.
const ALERT_WRITE_PROTECT: u8 = 0x09;
/// Attributes below this are device attributes, read-only for the host.
const FIRST_HOST_ATTRIBUTE: u16 = 0x0400;

/// Advances MAM 0x0009 (stored with partition 0, like the reference backend does).
fn advance_volume_change_reference(cart: &mut Cartridge) -> Result<(), Error> {
    let current = cart
        .read_attribute(0, ATTR_VOLUME_CHANGE_REFERENCE)?
        .and_then(|a| <[u8; 4]>::try_from(a.value.as_slice()).ok())
        .map_or(0, u32::from_be_bytes);
    let next = MamAttribute {
        id: ATTR_VOLUME_CHANGE_REFERENCE,
        format: 0,
        value: current.wrapping_add(1).to_be_bytes().to_vec(),
    };
    cart.write_attribute(0, &next)
}

/// Options for a new virtual cartridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartridgeOptions {
    /// Bytes that fit before the early-warning point (all partitions together).
    pub capacity: u64,
    /// Bytes that may still be written after the early-warning point before the write
    /// fails with [`Error::EndOfMedium`]; `None` for 1/32 of the capacity, at least 64 KiB.
    pub reserve: Option<u64>,
}

/// A cartridge in the drive.
#[derive(Debug)]
struct Media {
    cart: Cartridge,
    barcode: Option<String>,
    pos: Position,
    /// Threaded and ready; `false` after [`TapeDrive::unload`] until [`TapeDrive::load`].
    loaded: bool,
    /// The volume change reference (MAM 0x0009) was advanced since the cartridge was
    /// loaded: it changes once per load that writes.
    vcr_advanced: bool,
}

/// The drive's link to a virtual library.
#[derive(Debug)]
struct LibraryLink {
    store: Store,
    index: usize,
    /// Held for the drive's lifetime: one process at a time, like `/dev/nstN`.
    _lock: File,
    stamp: Option<Stamp>,
}

/// A virtual tape drive: the [`TapeDrive`] of the virtual library, or a standalone drive
/// over one cartridge directory ([`VirtualDrive::open_cartridge`]).
///
/// Semantics follow the Linux st driver in variable-block mode: reading a filemark returns
/// [`ReadOutcome::Filemark`] and moves past it; reading at end of data returns
/// [`ReadOutcome::EndOfData`] and stays; a write truncates everything after it; the write
/// that crosses the early-warning point returns [`WriteOutcome::Written`], later writes
/// return [`WriteOutcome::EarlyWarning`] until the reserve is used up, then
/// [`Error::EndOfMedium`]. Writes are durable (one `syncfs` of the cartridge directory) when
/// filemarks are written, on `write_filemarks(0)`, and before any repositioning.
#[derive(Debug)]
pub struct VirtualDrive {
    name: String,
    serial: String,
    link: Option<LibraryLink>,
    drive_faults: DriveFaults,
    cart_faults: CartridgeFaults,
    capabilities: super::state::DriveCapabilities,
    media: Option<Media>,
    block_size: u32,
    locked: bool,
    unit_attention: bool,
    /// TapeAlert flags raised since they were last read (reading clears them, like 2Eh).
    alerts: std::collections::BTreeSet<u8>,
}

impl VirtualDrive {
    /// A standalone drive with a new blank cartridge (one partition) created in `dir`.
    pub fn create_cartridge(dir: &Path, options: &CartridgeOptions) -> Result<VirtualDrive, Error> {
        let cart = Cartridge::create(
            dir,
            CartridgeMeta::single(options.capacity, options.reserve),
        )?;
        Ok(VirtualDrive::standalone(cart))
    }

    /// A standalone drive with the existing cartridge directory `dir` loaded (for example
    /// one written by the reference LTFS file backend).
    pub fn open_cartridge(dir: &Path) -> Result<VirtualDrive, Error> {
        Ok(VirtualDrive::standalone(Cartridge::open(dir)?))
    }

    fn standalone(cart: Cartridge) -> VirtualDrive {
        VirtualDrive {
            name: format!("vtl:{}", cart.dir().display()),
            serial: "VDRV00000".to_owned(),
            link: None,
            drive_faults: DriveFaults::default(),
            cart_faults: CartridgeFaults::default(),
            capabilities: Default::default(),
            media: Some(Media {
                cart,
                barcode: None,
                pos: Position::default(),
                loaded: true,
                vcr_advanced: false,
            }),
            block_size: 0,
            locked: false,
            unit_attention: false,
            alerts: Default::default(),
        }
    }

    /// Drive `index` of the library in `store`; fails with [`Error::Busy`] while another
    /// handle (in any process) has it open.
    pub(crate) fn open_in_library(store: Store, index: usize) -> Result<VirtualDrive, Error> {
        let lock_dir = store.dir().join("drives");
        std::fs::create_dir_all(&lock_dir).map_err(|e| Error::Io {
            path: lock_dir.clone(),
            source: e,
        })?;
        let lock_path = lock_dir.join(format!("{index}.lock"));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::Io {
                path: lock_path.clone(),
                source: e,
            })?;
        let name = format!("vtl:{} drive {index}", store.dir().display());
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Busy { device: name }),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        // A position saved by a process that crashed is not trusted: take it now and
        // write it back when this handle closes.
        let (serial, saved) = store.update(|s| {
            let d = s
                .drives
                .get_mut(index)
                .ok_or_else(|| Error::NoSuchElement {
                    device: store.dir().display().to_string(),
                    what: format!("drive {index}"),
                })?;
            Ok((d.serial.clone(), d.position.take()))
        })?;
        let mut drive = VirtualDrive {
            name,
            serial,
            link: Some(LibraryLink {
                store,
                index,
                _lock: lock,
                stamp: None,
            }),
            drive_faults: DriveFaults::default(),
            cart_faults: CartridgeFaults::default(),
            capabilities: Default::default(),
            media: None,
            block_size: 0,
            locked: false,
            unit_attention: false,
            alerts: Default::default(),
        };
        drive.refresh()?;
        if let (Some(m), Some(p)) = (drive.media.as_mut(), saved) {
            let part = p.partition.min(m.cart.partition_count().saturating_sub(1));
            m.pos = Position {
                partition: part,
                block: p.block.min(m.cart.eod(part)),
            };
        }
        Ok(drive)
    }

    /// The drive's serial number (what the changer reports as its DVCID serial).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The barcode of the cartridge in the drive, if it is in a library.
    pub fn barcode(&self) -> Option<&str> {
        self.media.as_ref().and_then(|m| m.barcode.as_deref())
    }

    /// The directory of the cartridge in the drive.
    pub fn cartridge_dir(&self) -> Option<PathBuf> {
        self.media.as_ref().map(|m| m.cart.dir().to_path_buf())
    }

    /// Injects drive faults. In a library they are saved in the state (and seen by every
    /// process); standalone they live in this handle.
    pub fn set_drive_faults(&mut self, faults: DriveFaults) -> Result<(), Error> {
        if let Some(link) = &self.link {
            let index = link.index;
            let f = faults.clone();
            link.store.update(|s| {
                if let Some(d) = s.drives.get_mut(index) {
                    d.faults = f;
                }
                Ok(())
            })?;
        }
        self.drive_faults = faults;
        Ok(())
    }

    /// Injects faults into the cartridge in the drive (saved in the state in a library).
    pub fn set_cartridge_faults(&mut self, faults: CartridgeFaults) -> Result<(), Error> {
        if let (Some(link), Some(barcode)) = (&self.link, self.barcode()) {
            let barcode = barcode.to_owned();
            let f = faults.clone();
            link.store.update(|s| {
                if let Some(c) = s.cartridges.get_mut(&barcode) {
                    c.faults = f;
                }
                Ok(())
            })?;
        }
        self.cart_faults = faults;
        Ok(())
    }

    /// Re-reads the library state when it changed: faults, and which cartridge is in the
    /// drive (the changer may have moved one in).
    fn refresh(&mut self) -> Result<(), Error> {
        let Some(link) = &mut self.link else {
            return Ok(());
        };
        let stamp = link.store.stamp();
        if stamp.is_some() && stamp == link.stamp {
            return Ok(());
        }
        let state = link.store.read()?;
        link.stamp = stamp;
        let index = link.index;
        let lib_dir = link.store.dir().to_path_buf();
        let Some(d) = state.drives.get(index) else {
            return Err(Error::NoSuchElement {
                device: self.name.clone(),
                what: format!("drive {index}"),
            });
        };
        self.drive_faults = d.faults.clone();
        self.capabilities = state.capabilities;
        self.unit_attention = d.unit_attention;
        let wanted = d.cartridge.as_ref().map(|o| o.barcode.clone());
        let current = self.media.as_ref().and_then(|m| m.barcode.clone());
        if wanted != current {
            if let Some(mut m) = self.media.take() {
                m.cart.flush()?;
            }
            if let Some(barcode) = &wanted {
                let c = state
                    .cartridges
                    .get(barcode)
                    .ok_or_else(|| Error::VtlState {
                        path: lib_dir.clone(),
                        reason: format!("drive {index} holds unknown cartridge {barcode:?}"),
                    })?;
                let cart = Cartridge::open(&lib_dir.join(&c.dir))?;
                self.media = Some(Media {
                    cart,
                    barcode: Some(barcode.clone()),
                    pos: Position::default(),
                    loaded: d.loaded,
                    vcr_advanced: false,
                });
            }
        }
        if let Some(m) = &mut self.media {
            m.loaded = d.loaded;
            if let Some(barcode) = &m.barcode {
                self.cart_faults = state
                    .cartridges
                    .get(barcode)
                    .map(|c| c.faults.clone())
                    .unwrap_or_default();
            }
        } else {
            self.cart_faults = CartridgeFaults::default();
        }
        Ok(())
    }

    fn set_library_drive(
        &mut self,
        f: impl FnOnce(&mut super::state::DriveState),
    ) -> Result<(), Error> {
        if let Some(link) = &mut self.link {
            let index = link.index;
            link.store.update(|s| {
                if let Some(d) = s.drives.get_mut(index) {
                    f(d);
                }
                Ok(())
            })?;
            link.stamp = None;
        }
        Ok(())
    }

    /// The loaded, ready cartridge, after the checks every medium command makes.
    fn ready(&mut self) -> Result<&mut Media, Error> {
        self.refresh()?;
        if self.drive_faults.not_ready {
            return Err(Error::NotReady {
                device: self.name.clone(),
            });
        }
        if !self.media.as_ref().is_some_and(|m| m.loaded) {
            return Err(Error::NotReady {
                device: self.name.clone(),
            });
        }
        if self.unit_attention {
            self.unit_attention = false;
            self.set_library_drive(|d| d.unit_attention = false)?;
            return Err(Error::UnitAttention {
                device: self.name.clone(),
                reason: "not ready to ready change, medium may have changed",
            });
        }
        self.media.as_mut().ok_or_else(|| Error::NotReady {
            device: String::new(),
        })
    }

    fn write_protected(&self) -> bool {
        self.cart_faults.write_protected
            || self
                .media
                .as_ref()
                .is_some_and(|m| m.cart.conf().emulate_readonly)
    }

    fn medium_error_at(&self, pos: Position, write: bool) -> bool {
        self.cart_faults.medium_errors.iter().any(|f| {
            f.partition == pos.partition
                && f.block == pos.block
                && match f.on {
                    FaultOp::Any => true,
                    FaultOp::Read => !write,
                    FaultOp::Write => write,
                }
        })
    }

    /// Early-warning point of a partition in bytes.
    fn early_warning(&self, cart: &Cartridge, partition: u8) -> u64 {
        let size = cart
            .meta()
            .partitions
            .get(usize::from(partition))
            .copied()
            .unwrap_or(0);
        match self.cart_faults.early_warning_at {
            Some(at) => size.min(at),
            None => size,
        }
    }

    /// Record bytes on the partition before `block`.
    fn used_before(cart: &Cartridge, partition: u8, block: u64) -> u64 {
        let mut used = cart.used(partition);
        for b in block..cart.eod(partition) {
            if let Some(Object::Record(n)) = cart.object(partition, b) {
                used -= n;
            }
        }
        used
    }

    fn write_object(&mut self, data: Option<&[u8]>) -> Result<WriteOutcome, Error> {
        let name = self.name.clone();
        self.ready()?;
        if self.write_protected() {
            self.alerts.insert(ALERT_WRITE_PROTECT);
            return Err(Error::WriteProtected { device: name });
        }
        let (pos, used, ew, reserve) = {
            let Some(m) = self.media.as_ref() else {
                return Err(Error::NotReady { device: name });
            };
            let used = Self::used_before(&m.cart, m.pos.partition, m.pos.block);
            (
                m.pos,
                used,
                self.early_warning(&m.cart, m.pos.partition),
                m.cart.meta().reserve,
            )
        };
        if self.medium_error_at(pos, true) {
            self.alerts.extend([ALERT_HARD_ERROR, ALERT_WRITE_FAILURE]);
            return Err(Error::MediumError {
                device: name,
                block: pos.block,
            });
        }
        let len = data.map_or(0, |d| d.len() as u64);
        if used.saturating_add(len) > ew.saturating_add(reserve) {
            return Err(Error::EndOfMedium { device: name });
        }
        let Some(m) = self.media.as_mut() else {
            return Err(Error::NotReady { device: name });
        };
        if !m.vcr_advanced {
            advance_volume_change_reference(&mut m.cart)?;
            m.vcr_advanced = true;
        }
        m.cart.write(pos.partition, pos.block, data)?;
        m.pos.block += 1;
        Ok(if used >= ew {
            WriteOutcome::EarlyWarning
        } else {
            WriteOutcome::Written
        })
    }

    fn flush(&mut self) -> Result<(), Error> {
        if let Some(m) = self.media.as_mut() {
            m.cart.flush()?;
        }
        Ok(())
    }

    fn stopped(&self, what: &'static str) -> Error {
        Error::PositionStoppedEarly {
            device: self.name.clone(),
            what,
        }
    }

    fn save_position(&mut self) -> Result<(), Error> {
        let pos = self
            .media
            .as_ref()
            .filter(|m| m.loaded)
            .map(|m| SavedPosition {
                partition: m.pos.partition,
                block: m.pos.block,
            });
        self.set_library_drive(|d| d.position = pos)
    }
}

impl Drop for VirtualDrive {
    fn drop(&mut self) {
        // Best effort: a drop cannot report errors; what matters was flushed at filemarks.
        let _ = self.flush();
        let _ = self.save_position();
    }
}

impl TapeDrive for VirtualDrive {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn status(&mut self) -> Result<DriveStatus, Error> {
        self.refresh()?;
        let not_ready = self.drive_faults.not_ready;
        let write_protected = self.write_protected();
        let Some(m) = self.media.as_ref().filter(|m| m.loaded && !not_ready) else {
            return Ok(DriveStatus {
                block_size: self.block_size,
                ..DriveStatus::default()
            });
        };
        let eod = m.cart.eod(m.pos.partition);
        let ew = self.early_warning(&m.cart, m.pos.partition);
        Ok(DriveStatus {
            ready: true,
            write_protected,
            bot: m.pos.block == 0,
            eod: m.pos.block == eod,
            eot: m.pos.block == eod && m.cart.used(m.pos.partition) >= ew,
            block_size: self.block_size,
            density_code: m.cart.conf().density(),
            partition: self.capabilities.locate.then_some(m.pos.partition),
            block: self.capabilities.locate.then_some(m.pos.block),
        })
    }

    fn load(&mut self) -> Result<(), Error> {
        self.refresh()?;
        if self.drive_faults.not_ready || self.media.is_none() {
            return Err(Error::NotReady {
                device: self.name.clone(),
            });
        }
        let ua = self.drive_faults.unit_attention_after_load;
        if let Some(m) = self.media.as_mut().filter(|m| !m.loaded) {
            m.loaded = true;
            m.vcr_advanced = false;
            m.pos = Position::default();
            self.unit_attention = ua;
            self.set_library_drive(|d| {
                d.loaded = true;
                d.unit_attention = ua;
            })?;
        }
        Ok(())
    }

    fn unload(&mut self) -> Result<(), Error> {
        self.refresh()?;
        if self.drive_faults.not_ready || self.media.is_none() {
            return Err(Error::NotReady {
                device: self.name.clone(),
            });
        }
        if self.locked {
            return Err(Error::IllegalRequest {
                device: self.name.clone(),
                command: "LOAD/UNLOAD",
                asc: 0x53,
                ascq: 0x02,
                asc_name: "medium removal prevented",
                field_byte: None,
            });
        }
        self.flush()?;
        if let Some(m) = self.media.as_mut() {
            m.loaded = false;
            m.pos = Position::default();
        }
        self.unit_attention = false;
        self.set_library_drive(|d| {
            d.loaded = false;
            d.unit_attention = false;
            d.position = None;
        })
    }

    fn set_medium_lock(&mut self, locked: bool) -> Result<(), Error> {
        self.refresh()?;
        if self.drive_faults.not_ready {
            return Err(Error::NotReady {
                device: self.name.clone(),
            });
        }
        self.locked = locked;
        Ok(())
    }

    fn rewind(&mut self) -> Result<(), Error> {
        self.ready()?.cart.flush()?;
        let m = self.ready()?;
        m.pos = Position::default();
        Ok(())
    }

    fn set_block_size(&mut self, size: u32) -> Result<(), Error> {
        if size != 0 {
            return Err(Error::Unsupported {
                device: self.name.clone(),
                what: "fixed block mode",
            });
        }
        self.block_size = 0;
        Ok(())
    }

    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, Error> {
        let name = self.name.clone();
        let pos = self.ready()?.pos;
        let read_error = self.medium_error_at(pos, false);
        let Some(m) = self.media.as_mut() else {
            return Err(Error::NotReady { device: name });
        };
        match m.cart.object(pos.partition, pos.block) {
            None => Ok(ReadOutcome::EndOfData),
            Some(Object::Filemark) => {
                m.pos.block += 1;
                Ok(ReadOutcome::Filemark)
            }
            Some(Object::Record(_)) => {
                m.pos.block += 1;
                if read_error {
                    self.alerts.extend([ALERT_HARD_ERROR, ALERT_READ_FAILURE]);
                    return Err(Error::MediumError {
                        device: name,
                        block: pos.block,
                    });
                }
                match m.cart.read_record(pos.partition, pos.block, buf)? {
                    RecordRead::Read(n) => Ok(ReadOutcome::Record(n)),
                    RecordRead::TooLong(record_len) => Err(Error::RecordTooLong {
                        device: name,
                        record_len,
                        buffer_len: buf.len(),
                    }),
                }
            }
        }
    }

    fn write_record(&mut self, data: &[u8]) -> Result<WriteOutcome, Error> {
        if data.is_empty() {
            return Err(Error::InvalidRequest {
                device: self.name.clone(),
                what: "a record cannot be empty".to_owned(),
            });
        }
        self.write_object(Some(data))
    }

    fn write_filemarks(&mut self, count: u32) -> Result<WriteOutcome, Error> {
        let mut outcome = {
            let m = self.ready()?;
            m.cart.flush()?;
            WriteOutcome::Written
        };
        if count > 0 && self.write_protected() {
            self.alerts.insert(ALERT_WRITE_PROTECT);
            return Err(Error::WriteProtected {
                device: self.name.clone(),
            });
        }
        if count == 0 {
            let Some(m) = self.media.as_ref() else {
                return Ok(outcome);
            };
            if m.cart.used(m.pos.partition) >= self.early_warning(&m.cart, m.pos.partition)
                && m.pos.block == m.cart.eod(m.pos.partition)
            {
                outcome = WriteOutcome::EarlyWarning;
            }
            return Ok(outcome);
        }
        for _ in 0..count {
            outcome = self.write_object(None)?;
        }
        self.flush()?;
        Ok(outcome)
    }

    fn space(&mut self, how: Space) -> Result<(), Error> {
        let m = self.ready()?;
        m.cart.flush()?;
        let p = m.pos.partition;
        let eod = m.cart.eod(p);
        let mut stop = None;
        match how {
            Space::EndOfData => m.pos.block = eod,
            Space::Records(n) if n >= 0 => {
                for _ in 0..n {
                    match m.cart.object(p, m.pos.block) {
                        None => {
                            stop = Some("end of data");
                            break;
                        }
                        Some(Object::Filemark) => {
                            m.pos.block += 1;
                            stop = Some("filemark");
                            break;
                        }
                        Some(Object::Record(_)) => m.pos.block += 1,
                    }
                }
            }
            Space::Records(n) => {
                for _ in 0..n.unsigned_abs() {
                    if m.pos.block == 0 {
                        stop = Some("beginning of partition");
                        break;
                    }
                    m.pos.block -= 1;
                    if m.cart.object(p, m.pos.block) == Some(Object::Filemark) {
                        // SSC: ends on the beginning-of-partition side of the filemark.
                        stop = Some("filemark");
                        break;
                    }
                }
            }
            Space::Filemarks(n) if n >= 0 => {
                'forward: for _ in 0..n {
                    loop {
                        match m.cart.object(p, m.pos.block) {
                            None => {
                                stop = Some("end of data");
                                break 'forward;
                            }
                            Some(o) => {
                                m.pos.block += 1;
                                if o == Object::Filemark {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            Space::Filemarks(n) => {
                'outer: for _ in 0..n.unsigned_abs() {
                    loop {
                        if m.pos.block == 0 {
                            stop = Some("beginning of partition");
                            break 'outer;
                        }
                        m.pos.block -= 1;
                        if m.cart.object(p, m.pos.block) == Some(Object::Filemark) {
                            break;
                        }
                    }
                }
            }
        }
        match stop {
            Some(what) => Err(self.stopped(what)),
            None => Ok(()),
        }
    }

    fn position(&mut self) -> Result<Position, Error> {
        let pos = self.ready()?.pos;
        if !self.capabilities.locate {
            return Err(Error::Unsupported {
                device: self.name.clone(),
                what: "READ POSITION",
            });
        }
        Ok(pos)
    }

    fn locate(&mut self, to: Position) -> Result<(), Error> {
        let name = self.name.clone();
        self.ready()?;
        if !self.capabilities.locate {
            return Err(Error::Unsupported {
                device: name,
                what: "LOCATE",
            });
        }
        let m = self.ready()?;
        m.cart.flush()?;
        if to.partition >= m.cart.partition_count() {
            return Err(Error::InvalidRequest {
                device: name,
                what: format!(
                    "partition {} does not exist (the cartridge has {})",
                    to.partition,
                    m.cart.partition_count()
                ),
            });
        }
        let eod = m.cart.eod(to.partition);
        m.pos = Position {
            partition: to.partition,
            block: to.block.min(eod),
        };
        if to.block > eod {
            return Err(self.stopped("end of data"));
        }
        Ok(())
    }

    fn partition_count(&mut self) -> Result<u8, Error> {
        Ok(self.ready()?.cart.partition_count())
    }

    fn create_two_partitions(&mut self, first_partition_bytes: u64) -> Result<(), Error> {
        let name = self.name.clone();
        self.ready()?;
        if !self.capabilities.partitions {
            return Err(Error::Unsupported {
                device: name,
                what: "partitioning (MODE SELECT medium partition page)",
            });
        }
        if self.write_protected() {
            self.alerts.insert(ALERT_WRITE_PROTECT);
            return Err(Error::WriteProtected { device: name });
        }
        let Some(m) = self.media.as_mut() else {
            return Err(Error::NotReady { device: name });
        };
        let capacity = m.cart.meta().capacity;
        let first = first_partition_bytes
            .max(1)
            .next_multiple_of(PARTITION_GRANULARITY);
        if first >= capacity {
            return Err(Error::InvalidRequest {
                device: name,
                what: format!(
                    "first partition of {first} bytes leaves no room in a {capacity}-byte cartridge"
                ),
            });
        }
        m.cart.format(vec![first, capacity - first])?;
        advance_volume_change_reference(&mut m.cart)?;
        m.vcr_advanced = true;
        m.pos = Position::default();
        Ok(())
    }

    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<MamAttribute>, Error> {
        let name = self.name.clone();
        let m = self.ready()?;
        if partition >= m.cart.partition_count() {
            return Err(Error::InvalidRequest {
                device: name,
                what: format!("partition {partition} does not exist"),
            });
        }
        let p = partition;
        match id {
            // Device attributes the drive computes: remaining and maximum capacity of the
            // partition in MiB (8 bytes, binary).
            ATTR_REMAINING_CAPACITY | ATTR_MAXIMUM_CAPACITY => {
                let size = m
                    .cart
                    .meta()
                    .partitions
                    .get(usize::from(p))
                    .copied()
                    .unwrap_or(0);
                let mib = if id == ATTR_MAXIMUM_CAPACITY {
                    size >> 20
                } else {
                    size.saturating_sub(m.cart.used(p)) >> 20
                };
                Ok(Some(MamAttribute {
                    id,
                    format: 0,
                    value: mib.to_be_bytes().to_vec(),
                }))
            }
            // The volume change reference belongs to the volume: kept with partition 0.
            ATTR_VOLUME_CHANGE_REFERENCE => m.cart.read_attribute(0, id),
            _ => m.cart.read_attribute(partition, id),
        }
    }

    fn write_attribute(&mut self, partition: u8, attribute: &MamAttribute) -> Result<(), Error> {
        let name = self.name.clone();
        if attribute.id < FIRST_HOST_ATTRIBUTE {
            // Device attributes are read-only for the host (SPC-4 READ ONLY bit).
            return Err(Error::InvalidRequest {
                device: name,
                what: format!(
                    "MAM attribute {:#06x} is a read-only device attribute",
                    attribute.id
                ),
            });
        }
        self.ready()?;
        if self.write_protected() {
            self.alerts.insert(ALERT_WRITE_PROTECT);
            return Err(Error::WriteProtected { device: name });
        }
        let Some(m) = self.media.as_mut() else {
            return Err(Error::NotReady { device: name });
        };
        if partition >= m.cart.partition_count() {
            return Err(Error::InvalidRequest {
                device: name,
                what: format!("partition {partition} does not exist"),
            });
        }
        m.cart.write_attribute(partition, attribute)
    }

    fn tape_alerts(&mut self) -> Result<Vec<crate::log::TapeAlert>, Error> {
        self.refresh()?;
        let mut flags = std::mem::take(&mut self.alerts);
        flags.extend(self.drive_faults.tape_alerts.iter().copied());
        Ok(flags.into_iter().map(crate::log::TapeAlert::new).collect())
    }

    fn capacity(&mut self) -> Result<Capacity, Error> {
        let m = self.ready()?;
        let p = m.pos.partition;
        let used = m.cart.used(p);
        let Some(m) = self.media.as_ref() else {
            return Ok(Capacity::default());
        };
        let ew = self.early_warning(&m.cart, p);
        Ok(Capacity {
            remaining: ew.saturating_sub(used),
            maximum: ew,
        })
    }
}

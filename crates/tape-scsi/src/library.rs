//! [`LibrarySpec`]: which library to use, real or virtual, and [`Library`], the opened
//! changer with a way to open its drives. A config file or the command line fills the spec.

use std::path::{Path, PathBuf};

use crate::discovery::{DeviceKind, ScsiDevice, discover_in};
use crate::scsi::inquiry::{decode_vpd_serial, inquiry_cdb};
use crate::scsi::{Ctx, execute, timeouts};
use crate::transport::DataDirection;
use crate::vtl::VirtualLibrary;
use crate::{Changer, Error, ScsiChanger, SgDevice, StDrive, StOptions, TapeDrive};

/// One drive, by st node or by serial number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveSpec {
    /// A non-rewinding st node, e.g. `/dev/nst0`.
    Node(PathBuf),
    /// The drive's serial number (INQUIRY VPD 80h), found among the discovered drives.
    Serial(String),
}

/// A real library: the changer and, optionally, its drives in changer order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RealLibrarySpec {
    /// Changer sg node. `None`: the changer whose serial is `changer_serial`, or the only
    /// changer found in sysfs.
    pub changer: Option<PathBuf>,
    /// Changer serial number, used when `changer` is `None`.
    pub changer_serial: Option<String>,
    /// Drives in changer order (drive 0 first). Empty: each drive element's serial
    /// (DVCID in READ ELEMENT STATUS) is matched with the drives found in sysfs.
    pub drives: Vec<DriveSpec>,
}

/// Which library to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySpec {
    /// A SCSI library on this machine.
    Real(RealLibrarySpec),
    /// A virtual library directory (see [`VirtualLibrary`]).
    Virtual {
        /// The library directory.
        dir: PathBuf,
    },
}

impl LibrarySpec {
    /// Opens the changer (discovering devices from `/sys` when the spec leaves them out).
    pub fn open(&self) -> Result<Library, Error> {
        self.open_in(Path::new("/sys"), Path::new("/dev"))
    }

    /// [`LibrarySpec::open`] with the sysfs root and device directory given.
    pub fn open_in(&self, sys: &Path, dev: &Path) -> Result<Library, Error> {
        match self {
            LibrarySpec::Virtual { dir } => {
                let lib = VirtualLibrary::open(dir)?;
                let changer = Box::new(ScsiChanger::new(lib.changer()));
                Ok(Library {
                    changer,
                    kind: Kind::Virtual(lib),
                })
            }
            LibrarySpec::Real(spec) => {
                let devices = discover_in(sys, dev)?;
                let path = match &spec.changer {
                    Some(p) => p.clone(),
                    None => find_changer(&devices, spec.changer_serial.as_deref())?,
                };
                let changer = Box::new(ScsiChanger::new(SgDevice::open(&path)?));
                Ok(Library {
                    changer,
                    kind: Kind::Real {
                        spec: spec.clone(),
                        devices,
                    },
                })
            }
        }
    }
}

fn find_changer(devices: &[ScsiDevice], serial: Option<&str>) -> Result<PathBuf, Error> {
    let mut changers = devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Changer && d.sg.is_some());
    let found = match serial {
        Some(s) => changers.find(|d| serial_of(d).as_deref() == Some(s)),
        None => {
            let first = changers.next();
            if changers.next().is_some() {
                return Err(Error::DeviceNotFound {
                    kind: "changer",
                    what: "a single changer (several found: name one)".into(),
                });
            }
            first
        }
    };
    found
        .and_then(|d| d.sg.clone())
        .ok_or_else(|| Error::DeviceNotFound {
            kind: "changer",
            what: serial.map_or_else(|| "any sg node".to_owned(), |s| format!("serial {s}")),
        })
}

/// The serial from sysfs, or else asked over the sg node (INQUIRY VPD 80h).
fn serial_of(d: &ScsiDevice) -> Option<String> {
    if let Some(s) = &d.serial {
        return Some(s.clone());
    }
    let mut sg = SgDevice::open(d.sg.as_ref()?).ok()?;
    let mut buf = [0u8; 255];
    let n = execute(
        &mut sg,
        "INQUIRY",
        &inquiry_cdb(Some(0x80), 255),
        DataDirection::FromDevice(&mut buf),
        timeouts::SHORT,
        Ctx::default(),
    )
    .ok()?;
    decode_vpd_serial(&buf[..n.min(buf.len())])
        .ok()
        .filter(|s| !s.is_empty())
}

impl DriveSpec {
    /// Opens the drive as an [`StDrive`], with its sg node from sysfs when found.
    pub fn open(&self) -> Result<StDrive, Error> {
        self.open_in(Path::new("/sys"), Path::new("/dev"))
    }

    /// [`DriveSpec::open`] with the sysfs root and device directory given.
    pub fn open_in(&self, sys: &Path, dev: &Path) -> Result<StDrive, Error> {
        let devices = discover_in(sys, dev)?;
        StDrive::open(&self.options(&devices)?)
    }

    fn options(&self, devices: &[ScsiDevice]) -> Result<StOptions, Error> {
        match self {
            DriveSpec::Node(path) => {
                let sg = devices
                    .iter()
                    .find(|d| d.tape.as_deref() == Some(path.as_path()))
                    .and_then(|d| d.sg.clone());
                Ok(StOptions {
                    tape: path.clone(),
                    sg,
                })
            }
            DriveSpec::Serial(serial) => {
                let d = devices
                    .iter()
                    .filter(|d| d.kind == DeviceKind::Tape)
                    .find(|d| serial_of(d).as_deref() == Some(serial.as_str()))
                    .ok_or_else(|| Error::DeviceNotFound {
                        kind: "tape drive",
                        what: format!("serial {serial}"),
                    })?;
                let tape = d.tape.clone().ok_or_else(|| Error::DeviceNotFound {
                    kind: "tape drive",
                    what: format!("an st node for serial {serial} (st driver loaded?)"),
                })?;
                Ok(StOptions {
                    tape,
                    sg: d.sg.clone(),
                })
            }
        }
    }
}

#[derive(Debug)]
enum Kind {
    Real {
        spec: RealLibrarySpec,
        devices: Vec<ScsiDevice>,
    },
    Virtual(VirtualLibrary),
}

/// An opened library: its changer, and its drives on demand.
pub struct Library {
    changer: Box<dyn Changer>,
    kind: Kind,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("changer", &self.changer.name())
            .field("kind", &self.kind)
            .finish()
    }
}

impl Library {
    /// The changer.
    pub fn changer(&mut self) -> &mut dyn Changer {
        &mut *self.changer
    }

    /// True for a virtual library.
    pub fn is_virtual(&self) -> bool {
        matches!(self.kind, Kind::Virtual(_))
    }

    /// Opens drive `number` (changer order, 0-based). A real library's drive is found by
    /// the spec's list, or else by the serial the changer reports for that drive.
    pub fn drive(&mut self, number: u16) -> Result<Box<dyn TapeDrive>, Error> {
        match &self.kind {
            Kind::Virtual(lib) => Ok(Box::new(lib.drive(usize::from(number))?)),
            Kind::Real { spec, devices } => {
                let drive_spec = match spec.drives.get(usize::from(number)) {
                    Some(d) => d.clone(),
                    None if !spec.drives.is_empty() => {
                        return Err(Error::NoSuchElement {
                            device: self.changer.name(),
                            what: format!("drive {number} (not configured)"),
                        });
                    }
                    None => {
                        let inv = self.changer.inventory()?;
                        let element = inv.drive(number).ok_or_else(|| Error::NoSuchElement {
                            device: self.changer.name(),
                            what: format!("drive {number}"),
                        })?;
                        let serial = element.drive_serial.clone().ok_or_else(|| Error::DeviceNotFound {
                            kind: "tape drive",
                            what: format!("a serial for drive {number} (the changer reports none: name the drives)"),
                        })?;
                        DriveSpec::Serial(serial)
                    }
                };
                Ok(Box::new(StDrive::open(&drive_spec.options(devices)?)?))
            }
        }
    }
}

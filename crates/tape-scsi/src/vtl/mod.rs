//! The virtual library: a directory holding the library state and one directory per
//! cartridge, driven through the same [`TapeDrive`](crate::TapeDrive) and
//! [`ScsiTransport`](crate::ScsiTransport) seams as real hardware.
//!
//! Directory layout:
//!
//! | path | content |
//! |---|---|
//! | `library.json` | the state ([`LibraryState`]): slots, drives, I/E slots, cartridges, faults |
//! | `lock` | `flock`ed shared to read the state, exclusive to change it |
//! | `cartridges/<BARCODE>/` | one cartridge in the reference LTFS file-backend layout |
//! | `drives/<N>.lock` | held while a [`VirtualDrive`] for drive N is open (one process at a time) |

mod cartridge;
mod drive;
mod smc;
mod state;
mod tc_conf;

use std::fs;
use std::path::{Path, PathBuf};

pub use cartridge::{decode_attribute_file, encode_attribute_file};
pub use drive::{CartridgeOptions, VirtualDrive};
pub use smc::SmcEmulator;
pub use state::{
    CartridgeFaults, CartridgeState, DriveCapabilities, DriveFaults, DriveState, FaultOp,
    LibraryState, MediumErrorFault, Occupant, SavedPosition, decode_state, encode_state,
};
pub use tc_conf::TcConf;

use cartridge::{Cartridge, CartridgeMeta};
use state::{STATE_FORMAT, Store, check_barcode};

use crate::Error;

/// Shape of a new virtual library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryOptions {
    /// Storage slots.
    pub slots: usize,
    /// Drives.
    pub drives: usize,
    /// Import/export slots.
    pub ie: usize,
    /// Capacity of each cartridge up to the early-warning point, in bytes.
    pub capacity: u64,
    /// End-of-medium reserve after the early-warning point, `None` for the default.
    pub reserve: Option<u64>,
    /// Barcodes are this prefix, a number, and `L5` (`A0` gives `A00001L5`, `A00002L5`...).
    pub barcode_prefix: String,
    /// How many blank cartridges to put in the first slots (`None`: fill every slot).
    pub cartridges: Option<usize>,
}

impl Default for LibraryOptions {
    fn default() -> Self {
        LibraryOptions {
            slots: 8,
            drives: 2,
            ie: 1,
            capacity: 2 << 30,
            reserve: None,
            barcode_prefix: "VT".to_owned(),
            cartridges: None,
        }
    }
}

/// A handle on a virtual library directory. Cheap: every operation reads the state from
/// disk under the lock, so handles in several processes see the same library.
///
/// # Example
///
/// ```
/// use tape_scsi::{Changer, LibraryOptions, ReadOutcome, ScsiChanger, TapeDrive, VirtualLibrary};
///
/// # fn main() -> Result<(), tape_scsi::Error> {
/// # let tmp = tempfile::tempdir().map_err(|e| tape_scsi::Error::Io { path: "tmp".into(), source: e })?;
/// # let dir = tmp.path().join("vtl");
/// let options = LibraryOptions { slots: 4, drives: 1, capacity: 8 << 20, ..LibraryOptions::default() };
/// let library = VirtualLibrary::create(&dir, &options)?;
/// // The same SCSI changer code as for a real autoloader, over the SMC emulator.
/// let mut changer = ScsiChanger::new(library.changer());
/// changer.load(1, 0)?;
/// let mut drive = library.drive(0)?;
/// drive.write_record(b"hello tape")?;
/// drive.write_filemarks(1)?;
/// drive.rewind()?;
/// let mut buf = [0u8; 64];
/// assert_eq!(drive.read_record(&mut buf)?, ReadOutcome::Record(10));
/// assert_eq!(drive.read_record(&mut buf)?, ReadOutcome::Filemark);
/// drive.unload()?;
/// changer.unload(0, None)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct VirtualLibrary {
    store: Store,
}

fn invalid(dir: &Path, what: String) -> Error {
    Error::InvalidRequest {
        device: dir.display().to_string(),
        what,
    }
}

fn barcode_for(prefix: &str, n: usize) -> String {
    let width = 6usize.saturating_sub(prefix.len()).max(1);
    format!("{prefix}{n:0width$}L5")
}

impl VirtualLibrary {
    /// Creates a library in `dir` (created if needed; must not already hold one), with
    /// blank single-partition cartridges in its first slots.
    pub fn create(dir: &Path, options: &LibraryOptions) -> Result<VirtualLibrary, Error> {
        if options.slots == 0 || options.slots > state::MAX_SLOTS {
            return Err(invalid(
                dir,
                format!("slots must be 1..={}", state::MAX_SLOTS),
            ));
        }
        if options.drives == 0 || options.drives > state::MAX_DRIVES {
            return Err(invalid(
                dir,
                format!("drives must be 1..={}", state::MAX_DRIVES),
            ));
        }
        if options.ie > state::MAX_IE {
            return Err(invalid(
                dir,
                format!("I/E slots must be 0..={}", state::MAX_IE),
            ));
        }
        let count = options.cartridges.unwrap_or(options.slots);
        if count > options.slots {
            return Err(invalid(
                dir,
                format!("{count} cartridges do not fit in {} slots", options.slots),
            ));
        }
        if options.capacity < 2 * cartridge::PARTITION_GRANULARITY {
            return Err(invalid(
                dir,
                format!(
                    "capacity must be at least {} bytes",
                    2 * cartridge::PARTITION_GRANULARITY
                ),
            ));
        }
        if !options.barcode_prefix.is_empty() {
            check_barcode(&options.barcode_prefix).map_err(|e| invalid(dir, e))?;
        }
        if options.barcode_prefix.len() > 24 {
            return Err(invalid(
                dir,
                "barcode prefix longer than 24 characters".to_owned(),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let store = Store::new(dir);
        if dir.join(state::STATE_FILE).exists() {
            return Err(invalid(
                dir,
                "a virtual library already exists in this directory".to_owned(),
            ));
        }
        let mut st = LibraryState {
            format: STATE_FORMAT,
            serial: format!("VTL{:08X}", serial_seed(dir)),
            barcode_prefix: options.barcode_prefix.clone(),
            capacity: options.capacity,
            reserve: options.reserve,
            slots: vec![None; options.slots],
            ie: vec![None; options.ie],
            drives: (0..options.drives)
                .map(|i| DriveState {
                    serial: format!("VDRV{:05}", i + 1),
                    cartridge: None,
                    loaded: false,
                    unit_attention: false,
                    position: None,
                    faults: DriveFaults::default(),
                })
                .collect(),
            cartridges: Default::default(),
            capabilities: DriveCapabilities::default(),
        };
        for i in 0..count {
            let barcode = barcode_for(&options.barcode_prefix, i + 1);
            let rel = format!("cartridges/{barcode}");
            Cartridge::create(
                &dir.join(&rel),
                CartridgeMeta::single(options.capacity, options.reserve),
            )?;
            st.cartridges.insert(
                barcode.clone(),
                CartridgeState {
                    dir: rel,
                    faults: CartridgeFaults::default(),
                },
            );
            st.slots[i] = Some(Occupant {
                barcode,
                source: None,
            });
        }
        store.create(&st)?;
        Ok(VirtualLibrary { store })
    }

    /// Opens the library in `dir`.
    pub fn open(dir: &Path) -> Result<VirtualLibrary, Error> {
        let store = Store::new(dir);
        store.read()?;
        Ok(VirtualLibrary { store })
    }

    /// The library directory.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// A snapshot of the state.
    pub fn state(&self) -> Result<LibraryState, Error> {
        self.store.read()
    }

    /// The library's changer: an SMC emulator to wrap in the SCSI changer code
    /// (`ScsiChanger::new(library.changer())`).
    pub fn changer(&self) -> SmcEmulator {
        SmcEmulator::new(self.store.clone())
    }

    /// Opens drive `index` (0-based). [`Error::Busy`] while another handle has it open.
    pub fn drive(&self, index: usize) -> Result<VirtualDrive, Error> {
        VirtualDrive::open_in_library(self.store.clone(), index)
    }

    /// Copies the cartridge directory `src` (reference LTFS file-backend layout) into the
    /// library as `barcode`, into storage slot `slot` (1-based) or the first empty one.
    /// Returns the slot number.
    pub fn import_cartridge(
        &self,
        src: &Path,
        barcode: &str,
        slot: Option<usize>,
    ) -> Result<usize, Error> {
        check_barcode(barcode).map_err(|e| invalid(self.dir(), e))?;
        // Validate the source before touching the library.
        Cartridge::open(src)?;
        let rel = format!("cartridges/{barcode}");
        let dest = self.dir().join(&rel);
        self.store.update(|s| {
            if s.cartridges.contains_key(barcode) {
                return Err(invalid(
                    self.dir(),
                    format!("cartridge {barcode} already exists"),
                ));
            }
            let index = match slot {
                Some(n) => {
                    let i = n
                        .checked_sub(1)
                        .filter(|&i| i < s.slots.len())
                        .ok_or_else(|| Error::NoSuchElement {
                            device: self.dir().display().to_string(),
                            what: format!("slot {n}"),
                        })?;
                    if s.slots[i].is_some() {
                        return Err(invalid(self.dir(), format!("slot {n} is full")));
                    }
                    i
                }
                None => s
                    .slots
                    .iter()
                    .position(Option::is_none)
                    .ok_or_else(|| invalid(self.dir(), "no empty storage slot".to_owned()))?,
            };
            if dest.exists() {
                return Err(invalid(
                    self.dir(),
                    format!("{} already exists", dest.display()),
                ));
            }
            copy_cartridge(src, &dest)?;
            Cartridge::open(&dest)?;
            s.cartridges.insert(
                barcode.to_owned(),
                CartridgeState {
                    dir: rel.clone(),
                    faults: CartridgeFaults::default(),
                },
            );
            s.slots[index] = Some(Occupant {
                barcode: barcode.to_owned(),
                source: None,
            });
            Ok(index + 1)
        })
    }

    /// Adds a blank cartridge (library capacity) into the first empty storage slot;
    /// returns its barcode and slot number.
    pub fn add_blank_cartridge(&self, barcode: Option<&str>) -> Result<(String, usize), Error> {
        self.store.update(|s| {
            let barcode = match barcode {
                Some(b) => b.to_owned(),
                None => (1..)
                    .map(|n| barcode_for(&s.barcode_prefix, n))
                    .find(|b| !s.cartridges.contains_key(b))
                    .unwrap_or_default(),
            };
            check_barcode(&barcode).map_err(|e| invalid(self.dir(), e))?;
            if s.cartridges.contains_key(&barcode) {
                return Err(invalid(
                    self.dir(),
                    format!("cartridge {barcode} already exists"),
                ));
            }
            let index = s
                .slots
                .iter()
                .position(Option::is_none)
                .ok_or_else(|| invalid(self.dir(), "no empty storage slot".to_owned()))?;
            let rel = format!("cartridges/{barcode}");
            Cartridge::create(
                &self.dir().join(&rel),
                CartridgeMeta::single(s.capacity, s.reserve),
            )?;
            s.cartridges.insert(
                barcode.clone(),
                CartridgeState {
                    dir: rel,
                    faults: CartridgeFaults::default(),
                },
            );
            s.slots[index] = Some(Occupant {
                barcode: barcode.clone(),
                source: None,
            });
            Ok((barcode, index + 1))
        })
    }

    /// Sets the injected faults of a cartridge (persistent, seen by every process).
    pub fn set_cartridge_faults(
        &self,
        barcode: &str,
        faults: CartridgeFaults,
    ) -> Result<(), Error> {
        self.store.update(|s| {
            let c = s
                .cartridges
                .get_mut(barcode)
                .ok_or_else(|| invalid(self.dir(), format!("no cartridge {barcode}")))?;
            c.faults = faults;
            Ok(())
        })
    }

    /// Sets what the drives can do (persistent, seen by every process; a drive already
    /// open sees it on its next command).
    pub fn set_capabilities(&self, capabilities: DriveCapabilities) -> Result<(), Error> {
        self.store.update(|s| {
            s.capabilities = capabilities;
            Ok(())
        })
    }

    /// Sets the injected faults of drive `index` (persistent, seen by every process).
    pub fn set_drive_faults(&self, index: usize, faults: DriveFaults) -> Result<(), Error> {
        self.store.update(|s| {
            let d = s
                .drives
                .get_mut(index)
                .ok_or_else(|| Error::NoSuchElement {
                    device: self.dir().display().to_string(),
                    what: format!("drive {index}"),
                })?;
            d.faults = faults;
            Ok(())
        })
    }

    /// Sets a cartridge's write-protect tab (`emulate_readonly` in its
    /// `filedebug_tc_conf.xml`). Like sliding a real tab, it takes effect when the
    /// cartridge is next loaded; [`CartridgeFaults::write_protected`] acts at once.
    pub fn set_write_protect(&self, barcode: &str, protected: bool) -> Result<(), Error> {
        let dir = self.cartridge_dir(barcode)?;
        // Under the lock so that a drive opening the cartridge sees one version or the other.
        self.store
            .update(|_| Cartridge::open(&dir)?.set_readonly(protected))
    }

    /// The directory of a cartridge.
    pub fn cartridge_dir(&self, barcode: &str) -> Result<PathBuf, Error> {
        let s = self.store.read()?;
        let c = s
            .cartridges
            .get(barcode)
            .ok_or_else(|| invalid(self.dir(), format!("no cartridge {barcode}")))?;
        Ok(self.dir().join(&c.dir))
    }
}

/// A changer serial that differs between libraries: derived from the directory and time.
fn serial_seed(dir: &Path) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(dir.as_os_str().as_encoded_bytes());
    (h.finish() & 0xFFFF_FFFF) as u32
}

/// Copies the regular files of a cartridge directory (no subdirectories), writable.
fn copy_cartridge(src: &Path, dest: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dest).map_err(|e| Error::Io {
        path: dest.to_path_buf(),
        source: e,
    })?;
    for entry in fs::read_dir(src).map_err(|e| Error::Io {
        path: src.to_path_buf(),
        source: e,
    })? {
        let entry = entry.map_err(|e| Error::Io {
            path: src.to_path_buf(),
            source: e,
        })?;
        let ft = entry.file_type().map_err(|e| Error::Io {
            path: entry.path(),
            source: e,
        })?;
        if !ft.is_file() {
            continue;
        }
        let to = dest.join(entry.file_name());
        fs::copy(entry.path(), &to).map_err(|e| Error::Io {
            path: to.clone(),
            source: e,
        })?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).map_err(|e| Error::Io {
            path: to.clone(),
            source: e,
        })?;
        File::open(&to)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::Io {
                path: to.clone(),
                source: e,
            })?;
    }
    cartridge::sync_dir(dest)
}

use std::fs::File;

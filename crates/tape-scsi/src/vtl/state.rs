//! The library state file (`library.json`) and its lock.
//!
//! All changes go through [`Store::update`]: exclusive `flock` on `DIR/lock`, read the
//! state, change it, write it atomically (temp file, fsync, rename, fsync of the
//! directory). Readers take the lock shared. The file is JSON (`LibraryState`), documented
//! field by field below; `format` is 1.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cartridge::write_atomic;
use crate::Error;

/// The state file's name in the library directory.
pub const STATE_FILE: &str = "library.json";
/// The lock file's name in the library directory.
pub const LOCK_FILE: &str = "lock";
/// The current state format.
pub const STATE_FORMAT: u32 = 1;

/// Where a medium error is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultOp {
    /// Reading the block fails.
    Read,
    /// Writing the block fails.
    Write,
    /// Both.
    Any,
}

/// An unrecoverable medium error at one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediumErrorFault {
    /// Partition of the block.
    pub partition: u8,
    /// Logical block number.
    pub block: u64,
    /// Which operations fail.
    pub on: FaultOp,
}

/// Faults injected into a cartridge; they follow the cartridge from drive to drive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartridgeFaults {
    /// Blocks whose read or write fails with [`Error::MediumError`].
    pub medium_errors: Vec<MediumErrorFault>,
    /// Write protect the cartridge (in addition to its own `emulate_readonly` tab).
    pub write_protected: bool,
    /// Early end of medium: the early-warning point of every partition moves to this many
    /// bytes (when lower than the real one).
    pub early_warning_at: Option<u64>,
    /// The changer reports this barcode instead of the real one (a label that does not
    /// match the barcode).
    pub reported_barcode: Option<String>,
}

/// Faults injected into a drive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveFaults {
    /// Every command fails with [`Error::NotReady`].
    pub not_ready: bool,
    /// The first command after a cartridge is loaded fails with [`Error::UnitAttention`].
    pub unit_attention_after_load: bool,
    /// TapeAlert flags (1..=64) the drive reports on every read of its alerts while set.
    pub tape_alerts: Vec<u8>,
}

/// What the library's drives can do: all `true` by default; switched off to emulate
/// drives that cannot partition (LTO-4 and older, DAT) or lack READ POSITION / LOCATE
/// (tgt's virtual tape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveCapabilities {
    /// The drives can make two partitions; `false`: `create_two_partitions` returns
    /// [`Error::Unsupported`].
    pub partitions: bool,
    /// READ POSITION and LOCATE work; `false`: `position` and `locate` return
    /// [`Error::Unsupported`] (spacing still works).
    pub locate: bool,
}

impl Default for DriveCapabilities {
    fn default() -> Self {
        DriveCapabilities {
            partitions: true,
            locate: true,
        }
    }
}

impl DriveCapabilities {
    /// True when nothing is switched off.
    pub fn is_default(&self) -> bool {
        *self == DriveCapabilities::default()
    }
}

/// A cartridge in an element, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Occupant {
    /// The cartridge's barcode (key into [`LibraryState::cartridges`]).
    pub barcode: String,
    /// Element address it was last moved from.
    pub source: Option<u16>,
}

/// A logical position, as saved for a drive between processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPosition {
    /// Partition.
    pub partition: u8,
    /// Block.
    pub block: u64,
}

/// One drive element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveState {
    /// Drive serial number (INQUIRY VPD 80h and the changer's DVCID).
    pub serial: String,
    /// The cartridge in the drive, if any.
    pub cartridge: Option<Occupant>,
    /// The cartridge is threaded (loaded); a changer cannot take it before it is unloaded.
    pub loaded: bool,
    /// A unit attention is pending for the next command.
    #[serde(default)]
    pub unit_attention: bool,
    /// Position saved when the last process closed the drive.
    #[serde(default)]
    pub position: Option<SavedPosition>,
    /// Injected faults.
    #[serde(default)]
    pub faults: DriveFaults,
}

/// One cartridge known to the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartridgeState {
    /// Cartridge directory, relative to the library directory.
    pub dir: String,
    /// Injected faults.
    #[serde(default)]
    pub faults: CartridgeFaults,
}

/// The whole library state (`library.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryState {
    /// Format version (1).
    pub format: u32,
    /// Changer serial number.
    pub serial: String,
    /// Barcode prefix for new cartridges.
    pub barcode_prefix: String,
    /// Capacity of new cartridges in bytes (to early warning).
    pub capacity: u64,
    /// End-of-medium reserve of new cartridges in bytes, `None` for the default.
    #[serde(default)]
    pub reserve: Option<u64>,
    /// Storage slots (mtx slot N is index N-1).
    pub slots: Vec<Option<Occupant>>,
    /// Import/export slots.
    pub ie: Vec<Option<Occupant>>,
    /// Drives.
    pub drives: Vec<DriveState>,
    /// Every cartridge, by barcode.
    pub cartridges: BTreeMap<String, CartridgeState>,
    /// What the drives can do (absent: everything).
    #[serde(default, skip_serializing_if = "DriveCapabilities::is_default")]
    pub capabilities: DriveCapabilities,
}

/// Limits that keep element addresses in range (see `smc` for the address map).
pub const MAX_SLOTS: usize = 0xEFFF;
/// Maximum number of drives.
pub const MAX_DRIVES: usize = 0x0E00;
/// Maximum number of import/export slots.
pub const MAX_IE: usize = 0xFE;

impl LibraryState {
    /// Checks the invariants: element counts in range, every cartridge in exactly one
    /// element, every occupant a known cartridge, barcodes of 1..=32 printable ASCII.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != STATE_FORMAT {
            return Err(format!(
                "state format {} is not {STATE_FORMAT}",
                self.format
            ));
        }
        if self.slots.len() > MAX_SLOTS || self.drives.len() > MAX_DRIVES || self.ie.len() > MAX_IE
        {
            return Err("too many elements".to_owned());
        }
        let mut seen = BTreeMap::new();
        let occupants = self
            .slots
            .iter()
            .chain(self.ie.iter())
            .chain(self.drives.iter().map(|d| &d.cartridge))
            .flatten();
        for o in occupants {
            if !self.cartridges.contains_key(&o.barcode) {
                return Err(format!("element holds unknown cartridge {:?}", o.barcode));
            }
            if seen.insert(o.barcode.clone(), ()).is_some() {
                return Err(format!("cartridge {:?} is in two elements", o.barcode));
            }
        }
        for (barcode, c) in &self.cartridges {
            check_barcode(barcode)?;
            if let Some(r) = &c.faults.reported_barcode {
                check_barcode(r)?;
            }
            if !seen.contains_key(barcode) {
                return Err(format!("cartridge {barcode:?} is in no element"));
            }
            let rel = Path::new(&c.dir);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(format!(
                    "cartridge {barcode:?} directory {:?} is not a plain relative path",
                    c.dir
                ));
            }
        }
        for d in &self.drives {
            if d.loaded && d.cartridge.is_none() {
                return Err("an empty drive is marked loaded".to_owned());
            }
            if d.faults.tape_alerts.iter().any(|f| !(1..=64).contains(f)) {
                return Err("TapeAlert flags are 1..=64".to_owned());
            }
        }
        Ok(())
    }
}

/// Checks a barcode: 1 to 32 printable ASCII characters without spaces or slashes.
pub fn check_barcode(barcode: &str) -> Result<(), String> {
    if barcode.is_empty()
        || barcode.len() > 32
        || !barcode
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
    {
        return Err(format!(
            "barcode {barcode:?} must be 1 to 32 printable ASCII characters, no spaces or slashes"
        ));
    }
    Ok(())
}

/// Decodes and validates a state file. A parser of untrusted bytes (fuzz target
/// `vtl_cartridge_files`).
pub fn decode_state(bytes: &[u8]) -> Result<LibraryState, String> {
    let state: LibraryState = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    state.validate()?;
    Ok(state)
}

/// Encodes a state as the state file holds it (pretty-printed JSON), after validating it.
pub fn encode_state(state: &LibraryState) -> Result<Vec<u8>, String> {
    state.validate()?;
    serde_json::to_vec_pretty(state).map_err(|e| e.to_string())
}

/// Identity of the state file's current version (changes on every atomic rewrite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
    len: u64,
}

/// Access to a library directory's state.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store of the library in `dir`.
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// The library directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    fn lock_file(&self) -> Result<File, Error> {
        let path = self.dir.join(LOCK_FILE);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::Io { path, source: e })
    }

    fn read_unlocked(&self) -> Result<LibraryState, Error> {
        let path = self.state_path();
        let bytes = fs::read(&path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        decode_state(&bytes).map_err(|reason| Error::VtlState { path, reason })
    }

    /// Reads the state under a shared lock.
    pub fn read(&self) -> Result<LibraryState, Error> {
        let lock = self.lock_file()?;
        lock.lock_shared().map_err(|e| Error::Io {
            path: self.dir.join(LOCK_FILE),
            source: e,
        })?;
        self.read_unlocked()
    }

    /// Writes a brand-new state (library creation); fails if one exists.
    pub fn create(&self, state: &LibraryState) -> Result<(), Error> {
        let lock = self.lock_file()?;
        lock.lock().map_err(|e| Error::Io {
            path: self.dir.join(LOCK_FILE),
            source: e,
        })?;
        let path = self.state_path();
        if path.exists() {
            return Err(Error::InvalidRequest {
                device: self.dir.display().to_string(),
                what: "a virtual library already exists in this directory".to_owned(),
            });
        }
        self.write_unlocked(state)
    }

    fn write_unlocked(&self, state: &LibraryState) -> Result<(), Error> {
        let path = self.state_path();
        let json = encode_state(state).map_err(|reason| Error::VtlState {
            path: path.clone(),
            reason,
        })?;
        write_atomic(&path, &json)
    }

    /// Changes the state under the exclusive lock. `f`'s error leaves the state unchanged.
    pub fn update<R>(
        &self,
        f: impl FnOnce(&mut LibraryState) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let lock = self.lock_file()?;
        lock.lock().map_err(|e| Error::Io {
            path: self.dir.join(LOCK_FILE),
            source: e,
        })?;
        let mut state = self.read_unlocked()?;
        let before = state.clone();
        let r = f(&mut state)?;
        if state != before {
            self.write_unlocked(&state)?;
        }
        Ok(r)
    }

    /// The current version's identity, `None` when the file cannot be examined.
    pub fn stamp(&self) -> Option<Stamp> {
        let m = fs::metadata(self.state_path()).ok()?;
        Some(Stamp {
            ino: m.ino(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            len: m.len(),
        })
    }
}

//! tape-scsi: SCSI tape libraries without sg3_utils or mtx. Media changers over SG_IO,
//! tape drives through the Linux st driver, device discovery from sysfs, and a virtual
//! library that answers the same SCSI commands, so everything above this crate runs
//! unchanged on hardware and in tests.
//!
//! # Brief overview
//!
//! * [`TapeDrive`]: one sequential-access drive with the st driver's semantics (variable
//!   records, filemarks, end of data, early warning, partitions, MAM). Implemented by
//!   [`StDrive`] (`/dev/nstN` plus its `/dev/sgN`) and [`VirtualDrive`].
//! * [`ScsiTransport`]: send one CDB, get status, sense and data back. Implemented by
//!   [`SgDevice`] (SG_IO) and [`SmcEmulator`] (the virtual library's changer).
//! * [`Changer`] and [`ScsiChanger`]: inventory ([`Inventory`]: slots, drives, I/E slots,
//!   barcodes, source slots, drive serials) and cartridge moves, over any transport.
//! * [`LibrarySpec`]: which library to use (changer and drive nodes or serials,
//!   discovered with [`discover`] when left out, or a virtual library directory).
//! * Pure decoders of device replies: [`parse_sense`], [`scsi::smc`], [`log`], [`mam`];
//!   they never panic on malformed bytes and are fuzzed.
//!
//! All unsafe code (the `#[repr(C)]` kernel structures and the ioctls) lives in one private
//! module, `sys`.
//!
//! # Example
//!
//! A virtual library runs the same changer code as hardware:
//!
//! ```
//! use tape_scsi::{Changer, LibraryOptions, ReadOutcome, ScsiChanger, TapeDrive, VirtualLibrary};
//!
//! # fn main() -> Result<(), tape_scsi::Error> {
//! let dir = std::env::temp_dir().join(format!("tape-scsi-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let options = LibraryOptions { slots: 4, drives: 1, capacity: 8 << 20, ..LibraryOptions::default() };
//! let library = VirtualLibrary::create(&dir, &options)?;
//!
//! let mut changer = ScsiChanger::new(library.changer());
//! let inventory = changer.inventory()?;
//! assert_eq!(inventory.storage.len(), 4);
//! changer.load(1, 0)?; // slot 1 into drive 0, with MOVE MEDIUM
//!
//! let mut drive = library.drive(0)?;
//! drive.load()?;
//! drive.write_record(b"hello tape")?;
//! drive.write_filemarks(1)?;
//! drive.rewind()?;
//! let mut buf = vec![0u8; 64];
//! assert_eq!(drive.read_record(&mut buf)?, ReadOutcome::Record(10));
//! assert_eq!(drive.read_record(&mut buf)?, ReadOutcome::Filemark);
//! drive.unload()?;
//! drop(drive);
//! assert_eq!(changer.unload(0, None)?, 1);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod changer;
mod discovery;
mod drive;
mod error;
mod library;
pub mod log;
pub mod mam;
pub mod scsi;
mod sense;
mod sgio;
mod st;
mod sys;
mod transport;
mod vtl;

pub mod conformance;

pub use changer::{Changer, Element, Inventory, ScsiChanger};
pub use discovery::{DeviceKind, ScsiDevice, discover, discover_in, find_by_serial};
pub use drive::{
    Capacity, DriveStatus, MamAttribute, Position, ReadOutcome, Space, TapeDrive, WriteOutcome,
};
pub use error::{DecodeError, DecodeProblem, Error};
pub use library::{DriveSpec, Library, LibrarySpec, RealLibrarySpec};
pub use scsi::RetryPolicy;
pub use scsi::inquiry::{Designator, Inquiry};
pub use scsi::smc::{ElementAddressAssignment, ElementRange, ElementStatus, ElementType};
pub use sense::{FieldPointer, Sense, SenseKey, asc_name, encode_fixed_sense, parse_sense};
pub use sgio::SgDevice;
pub use st::{BlockLimits, StDrive, StOptions, decode_block_limits, read_block_limits_cdb};
pub use transport::{Completion, DataDirection, ScsiTransport, status};
pub use vtl::{
    CartridgeFaults, CartridgeOptions, CartridgeState, DriveCapabilities, DriveFaults, DriveState,
    FaultOp, LibraryOptions, LibraryState, MediumErrorFault, Occupant, SavedPosition, SmcEmulator,
    TcConf, VirtualDrive, VirtualLibrary, decode_attribute_file, decode_state,
    encode_attribute_file, encode_state,
};

//! tape-scsi: SCSI media changers over SG_IO, tape drives through the Linux st driver,
//! device discovery from sysfs, and a virtual library that behaves like the real thing.
//!
//! (Crate documentation is filled in as the modules land; see README.md.)

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

pub use drive::{
    Capacity, DriveStatus, MamAttribute, Position, ReadOutcome, Space, TapeDrive, WriteOutcome,
};
pub use changer::{Changer, Element, Inventory, ScsiChanger};
pub use discovery::{DeviceKind, ScsiDevice, discover, discover_in, find_by_serial};
pub use error::{DecodeError, DecodeProblem, Error};
pub use library::{DriveSpec, Library, LibrarySpec, RealLibrarySpec};
pub use scsi::RetryPolicy;
pub use scsi::inquiry::{Designator, Inquiry};
pub use scsi::smc::{ElementAddressAssignment, ElementRange, ElementStatus, ElementType};
pub use sense::{FieldPointer, Sense, SenseKey, asc_name, encode_fixed_sense, parse_sense};
pub use sgio::SgDevice;
pub use st::{StDrive, StOptions};
pub use transport::{Completion, DataDirection, ScsiTransport, status};
pub use vtl::{
    CartridgeFaults, CartridgeOptions, CartridgeState, DriveFaults, DriveState, FaultOp, LibraryOptions,
    LibraryState, MediumErrorFault, Occupant, SavedPosition, SmcEmulator, TcConf, VirtualDrive,
    VirtualLibrary,
    decode_attribute_file, decode_state, encode_attribute_file, encode_state,
};

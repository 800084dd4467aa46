//! tape-scsi: SCSI media changers over SG_IO, tape drives through the Linux st driver,
//! device discovery from sysfs, and a virtual library that behaves like the real thing.
//!
//! (Crate documentation is filled in as the modules land; see README.md.)

mod drive;
mod error;
mod transport;
mod vtl;

pub mod conformance;

pub use drive::{
    Capacity, DriveStatus, MamAttribute, Position, ReadOutcome, Space, TapeDrive, WriteOutcome,
};
pub use error::Error;
pub use transport::{Completion, DataDirection, ScsiTransport, status};
pub use vtl::{
    CartridgeFaults, CartridgeOptions, CartridgeState, DriveFaults, DriveState, FaultOp, LibraryOptions,
    LibraryState, MediumErrorFault, Occupant, SavedPosition, TcConf, VirtualDrive, VirtualLibrary,
    decode_attribute_file, decode_state, encode_attribute_file,
};

//! Write and read LTFS volumes natively, straight through a [`TapeDrive`], with no FUSE
//! and no external LTFS software.
//!
//! The crate implements the LTFS 2.4.0 on-tape format: the two-partition layout, the VOL1
//! and XML labels, the XML index with its generations and back pointers, and the MAM
//! attributes LTFS keeps in cartridge memory. Volumes written here follow the layout the
//! reference implementation writes, so IBM, HPE, Quantum and the open LTFS read them; and
//! volumes they wrote read here. Every file's location (partition, block, length) is
//! returned to the caller, which is what a catalog needs to restore without mounting.
//!
//! `ltfs` never issues an ioctl: everything goes through the [`TapeDrive`] trait, so the
//! same code runs on a real st drive and on the virtual library.
//!
//! # Brief overview
//!
//! * [`Volume`] opens a cartridge ([`Volume::open`]) or formats one ([`Volume::format`]),
//!   and reads it: the newest [`Index`], paths, and files as streams ([`FileReader`]).
//! * [`VolumeWriter`] appends files ([`VolumeWriter::write_file`] returns a
//!   [`FileWritten`] with the extents), writes indexes on the data partition at intervals
//!   and the final one on the index partition ([`VolumeWriter::finish`]); it reports early
//!   warning and splits files across cartridges ([`SpanInfo`]).
//! * [`check`], [`recover`] and [`generations`] do what `ltfsck` does.
//! * [`Index`], [`LtfsLabel`] and [`Vol1Label`] are the on-tape documents, parsed and
//!   written with quick-xml.
//! * [`Progress`] receives progress of long operations ([`Silent`] ignores it).
//!
//! # Example
//!
//! Format a cartridge, write a file, read it back. The drive here is a small in-memory
//! one; in real use it is a `tape_scsi` drive.
//!
//! ```
//! # use std::io::Read;
//! # use std::sync::atomic::AtomicBool;
//! use ltfs::{FileOptions, FormatOptions, Silent, Volume, WriterOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut drive = ltfs::MemoryDrive::new(64 << 20);
//! let volume = Volume::format(&mut drive, &FormatOptions::new("TAPE01"))?;
//! let mut writer = volume.into_writer(WriterOptions::default())?;
//! let cancel = AtomicBool::new(false);
//! let written = writer.write_file(
//!     "docs/hello.txt",
//!     &mut &b"hello, tape"[..],
//!     &FileOptions::default(),
//!     &Silent,
//!     &cancel,
//! )?;
//! assert_eq!(written.extents[0].partition, 1);
//! writer.finish()?;
//!
//! let mut volume = Volume::open(&mut drive)?;
//! assert!(volume.is_consistent());
//! let mut text = String::new();
//! volume.open_file("docs/hello.txt")?.read_to_string(&mut text)?;
//! assert_eq!(text, "hello, tape");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod check;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod label;
mod mam;
mod memdrive;
mod progress;
mod tape;
mod volume;
mod writer;
mod xml;

pub use check::{
    CheckReport, Generation, LOST_AND_FOUND, Problem, Recovery, RecoveryReport, check, generations,
    recover,
};
pub use error::Error;
pub use index::{
    Directory, Entry, EntryRef, Extent, FORMAT_VERSION, File, Index, IndexLocation, Times,
    Timestamp, Xattr,
};
pub use label::{LtfsLabel, VOL1_LEN, Vol1Label};
pub use mam::Coherency;
pub use memdrive::MemoryDrive;
pub use progress::{Progress, Silent};
pub use tape::{IndexInfo, PartitionState};
pub use tape_scsi::TapeDrive;
pub use volume::{DEFAULT_BLOCK_SIZE, FileReader, FormatOptions, Volume};
pub use writer::{
    EarlyWarningPolicy, FileOptions, FileWritten, SPAN_LAST_XATTR, SPAN_OFFSET_XATTR,
    SPAN_PART_XATTR, SpanInfo, SpanPart, VolumeWriter, WriterOptions,
};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The [`TapeDrive`] trait: one sequential-access drive, with the st driver's semantics.
//!
//! Two implementations exist: the Linux st driver (`/dev/nstN` plus its `/dev/sgN` for what
//! st cannot do) and the virtual drive of the virtual library. Both must pass the same
//! conformance suite (`tests/` and `cargo xtask hw-smoke`).

use crate::Error;

/// A position on tape: partition number and logical block (record or filemark) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Position {
    /// Partition number (0 = first partition; LTFS puts its index partition there).
    pub partition: u8,
    /// Logical object (record or filemark) number from the start of the partition.
    pub block: u64,
}

/// What a [`TapeDrive::read_record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A record of this many bytes was read into the buffer.
    Record(usize),
    /// A filemark was read (st: `read` returns 0); the drive is positioned after it.
    Filemark,
    /// End of recorded data: no more records on this partition.
    EndOfData,
}

/// What a write ([`TapeDrive::write_record`], [`TapeDrive::write_filemarks`]) did.
///
/// The st driver's end-of-medium sequence: the write that crosses the early-warning point
/// succeeds, and every write after it also succeeds but reports [`WriteOutcome::EarlyWarning`]
/// so the writer can finish the current file and move on to the next tape. When the
/// remaining reserve is used up the write fails with [`Error::EndOfMedium`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; the tape is before the early-warning point.
    Written,
    /// Written, but the tape is past the early-warning point: finish up and change tapes.
    EarlyWarning,
}

/// How far and over what to space (SCSI SPACE / st `MTFSR`, `MTBSR`, `MTFSF`, `MTBSF`, `MTEOM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Space over records; negative counts space backwards. Stops at a filemark.
    Records(i64),
    /// Space over filemarks; positive counts end just after the n-th filemark, negative
    /// counts end just before (on the BOT side of) the n-th filemark backwards.
    Filemarks(i64),
    /// Space to the end of recorded data on the current partition.
    EndOfData,
}

/// Drive and medium status (st `MTIOCGET` plus what the drive reports over SCSI).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriveStatus {
    /// A cartridge is loaded and the drive is ready.
    pub ready: bool,
    /// The cartridge is write protected.
    pub write_protected: bool,
    /// The tape is at the beginning of a partition.
    pub bot: bool,
    /// The tape is positioned at end of data.
    pub eod: bool,
    /// The tape is past the early-warning point.
    pub eot: bool,
    /// Fixed block size in bytes, 0 for variable block mode.
    pub block_size: u32,
    /// Density code of the loaded medium (e.g. 0x5a for LTO-6), 0 if unknown.
    pub density_code: u8,
    /// Current partition, when known.
    pub partition: Option<u8>,
    /// Current logical block, when known.
    pub block: Option<u64>,
}

/// One MAM (Medium Auxiliary Memory) attribute, as READ/WRITE ATTRIBUTE carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MamAttribute {
    /// Attribute identifier (e.g. 0x0800 application vendor, 0x080C volume coherency).
    pub id: u16,
    /// Format: 0 binary, 1 ASCII, 2 text.
    pub format: u8,
    /// The attribute value bytes (without the 5-byte attribute header).
    pub value: Vec<u8>,
}

/// Capacity figures for the current partition, in bytes (log page 0x31 on real drives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    /// Bytes that can still be written before the early-warning point.
    pub remaining: u64,
    /// Total capacity of the partition.
    pub maximum: u64,
}

/// A sequential-access tape drive.
///
/// Methods take `&mut self`: a drive has one position and one stream of commands.
/// Operations a device does not support return [`Error::Unsupported`], never a wrong answer.
pub trait TapeDrive {
    /// A human-readable name for messages (device path or virtual drive name).
    fn name(&self) -> String;
    /// Current status. Must not move the tape.
    fn status(&mut self) -> Result<DriveStatus, Error>;
    /// Load the cartridge in the drive (SCSI LOAD) and wait until ready.
    fn load(&mut self) -> Result<(), Error>;
    /// Rewind and unload (eject) the cartridge so a changer can take it.
    fn unload(&mut self) -> Result<(), Error>;
    /// Prevent (`true`) or allow medium removal.
    fn set_medium_lock(&mut self, locked: bool) -> Result<(), Error>;
    /// Rewind to the beginning of the current partition... of partition 0.
    fn rewind(&mut self) -> Result<(), Error>;
    /// Set the block size: 0 selects variable block mode (what tapebackup uses).
    fn set_block_size(&mut self, size: u32) -> Result<(), Error>;
    /// Read one record into `buf`. A record longer than `buf` is an error
    /// ([`Error::RecordTooLong`]) that leaves the tape after that record.
    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, Error>;
    /// Write one record of `data.len()` bytes (variable block mode).
    fn write_record(&mut self, data: &[u8]) -> Result<WriteOutcome, Error>;
    /// Write `count` filemarks (0 flushes the drive's buffer to tape).
    fn write_filemarks(&mut self, count: u32) -> Result<WriteOutcome, Error>;
    /// Space over records or filemarks, or to end of data.
    fn space(&mut self, how: Space) -> Result<(), Error>;
    /// Current logical position.
    fn position(&mut self) -> Result<Position, Error>;
    /// Move to a logical position (possibly on another partition).
    fn locate(&mut self, to: Position) -> Result<(), Error>;
    /// Number of partitions on the loaded medium (1 when the drive cannot partition).
    fn partition_count(&mut self) -> Result<u8, Error>;
    /// Reformat the medium into two partitions: partition 0 of `first_partition_bytes`
    /// (rounded up by the drive to its partition granularity) and partition 1 with the rest.
    /// Destroys all data. [`Error::Unsupported`] when the drive cannot partition.
    fn create_two_partitions(&mut self, first_partition_bytes: u64) -> Result<(), Error>;
    /// Read a MAM attribute of `partition`; `Ok(None)` when the medium does not have it.
    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<MamAttribute>, Error>;
    /// Write a MAM attribute of `partition`.
    fn write_attribute(&mut self, partition: u8, attribute: &MamAttribute) -> Result<(), Error>;
    /// Capacity of the current partition.
    fn capacity(&mut self) -> Result<Capacity, Error>;
    /// TapeAlert flags that are set (log page 2Eh on real drives, where reading clears
    /// them). The default returns [`Error::Unsupported`]; a drive that can report alerts
    /// (the st drive, the virtual drive with injected faults) overrides it.
    fn tape_alerts(&mut self) -> Result<Vec<crate::log::TapeAlert>, Error> {
        Err(Error::Unsupported {
            device: self.name(),
            what: "TapeAlert",
        })
    }
}

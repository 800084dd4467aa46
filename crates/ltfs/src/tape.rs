//! Record-level helpers on a [`TapeDrive`]: locating, reading a run of records up to a
//! filemark, writing a document as records, and finding the last index on a partition.

use tape_scsi::{Position, ReadOutcome, Space, TapeDrive, WriteOutcome};

use crate::index::{Index, IndexLocation};
use crate::{Error, Result};

/// Largest index or label document we read (guards memory against a hostile tape).
pub(crate) const MAX_DOCUMENT: usize = 1 << 30;

/// Buffer size for label records (they are small; 1 MiB is generous).
pub(crate) const LABEL_BUFFER: usize = 1 << 20;

pub(crate) fn locate(drive: &mut dyn TapeDrive, partition: u8, block: u64) -> Result<()> {
    drive
        .locate(Position { partition, block })
        .map_err(Error::drive("positioning the tape"))
}

/// How a run of records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunEnd {
    Filemark,
    EndOfData,
}

/// Reads records from the current position until a filemark or end of data; returns the
/// concatenated bytes and the number of records.
pub(crate) fn read_run(
    drive: &mut dyn TapeDrive,
    buf: &mut [u8],
    limit: usize,
) -> Result<(Vec<u8>, u64, RunEnd)> {
    let mut out = Vec::new();
    let mut records = 0u64;
    loop {
        match drive
            .read_record(buf)
            .map_err(Error::drive("reading a record"))?
        {
            ReadOutcome::Record(n) => {
                records += 1;
                if out.len() + n > limit {
                    return Err(Error::Malformed {
                        what: "document length",
                        value: format!("over {limit} bytes"),
                    });
                }
                out.extend_from_slice(&buf[..n.min(buf.len())]);
            }
            ReadOutcome::Filemark => return Ok((out, records, RunEnd::Filemark)),
            ReadOutcome::EndOfData => return Ok((out, records, RunEnd::EndOfData)),
        }
    }
}

/// Writes `doc` as records of at most `block_size` bytes; returns (records, early warning).
pub(crate) fn write_document(
    drive: &mut dyn TapeDrive,
    doc: &[u8],
    block_size: usize,
    operation: &'static str,
) -> Result<(u64, bool)> {
    let mut ew = false;
    let mut records = 0;
    for chunk in doc.chunks(block_size.max(1)) {
        ew |= drive.write_record(chunk).map_err(Error::drive(operation))?
            == WriteOutcome::EarlyWarning;
        records += 1;
    }
    Ok((records, ew))
}

pub(crate) fn write_filemark(drive: &mut dyn TapeDrive, operation: &'static str) -> Result<bool> {
    Ok(drive.write_filemarks(1).map_err(Error::drive(operation))? == WriteOutcome::EarlyWarning)
}

/// An index found on tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// Its generation.
    pub generation: u64,
    /// Where it starts.
    pub location: IndexLocation,
    /// Records it occupies.
    pub records: u64,
    /// Whether the trailing filemark of its index construct is on tape.
    pub terminated: bool,
}

impl IndexInfo {
    /// The block right after the index construct (after its trailing filemark, or where
    /// that filemark belongs when it is missing).
    pub fn end_block(&self) -> u64 {
        self.location.block + self.records + 1
    }
}

/// What the end of one partition looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Partition number.
    pub partition: u8,
    /// Block number of end of data.
    pub end_of_data: u64,
    /// The last valid index on the partition.
    pub last_index: Option<IndexInfo>,
}

impl PartitionState {
    /// True when the partition ends exactly with a complete index construct.
    pub fn is_clean(&self) -> bool {
        self.last_index
            .as_ref()
            .is_some_and(|i| i.terminated && i.end_block() == self.end_of_data)
    }
}

/// Reads the index whose first record is at `start`, if the run of records there is one
/// (a valid document whose self pointer says it is at `start` and whose UUID matches).
pub(crate) fn try_index_at(
    drive: &mut dyn TapeDrive,
    partition: u8,
    start: u64,
    uuid: &str,
    buf: &mut [u8],
) -> Result<Option<(Index, IndexInfo)>> {
    locate(drive, partition, start)?;
    let first = match drive.read_record(buf) {
        Ok(ReadOutcome::Record(n)) => n,
        Ok(_) => return Ok(None),
        // A data record larger than our buffer is not an index we wrote or can read.
        Err(tape_scsi::Error::RecordTooLong { .. }) => return Ok(None),
        Err(e) => return Err(Error::drive("reading an index")(e)),
    };
    let head = &buf[..first.min(buf.len())];
    let probe = &head[..head.len().min(512)];
    if !probe.windows(10).any(|w| w == b"<ltfsindex") {
        return Ok(None);
    }
    let mut doc = head.to_vec();
    let (rest, n, end) = match read_run(drive, buf, MAX_DOCUMENT) {
        Ok(r) => r,
        Err(Error::Drive {
            source: tape_scsi::Error::RecordTooLong { .. },
            ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    doc.extend_from_slice(&rest);
    let Ok(index) = Index::from_xml(&doc) else {
        return Ok(None);
    };
    let here = IndexLocation {
        partition,
        block: start,
    };
    if index.location != here || index.volume_uuid != uuid {
        return Ok(None);
    }
    let info = IndexInfo {
        generation: index.generation,
        location: here,
        records: n + 1,
        terminated: end == RunEnd::Filemark,
    };
    Ok(Some((index, info)))
}

/// Finds the last valid index on a partition by walking filemarks back from end of data.
/// `label_end` is the first block after the label construct.
pub(crate) fn scan_partition(
    drive: &mut dyn TapeDrive,
    partition: u8,
    label_end: u64,
    uuid: &str,
    buf: &mut [u8],
) -> Result<(PartitionState, Option<Index>)> {
    locate(drive, partition, 0)?;
    drive
        .space(Space::EndOfData)
        .map_err(Error::drive("spacing to end of data"))?;
    let end_of_data = drive
        .position()
        .map_err(Error::drive("reading the position"))?
        .block;
    let mut seg_end = end_of_data;
    while seg_end > label_end {
        locate(drive, partition, seg_end)?;
        if drive.space(Space::Filemarks(-1)).is_err() {
            break;
        }
        let f = drive
            .position()
            .map_err(Error::drive("reading the position"))?
            .block;
        if f < label_end || f >= seg_end {
            break;
        }
        if f + 1 < seg_end
            && let Some((index, info)) = try_index_at(drive, partition, f + 1, uuid, buf)?
        {
            return Ok((
                PartitionState {
                    partition,
                    end_of_data,
                    last_index: Some(info),
                },
                Some(index),
            ));
        }
        seg_end = f;
    }
    Ok((
        PartitionState {
            partition,
            end_of_data,
            last_index: None,
        },
        None,
    ))
}

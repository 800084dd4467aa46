//! Checking and recovering a volume (what `ltfsck` does), and listing index generations.

use std::collections::BTreeMap;

use tape_scsi::{ReadOutcome, TapeDrive};

use crate::index::{Directory, Entry, Extent, File, Index, IndexLocation, Times, Timestamp};
use crate::tape::{self, IndexInfo, PartitionState};
use crate::volume::{Volume, creator, read_index_at, write_coherency, write_index_construct};
use crate::{Error, Result};

/// A problem [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The data partition has records after its last complete index (an unclean end).
    DataAfterLastIndex {
        /// First block after the last index construct.
        from_block: u64,
        /// End of data.
        end_of_data: u64,
    },
    /// The last index on a partition lacks its trailing filemark.
    UnterminatedIndex {
        /// Partition.
        partition: u8,
    },
    /// A partition has no valid index at all.
    NoIndexOnPartition {
        /// Partition.
        partition: u8,
    },
    /// The index partition holds an older generation than the data partition.
    IndexPartitionBehind {
        /// Generation on the index partition.
        index_partition: u64,
        /// Newest generation on the data partition.
        data_partition: u64,
    },
    /// The index partition has records after its index.
    DataAfterIndexPartitionIndex,
    /// A file's extent points at or past the data partition's newest index, or not at
    /// the data partition.
    ExtentOutOfRange {
        /// File path.
        path: String,
        /// The extent.
        extent: Extent,
    },
    /// The extents of a file add up to more than its length or overlap each other.
    ExtentsInconsistent {
        /// File path.
        path: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::DataAfterLastIndex {
                from_block,
                end_of_data,
            } => write!(
                f,
                "data partition has unindexed records in blocks {from_block}..{end_of_data}"
            ),
            Problem::UnterminatedIndex { partition } => {
                write!(
                    f,
                    "last index on partition {partition} has no trailing filemark"
                )
            }
            Problem::NoIndexOnPartition { partition } => {
                write!(f, "no valid index on partition {partition}")
            }
            Problem::IndexPartitionBehind {
                index_partition,
                data_partition,
            } => write!(
                f,
                "index partition has generation {index_partition}, data partition {data_partition}"
            ),
            Problem::DataAfterIndexPartitionIndex => {
                write!(f, "index partition has records after its index")
            }
            Problem::ExtentOutOfRange { path, extent } => write!(
                f,
                "{path}: extent at partition {} block {} is outside the indexed data",
                extent.partition, extent.start_block
            ),
            Problem::ExtentsInconsistent { path } => {
                write!(f, "{path}: extents overlap or exceed the file length")
            }
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Volume UUID.
    pub volume_uuid: String,
    /// VOL1 volume identifier.
    pub barcode: String,
    /// Newest valid generation found.
    pub generation: u64,
    /// End of the index partition.
    pub index_partition: PartitionState,
    /// End of the data partition.
    pub data_partition: PartitionState,
    /// Files in the newest index.
    pub files: usize,
    /// Everything wrong; empty for a consistent volume.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the volume in `drive`: labels, the ends of both partitions, and that every
/// extent of the newest index lies in the data written before that index. Changes nothing.
pub fn check(drive: &mut dyn TapeDrive) -> Result<CheckReport> {
    let volume = Volume::open(drive)?;
    Ok(report(&volume))
}

fn report(volume: &Volume<'_>) -> CheckReport {
    let mut problems = Vec::new();
    let ip = &volume.index_partition;
    let dp = &volume.data_partition;
    for s in [ip, dp] {
        match &s.last_index {
            None => problems.push(Problem::NoIndexOnPartition {
                partition: s.partition,
            }),
            Some(i) if !i.terminated => problems.push(Problem::UnterminatedIndex {
                partition: s.partition,
            }),
            Some(_) => {}
        }
    }
    if let Some(d) = &dp.last_index
        && d.end_block() < dp.end_of_data
    {
        problems.push(Problem::DataAfterLastIndex {
            from_block: d.end_block(),
            end_of_data: dp.end_of_data,
        });
    }
    if let Some(i) = &ip.last_index
        && i.end_block() < ip.end_of_data
    {
        problems.push(Problem::DataAfterIndexPartitionIndex);
    }
    let ip_gen = ip.last_index.as_ref().map(|i| i.generation).unwrap_or(0);
    let dp_gen = dp.last_index.as_ref().map(|i| i.generation).unwrap_or(0);
    if ip_gen < dp_gen {
        problems.push(Problem::IndexPartitionBehind {
            index_partition: ip_gen,
            data_partition: dp_gen,
        });
    }
    // Extents of the newest index must lie in the data partition before the newest
    // index on it (the data partition copy of this generation or a later one).
    let limit = dp
        .last_index
        .as_ref()
        .map(|i| i.location.block)
        .unwrap_or(0);
    for (path, file) in volume.index.root.walk_files() {
        let mut covered = 0u64;
        let mut last_end = 0u64;
        for e in &file.extents {
            let blocks = (e.byte_offset + e.byte_count).div_ceil(volume.label.block_size);
            if e.partition != volume.label.data_partition || e.start_block + blocks > limit {
                problems.push(Problem::ExtentOutOfRange {
                    path: path.clone(),
                    extent: *e,
                });
            }
            if e.file_offset < last_end {
                problems.push(Problem::ExtentsInconsistent { path: path.clone() });
            }
            last_end = e.file_offset + e.byte_count;
            covered += e.byte_count;
        }
        if covered > file.length || last_end > file.length {
            problems.push(Problem::ExtentsInconsistent { path: path.clone() });
        }
    }
    CheckReport {
        volume_uuid: volume.label.volume_uuid.clone(),
        barcode: volume.barcode.clone(),
        generation: volume.index.generation,
        index_partition: ip.clone(),
        data_partition: dp.clone(),
        files: volume.index.root.file_count(),
        problems,
    }
}

/// How [`recover`] repairs an unclean end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Roll back to the newest complete index: records written after it are discarded.
    RollBack,
    /// Keep the records written after the newest complete index: each run of them (up to
    /// a short record) becomes a file in `_ltfs_lostandfound/`, then a new index is
    /// written. Names and metadata of those files are lost; their bytes are not.
    Salvage,
}

/// Directory that [`Recovery::Salvage`] puts recovered data in (the reference
/// implementation's name for it).
pub const LOST_AND_FOUND: &str = "_ltfs_lostandfound";

/// What [`recover`] did.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    /// Problems found before the repair.
    pub before: Vec<Problem>,
    /// Generation of the index the volume now ends with.
    pub generation: u64,
    /// Data blocks discarded by a roll back (0 for salvage).
    pub discarded_blocks: u64,
    /// Files created under [`LOST_AND_FOUND`] by salvage.
    pub salvaged: Vec<String>,
    /// Whether anything was written.
    pub repaired: bool,
}

/// Repairs a volume that was not closed cleanly, so that both partitions end with the
/// same, newest index. A consistent volume is left untouched.
pub fn recover(drive: &mut dyn TapeDrive, mode: Recovery) -> Result<RecoveryReport> {
    let volume = Volume::open(drive)?;
    let before = report(&volume);
    let structural = before.problems.iter().any(|p| {
        !matches!(
            p,
            Problem::ExtentOutOfRange { .. } | Problem::ExtentsInconsistent { .. }
        )
    });
    if !structural {
        return Ok(RecoveryReport {
            before: before.problems,
            generation: volume.index.generation,
            discarded_blocks: 0,
            salvaged: Vec::new(),
            repaired: false,
        });
    }
    let Volume {
        drive,
        label,
        mut index,
        index_partition,
        data_partition,
        label_end,
        ..
    } = volume;
    let ip = label.index_partition;
    let dp = label.data_partition;
    let bs = label.block_size as usize;
    let mut salvaged = Vec::new();
    let mut discarded = 0;

    // 1. The data partition must end with a complete index construct of the newest
    //    generation.
    let (mut dp_info, dp_generation) = match &data_partition.last_index {
        Some(i) => (i.clone(), i.generation),
        None => {
            return Err(Error::NeedsRecovery {
                reason: "the data partition has no valid index to recover from",
            });
        }
    };
    if !dp_info.terminated {
        tape::locate(drive, dp, dp_info.end_block() - 1)?;
        tape::write_filemark(drive, "terminating the last index")?;
        dp_info.terminated = true;
    }
    let tail_start = dp_info.end_block();
    let tail_end = data_partition.end_of_data.max(tail_start);
    let mut dp_changed = false;
    let mut salvage_end = tail_start;
    if mode == Recovery::Salvage && tail_end > tail_start {
        let (names, end) = salvage_runs(drive, &mut index, dp, tail_start, label.block_size)?;
        salvaged = names;
        salvage_end = end;
        dp_changed = !salvaged.is_empty();
    }
    // Where the next index goes: after salvaged data, or right after the last index
    // (which truncates the unindexed tail).
    let next_block = if dp_changed {
        salvage_end
    } else {
        if tail_end > tail_start {
            discarded = tail_end - tail_start;
        }
        tail_start
    };
    if index.generation > dp_generation || dp_changed {
        // The newest index came from the index partition (or salvage changed it): put a
        // new generation on the data partition.
        index.generation = index.generation.max(dp_generation) + 1;
        index.update_time = Timestamp::now();
        index.creator = creator("recover");
        index.previous = Some(dp_info.location);
        dp_info = write_index_construct(drive, &mut index, dp, next_block, bs)?;
        write_coherency(drive, &index, &dp_info)?;
    } else if discarded > 0 {
        // Truncate the tail: rewrite the index's trailing filemark, which makes it the end
        // of data.
        tape::locate(drive, dp, tail_start - 1)?;
        tape::write_filemark(drive, "truncating unindexed data")?;
        index.location = dp_info.location;
        write_coherency(drive, &index, &dp_info)?;
    }

    // 2. The index partition gets the same generation.
    let ip_start = match &index_partition.last_index {
        Some(i) => i.location.block - 1,
        None => label_end[usize::from(ip)],
    };
    let mut ip_index = index.clone();
    ip_index.previous = Some(dp_info.location);
    let ip_info = write_index_construct(drive, &mut ip_index, ip, ip_start, bs)?;
    write_coherency(drive, &ip_index, &ip_info)?;
    Ok(RecoveryReport {
        before: before.problems,
        generation: ip_index.generation,
        discarded_blocks: discarded,
        salvaged,
        repaired: true,
    })
}

/// Turns the records from `from` up to the first filemark into lost+found files; returns
/// their paths and the first block after them.
fn salvage_runs(
    drive: &mut dyn TapeDrive,
    index: &mut Index,
    dp: u8,
    from: u64,
    block_size: u64,
) -> Result<(Vec<String>, u64)> {
    tape::locate(drive, dp, from)?;
    let mut buf = vec![0u8; block_size as usize];
    let mut runs: Vec<(u64, u64)> = Vec::new(); // (start block, bytes)
    let mut block = from;
    let mut current: Option<(u64, u64)> = None;
    loop {
        match drive.read_record(&mut buf) {
            Ok(ReadOutcome::Record(n)) => {
                let run = current.get_or_insert((block, 0));
                run.1 += n as u64;
                block += 1;
                if (n as u64) < block_size
                    && let Some(r) = current.take()
                {
                    runs.push(r);
                }
            }
            Ok(_) => break,
            // Not one of our data records: stop salvaging here.
            Err(tape_scsi::Error::RecordTooLong { .. }) => break,
            Err(e) => return Err(Error::drive("reading unindexed data")(e)),
        }
    }
    if let Some(r) = current.take() {
        runs.push(r);
    }
    if runs.is_empty() {
        return Ok((Vec::new(), from));
    }
    let now = Timestamp::now();
    let root = &mut index.root;
    if root.get(LOST_AND_FOUND).is_none() {
        index.highest_file_uid += 1;
        root.entries.push(Entry::Directory(Directory {
            name: LOST_AND_FOUND.to_string(),
            readonly: false,
            times: Times::all(now),
            uid: index.highest_file_uid,
            xattrs: Vec::new(),
            entries: Vec::new(),
        }));
    }
    let Some(Entry::Directory(lf)) = root.get_mut(LOST_AND_FOUND) else {
        return Err(Error::NotADirectory {
            path: LOST_AND_FOUND.to_string(),
        });
    };
    let mut names = Vec::new();
    for (start, bytes) in runs {
        index.highest_file_uid += 1;
        let name = format!("block_{dp}_{start}");
        lf.entries.retain(|e| e.name() != name);
        lf.entries.push(Entry::File(File {
            name: name.clone(),
            length: bytes,
            readonly: false,
            times: Times::all(now),
            uid: index.highest_file_uid,
            xattrs: Vec::new(),
            open_for_write: false,
            extents: vec![Extent {
                file_offset: 0,
                partition: dp,
                start_block: start,
                byte_offset: 0,
                byte_count: bytes,
            }],
            symlink: None,
        }));
        names.push(format!("{LOST_AND_FOUND}/{name}"));
    }
    Ok((names, block))
}

/// One index generation found on the data partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Generation number.
    pub generation: u64,
    /// Where the index is.
    pub location: IndexLocation,
    /// When it was written.
    pub update_time: Timestamp,
    /// Number of files in it.
    pub files: usize,
}

/// Lists the index generations on the data partition, newest first, by following the
/// back pointers from the newest index.
pub fn generations(drive: &mut dyn TapeDrive) -> Result<Vec<Generation>> {
    let volume = Volume::open(drive)?;
    let uuid = volume.label.volume_uuid.clone();
    let bs = volume.label.block_size;
    let mut out: BTreeMap<u64, Generation> = BTreeMap::new();
    let mut next: Option<IndexLocation> = volume
        .data_partition
        .last_index
        .as_ref()
        .map(|i: &IndexInfo| i.location);
    let drive = volume.drive;
    let mut steps = 0;
    while let Some(loc) = next {
        steps += 1;
        if steps > 1_000_000 {
            break;
        }
        let Some((index, _)) = read_index_at(drive, loc, &uuid, bs)? else {
            break;
        };
        next = index
            .previous
            .filter(|p| p.block < loc.block || p.partition != loc.partition);
        out.insert(
            index.generation,
            Generation {
                generation: index.generation,
                location: loc,
                update_time: index.update_time,
                files: index.root.file_count(),
            },
        );
    }
    Ok(out.into_values().rev().collect())
}

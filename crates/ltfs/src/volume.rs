//! Opening, formatting and reading an LTFS volume.

use std::io::Read;

use tape_scsi::{ReadOutcome, TapeDrive};

use crate::index::{Directory, EntryRef, File, Index, IndexLocation, Times, Timestamp};
use crate::label::{LtfsLabel, Vol1Label};
use crate::mam::{self, Coherency};
use crate::tape::{self, LABEL_BUFFER, PartitionState};
use crate::{Error, Result};

/// The software name we put in labels and indexes.
pub(crate) fn creator(what: &str) -> String {
    format!(
        "tapebackup {} - {} - {what}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS
    )
}

/// Default block size for data records: 512 KiB, as the reference `mkltfs` uses.
pub const DEFAULT_BLOCK_SIZE: u32 = 512 * 1024;

/// Options for [`Volume::format`] (what `mkltfs` asks for).
#[derive(Debug, Clone)]
pub struct FormatOptions {
    /// Cartridge barcode; its first six characters go into the VOL1 labels.
    pub barcode: String,
    /// Volume name (the root directory's name).
    pub volume_name: String,
    /// Block size for data records (default 512 KiB).
    pub block_size: u32,
    /// Volume UUID; a random one when `None`.
    pub uuid: Option<String>,
    /// Size of the index partition in bytes; by default 5% of the medium (at least 16 MiB).
    /// The drive rounds it up to its partition granularity.
    pub index_partition_bytes: Option<u64>,
    /// Value of the label's compression flag (informational; the drive decides).
    pub compression: bool,
}

impl FormatOptions {
    /// Options with defaults for a cartridge with this barcode.
    pub fn new(barcode: &str) -> FormatOptions {
        FormatOptions {
            barcode: barcode.to_string(),
            volume_name: barcode.to_string(),
            block_size: DEFAULT_BLOCK_SIZE,
            uuid: None,
            index_partition_bytes: None,
            compression: true,
        }
    }
}

/// An open LTFS volume: its labels, the newest index and the drive it is in.
///
/// Reading never changes the tape. To write, turn it into a
/// [`VolumeWriter`](crate::VolumeWriter) with [`Volume::into_writer`].
pub struct Volume<'d> {
    pub(crate) drive: &'d mut dyn TapeDrive,
    pub(crate) label: LtfsLabel,
    pub(crate) barcode: String,
    pub(crate) index: Index,
    pub(crate) index_partition: PartitionState,
    pub(crate) data_partition: PartitionState,
    /// First block after the label construct on each partition.
    pub(crate) label_end: [u64; 2],
}

impl std::fmt::Debug for Volume<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("drive", &self.drive.name())
            .field("barcode", &self.barcode)
            .field("uuid", &self.label.volume_uuid)
            .field("generation", &self.index.generation)
            .finish()
    }
}

/// Reads the label construct (VOL1, filemark, XML label, filemark) of a partition.
fn read_labels(drive: &mut dyn TapeDrive, partition: u8) -> Result<(Vol1Label, LtfsLabel, u64)> {
    let mut buf = vec![0u8; LABEL_BUFFER];
    tape::locate(drive, partition, 0)?;
    let read = |drive: &mut dyn TapeDrive, buf: &mut [u8]| match drive.read_record(buf) {
        Ok(ReadOutcome::Record(n)) => Ok(Some(n)),
        Ok(_) => Ok(None),
        Err(tape_scsi::Error::RecordTooLong { .. }) => Err(Error::NotLtfs {
            reason: "label record too long",
        }),
        Err(e) => Err(Error::drive("reading the labels")(e)),
    };
    let Some(n) = read(drive, &mut buf)? else {
        return Err(Error::NotLtfs {
            reason: "partition is empty",
        });
    };
    let vol1 = Vol1Label::parse(&buf[..n])?;
    let fm = |drive: &mut dyn TapeDrive, buf: &mut [u8]| -> Result<()> {
        match read(drive, buf)? {
            None => Ok(()),
            Some(_) => Err(Error::NotLtfs {
                reason: "no filemark after a label",
            }),
        }
    };
    fm(drive, &mut buf)?;
    let Some(n) = read(drive, &mut buf)? else {
        return Err(Error::NotLtfs {
            reason: "no LTFS label after VOL1",
        });
    };
    let label = LtfsLabel::from_xml(&buf[..n])?;
    fm(drive, &mut buf)?;
    let end = drive
        .position()
        .map_err(Error::drive("reading the position"))?
        .block;
    Ok((vol1, label, end))
}

impl<'d> Volume<'d> {
    /// Opens the LTFS volume in `drive` (loaded, any position): reads both label
    /// constructs, then finds the newest valid index — at the end of the index partition
    /// first, then at the end of the data partition — by generation number.
    ///
    /// A volume that was not closed cleanly still opens (see [`Volume::is_consistent`]);
    /// it reads as of its newest complete index, and must be recovered before writing.
    pub fn open(drive: &'d mut dyn TapeDrive) -> Result<Volume<'d>> {
        let parts = drive
            .partition_count()
            .map_err(Error::drive("reading the partition count"))?;
        if parts < 2 {
            return Err(Error::NotPartitioned { partitions: parts });
        }
        drive
            .set_block_size(0)
            .map_err(Error::drive("selecting variable block mode"))?;
        let (vol1, label, end0) = read_labels(drive, 0)?;
        let (_, label1, end1) = read_labels(drive, 1)?;
        if label.volume_uuid != label1.volume_uuid {
            return Err(Error::LabelMismatch {
                what: "volume UUID differs between partitions",
            });
        }
        if label.block_size != label1.block_size
            || label.index_partition != label1.index_partition
            || label.data_partition != label1.data_partition
        {
            return Err(Error::LabelMismatch {
                what: "block size or partition map differs between partitions",
            });
        }
        if label.index_partition > 1 || label.data_partition > 1 {
            return Err(Error::NotLtfs {
                reason: "partition map outside partitions a and b",
            });
        }
        let ends = [end0, end1];
        let ip = label.index_partition;
        let dp = label.data_partition;
        let mut buf = vec![0u8; (label.block_size as usize).max(LABEL_BUFFER)];
        let (ip_state, ip_index) = tape::scan_partition(
            drive,
            ip,
            ends[usize::from(ip)],
            &label.volume_uuid,
            &mut buf,
        )?;
        let (dp_state, dp_index) = tape::scan_partition(
            drive,
            dp,
            ends[usize::from(dp)],
            &label.volume_uuid,
            &mut buf,
        )?;
        let index = match (ip_index, dp_index) {
            (Some(a), Some(b)) => {
                if b.generation > a.generation {
                    b
                } else {
                    a
                }
            }
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return Err(Error::NoIndex),
        };
        Ok(Volume {
            drive,
            barcode: vol1.volume_id,
            label,
            index,
            index_partition: ip_state,
            data_partition: dp_state,
            label_end: ends,
        })
    }

    /// Formats the cartridge in `drive` as an empty LTFS 2.4.0 volume: two partitions,
    /// on each the VOL1 label, the XML label and the first index (generation 1), and the
    /// MAM attributes where the drive supports them. Destroys everything on the tape.
    pub fn format(drive: &'d mut dyn TapeDrive, options: &FormatOptions) -> Result<Volume<'d>> {
        if options.block_size < 4096 || u64::from(options.block_size) > crate::label::MAX_BLOCK_SIZE
        {
            return Err(Error::Malformed {
                what: "block size",
                value: options.block_size.to_string(),
            });
        }
        crate::writer::check_name(&options.volume_name)?;
        let uuid = match &options.uuid {
            Some(u) => uuid::Uuid::parse_str(u)
                .map_err(|_| Error::Malformed {
                    what: "volume UUID",
                    value: u.clone(),
                })?
                .hyphenated()
                .to_string(),
            None => uuid::Uuid::new_v4().hyphenated().to_string(),
        };
        drive
            .set_block_size(0)
            .map_err(Error::drive("selecting variable block mode"))?;
        let ip_bytes = match options.index_partition_bytes {
            Some(b) => b,
            None => {
                let cap = drive.capacity().map(|c| c.maximum).unwrap_or(0);
                let bytes = (cap / 20).max(16 << 20);
                if cap > 0 { bytes.min(cap / 2) } else { bytes }
            }
        };
        drive
            .create_two_partitions(ip_bytes)
            .map_err(Error::drive("partitioning the medium"))?;
        let now = Timestamp::now();
        let (ip, dp) = (0u8, 1u8);
        let label = LtfsLabel {
            version: crate::index::FORMAT_VERSION.to_string(),
            creator: creator("format"),
            format_time: now,
            volume_uuid: uuid.clone(),
            location: ip,
            index_partition: ip,
            data_partition: dp,
            block_size: u64::from(options.block_size),
            compression: options.compression,
        };
        let mut index = Index {
            version: crate::index::FORMAT_VERSION.to_string(),
            creator: creator("format"),
            comment: None,
            volume_uuid: uuid.clone(),
            generation: 1,
            update_time: now,
            location: IndexLocation {
                partition: dp,
                block: 0,
            },
            previous: None,
            allow_policy_update: true,
            highest_file_uid: 1,
            volume_lock_state: Some("unlocked".to_string()),
            root: Directory {
                name: options.volume_name.clone(),
                readonly: false,
                times: Times::all(now),
                uid: 1,
                xattrs: Vec::new(),
                entries: Vec::new(),
            },
        };
        let vol1 = Vol1Label {
            volume_id: options.barcode.chars().take(6).collect(),
        };
        let bs = options.block_size as usize;
        let app_attrs = mam::application_attributes(&options.volume_name, &options.barcode, now);
        let mut states = Vec::new();
        let mut ends = [0u64; 2];
        // Data partition first, so the index partition's copy can point back to it.
        for p in [dp, ip] {
            tape::locate(drive, p, 0)?;
            let op = "writing the labels";
            drive
                .write_record(&vol1.to_bytes())
                .map_err(Error::drive(op))?;
            tape::write_filemark(drive, op)?;
            let label_p = LtfsLabel {
                location: p,
                ..label.clone()
            };
            tape::write_document(drive, label_p.to_xml()?.as_bytes(), bs, op)?;
            tape::write_filemark(drive, op)?;
            let label_end = drive
                .position()
                .map_err(Error::drive("reading the position"))?
                .block;
            ends[usize::from(p)] = label_end;
            if p == ip {
                index.previous = states
                    .first()
                    .and_then(|s: &PartitionState| s.last_index.as_ref())
                    .map(|i| i.location);
            }
            let info = write_index_construct(drive, &mut index, p, label_end, bs)?;
            for a in &app_attrs {
                mam::write(drive, p, a)?;
            }
            write_coherency(drive, &index, &info)?;
            states.push(PartitionState {
                partition: p,
                end_of_data: info.end_block(),
                last_index: Some(info),
            });
        }
        let [dp_state, ip_state]: [PartitionState; 2] =
            states.try_into().map_err(|_| Error::NoIndex)?;
        Ok(Volume {
            drive,
            label,
            barcode: vol1.volume_id,
            index,
            index_partition: ip_state,
            data_partition: dp_state,
            label_end: ends,
        })
    }

    /// The XML label (index partition copy).
    pub fn label(&self) -> &LtfsLabel {
        &self.label
    }

    /// The volume identifier from the VOL1 label (the barcode's first six characters).
    pub fn barcode(&self) -> &str {
        &self.barcode
    }

    /// The newest index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The volume name (the root directory's name).
    pub fn volume_name(&self) -> &str {
        &self.index.root.name
    }

    /// State of the end of the index partition.
    pub fn index_partition_state(&self) -> &PartitionState {
        &self.index_partition
    }

    /// State of the end of the data partition.
    pub fn data_partition_state(&self) -> &PartitionState {
        &self.data_partition
    }

    /// True when the volume was closed cleanly: both partitions end with a complete index
    /// construct, and the index partition holds the newest generation.
    pub fn is_consistent(&self) -> bool {
        let gen_of = |s: &PartitionState| s.last_index.as_ref().map(|i| i.generation);
        self.index_partition.is_clean()
            && self.data_partition.is_clean()
            && gen_of(&self.index_partition) == Some(self.index.generation)
            && gen_of(&self.data_partition) == Some(self.index.generation)
    }

    /// Looks up a path (`dir1/big.bin`; `""` is the root).
    pub fn lookup(&self, path: &str) -> Option<EntryRef<'_>> {
        self.index.root.lookup(path)
    }

    /// The file (or symlink) at `path`.
    pub fn file(&self, path: &str) -> Result<&File> {
        match self.lookup(path) {
            Some(EntryRef::File(f)) => Ok(f),
            Some(EntryRef::Directory(_)) => Err(Error::IsADirectory {
                path: path.to_string(),
            }),
            None => Err(Error::NotFound {
                path: path.to_string(),
            }),
        }
    }

    /// Opens the file at `path` for reading, as a stream over its extents.
    /// A symlink reads as empty; use [`File::symlink`] for its target.
    pub fn open_file(&mut self, path: &str) -> Result<FileReader<'_, 'd>> {
        let file = self.file(path)?.clone();
        Ok(FileReader {
            path: path.to_string(),
            block_size: self.label.block_size,
            buf: Vec::new(),
            buffered: None,
            next_block: None,
            file,
            offset: 0,
            volume: self,
        })
    }

    /// Copies the file at `path` to `out`; returns the number of bytes.
    pub fn read_file_to(
        &mut self,
        path: &str,
        out: &mut dyn std::io::Write,
        progress: &dyn crate::Progress,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<u64> {
        let mut reader = self.open_file(path)?;
        progress.item(path, Some(reader.file.length));
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let n = reader.read_chunk(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n]).map_err(|source| Error::Source {
                path: path.to_string(),
                source,
            })?;
            total += n as u64;
            progress.advance(n as u64);
        }
    }

    /// Gives the drive back.
    pub fn into_drive(self) -> &'d mut dyn TapeDrive {
        self.drive
    }
}

/// Writes an index construct (filemark, index records, filemark) at `block` of
/// `partition`, setting the index's self pointer. Returns where it went.
pub(crate) fn write_index_construct(
    drive: &mut dyn TapeDrive,
    index: &mut Index,
    partition: u8,
    block: u64,
    block_size: usize,
) -> Result<tape::IndexInfo> {
    let op = "writing an index";
    tape::locate(drive, partition, block)?;
    tape::write_filemark(drive, op)?;
    index.location = IndexLocation {
        partition,
        block: block + 1,
    };
    let doc = index.to_xml()?;
    let (records, _) = tape::write_document(drive, doc.as_bytes(), block_size, op)?;
    tape::write_filemark(drive, op)?;
    Ok(tape::IndexInfo {
        generation: index.generation,
        location: index.location,
        records,
        terminated: true,
    })
}

pub(crate) fn write_coherency(
    drive: &mut dyn TapeDrive,
    index: &Index,
    info: &tape::IndexInfo,
) -> Result<()> {
    let p = info.location.partition;
    let c = Coherency {
        volume_change_reference: mam::volume_change_reference(drive, p),
        generation: index.generation,
        index_block: info.location.block,
        volume_uuid: index.volume_uuid.clone(),
    };
    mam::write(
        drive,
        p,
        &tape_scsi::MamAttribute {
            id: mam::COHERENCY,
            format: 0,
            value: c.to_bytes(),
        },
    )
}

/// A file's bytes as a stream ([`std::io::Read`]), read record by record along its
/// extents. Gaps between extents read as zeros.
pub struct FileReader<'v, 'd> {
    volume: &'v mut Volume<'d>,
    path: String,
    file: File,
    block_size: u64,
    offset: u64,
    buf: Vec<u8>,
    /// (partition, block, length) of the record in `buf`.
    buffered: Option<(u8, u64, usize)>,
    /// Where the drive is, if we know (partition, block).
    next_block: Option<(u8, u64)>,
}

impl std::fmt::Debug for FileReader<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish()
    }
}

impl FileReader<'_, '_> {
    /// The file's index entry.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn bad(&self, partition: u8, block: u64, reason: &'static str) -> Error {
        Error::BadExtent {
            path: self.path.clone(),
            partition,
            block,
            reason,
        }
    }

    /// Reads the next bytes into `out`; 0 at end of file.
    pub fn read_chunk(&mut self, out: &mut [u8]) -> Result<usize> {
        if self.offset >= self.file.length || out.is_empty() || self.file.symlink.is_some() {
            return Ok(0);
        }
        let remaining_file = self.file.length - self.offset;
        let want = (out.len() as u64).min(remaining_file);
        let off = self.offset;
        let extent = self
            .file
            .extents
            .iter()
            .find(|e| e.file_offset <= off && off < e.file_offset + e.byte_count)
            .copied();
        let Some(e) = extent else {
            // A hole: zeros up to the next extent or the end.
            let next = self
                .file
                .extents
                .iter()
                .map(|e| e.file_offset)
                .filter(|&s| s > off)
                .min()
                .unwrap_or(self.file.length);
            let n = want.min(next - off) as usize;
            out[..n].fill(0);
            self.offset += n as u64;
            return Ok(n);
        };
        let pos = e.byte_offset + (off - e.file_offset);
        let block = e.start_block + pos / self.block_size;
        let within = (pos % self.block_size) as usize;
        let extent_left = e.file_offset + e.byte_count - off;
        if self.buffered.map(|(p, b, _)| (p, b)) != Some((e.partition, block)) {
            self.fetch(e.partition, block)?;
        }
        let len = self.buffered.map(|(_, _, l)| l).unwrap_or(0);
        if within >= len {
            return Err(self.bad(e.partition, block, "record shorter than the extent"));
        }
        let n = (want.min(extent_left) as usize)
            .min(len - within)
            .min(out.len());
        out[..n].copy_from_slice(&self.buf[within..within + n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn fetch(&mut self, partition: u8, block: u64) -> Result<()> {
        if self.next_block != Some((partition, block)) {
            tape::locate(self.volume.drive, partition, block)?;
        }
        if self.buf.len() < self.block_size as usize {
            self.buf = vec![0u8; self.block_size as usize];
        }
        self.buffered = None;
        self.next_block = None;
        match self.volume.drive.read_record(&mut self.buf) {
            Ok(ReadOutcome::Record(n)) => {
                self.buffered = Some((partition, block, n));
                self.next_block = Some((partition, block + 1));
                Ok(())
            }
            Ok(ReadOutcome::Filemark) => {
                Err(self.bad(partition, block, "filemark inside the extent"))
            }
            Ok(ReadOutcome::EndOfData) => {
                Err(self.bad(partition, block, "end of data inside the extent"))
            }
            Err(tape_scsi::Error::RecordTooLong { .. }) => {
                Err(self.bad(partition, block, "record longer than the block size"))
            }
            Err(e) => Err(Error::drive("reading file data")(e)),
        }
    }
}

impl Read for FileReader<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.read_chunk(out).map_err(std::io::Error::other)
    }
}

/// Reads the index at `location` (for walking generations).
pub(crate) fn read_index_at(
    drive: &mut dyn TapeDrive,
    location: IndexLocation,
    uuid: &str,
    block_size: u64,
) -> Result<Option<(Index, tape::IndexInfo)>> {
    let mut buf = vec![0u8; (block_size as usize).max(LABEL_BUFFER)];
    tape::try_index_at(drive, location.partition, location.block, uuid, &mut buf)
}

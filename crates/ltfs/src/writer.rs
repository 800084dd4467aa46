//! Appending files to a volume: data records on the data partition, indexes on the data
//! partition at intervals, and the final index on the index partition.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tape_scsi::WriteOutcome;

use crate::index::{
    Directory, Entry, Extent, File, Times, Timestamp, Xattr, set_xattr, split_path,
};
use crate::tape::{self, IndexInfo, PartitionState};
use crate::volume::{Volume, creator, write_coherency, write_index_construct};
use crate::{Error, Progress, Result};

/// Extended attribute: which part of a spanned file this is (`1`, `2`, ...).
pub const SPAN_PART_XATTR: &str = "tapebackup.span.part";
/// Extended attribute: offset of this part's first byte in the whole file (decimal).
pub const SPAN_OFFSET_XATTR: &str = "tapebackup.span.offset";
/// Extended attribute: `true` when this is the file's last part, `false` when it
/// continues on another cartridge.
pub const SPAN_LAST_XATTR: &str = "tapebackup.span.last";

/// Longest name LTFS allows, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Checks one path component.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if name.contains('/') {
        return bad("contains '/'");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("longer than 255 characters");
    }
    Ok(())
}

/// Options for a writing session.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Write an index to the data partition when this much data was written since the
    /// last one (checked between files). `None`: no byte limit.
    pub sync_every_bytes: Option<u64>,
    /// Write an index to the data partition when this much time passed since the last
    /// one (checked between files). Default 5 minutes, as the reference implementation.
    pub sync_interval: Option<Duration>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            sync_every_bytes: None,
            sync_interval: Some(Duration::from_secs(300)),
        }
    }
}

/// What to do when the tape reaches early warning in the middle of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EarlyWarningPolicy {
    /// Stop the file at the record that reached early warning and report it incomplete,
    /// so the rest can go to the next cartridge (spanning).
    #[default]
    Split,
    /// Keep writing into the reserve after early warning (for small files that must stay
    /// whole, like a catalog snapshot).
    Finish,
}

/// Which part of a spanned file is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanPart {
    /// Part number, starting at 1.
    pub part: u32,
    /// Offset in the whole file of the first byte written now.
    pub offset: u64,
}

/// Spanning information read back from a file's extended attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanInfo {
    /// Part number, starting at 1.
    pub part: u32,
    /// Offset in the whole file of this part's first byte.
    pub offset: u64,
    /// True when this is the last part.
    pub last: bool,
}

impl SpanInfo {
    /// Reads the spanning attributes of `file`; `None` for an ordinary file.
    pub fn of(file: &File) -> Option<SpanInfo> {
        let num = |k| {
            file.xattr(k)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse::<u64>().ok())
        };
        Some(SpanInfo {
            part: u32::try_from(num(SPAN_PART_XATTR)?).ok()?,
            offset: num(SPAN_OFFSET_XATTR)?,
            last: file.xattr(SPAN_LAST_XATTR)? == b"true",
        })
    }
}

/// Per-file options for [`VolumeWriter::write_file`].
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Timestamps; all "now" when `None`.
    pub times: Option<Times>,
    /// Read-only flag.
    pub readonly: bool,
    /// Extended attributes to store with the file.
    pub xattrs: Vec<Xattr>,
    /// Set when this continues a file begun on another cartridge.
    pub span: Option<SpanPart>,
    /// Behaviour at early warning.
    pub early_warning: EarlyWarningPolicy,
}

/// Where a written file landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWritten {
    /// Its path on the volume.
    pub path: String,
    /// Its file uid on the volume.
    pub uid: u64,
    /// Bytes written to this volume (the whole file, or this part of it).
    pub length: u64,
    /// Where they are: partition, start block, byte count, offset in the file.
    pub extents: Vec<Extent>,
    /// False when the file was cut at early warning: the rest (from
    /// `span offset + length`) goes to the next cartridge.
    pub complete: bool,
    /// The tape is past early warning: finish and change cartridges.
    pub early_warning: bool,
}

/// A volume open for appending. Created by [`Volume::into_writer`]; call
/// [`VolumeWriter::finish`] to write the final indexes. Dropping it without `finish`
/// leaves the volume as after a crash: readable up to the last index written, and
/// repairable with [`recover`](crate::recover).
pub struct VolumeWriter<'d> {
    volume: Volume<'d>,
    options: WriterOptions,
    /// Where the next data record goes on the data partition.
    append_block: u64,
    /// Whether the drive is known to be at `append_block`.
    at_append: bool,
    last_dp_index: IndexInfo,
    dirty: bool,
    bytes_since_sync: u64,
    last_sync: Instant,
    early_warning: bool,
    buf: RecordBuf,
}

/// The record buffer: one block, starting on a 4 KiB boundary, so that drives that can
/// write straight from memory (the st driver's direct transfers, the virtual drive's
/// `O_DIRECT`) need no aligned copy of it.
#[derive(Default)]
struct RecordBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

/// Alignment of [`RecordBuf`].
const RECORD_ALIGN: usize = 4096;

impl RecordBuf {
    fn new(len: usize) -> RecordBuf {
        let raw = vec![0u8; len + RECORD_ALIGN];
        let start = match raw.as_ptr().align_offset(RECORD_ALIGN) {
            // `align_offset` may decline; an unaligned buffer only costs the drive a copy.
            off if off <= RECORD_ALIGN => off,
            _ => 0,
        };
        RecordBuf { raw, start, len }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for VolumeWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeWriter")
            .field("volume", &self.volume)
            .field("append_block", &self.append_block)
            .field("early_warning", &self.early_warning)
            .finish()
    }
}

impl<'d> Volume<'d> {
    /// Opens the volume for appending. Fails with [`Error::NeedsRecovery`] when it was not
    /// closed cleanly and [`Error::ReadOnly`] when it is write protected or locked.
    pub fn into_writer(self, options: WriterOptions) -> Result<VolumeWriter<'d>> {
        if !self.is_consistent() {
            return Err(Error::NeedsRecovery {
                reason: "the partitions do not both end with the newest index",
            });
        }
        if matches!(
            self.index.volume_lock_state.as_deref(),
            Some("locked") | Some("permlocked")
        ) {
            return Err(Error::ReadOnly {
                reason: "volume is locked",
            });
        }
        let volume = self;
        if let Ok(st) = volume.drive.status()
            && st.write_protected
        {
            return Err(Error::ReadOnly {
                reason: "cartridge is write protected",
            });
        }
        let last = volume
            .data_partition
            .last_index
            .clone()
            .ok_or(Error::NoIndex)?;
        let bs = volume.label.block_size as usize;
        Ok(VolumeWriter {
            append_block: last.end_block(),
            at_append: false,
            last_dp_index: last,
            dirty: false,
            bytes_since_sync: 0,
            last_sync: Instant::now(),
            early_warning: false,
            buf: RecordBuf::new(bs),
            options,
            volume,
        })
    }
}

/// Fills `buf` from `src` as far as it goes; returns the bytes read (short only at EOF).
fn fill(src: &mut dyn BufRead, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<'d> VolumeWriter<'d> {
    /// The volume as it stands (the in-memory index includes everything written so far).
    pub fn volume(&self) -> &Volume<'d> {
        &self.volume
    }

    /// True once the tape reported early warning.
    pub fn early_warning(&self) -> bool {
        self.early_warning
    }

    fn parent_mut(&mut self, path: &str) -> Result<(&mut Directory, String)> {
        let parts: Vec<&str> = split_path(path).collect();
        let Some((name, dirs)) = parts.split_last() else {
            return Err(Error::InvalidName {
                name: path.to_string(),
                reason: "empty path",
            });
        };
        for p in &parts {
            check_name(p)?;
        }
        if dirs.len() >= crate::index::MAX_DEPTH {
            return Err(Error::InvalidName {
                name: path.to_string(),
                reason: "too many directory levels",
            });
        }
        let now = Timestamp::now();
        let index = &mut self.volume.index;
        let mut dir = &mut index.root;
        let mut walked = String::new();
        for d in dirs {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(d);
            if dir.get(d).is_none() {
                index.highest_file_uid += 1;
                dir.entries.push(Entry::Directory(Directory {
                    name: d.to_string(),
                    readonly: false,
                    times: Times::all(now),
                    uid: index.highest_file_uid,
                    xattrs: Vec::new(),
                    entries: Vec::new(),
                }));
                dir.times.modify = now;
                dir.times.change = now;
            }
            dir = match dir.get_mut(d) {
                Some(Entry::Directory(sub)) => sub,
                _ => {
                    return Err(Error::NotADirectory {
                        path: walked.clone(),
                    });
                }
            };
        }
        Ok((dir, name.to_string()))
    }

    /// Creates a directory and its parents (like `mkdir -p`).
    pub fn create_dir_all(&mut self, path: &str) -> Result<()> {
        let probe = format!("{}/x", path.trim_end_matches('/'));
        self.parent_mut(&probe)?;
        self.dirty = true;
        Ok(())
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        if target.is_empty() || target.contains('\0') {
            return Err(Error::InvalidName {
                name: target.to_string(),
                reason: "bad symlink target",
            });
        }
        let file = self.new_file(path, 0, Vec::new(), &FileOptions::default(), Some(target))?;
        self.insert(path, file)?;
        Ok(())
    }

    /// Sets an extended attribute on the file or directory at `path`.
    pub fn set_xattr(&mut self, path: &str, key: &str, value: &[u8]) -> Result<()> {
        check_name(key)?;
        let (dir, name) = self.parent_mut(path)?;
        match dir.get_mut(&name) {
            Some(Entry::File(f)) => f.set_xattr(key, value),
            Some(Entry::Directory(d)) => set_xattr(&mut d.xattrs, key, value),
            None => {
                return Err(Error::NotFound {
                    path: path.to_string(),
                });
            }
        }
        self.dirty = true;
        Ok(())
    }

    fn new_file(
        &mut self,
        path: &str,
        length: u64,
        extents: Vec<Extent>,
        options: &FileOptions,
        symlink: Option<&str>,
    ) -> Result<File> {
        let (dir, name) = self.parent_mut(path)?;
        if let Some(Entry::Directory(_)) = dir.get(&name) {
            return Err(Error::IsADirectory {
                path: path.to_string(),
            });
        }
        self.volume.index.highest_file_uid += 1;
        Ok(File {
            name,
            length,
            readonly: options.readonly || symlink.is_some(),
            times: options
                .times
                .unwrap_or_else(|| Times::all(Timestamp::now())),
            uid: self.volume.index.highest_file_uid,
            xattrs: options.xattrs.clone(),
            open_for_write: false,
            extents,
            symlink: symlink.map(str::to_string),
        })
    }

    /// Puts `file` at `path`, replacing a file of the same name.
    fn insert(&mut self, path: &str, file: File) -> Result<()> {
        let now = Timestamp::now();
        let (dir, name) = self.parent_mut(path)?;
        match dir.get_mut(&name) {
            Some(Entry::File(old)) => *old = file,
            Some(Entry::Directory(_)) => {
                return Err(Error::IsADirectory {
                    path: path.to_string(),
                });
            }
            None => dir.entries.push(Entry::File(file)),
        }
        dir.times.modify = now;
        dir.times.change = now;
        self.dirty = true;
        Ok(())
    }

    /// Streams `src` to the data partition as the file `path` (parents are created; an
    /// existing file is replaced, its old bytes stay on tape unreferenced).
    ///
    /// Data goes in full records of the volume's block size (the last one short), starting
    /// on a new record. Returns where it landed. At early warning with
    /// [`EarlyWarningPolicy::Split`] the file stops after the record that reached it and
    /// the result says `complete: false`; `src` is then positioned right after the bytes
    /// written, ready for the next cartridge. Checks `cancel` between records; a cancelled
    /// file is left out of the index.
    pub fn write_file(
        &mut self,
        path: &str,
        src: &mut dyn BufRead,
        options: &FileOptions,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Result<FileWritten> {
        // Validate the path before writing any data.
        {
            let (dir, name) = self.parent_mut(path)?;
            if let Some(Entry::Directory(_)) = dir.get(&name) {
                return Err(Error::IsADirectory {
                    path: path.to_string(),
                });
            }
        }
        progress.item(path, None);
        let partition = self.volume.label.data_partition;
        let start_block = self.append_block;
        let split = options.early_warning == EarlyWarningPolicy::Split;
        let mut length = 0u64;
        let mut records = 0u64;
        let mut complete = true;
        if split && self.early_warning {
            // Nothing fits any more: the whole file goes to the next cartridge.
            let at_eof = src
                .fill_buf()
                .map_err(|source| Error::Source {
                    path: path.to_string(),
                    source,
                })?
                .is_empty();
            if !at_eof {
                return Ok(FileWritten {
                    path: path.to_string(),
                    uid: 0,
                    length: 0,
                    extents: Vec::new(),
                    complete: false,
                    early_warning: true,
                });
            }
        }
        let mut record = std::mem::take(&mut self.buf);
        let buf = record.as_mut_slice();
        let result = (|| -> Result<()> {
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                let n = fill(src, buf).map_err(|source| Error::Source {
                    path: path.to_string(),
                    source,
                })?;
                if n == 0 {
                    return Ok(());
                }
                if !self.at_append {
                    tape::locate(self.volume.drive, partition, self.append_block)?;
                    self.at_append = true;
                }
                let outcome = self.volume.drive.write_record(&buf[..n]);
                let outcome = match outcome {
                    Ok(o) => o,
                    Err(e) => {
                        self.at_append = false;
                        return Err(Error::drive("writing file data")(e));
                    }
                };
                self.append_block += 1;
                records += 1;
                length += n as u64;
                progress.advance(n as u64);
                if outcome == WriteOutcome::EarlyWarning && !self.early_warning {
                    self.early_warning = true;
                    progress.note("early warning: the tape is nearly full");
                }
                if n < buf.len() {
                    return Ok(());
                }
                if self.early_warning && split {
                    let more = !src
                        .fill_buf()
                        .map_err(|source| Error::Source {
                            path: path.to_string(),
                            source,
                        })?
                        .is_empty();
                    if more {
                        complete = false;
                    }
                    return Ok(());
                }
            }
        })();
        self.buf = record;
        result?;
        let extents = if length > 0 {
            vec![Extent {
                file_offset: 0,
                partition,
                start_block,
                byte_offset: 0,
                byte_count: length,
            }]
        } else {
            Vec::new()
        };
        let _ = records;
        let mut file = self.new_file(path, length, extents.clone(), options, None)?;
        if options.span.is_some() || !complete {
            let span = options.span.unwrap_or(SpanPart { part: 1, offset: 0 });
            file.set_xattr(SPAN_PART_XATTR, span.part.to_string().as_bytes());
            file.set_xattr(SPAN_OFFSET_XATTR, span.offset.to_string().as_bytes());
            file.set_xattr(SPAN_LAST_XATTR, if complete { b"true" } else { b"false" });
        }
        let uid = file.uid;
        self.insert(path, file)?;
        self.bytes_since_sync += length;
        let written = FileWritten {
            path: path.to_string(),
            uid,
            length,
            extents,
            complete,
            early_warning: self.early_warning,
        };
        self.maybe_sync(progress)?;
        Ok(written)
    }

    fn maybe_sync(&mut self, progress: &dyn Progress) -> Result<()> {
        let by_bytes = self
            .options
            .sync_every_bytes
            .is_some_and(|b| self.bytes_since_sync >= b);
        let by_time = self
            .options
            .sync_interval
            .is_some_and(|t| self.last_sync.elapsed() >= t);
        if self.dirty && (by_bytes || by_time) {
            let generation = self.sync()?;
            progress.note(&format!("index generation {generation} written"));
        }
        Ok(())
    }

    /// Writes the current index to the data partition now (a new generation), so that a
    /// crash after this point loses nothing written before it. Returns the generation.
    pub fn sync(&mut self) -> Result<u64> {
        if !self.dirty {
            return Ok(self.volume.index.generation);
        }
        let dp = self.volume.label.data_partition;
        let index = &mut self.volume.index;
        index.generation += 1;
        index.update_time = Timestamp::now();
        index.creator = creator("write");
        index.previous = Some(self.last_dp_index.location);
        self.at_append = false;
        let bs = self.volume.label.block_size as usize;
        let info = write_index_construct(self.volume.drive, index, dp, self.append_block, bs)?;
        write_coherency(self.volume.drive, index, &info)?;
        self.append_block = info.end_block();
        self.at_append = true;
        self.last_dp_index = info;
        self.dirty = false;
        self.bytes_since_sync = 0;
        self.last_sync = Instant::now();
        Ok(self.volume.index.generation)
    }

    /// Writes the final index: on the data partition (when anything changed) and then on
    /// the index partition, replacing the previous index there; updates the MAM
    /// attributes. Returns the volume, consistent again.
    pub fn finish(mut self) -> Result<Volume<'d>> {
        let ip_current = self.volume.index_partition.is_clean()
            && self
                .volume
                .index_partition
                .last_index
                .as_ref()
                .map(|i| i.generation)
                == Some(self.volume.index.generation);
        if !self.dirty && ip_current {
            // Nothing changed in this session: the tape is already final.
            return Ok(self.volume);
        }
        self.sync()?;
        let ip = self.volume.label.index_partition;
        let dp_info = self.last_dp_index.clone();
        let ip_start = match &self.volume.index_partition.last_index {
            Some(i) => i.location.block - 1,
            None => self.volume.label_end[usize::from(ip)],
        };
        let volume = &mut self.volume;
        let mut index = volume.index.clone();
        index.previous = Some(dp_info.location);
        let bs = volume.label.block_size as usize;
        let info = write_index_construct(volume.drive, &mut index, ip, ip_start, bs)?;
        write_coherency(volume.drive, &index, &info)?;
        let barcode = volume.barcode.clone();
        for a in crate::mam::application_attributes(&index.root.name, &barcode, Timestamp::now())
            .iter()
            .filter(|a| a.id == 0x0804)
        {
            for p in [0, 1] {
                crate::mam::write(volume.drive, p, a)?;
            }
        }
        volume.index_partition = PartitionState {
            partition: ip,
            end_of_data: info.end_block(),
            last_index: Some(info),
        };
        volume.data_partition = PartitionState {
            partition: volume.label.data_partition,
            end_of_data: dp_info.end_block(),
            last_index: Some(dp_info),
        };
        volume.index = index;
        Ok(self.volume)
    }
}

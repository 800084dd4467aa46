//! The raw on-tape format, for drives that cannot partition (LTO-4 and older, DAT, tgt):
//! plain tape files separated by filemarks, documented byte-exact in `docs/RAW-FORMAT.md`.
//!
//! ```text
//! file 0        file 1                              file 2 ...         file n
//! [label] FM    [pack hdr][data]...[data][trailer] FM   ...   [snapshot hdr][data]...[trailer] FM  EOD
//! ```
//!
//! - Tape file 0 is one [`Label`] record.
//! - Every later tape file is a header record ([`FileHeader`]: a pack part or an encrypted
//!   catalog snapshot), data records of the label's block size (the last one short), and a
//!   [`Trailer`] record (data length and BLAKE3 of the data), then a filemark. The trailer is
//!   the last record before the filemark, so a reader holds one record back to tell it apart.
//! - Positions are tape file numbers: a reader goes to file `n` by rewinding and spacing `n`
//!   filemarks, so no READ POSITION or LOCATE is needed.
//!
//! [`RawWriter`] formats a blank tape or finds the end of a written one ([`RawWriter::append`])
//! and writes tape files; [`RawReader`] reads the label, goes to a tape file, lists every
//! file ([`RawReader::files`]) and streams a file's data ([`RawReader::data`]), checking the
//! trailer at the end. Neither knows the catalog.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tape_scsi::{ReadOutcome, Space, TapeDrive, WriteOutcome};

/// First 8 bytes of every metadata record (label, header, trailer).
pub const MAGIC: [u8; 8] = *b"TBKRAWv1";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Largest JSON body of a metadata record.
pub const MAX_BODY: usize = 64 << 10;
/// Bytes of a metadata record around its body: 16 of header, 32 of BLAKE3.
pub const RECORD_OVERHEAD: usize = 48;
/// Smallest block size a label may declare.
pub const MIN_BLOCK_SIZE: u32 = 4 << 10;
/// Largest block size a label may declare.
pub const MAX_BLOCK_SIZE: u32 = 16 << 20;
/// Default block size (record size of the data records).
pub const DEFAULT_BLOCK_SIZE: u32 = 256 << 10;

const KIND_LABEL: u8 = 1;
const KIND_PACK: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
const KIND_TRAILER: u8 = 4;

/// Errors of the raw format.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// The record is not one of ours (no magic): the tape is not in the raw format.
    #[error("not a tapebackup raw-format record ({len} bytes without the TBKRAWv1 magic)")]
    NotRaw {
        /// Length of the record seen.
        len: usize,
    },
    /// A format version this code does not read.
    #[error("raw format version {version} is not supported (this version reads 1)")]
    UnsupportedVersion {
        /// The version found.
        version: u16,
    },
    /// A metadata record that is damaged or inconsistent.
    #[error("corrupt raw-format record: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },
    /// The tape does not hold what the caller expected at that place.
    #[error("tape file {file}: {reason}")]
    Unexpected {
        /// Tape file number.
        file: u64,
        /// What was found instead.
        reason: String,
    },
    /// A tape file ends without its trailer (a write was interrupted) or its data does not
    /// match the trailer.
    #[error("tape file {file} is damaged: {reason}")]
    DamagedFile {
        /// Tape file number.
        file: u64,
        /// What is wrong.
        reason: String,
    },
    /// The volume is not the one the caller expected.
    #[error("wrong volume: the tape holds raw volume {found}, expected {expected}")]
    WrongVolume {
        /// UUID on the tape.
        found: String,
        /// UUID expected.
        expected: String,
    },
    /// The drive failed.
    #[error("{operation}: {source}")]
    Drive {
        /// What was being done.
        operation: &'static str,
        /// The drive's error.
        #[source]
        source: tape_scsi::Error,
    },
    /// Reading the data to write failed.
    #[error("reading the data to write: {0}")]
    Source(#[source] std::io::Error),
    /// The cancel flag was set.
    #[error("cancelled")]
    Cancelled,
}

fn drive_err(operation: &'static str) -> impl FnOnce(tape_scsi::Error) -> RawError {
    move |source| RawError::Drive { operation, source }
}

fn corrupt(reason: impl Into<String>) -> RawError {
    RawError::Corrupt {
        reason: reason.into(),
    }
}

/// The label: tape file 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Volume UUID (random at format time; the catalog keeps it as `raw:<uuid>`).
    pub volume_uuid: String,
    /// Barcode the tape had when formatted.
    pub barcode: String,
    /// Format time, Unix seconds.
    pub created_at: i64,
    /// Program that formatted it (`tapebackup <version>`).
    pub writer: String,
    /// Size of the data records in bytes.
    pub block_size: u32,
}

/// What a tape file after the label holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A pack, or one part of a pack that spans tapes.
    Pack {
        /// The pack's catalog id.
        pack_id: i64,
        /// The pack's (file) name.
        name: String,
        /// Ciphertext length of the whole pack.
        pack_length: u64,
        /// Offset of this tape file's first data byte within the pack.
        offset: u64,
    },
    /// An encrypted catalog snapshot (a cryptpack stream of the SQLite database).
    Snapshot {
        /// When it was taken, Unix seconds.
        created_at: i64,
        /// Its length in bytes.
        length: u64,
    },
}

/// The header record of a tape file after the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// Tape file number (the label is 0).
    pub file: u64,
    /// UUID of the volume it was written to.
    pub volume_uuid: String,
    /// What the file holds.
    pub kind: FileKind,
}

/// The trailer record, last record of a tape file after the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Data bytes in the file (between header and trailer).
    pub data_length: u64,
    /// BLAKE3 of those bytes.
    pub blake3: [u8; 32],
}

/// One metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The label (tape file 0).
    Label(Label),
    /// A tape file's header.
    Header(FileHeader),
    /// A tape file's trailer.
    Trailer(Trailer),
}

#[derive(Serialize, Deserialize)]
struct PackBody {
    file: u64,
    volume_uuid: String,
    pack_id: i64,
    name: String,
    pack_length: u64,
    offset: u64,
}

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    file: u64,
    volume_uuid: String,
    created_at: i64,
    length: u64,
}

#[derive(Serialize, Deserialize)]
struct TrailerBody {
    data_length: u64,
    blake3: String,
}

/// Encodes a metadata record (layout in `docs/RAW-FORMAT.md`).
pub fn encode_record(record: &Record) -> Vec<u8> {
    let (kind, body) = match record {
        Record::Label(l) => (KIND_LABEL, serde_json::to_vec(l)),
        Record::Header(h) => match &h.kind {
            FileKind::Pack {
                pack_id,
                name,
                pack_length,
                offset,
            } => (
                KIND_PACK,
                serde_json::to_vec(&PackBody {
                    file: h.file,
                    volume_uuid: h.volume_uuid.clone(),
                    pack_id: *pack_id,
                    name: name.clone(),
                    pack_length: *pack_length,
                    offset: *offset,
                }),
            ),
            FileKind::Snapshot { created_at, length } => (
                KIND_SNAPSHOT,
                serde_json::to_vec(&SnapshotBody {
                    file: h.file,
                    volume_uuid: h.volume_uuid.clone(),
                    created_at: *created_at,
                    length: *length,
                }),
            ),
        },
        Record::Trailer(t) => (
            KIND_TRAILER,
            serde_json::to_vec(&TrailerBody {
                data_length: t.data_length,
                blake3: blake3::Hash::from_bytes(t.blake3).to_hex().to_string(),
            }),
        ),
    };
    // Serializing these plain structs cannot fail.
    let body = body.unwrap_or_default();
    let mut out = Vec::with_capacity(RECORD_OVERHEAD + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    let hash = blake3::hash(&out);
    out.extend_from_slice(hash.as_bytes());
    out
}

/// True when `bytes` starts with the metadata-record magic.
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Parses a metadata record: magic, version, kind, body length, checksum, then the JSON
/// body of that kind. Never panics, whatever the input.
pub fn parse_record(bytes: &[u8]) -> Result<Record, RawError> {
    if !has_magic(bytes) {
        return Err(RawError::NotRaw { len: bytes.len() });
    }
    if bytes.len() < RECORD_OVERHEAD {
        return Err(corrupt(format!(
            "record of {} bytes is shorter than {RECORD_OVERHEAD}",
            bytes.len()
        )));
    }
    let version = u16::from_be_bytes([bytes[8], bytes[9]]);
    if version != FORMAT_VERSION {
        return Err(RawError::UnsupportedVersion { version });
    }
    let kind = bytes[10];
    if bytes[11] != 0 {
        return Err(corrupt("reserved byte 11 is not 0"));
    }
    let len = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    if len > MAX_BODY {
        return Err(corrupt(format!("body length {len} exceeds {MAX_BODY}")));
    }
    if bytes.len() != RECORD_OVERHEAD + len {
        return Err(corrupt(format!(
            "record is {} bytes, its header says {}",
            bytes.len(),
            RECORD_OVERHEAD + len
        )));
    }
    let (covered, sum) = bytes.split_at(16 + len);
    if blake3::hash(covered).as_bytes() != sum {
        return Err(corrupt("checksum mismatch"));
    }
    let body = &covered[16..];
    let json = |e: serde_json::Error| corrupt(format!("body: {e}"));
    match kind {
        KIND_LABEL => {
            let l: Label = serde_json::from_slice(body).map_err(json)?;
            if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&l.block_size) {
                return Err(corrupt(format!(
                    "block size {} outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}",
                    l.block_size
                )));
            }
            Ok(Record::Label(l))
        }
        KIND_PACK => {
            let b: PackBody = serde_json::from_slice(body).map_err(json)?;
            if b.offset > b.pack_length {
                return Err(corrupt(format!(
                    "part offset {} beyond pack length {}",
                    b.offset, b.pack_length
                )));
            }
            Ok(Record::Header(FileHeader {
                file: b.file,
                volume_uuid: b.volume_uuid,
                kind: FileKind::Pack {
                    pack_id: b.pack_id,
                    name: b.name,
                    pack_length: b.pack_length,
                    offset: b.offset,
                },
            }))
        }
        KIND_SNAPSHOT => {
            let b: SnapshotBody = serde_json::from_slice(body).map_err(json)?;
            Ok(Record::Header(FileHeader {
                file: b.file,
                volume_uuid: b.volume_uuid,
                kind: FileKind::Snapshot {
                    created_at: b.created_at,
                    length: b.length,
                },
            }))
        }
        KIND_TRAILER => {
            let b: TrailerBody = serde_json::from_slice(body).map_err(json)?;
            let h = blake3::Hash::from_hex(b.blake3.as_bytes())
                .map_err(|_| corrupt("trailer hash is not 64 hex digits"))?;
            Ok(Record::Trailer(Trailer {
                data_length: b.data_length,
                blake3: *h.as_bytes(),
            }))
        }
        k => Err(corrupt(format!("unknown record kind {k}"))),
    }
}

/// A read buffer for a data record or a metadata record: twice the largest record, because
/// tgt (the Linux SCSI target's tape emulation) transfers only `buffer - record` bytes of a
/// record read into a buffer longer than it (it gets the residual backwards), so a buffer
/// below twice the record returns partly stale bytes there; real drives do not care.
fn read_buffer(block_size: u32) -> Vec<u8> {
    vec![0u8; 2 * (block_size as usize).max(RECORD_OVERHEAD + MAX_BODY)]
}

/// Reads the first record of the tape (after rewinding) and returns the label if the tape
/// is in the raw format, `Ok(None)` when it is blank or holds something else (LTFS).
/// Leaves the tape rewound.
pub fn probe(drive: &mut dyn TapeDrive) -> Result<Option<Label>, RawError> {
    drive.rewind().map_err(drive_err("rewinding"))?;
    // Labels are small: this buffer is far above twice their size (see `read_buffer`).
    let mut buf = vec![0u8; MAX_BLOCK_SIZE as usize];
    let found = match drive.read_record(&mut buf) {
        Ok(ReadOutcome::Record(n)) if has_magic(&buf[..n]) => match parse_record(&buf[..n])? {
            Record::Label(l) => Some(l),
            _ => None,
        },
        Ok(_) => None,
        Err(tape_scsi::Error::RecordTooLong { .. }) => None,
        Err(e) => return Err(drive_err("reading the first record")(e)),
    };
    drive.rewind().map_err(drive_err("rewinding"))?;
    Ok(found)
}

/// Progress of a raw write or read (bytes of data).
pub trait RawProgress {
    /// Data bytes moved since the last call.
    fn advance(&self, bytes: u64);
}

/// A [`RawProgress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl RawProgress for NoProgress {
    fn advance(&self, _bytes: u64) {}
}

/// What to do when the tape reaches early warning in the middle of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEarlyWarning {
    /// Stop after the record that reached it; the rest goes to the next tape.
    Cut,
    /// Write the whole file anyway (into the end-of-medium reserve): catalog snapshots.
    Finish,
}

/// What [`RawWriter::write_file`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenFile {
    /// Its tape file number.
    pub file: u64,
    /// Data bytes written.
    pub length: u64,
    /// True when the source was written to its end (false: cut at early warning).
    pub complete: bool,
    /// True when the tape is past early warning.
    pub early_warning: bool,
}

/// Writes raw-format tape files, after the label, at the end of the recorded data.
pub struct RawWriter<'d> {
    drive: &'d mut dyn TapeDrive,
    label: Label,
    next_file: u64,
    early_warning: bool,
}

impl std::fmt::Debug for RawWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawWriter")
            .field("drive", &self.drive.name())
            .field("label", &self.label)
            .field("next_file", &self.next_file)
            .finish()
    }
}

impl<'d> RawWriter<'d> {
    /// Writes `label` as tape file 0 of the (blank) loaded tape, destroying anything on it.
    pub fn format(drive: &'d mut dyn TapeDrive, label: Label) -> Result<RawWriter<'d>, RawError> {
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&label.block_size) {
            return Err(corrupt(format!(
                "block size {} outside {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}",
                label.block_size
            )));
        }
        drive
            .set_block_size(0)
            .map_err(drive_err("selecting variable block mode"))?;
        drive.rewind().map_err(drive_err("rewinding"))?;
        let mut ew = false;
        ew |= drive
            .write_record(&encode_record(&Record::Label(label.clone())))
            .map_err(drive_err("writing the label"))?
            == WriteOutcome::EarlyWarning;
        ew |= drive
            .write_filemarks(1)
            .map_err(drive_err("writing the filemark after the label"))?
            == WriteOutcome::EarlyWarning;
        Ok(RawWriter {
            drive,
            label,
            next_file: 1,
            early_warning: ew,
        })
    }

    /// Opens a raw volume for appending: reads the label (and checks its UUID against
    /// `expect_uuid`), then walks the tape files from `known_file` (a file the caller knows
    /// exists, e.g. the last one its catalog records; 1 or 0 when none) to the end of data.
    /// A last file cut short by an interrupted write (no filemark after it) is overwritten
    /// by the next file written.
    pub fn append(
        drive: &'d mut dyn TapeDrive,
        expect_uuid: Option<&str>,
        known_file: u64,
    ) -> Result<RawWriter<'d>, RawError> {
        drive
            .set_block_size(0)
            .map_err(drive_err("selecting variable block mode"))?;
        let mut reader = RawReader::open(&mut *drive)?;
        if let Some(u) = expect_uuid
            && reader.label.volume_uuid != u
        {
            return Err(RawError::WrongVolume {
                found: reader.label.volume_uuid.clone(),
                expected: u.to_owned(),
            });
        }
        let label = reader.label.clone();
        let end = reader.find_end(known_file.max(1))?;
        drop(reader);
        Ok(RawWriter {
            drive,
            label,
            next_file: end,
            early_warning: false,
        })
    }

    /// The volume's label.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The number the next tape file written gets.
    pub fn next_file(&self) -> u64 {
        self.next_file
    }

    /// True once a write reported early warning.
    pub fn early_warning(&self) -> bool {
        self.early_warning
    }

    fn put(&mut self, data: &[u8], what: &'static str) -> Result<(), RawError> {
        if self.drive.write_record(data).map_err(drive_err(what))? == WriteOutcome::EarlyWarning {
            self.early_warning = true;
        }
        Ok(())
    }

    /// Writes one tape file: `kind`'s header, the bytes of `src` in records of the label's
    /// block size, the trailer, a filemark. Returns once the filemark is written (the
    /// file is then on tape). With [`OnEarlyWarning::Cut`] it stops after the first data
    /// record written past early warning; `complete` then says whether `src` was used up
    /// (the caller continues a cut pack at `offset + length`).
    pub fn write_file(
        &mut self,
        kind: FileKind,
        src: &mut dyn Read,
        policy: OnEarlyWarning,
        progress: &dyn RawProgress,
        cancel: &AtomicBool,
    ) -> Result<WrittenFile, RawError> {
        let file = self.next_file;
        let header = Record::Header(FileHeader {
            file,
            volume_uuid: self.label.volume_uuid.clone(),
            kind,
        });
        self.put(&encode_record(&header), "writing a tape file header")?;
        let bs = self.label.block_size as usize;
        let mut buf = vec![0u8; bs];
        let mut hasher = blake3::Hasher::new();
        let mut length = 0u64;
        let mut probe = [0u8; 1];
        let complete = loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(RawError::Cancelled);
            }
            if policy == OnEarlyWarning::Cut && self.early_warning && length > 0 {
                // Cut here, unless the source is used up anyway (the probed byte is
                // re-read by the caller from `offset + length`).
                break fill(src, &mut probe)? == 0;
            }
            let n = fill(src, &mut buf)?;
            if n == 0 {
                break true;
            }
            self.put(&buf[..n], "writing data")?;
            hasher.update(&buf[..n]);
            length += n as u64;
            progress.advance(n as u64);
            if n < bs {
                break true;
            }
        };
        let trailer = Record::Trailer(Trailer {
            data_length: length,
            blake3: *hasher.finalize().as_bytes(),
        });
        self.put(&encode_record(&trailer), "writing a tape file trailer")?;
        if self
            .drive
            .write_filemarks(1)
            .map_err(drive_err("writing a filemark"))?
            == WriteOutcome::EarlyWarning
        {
            self.early_warning = true;
        }
        self.next_file += 1;
        Ok(WrittenFile {
            file,
            length,
            complete,
            early_warning: self.early_warning,
        })
    }
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
fn fill(src: &mut dyn Read, buf: &mut [u8]) -> Result<usize, RawError> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RawError::Source(e)),
        }
    }
    Ok(n)
}

/// Reads a raw-format tape: its label, any tape file by number, every file's header.
pub struct RawReader<'d> {
    drive: &'d mut dyn TapeDrive,
    label: Label,
    buf: Vec<u8>,
    /// Where the tape is, when known: lets [`RawReader::seek_file`] space forward instead
    /// of rewinding.
    pos: Option<Pos>,
}

/// A known tape position: in tape file `file`, at its start or somewhere inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    file: u64,
    at_start: bool,
}

impl std::fmt::Debug for RawReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReader")
            .field("drive", &self.drive.name())
            .field("label", &self.label)
            .field("pos", &self.pos)
            .finish()
    }
}

impl<'d> RawReader<'d> {
    /// Rewinds and reads the label. [`RawError::NotRaw`] when the tape is not in the raw
    /// format.
    pub fn open(drive: &'d mut dyn TapeDrive) -> Result<RawReader<'d>, RawError> {
        drive.rewind().map_err(drive_err("rewinding"))?;
        let mut buf = read_buffer(MIN_BLOCK_SIZE);
        let label = match drive.read_record(&mut buf) {
            Ok(ReadOutcome::Record(n)) => match parse_record(&buf[..n])? {
                Record::Label(l) => l,
                other => {
                    return Err(RawError::Unexpected {
                        file: 0,
                        reason: format!("expected the label, found {}", record_name(&other)),
                    });
                }
            },
            Ok(ReadOutcome::Filemark) => {
                return Err(RawError::Unexpected {
                    file: 0,
                    reason: "a filemark where the label should be".into(),
                });
            }
            Ok(ReadOutcome::EndOfData) => {
                return Err(RawError::Unexpected {
                    file: 0,
                    reason: "the tape is blank".into(),
                });
            }
            Err(tape_scsi::Error::RecordTooLong { record_len, .. }) => {
                return Err(RawError::NotRaw { len: record_len });
            }
            Err(e) => return Err(drive_err("reading the label")(e)),
        };
        let buf = read_buffer(label.block_size);
        Ok(RawReader {
            drive,
            label,
            buf,
            pos: Some(Pos {
                file: 0,
                at_start: false,
            }),
        })
    }

    /// The volume's label.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// Goes to the start of tape file `file` and reads its header. `Ok(None)` when the
    /// tape ends there (end of data). Spaces forward from the current file when the target
    /// is ahead, else rewinds and spaces `file` filemarks: no READ POSITION or LOCATE.
    pub fn seek_file(&mut self, file: u64) -> Result<Option<FileHeader>, RawError> {
        if file == 0 {
            return Err(RawError::Unexpected {
                file,
                reason: "file 0 is the label".into(),
            });
        }
        self.go_to(file).map_err(|e| match e {
            RawError::Drive {
                source: tape_scsi::Error::PositionStoppedEarly { .. },
                ..
            } => RawError::Unexpected {
                file,
                reason: "the tape has fewer files".into(),
            },
            e => e,
        })?;
        self.read_header(file)
    }

    /// Positions at the start of tape file `file`.
    fn go_to(&mut self, file: u64) -> Result<(), RawError> {
        let ahead = match self.pos.take() {
            Some(p) if p.at_start && p.file <= file => Some(file - p.file),
            Some(p) if !p.at_start && p.file < file => Some(file - p.file),
            _ => None,
        };
        let n = match ahead {
            Some(n) => n,
            None => {
                self.drive.rewind().map_err(drive_err("rewinding"))?;
                file
            }
        };
        if n > 0 {
            let n = i64::try_from(n).map_err(|_| corrupt("file number too large"))?;
            self.drive
                .space(Space::Filemarks(n))
                .map_err(drive_err("spacing to the tape file"))?;
        }
        self.pos = Some(Pos {
            file,
            at_start: true,
        });
        Ok(())
    }

    /// Reads the header record at the start of tape file `file`.
    fn read_header(&mut self, file: u64) -> Result<Option<FileHeader>, RawError> {
        let read = self.drive.read_record(&mut self.buf);
        self.pos = match read {
            Ok(ReadOutcome::EndOfData) => Some(Pos {
                file,
                at_start: true,
            }),
            Ok(ReadOutcome::Record(_)) => Some(Pos {
                file,
                at_start: false,
            }),
            _ => None,
        };
        match read {
            Ok(ReadOutcome::Record(n)) => match parse_record(&self.buf[..n]) {
                Ok(Record::Header(h)) => {
                    if h.file != file {
                        return Err(RawError::Unexpected {
                            file,
                            reason: format!("its header says it is file {}", h.file),
                        });
                    }
                    if h.volume_uuid != self.label.volume_uuid {
                        return Err(RawError::Unexpected {
                            file,
                            reason: format!(
                                "its header names volume {}, the label {}",
                                h.volume_uuid, self.label.volume_uuid
                            ),
                        });
                    }
                    Ok(Some(h))
                }
                Ok(other) => Err(RawError::Unexpected {
                    file,
                    reason: format!("expected a header, found {}", record_name(&other)),
                }),
                Err(e) => Err(RawError::Unexpected {
                    file,
                    reason: format!("expected a header: {e}"),
                }),
            },
            Ok(ReadOutcome::Filemark) => Err(RawError::Unexpected {
                file,
                reason: "an empty tape file".into(),
            }),
            Ok(ReadOutcome::EndOfData) => Ok(None),
            Err(tape_scsi::Error::RecordTooLong { record_len, .. }) => Err(RawError::Unexpected {
                file,
                reason: format!("a {record_len}-byte record where a header should be"),
            }),
            Err(e) => Err(drive_err("reading a tape file header")(e)),
        }
    }

    /// Reads every tape file's header from the first file to the end of data (for
    /// recovering without a catalog). Data is spaced over, not read. A last file cut short
    /// (no filemark after it) is left out.
    pub fn files(&mut self) -> Result<Vec<FileHeader>, RawError> {
        let mut out = Vec::new();
        let mut file = 1;
        let mut next = self.seek_file(1)?;
        while let Some(h) = next {
            self.pos = None;
            if self.drive.space(Space::Filemarks(1)).is_err() {
                // A file without its filemark: an interrupted write at the end.
                break;
            }
            out.push(h);
            file += 1;
            self.pos = Some(Pos {
                file,
                at_start: true,
            });
            next = self.read_header(file)?;
        }
        Ok(out)
    }

    /// The number of the first tape file after the last complete one, walking from file
    /// `from` (which must exist or be the end). A trailing file without its filemark
    /// counts as absent: its number is returned, so writing there replaces it. Leaves
    /// the tape at the start of that file.
    fn find_end(&mut self, from: u64) -> Result<u64, RawError> {
        let mut file = from;
        let mut next = self.seek_file(file)?;
        while next.is_some() {
            self.pos = None;
            if let Err(e) = self.drive.space(Space::Filemarks(1)) {
                if file == from && from > 1 {
                    // The caller knows this file is complete: a real failure.
                    return Err(drive_err("spacing over a tape file")(e));
                }
                // Cut short: position at its start so the next write replaces it.
                self.seek_start(file)?;
                return Ok(file);
            }
            file += 1;
            self.pos = Some(Pos {
                file,
                at_start: true,
            });
            next = self.read_header(file)?;
        }
        // At end of data, at the start of `file`.
        self.seek_start(file)?;
        Ok(file)
    }

    /// Goes to the start of tape file `file` without reading.
    fn seek_start(&mut self, file: u64) -> Result<(), RawError> {
        self.pos = None;
        self.go_to(file)
    }

    /// A reader over the data of the tape file whose header was just read (by
    /// [`RawReader::seek_file`]); at its end it checks the trailer (length and BLAKE3)
    /// and fails with [`std::io::ErrorKind::InvalidData`] when they do not match or the
    /// file ends without one.
    pub fn data(&mut self) -> FileData<'_, 'd> {
        let file = self.pos.map_or(0, |p| p.file);
        FileData {
            reader: self,
            file,
            serving: Vec::new(),
            off: 0,
            pending: None,
            started: false,
            done: false,
            length: 0,
            hasher: blake3::Hasher::new(),
        }
    }
}

fn record_name(r: &Record) -> &'static str {
    match r {
        Record::Label(_) => "a label",
        Record::Header(_) => "a header",
        Record::Trailer(_) => "a trailer",
    }
}

/// The data of one tape file ([`RawReader::data`]).
pub struct FileData<'r, 'd> {
    reader: &'r mut RawReader<'d>,
    file: u64,
    serving: Vec<u8>,
    off: usize,
    /// A record read but not yet known to be data (it is the trailer if a filemark follows).
    pending: Option<Vec<u8>>,
    started: bool,
    done: bool,
    length: u64,
    hasher: blake3::Hasher,
}

impl std::fmt::Debug for FileData<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileData")
            .field("file", &self.file)
            .field("length", &self.length)
            .field("done", &self.done)
            .finish()
    }
}

impl FileData<'_, '_> {
    fn damaged(&self, reason: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            RawError::DamagedFile {
                file: self.file,
                reason,
            },
        )
    }

    /// Reads the next record: `Some(bytes)`, or `None` at a filemark.
    fn next_record(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        match self.reader.drive.read_record(&mut self.reader.buf) {
            Ok(ReadOutcome::Record(n)) => Ok(Some(self.reader.buf[..n].to_vec())),
            Ok(ReadOutcome::Filemark) => Ok(None),
            Ok(ReadOutcome::EndOfData) => Err(self.damaged(
                "it ends (end of data) without trailer and filemark: the write was interrupted"
                    .into(),
            )),
            Err(e) => Err(std::io::Error::other(RawError::Drive {
                operation: "reading a data record",
                source: e,
            })),
        }
    }

    fn finish(&mut self, trailer: &[u8]) -> std::io::Result<()> {
        let t = match parse_record(trailer) {
            Ok(Record::Trailer(t)) => t,
            Ok(other) => {
                return Err(self.damaged(format!(
                    "its last record is {}, not a trailer",
                    record_name(&other)
                )));
            }
            Err(e) => {
                return Err(self.damaged(format!("no valid trailer before the filemark: {e}")));
            }
        };
        if t.data_length != self.length {
            return Err(self.damaged(format!(
                "{} data bytes, the trailer says {}",
                self.length, t.data_length
            )));
        }
        if *self.hasher.finalize().as_bytes() != t.blake3 {
            return Err(self.damaged("data does not match the trailer's BLAKE3".into()));
        }
        self.done = true;
        Ok(())
    }
}

impl Read for FileData<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // Unknown while records move; known again on a clean return.
        self.reader.pos = None;
        let r = self.read_inner(out);
        if r.is_ok() {
            self.reader.pos = Some(if self.done {
                Pos {
                    file: self.file + 1,
                    at_start: true,
                }
            } else {
                Pos {
                    file: self.file,
                    at_start: false,
                }
            });
        }
        r
    }
}

impl FileData<'_, '_> {
    fn read_inner(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.off < self.serving.len() {
                let n = out.len().min(self.serving.len() - self.off);
                out[..n].copy_from_slice(&self.serving[self.off..self.off + n]);
                self.off += n;
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if !self.started {
                self.started = true;
                match self.next_record()? {
                    Some(r) => self.pending = Some(r),
                    None => {
                        return Err(self.damaged("it has no trailer".into()));
                    }
                }
            }
            let next = self.next_record()?;
            let Some(prev) = self.pending.take() else {
                return Err(self.damaged("internal: no pending record".into()));
            };
            match next {
                None => {
                    self.finish(&prev)?;
                    return Ok(0);
                }
                Some(r) => {
                    self.hasher.update(&prev);
                    self.length += prev.len() as u64;
                    self.serving = prev;
                    self.off = 0;
                    self.pending = Some(r);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `xxd`-style lines: offset, 16 bytes in hex, separated by spaces.
    fn hexdump(bytes: &[u8]) -> String {
        bytes
            .chunks(16)
            .enumerate()
            .map(|(i, c)| {
                let hex: Vec<String> = c.iter().map(|b| format!("{b:02x}")).collect();
                format!("{:04x}: {}\n", i * 16, hex.join(" "))
            })
            .collect()
    }

    /// The label example in docs/RAW-FORMAT.md is exactly what the code writes.
    #[test]
    fn documented_label_example_matches() {
        let label = Record::Label(Label {
            volume_uuid: "0d7e8c2a-5b1f-4c3e-9a6d-2f4b8e1c7a90".into(),
            barcode: "VT0001L5".into(),
            created_at: 1_763_769_600,
            writer: "tapebackup 0.1.0".into(),
            block_size: 262_144,
        });
        let bytes = encode_record(&label);
        let doc = include_str!("../../../../docs/RAW-FORMAT.md");
        let dump = hexdump(&bytes);
        assert!(doc.contains(&dump), "docs/RAW-FORMAT.md lacks:\n{dump}");
        assert_eq!(parse_record(&bytes).unwrap(), label);
    }

    #[test]
    fn records_round_trip_and_reject_damage() {
        let recs = [
            Record::Label(Label {
                volume_uuid: "u".into(),
                barcode: "B".into(),
                created_at: 5,
                writer: "w".into(),
                block_size: DEFAULT_BLOCK_SIZE,
            }),
            Record::Header(FileHeader {
                file: 3,
                volume_uuid: "u".into(),
                kind: FileKind::Pack {
                    pack_id: 7,
                    name: "p".into(),
                    pack_length: 10,
                    offset: 4,
                },
            }),
            Record::Trailer(Trailer {
                data_length: 9,
                blake3: [7; 32],
            }),
        ];
        for r in &recs {
            let b = encode_record(r);
            assert_eq!(&parse_record(&b).unwrap(), r);
            for i in 0..b.len() {
                let mut d = b.clone();
                d[i] ^= 0x40;
                assert!(parse_record(&d).is_err(), "flip at {i} accepted");
            }
            assert!(parse_record(&b[..b.len() - 1]).is_err());
        }
    }
}

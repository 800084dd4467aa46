//! One virtual cartridge: a directory in the reference LTFS file-backend layout.
//!
//! Layout (byte-exact, compatible with the reference LTFS `filedebug` backend):
//!
//! | file | content |
//! |---|---|
//! | `<p>_<b>_R` | data record `b` (decimal) of partition `p`: the record's bytes |
//! | `<p>_<b>_F` | filemark at block `b` (empty file) |
//! | `<p>_<b>_E` | end of data of partition `p` at block `b` (empty file) |
//! | `attr_<p>_<id>` | MAM attribute `id` (lowercase hex, no padding) of partition `p`: the 5-byte SCSI attribute header (id u16 BE, format u8, length u16 BE) then the value |
//! | `filedebug_tc_conf.xml` | capacity, cartridge type, density, write-protect tab ([`TcConf`]) |
//! | `tapebackup_vtl.json` | ours: exact capacity, end-of-medium reserve and partition sizes ([`CartridgeMeta`]); optional, inferred when absent |
//!
//! Blocks count records and filemarks per partition. A write at block `b` first creates
//! `<p>_<b>_E` (unless it exists), removes everything at or after `b`, writes the record,
//! then renames `<p>_<b>_E` to `<p>_<b+1>_E`, so a crash leaves at worst an end-of-data
//! marker too early: the lowest `E` block is the end of data and any file after it is stale.
//! Writes become durable when the drive flushes (at a filemark, `write_filemarks(0)`, and
//! before any repositioning), like a real drive's buffer: one `syncfs(2)` on the cartridge
//! directory makes every record file, marker rename and removal since the last flush
//! durable at once (one journal commit instead of one `fdatasync` per record file). The
//! directory descriptor is opened with the cartridge, so a writeback error of any record
//! written since is reported by the next flush (Linux 5.8 and later). Records of whole
//! 4 KiB blocks are written with `O_DIRECT` (from an aligned copy): tape data nobody reads
//! soon does not fill the page cache, and on a virtual machine that copy into fresh
//! page-cache pages costs more than the disk write itself.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tc_conf::{MIB, TcConf};
use crate::{Error, MamAttribute};

/// The name of the reference backend's configuration file.
pub const TC_CONF_FILE: &str = "filedebug_tc_conf.xml";
/// The name of our metadata file in a cartridge directory.
pub const META_FILE: &str = "tapebackup_vtl.json";

/// Partitions can only be created in multiples of this many bytes.
pub const PARTITION_GRANULARITY: u64 = 4096;

/// Our per-cartridge metadata (`tapebackup_vtl.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartridgeMeta {
    /// Capacity in bytes up to the early-warning point, all partitions together.
    pub capacity: u64,
    /// Bytes that may still be written per partition after its early-warning point.
    pub reserve: u64,
    /// Size of each partition up to its early-warning point; they sum to `capacity`.
    pub partitions: Vec<u64>,
}

impl CartridgeMeta {
    /// One partition of `capacity` bytes with the default reserve.
    pub fn single(capacity: u64, reserve: Option<u64>) -> CartridgeMeta {
        CartridgeMeta {
            capacity,
            reserve: reserve.unwrap_or_else(|| default_reserve(capacity)),
            partitions: vec![capacity],
        }
    }
}

/// The default end-of-medium reserve: 1/32 of the capacity, at least 64 KiB.
pub fn default_reserve(capacity: u64) -> u64 {
    (capacity / 32).max(64 * 1024)
}

/// One logical object on tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A data record of this many bytes.
    Record(u64),
    /// A filemark.
    Filemark,
}

#[derive(Debug, Default, Clone)]
struct PartitionIndex {
    objects: Vec<Object>,
    used: u64,
}

/// What [`Cartridge::read_record`] found at a record block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRead {
    /// This many bytes were copied into the buffer.
    Read(usize),
    /// The record (of this length) does not fit the buffer; nothing useful was copied.
    TooLong(usize),
}

/// What a directory scan found on one partition: per block the record length and
/// whether a filemark file exists, and the end-of-data marker blocks.
type ScannedPartition = (BTreeMap<u64, (Option<u64>, bool)>, Vec<u64>);

/// An open cartridge directory with its index of records and filemarks.
#[derive(Debug)]
pub struct Cartridge {
    dir: PathBuf,
    conf: TcConf,
    meta: CartridgeMeta,
    parts: Vec<PartitionIndex>,
    stale: Vec<PathBuf>,
    /// The cartridge directory, open since the cartridge was: `syncfs` on it at each flush.
    dir_fd: File,
    /// Something was written, renamed or removed since the last flush.
    dirty: bool,
    /// Record files are written with `O_DIRECT` (until the filesystem refuses it).
    direct: bool,
    /// The aligned copy of a record for an `O_DIRECT` write.
    bounce: Vec<u8>,
}

/// Alignment of buffer and length for an `O_DIRECT` write (a multiple of the logical block
/// size of every block device Linux filesystems sit on).
const DIRECT_ALIGN: usize = 4096;

/// The name of a block file.
fn block_name(partition: u8, block: u64, kind: char) -> String {
    format!("{partition}_{block}_{kind}")
}

/// The name of a MAM attribute file.
pub fn attr_name(partition: u8, id: u16) -> String {
    format!("attr_{partition}_{id:x}")
}

/// Parses a block file name `<p>_<b>_<K>`.
fn parse_block_name(name: &str) -> Option<(u8, u64, char)> {
    let mut it = name.splitn(3, '_');
    let p = it.next()?;
    let b = it.next()?;
    let k = it.next()?;
    if p.is_empty()
        || b.is_empty()
        || !p.bytes().all(|c| c.is_ascii_digit())
        || !b.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let kind = match k {
        "R" => 'R',
        "F" => 'F',
        "E" => 'E',
        _ => return None,
    };
    Some((p.parse().ok()?, b.parse().ok()?, kind))
}

/// Decodes the contents of an `attr_<p>_<id>` file: one attribute in READ ATTRIBUTE format.
///
/// This is a parser of untrusted bytes (fuzz target `vtl_cartridge_files`).
pub fn decode_attribute_file(bytes: &[u8]) -> Result<MamAttribute, String> {
    if bytes.len() < 5 {
        return Err(format!(
            "attribute file of {} bytes is shorter than its 5-byte header",
            bytes.len()
        ));
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let format = bytes[2] & 0x03;
    let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
    let value = &bytes[5..];
    if value.len() != len {
        return Err(format!(
            "attribute {id:#06x} header says {len} value bytes, file has {}",
            value.len()
        ));
    }
    Ok(MamAttribute {
        id,
        format,
        value: value.to_vec(),
    })
}

/// Encodes one attribute as an `attr_<p>_<id>` file holds it.
pub fn encode_attribute_file(attribute: &MamAttribute) -> Result<Vec<u8>, String> {
    let len = u16::try_from(attribute.value.len()).map_err(|_| {
        format!(
            "attribute value of {} bytes is longer than 65535",
            attribute.value.len()
        )
    })?;
    if attribute.format > 3 {
        return Err(format!(
            "attribute format {} is not 0..=3",
            attribute.format
        ));
    }
    let mut out = Vec::with_capacity(5 + attribute.value.len());
    out.extend_from_slice(&attribute.id.to_be_bytes());
    out.push(attribute.format);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&attribute.value);
    Ok(out)
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::CartridgeCorrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

impl Cartridge {
    /// Creates a blank cartridge (one partition, empty) in `dir`, which must not exist or
    /// be empty.
    pub fn create(dir: &Path, meta: CartridgeMeta) -> Result<Cartridge, Error> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
        if entries.next().is_some() {
            return Err(Error::InvalidRequest {
                device: dir.display().to_string(),
                what: "cartridge directory is not empty".to_owned(),
            });
        }
        let conf = TcConf {
            capacity_mb: meta.capacity.div_ceil(MIB),
            ..TcConf::default()
        };
        let conf_path = dir.join(TC_CONF_FILE);
        let xml = conf.to_xml().map_err(|e| corrupt(&conf_path, e))?;
        write_atomic(&conf_path, xml.as_bytes())?;
        let mut cart = Cartridge {
            dir: dir.to_path_buf(),
            conf,
            meta: meta.clone(),
            parts: Vec::new(),
            stale: Vec::new(),
            dir_fd: File::open(dir).map_err(|e| io_err(dir, e))?,
            dirty: false,
            direct: true,
            bounce: Vec::new(),
        };
        cart.format(meta.partitions)?;
        Ok(cart)
    }

    /// Opens an existing cartridge directory and indexes its records.
    pub fn open(dir: &Path) -> Result<Cartridge, Error> {
        let conf_path = dir.join(TC_CONF_FILE);
        let conf = match fs::read(&conf_path) {
            Ok(bytes) => TcConf::from_bytes(&bytes).map_err(|e| corrupt(&conf_path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(corrupt(
                    dir,
                    format!("no {TC_CONF_FILE}: not a cartridge directory"),
                ));
            }
            Err(e) => return Err(io_err(&conf_path, e)),
        };
        // Scan: per partition, the blocks present of each kind.
        let mut found: BTreeMap<u8, ScannedPartition> = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let name = entry.file_name();
            let Some((p, b, kind)) = name.to_str().and_then(parse_block_name) else {
                continue;
            };
            let (blocks, eods) = found.entry(p).or_default();
            match kind {
                'E' => eods.push(b),
                'R' => {
                    let len = entry
                        .metadata()
                        .map_err(|e| io_err(&entry.path(), e))?
                        .len();
                    blocks.entry(b).or_default().0 = Some(len);
                }
                _ => blocks.entry(b).or_default().1 = true,
            }
        }
        let meta_path = dir.join(META_FILE);
        let highest = found.keys().next_back().copied().unwrap_or(0);
        let meta = match fs::read(&meta_path) {
            Ok(bytes) => {
                let meta: CartridgeMeta = serde_json::from_slice(&bytes)
                    .map_err(|e| corrupt(&meta_path, e.to_string()))?;
                if meta.partitions.is_empty()
                    || meta.partitions.len() > 2
                    || meta.partitions.iter().sum::<u64>() != meta.capacity
                {
                    return Err(corrupt(
                        &meta_path,
                        "partition sizes must be 1 or 2 and sum to the capacity".to_owned(),
                    ));
                }
                meta
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let capacity = conf.capacity_bytes();
                let partitions = if highest >= 1 {
                    // The reference backend always has two partitions; give the index
                    // partition 1/20 of the capacity (LTFS-like proportions).
                    let p0 = (capacity / 20)
                        .next_multiple_of(PARTITION_GRANULARITY)
                        .min(capacity);
                    vec![p0, capacity - p0]
                } else {
                    vec![capacity]
                };
                CartridgeMeta {
                    capacity,
                    reserve: default_reserve(capacity),
                    partitions,
                }
            }
            Err(e) => return Err(io_err(&meta_path, e)),
        };
        if usize::from(highest) >= meta.partitions.len() && !found.is_empty() {
            return Err(corrupt(
                dir,
                format!(
                    "records on partition {highest}, but the cartridge has {} partition(s)",
                    meta.partitions.len()
                ),
            ));
        }
        let mut parts = vec![PartitionIndex::default(); meta.partitions.len()];
        let mut stale = Vec::new();
        for (p, (blocks, eods)) in found {
            let eod = match eods.iter().min() {
                Some(&e) => e,
                None => {
                    // No end-of-data marker: the data runs to the first gap.
                    let mut n = 0;
                    while blocks.contains_key(&n) {
                        n += 1;
                    }
                    n
                }
            };
            let index = &mut parts[usize::from(p)];
            for b in 0..eod {
                match blocks.get(&b) {
                    Some((Some(len), false)) => {
                        index.objects.push(Object::Record(*len));
                        index.used += len;
                    }
                    Some((None, true)) => index.objects.push(Object::Filemark),
                    Some((Some(_), true)) => {
                        return Err(corrupt(
                            dir,
                            format!("block {b} of partition {p} is both a record and a filemark"),
                        ));
                    }
                    _ => {
                        return Err(corrupt(
                            dir,
                            format!(
                                "block {b} of partition {p} is missing before end of data {eod}"
                            ),
                        ));
                    }
                }
            }
            for (&b, (rec, fm)) in blocks.range(eod..) {
                if rec.is_some() {
                    stale.push(dir.join(block_name(p, b, 'R')));
                }
                if *fm {
                    stale.push(dir.join(block_name(p, b, 'F')));
                }
            }
            for &e in &eods {
                if e != eod {
                    stale.push(dir.join(block_name(p, e, 'E')));
                }
            }
        }
        Ok(Cartridge {
            dir: dir.to_path_buf(),
            conf,
            meta,
            parts,
            stale,
            dir_fd: File::open(dir).map_err(|e| io_err(dir, e))?,
            dirty: false,
            direct: true,
            bounce: Vec::new(),
        })
    }

    /// The cartridge directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The reference backend configuration.
    pub fn conf(&self) -> &TcConf {
        &self.conf
    }

    /// Our metadata.
    pub fn meta(&self) -> &CartridgeMeta {
        &self.meta
    }

    /// Sets the write-protect tab (`emulate_readonly`).
    pub fn set_readonly(&mut self, readonly: bool) -> Result<(), Error> {
        let mut conf = self.conf.clone();
        conf.emulate_readonly = readonly;
        let path = self.dir.join(TC_CONF_FILE);
        let xml = conf.to_xml().map_err(|e| corrupt(&path, e))?;
        write_atomic(&path, xml.as_bytes())?;
        self.conf = conf;
        Ok(())
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> u8 {
        u8::try_from(self.parts.len()).unwrap_or(u8::MAX)
    }

    /// End-of-data block of a partition.
    pub fn eod(&self, partition: u8) -> u64 {
        self.parts
            .get(usize::from(partition))
            .map_or(0, |p| p.objects.len() as u64)
    }

    /// The object at a block, `None` at or after end of data.
    pub fn object(&self, partition: u8, block: u64) -> Option<Object> {
        let index = self.parts.get(usize::from(partition))?;
        usize::try_from(block)
            .ok()
            .and_then(|b| index.objects.get(b))
            .copied()
    }

    /// Record bytes stored on a partition.
    pub fn used(&self, partition: u8) -> u64 {
        self.parts.get(usize::from(partition)).map_or(0, |p| p.used)
    }

    /// Reads record `block` of `partition` into `buf`.
    pub fn read_record(
        &self,
        partition: u8,
        block: u64,
        buf: &mut [u8],
    ) -> Result<RecordRead, Error> {
        let path = self.dir.join(block_name(partition, block, 'R'));
        let mut f = File::open(&path).map_err(|e| io_err(&path, e))?;
        let len = f.metadata().map_err(|e| io_err(&path, e))?.len();
        let len = usize::try_from(len)
            .map_err(|_| corrupt(&path, "record larger than memory".to_owned()))?;
        if len > buf.len() {
            return Ok(RecordRead::TooLong(len));
        }
        f.read_exact(&mut buf[..len])
            .map_err(|e| io_err(&path, e))?;
        Ok(RecordRead::Read(len))
    }

    fn remove(&mut self, path: &Path) -> Result<(), Error> {
        match fs::remove_file(path) {
            Ok(()) => {
                self.dirty = true;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(path, e)),
        }
    }

    fn touch(&mut self, path: &Path) -> Result<(), Error> {
        File::create(path).map_err(|e| io_err(path, e))?;
        self.dirty = true;
        Ok(())
    }

    fn remove_stale(&mut self) -> Result<(), Error> {
        for path in std::mem::take(&mut self.stale) {
            self.remove(&path)?;
        }
        Ok(())
    }

    /// Writes a record (`Some(data)`) or a filemark (`None`) at `block`, which must be at or
    /// before end of data; everything from `block` on is discarded first.
    pub fn write(&mut self, partition: u8, block: u64, data: Option<&[u8]>) -> Result<(), Error> {
        let p = usize::from(partition);
        let eod = self.eod(partition);
        if p >= self.parts.len() || block > eod {
            return Err(Error::InvalidRequest {
                device: self.dir.display().to_string(),
                what: format!(
                    "write at partition {partition} block {block} beyond end of data {eod}"
                ),
            });
        }
        self.remove_stale()?;
        let eod_here = self.dir.join(block_name(partition, block, 'E'));
        if block < eod {
            // Truncate: the new end-of-data marker first, then the old objects.
            self.touch(&eod_here)?;
            for b in block..eod {
                self.remove(&self.dir.join(block_name(partition, b, 'R')))?;
                self.remove(&self.dir.join(block_name(partition, b, 'F')))?;
            }
            self.remove(&self.dir.join(block_name(partition, eod, 'E')))?;
            let index = &mut self.parts[p];
            let cut = usize::try_from(block).unwrap_or(usize::MAX);
            for o in index.objects.drain(cut..) {
                if let Object::Record(n) = o {
                    index.used -= n;
                }
            }
        } else if !eod_here.exists() {
            self.touch(&eod_here)?;
        }
        let object = match data {
            Some(bytes) => {
                let path = self.dir.join(block_name(partition, block, 'R'));
                self.write_record(&path, bytes)?;
                Object::Record(bytes.len() as u64)
            }
            None => {
                self.touch(&self.dir.join(block_name(partition, block, 'F')))?;
                Object::Filemark
            }
        };
        // Move the end-of-data marker past the new object in one step: a rename, so one
        // marker exists at every moment (at `block` until the rename, then at `block + 1`).
        let eod_next = self.dir.join(block_name(partition, block + 1, 'E'));
        fs::rename(&eod_here, &eod_next).map_err(|e| io_err(&eod_next, e))?;
        self.dirty = true;
        let index = &mut self.parts[p];
        index.objects.push(object);
        if let Object::Record(n) = object {
            index.used += n;
        }
        Ok(())
    }

    /// Writes one record file. Records of whole 4 KiB blocks (all but the last of a tape
    /// file, with the usual block sizes) go with `O_DIRECT` from an aligned copy: straight
    /// from memory to the disk, without filling the page cache with tape data nobody reads
    /// soon (on a virtual machine, copying into fresh page-cache pages costs more than the
    /// disk write). Durability is the same either way: the next [`Cartridge::flush`]. A
    /// filesystem that refuses `O_DIRECT` (EINVAL) gets buffered writes from then on.
    fn write_record(&mut self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        if self.direct && !bytes.is_empty() && bytes.len().is_multiple_of(DIRECT_ALIGN) {
            match self.write_direct(path, bytes) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => self.direct = false,
                Err(e) => return Err(io_err(path, e)),
            }
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        f.write_all(bytes).map_err(|e| io_err(path, e))
    }

    /// The `O_DIRECT` write of [`Cartridge::write_record`]; `Ok(false)` when no aligned
    /// buffer could be had (then the caller writes buffered).
    fn write_direct(&mut self, path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
        use std::os::unix::fs::OpenOptionsExt;
        let buf: &[u8] = if bytes.as_ptr().align_offset(DIRECT_ALIGN) == 0 {
            // Already aligned (the LTFS writer's record buffer is): no copy.
            bytes
        } else {
            let need = bytes.len() + DIRECT_ALIGN;
            if self.bounce.len() < need {
                self.bounce = vec![0u8; need];
            }
            let off = self.bounce.as_ptr().align_offset(DIRECT_ALIGN);
            let Some(buf) = off
                .checked_add(bytes.len())
                .and_then(|end| self.bounce.get_mut(off..end))
            else {
                return Ok(false);
            };
            buf.copy_from_slice(bytes);
            buf
        };
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
            .open(path)?;
        f.write_all(buf)?;
        Ok(true)
    }

    /// Makes every write so far durable: record files, markers and the directory, with one
    /// `syncfs(2)` of the cartridge's filesystem.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.dirty {
            nix::unistd::syncfs(&self.dir_fd)
                .map_err(|e| io_err(&self.dir, std::io::Error::from(e)))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Destroys all records and lays out the given partitions (sizes to early warning).
    ///
    /// Cut short at any point (a killed process), the cartridge opens as blank or as a
    /// consistent mix of old and new layout, never with holes: first every existing
    /// partition gets its end-of-data marker at block 0 (everything after it is stale),
    /// then the other block files go, including the partitions the new layout drops, and
    /// only then is the new layout written (a partition without files is empty).
    pub fn format(&mut self, partitions: Vec<u64>) -> Result<(), Error> {
        self.flush()?;
        self.remove_stale()?;
        for p in 0..self.parts.len() {
            let p = u8::try_from(p).unwrap_or(u8::MAX);
            let marker = self.dir.join(block_name(p, 0, 'E'));
            if !marker.exists() {
                self.touch(&marker)?;
            }
        }
        let keep = partitions.len();
        for entry in fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, e))? {
            let entry = entry.map_err(|e| io_err(&self.dir, e))?;
            let Some((p, b, kind)) = entry.file_name().to_str().and_then(parse_block_name) else {
                continue;
            };
            if !(b == 0 && kind == 'E' && usize::from(p) < keep) {
                self.remove(&entry.path())?;
            }
        }
        let capacity = partitions.iter().sum();
        let meta = CartridgeMeta {
            capacity,
            reserve: self.meta.reserve,
            partitions,
        };
        let meta_path = self.dir.join(META_FILE);
        let json =
            serde_json::to_vec_pretty(&meta).map_err(|e| corrupt(&meta_path, e.to_string()))?;
        write_atomic(&meta_path, &json)?;
        self.parts = vec![PartitionIndex::default(); meta.partitions.len()];
        for p in 0..meta.partitions.len() {
            let p = u8::try_from(p).unwrap_or(u8::MAX);
            let marker = self.dir.join(block_name(p, 0, 'E'));
            if !marker.exists() {
                self.touch(&marker)?;
            }
        }
        self.meta = meta;
        self.flush()
    }

    /// Reads MAM attribute `id` of `partition`.
    pub fn read_attribute(&self, partition: u8, id: u16) -> Result<Option<MamAttribute>, Error> {
        let path = self.dir.join(attr_name(partition, id));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, e)),
        };
        let attr = decode_attribute_file(&bytes).map_err(|e| corrupt(&path, e))?;
        if attr.id != id {
            return Err(corrupt(
                &path,
                format!("file holds attribute {:#06x}", attr.id),
            ));
        }
        Ok(Some(attr))
    }

    /// Writes a MAM attribute of `partition` (durable when this returns).
    pub fn write_attribute(
        &mut self,
        partition: u8,
        attribute: &MamAttribute,
    ) -> Result<(), Error> {
        let path = self.dir.join(attr_name(partition, attribute.id));
        let bytes = encode_attribute_file(attribute).map_err(|e| Error::InvalidRequest {
            device: self.dir.display().to_string(),
            what: e,
        })?;
        write_atomic(&path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of whole 4 KiB blocks go with `O_DIRECT`, others buffered (and a filesystem
    /// without `O_DIRECT`, such as an older tmpfs, falls back): every one reads back exact,
    /// also after the cartridge is opened again.
    #[test]
    fn direct_and_buffered_records_read_back_exact() {
        let tmp = tempfile::tempdir().unwrap();
        let shm = std::path::Path::new("/dev/shm");
        let shm_tmp = shm
            .is_dir()
            .then(|| tempfile::tempdir_in(shm).ok())
            .flatten();
        let mut roots = vec![tmp.path().to_path_buf()];
        roots.extend(shm_tmp.as_ref().map(|t| t.path().to_path_buf()));
        let sizes = [512usize << 10, 4096, 4097, 1, 100_000, 1 << 20];
        for root in roots {
            let dir = root.join("c");
            let mut c = Cartridge::create(&dir, CartridgeMeta::single(64 << 20, None)).unwrap();
            let records: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (0..n).map(|j| (j * 7 + i * 13) as u8).collect())
                .collect();
            for (b, r) in records.iter().enumerate() {
                c.write(0, b as u64, Some(r)).unwrap();
            }
            // A record already 4 KiB aligned in memory (as the LTFS writer's are) goes
            // without the bounce copy.
            let mut raw = vec![0u8; (256 << 10) + DIRECT_ALIGN];
            let off = raw.as_ptr().align_offset(DIRECT_ALIGN);
            assert!(off < DIRECT_ALIGN);
            let aligned = &mut raw[off..off + (256 << 10)];
            aligned
                .iter_mut()
                .enumerate()
                .for_each(|(j, x)| *x = (j % 253) as u8);
            c.write(0, records.len() as u64, Some(aligned)).unwrap();
            let records: Vec<Vec<u8>> = records
                .into_iter()
                .chain(std::iter::once(aligned.to_vec()))
                .collect();
            c.flush().unwrap();
            for c in [c, Cartridge::open(&dir).unwrap()] {
                let mut buf = vec![0u8; 2 << 20];
                for (b, r) in records.iter().enumerate() {
                    match c.read_record(0, b as u64, &mut buf).unwrap() {
                        RecordRead::Read(n) => assert!(n == r.len() && buf[..n] == r[..]),
                        other => panic!("record {b}: {other:?}"),
                    }
                }
            }
        }
    }

    /// The states a format cut short by a kill can leave (see [`Cartridge::format`]):
    /// each opens, as blank partitions or the new layout, never as corrupt.
    #[test]
    fn a_format_cut_short_leaves_an_openable_cartridge() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let two = CartridgeMeta {
            capacity: 8 << 20,
            reserve: 1 << 20,
            partitions: vec![1 << 20, 7 << 20],
        };
        let mut c = Cartridge::create(&dir, two).unwrap();
        for p in 0..2u8 {
            for b in 0..3 {
                c.write(p, b, Some(&[p; 100])).unwrap();
            }
        }
        c.flush().unwrap();
        // Step 1 done: block-0 markers on both partitions, old records still there.
        std::fs::File::create(dir.join("0_0_E")).unwrap();
        std::fs::File::create(dir.join("1_0_E")).unwrap();
        let c = Cartridge::open(&dir).unwrap();
        assert_eq!((c.eod(0), c.eod(1)), (0, 0));
        // Step 2 cut short on the way to one partition: partition 1 gone, old layout.
        for b in 0..3 {
            let _ = std::fs::remove_file(dir.join(block_name(0, b, 'R')));
        }
        for name in ["1_0_R", "1_1_R", "1_2_R", "1_3_E", "1_0_E", "0_3_E"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        let c = Cartridge::open(&dir).unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!((c.eod(0), c.eod(1)), (0, 0));
        // The whole format, down to one partition and back to two.
        let mut c = c;
        c.format(vec![8 << 20]).unwrap();
        assert_eq!(Cartridge::open(&dir).unwrap().parts.len(), 1);
        c.write(0, 0, Some(b"x")).unwrap();
        c.format(vec![1 << 20, 7 << 20]).unwrap();
        let c = Cartridge::open(&dir).unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!((c.eod(0), c.eod(1)), (0, 0));
    }

    #[test]
    fn block_names() {
        assert_eq!(parse_block_name("0_12_R"), Some((0, 12, 'R')));
        assert_eq!(parse_block_name("1_0_E"), Some((1, 0, 'E')));
        assert_eq!(parse_block_name("1_0_X"), None);
        assert_eq!(parse_block_name("attr_0_80c"), None);
        assert_eq!(parse_block_name("_1_R"), None);
        assert_eq!(parse_block_name("1_+1_R"), None);
        assert_eq!(parse_block_name("300_1_R"), None);
        assert_eq!(attr_name(0, 0x80c), "attr_0_80c");
        assert_eq!(attr_name(1, 9), "attr_1_9");
    }

    #[test]
    fn attribute_files() {
        let a = decode_attribute_file(&[0x08, 0x0c, 0x00, 0x00, 0x02, 0xab, 0xcd]).unwrap();
        assert_eq!(
            a,
            MamAttribute {
                id: 0x080c,
                format: 0,
                value: vec![0xab, 0xcd]
            }
        );
        assert_eq!(
            encode_attribute_file(&a).unwrap(),
            vec![0x08, 0x0c, 0x00, 0x00, 0x02, 0xab, 0xcd]
        );
        assert!(decode_attribute_file(&[0x08, 0x0c, 0x00, 0x00, 0x03, 0xab]).is_err());
        assert!(decode_attribute_file(&[0x08]).is_err());
    }

    #[test]
    fn write_truncate_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = Cartridge::create(&path, CartridgeMeta::single(1 << 20, None)).unwrap();
        c.write(0, 0, Some(b"abc")).unwrap();
        c.write(0, 1, None).unwrap();
        c.write(0, 2, Some(b"defg")).unwrap();
        c.write(0, 1, Some(b"x")).unwrap();
        c.flush().unwrap();
        let names: Vec<_> = {
            let mut v: Vec<_> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names,
            [
                "0_0_R",
                "0_1_R",
                "0_2_E",
                "filedebug_tc_conf.xml",
                "tapebackup_vtl.json"
            ]
        );
        let c = Cartridge::open(&path).unwrap();
        assert_eq!(c.eod(0), 2);
        assert_eq!(c.used(0), 4);
        assert_eq!(c.object(0, 1), Some(Object::Record(1)));
    }

    #[test]
    fn crash_leftovers_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = Cartridge::create(&path, CartridgeMeta::single(1 << 20, None)).unwrap();
        c.write(0, 0, Some(b"abc")).unwrap();
        c.flush().unwrap();
        // A crash between writing record 1 and moving the end-of-data marker.
        fs::write(path.join("0_1_R"), b"half").unwrap();
        fs::write(path.join("0_2_E"), b"").unwrap();
        let mut c = Cartridge::open(&path).unwrap();
        assert_eq!(c.eod(0), 1);
        c.write(0, 1, None).unwrap();
        assert!(!path.join("0_1_R").exists());
        assert!(!path.join("0_2_E").exists() || c.eod(0) == 2);
        let c = Cartridge::open(&path).unwrap();
        assert_eq!(c.eod(0), 2);
        assert_eq!(c.object(0, 1), Some(Object::Filemark));
    }
}

//! [`StDrive`]: a [`TapeDrive`] on the Linux st driver (`/dev/nstN`), with SG_IO on the
//! drive's `/dev/sgN` for what st cannot do (INQUIRY, LOG SENSE, READ/WRITE ATTRIBUTE,
//! READ POSITION long form, partition count).

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::log::{self, TapeAlert, TapeCapacity, VolumeStatistics};
use crate::mam::{self, MamEntry};
use crate::scsi::inquiry::{Inquiry, decode_inquiry, decode_vpd_serial, inquiry_cdb};
use crate::scsi::position::{LongPosition, decode_read_position_long, read_position_long_cdb};
use crate::scsi::smc::{mode_page, mode_sense10_cdb};
use crate::scsi::{
    Ctx, attribute_service, execute, log_sense_cdb, read_attribute_cdb, timeouts,
    write_attribute_cdb,
};
use crate::sgio::SgDevice;
use crate::sys::{self, gmt, mt};
use crate::transport::DataDirection;
use crate::{
    Capacity, DriveStatus, Error, MamAttribute, Position, ReadOutcome, Space, TapeDrive,
    WriteOutcome,
};

/// Which nodes make up one drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StOptions {
    /// The non-rewinding st node, e.g. `/dev/nst0`.
    pub tape: PathBuf,
    /// The drive's SCSI generic node, e.g. `/dev/sg1` (from [`crate::discover`]). Without
    /// it, log pages, MAM and partition queries return [`Error::Unsupported`].
    pub sg: Option<PathBuf>,
}

/// A tape drive through the st driver.
///
/// Variable block mode is set on open (when a cartridge is in) and on load. End of medium follows st exactly: the write that
/// crosses the early warning returns its byte count ([`WriteOutcome::Written`]); st then
/// alternates ENOSPC (nothing written) with one allowed write, which this type turns into
/// one retried write reported as [`WriteOutcome::EarlyWarning`]; when the allowed write
/// fails too, the tape is full ([`Error::EndOfMedium`]).
///
/// A drive that cannot report its position (st's `MTIOCPOS` fails on a ready drive, as on
/// tgt, whose READ POSITION always says "unknown") is remembered as such until the next
/// load: [`TapeDrive::position`] and [`TapeDrive::locate`] then answer
/// [`Error::Unsupported`] at once; rewind and SPACE still work.
#[derive(Debug)]
pub struct StDrive {
    file: File,
    path: PathBuf,
    sg: Option<SgDevice>,
    partitions_enabled: bool,
    /// READ BLOCK LIMITS (max, min), read once through the sg node.
    block_limits: Option<Option<BlockLimits>>,
    /// Whether the drive reports its position (READ POSITION through st's `MTIOCPOS`):
    /// `None` until first asked, then remembered until the next load or unload. A drive
    /// that cannot say where it is cannot be trusted to LOCATE either, so
    /// [`TapeDrive::locate`] answers [`Error::Unsupported`] too.
    positioning: Option<bool>,
}

/// READ BLOCK LIMITS: the record lengths the drive accepts in variable block mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLimits {
    /// MAXIMUM BLOCK LENGTH LIMIT (0: not specified).
    pub max: u32,
    /// MINIMUM BLOCK LENGTH LIMIT.
    pub min: u16,
}

/// READ BLOCK LIMITS CDB (SSC).
pub fn read_block_limits_cdb() -> [u8; 6] {
    [0x05, 0, 0, 0, 0, 0]
}

/// Decodes the 6-byte READ BLOCK LIMITS reply: byte 0 granularity, bytes 1-3 maximum,
/// bytes 4-5 minimum block length.
pub fn decode_block_limits(b: &[u8]) -> Result<BlockLimits, crate::DecodeError> {
    if b.len() < 6 {
        return Err(crate::DecodeError::truncated(
            "READ BLOCK LIMITS",
            0,
            6,
            b.len(),
        ));
    }
    Ok(BlockLimits {
        max: u32::from_be_bytes([0, b[1], b[2], b[3]]),
        min: u16::from_be_bytes([b[4], b[5]]),
    })
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

impl StDrive {
    /// Opens the st node (and the sg node, when given) without waiting for a cartridge.
    pub fn open(options: &StOptions) -> Result<StDrive, Error> {
        let path = options.tape.clone();
        let open = |write: bool| {
            OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&path)
        };
        let file = match open(true) {
            Ok(f) => f,
            // A write-protected cartridge refuses a read-write open.
            Err(e) if matches!(errno_of(&e), Errno::EROFS | Errno::EACCES) => {
                open(false).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        let sg = options.sg.as_ref().map(SgDevice::open).transpose()?;
        let drive = StDrive {
            file,
            path,
            sg,
            partitions_enabled: false,
            block_limits: None,
            positioning: None,
        };
        // Variable block mode whenever a cartridge is in; an empty drive gets it on load.
        if drive.gstat()? & gmt::ONLINE != 0 {
            drive.op(mt::SETBLK, 0)?;
        }
        Ok(drive)
    }

    /// The st node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn name_str(&self) -> String {
        self.path.display().to_string()
    }

    fn errno(&self, e: Errno) -> Error {
        match e {
            Errno::ENOMEDIUM => Error::NotReady {
                device: self.name_str(),
            },
            Errno::EROFS | Errno::EACCES => Error::WriteProtected {
                device: self.name_str(),
            },
            other => Error::Io {
                path: self.path.clone(),
                source: std::io::Error::from(other),
            },
        }
    }

    fn op(&self, op: i16, count: i32) -> Result<(), Error> {
        sys::mtioctop(self.file.as_fd(), op, count).map_err(|e| self.errno(e))
    }

    fn get(&self) -> Result<sys::MtGet, Error> {
        sys::mtiocget(self.file.as_fd()).map_err(|e| self.errno(e))
    }

    fn gstat(&self) -> Result<u32, Error> {
        // mt_gstat is a C long holding 32 flag bits.
        Ok(self.get()?.mt_gstat as u32)
    }

    fn sg(&mut self, what: &'static str) -> Result<&mut SgDevice, Error> {
        let device = self.name_str();
        self.sg.as_mut().ok_or(Error::Unsupported { device, what })
    }

    fn enable_partitions(&mut self) -> Result<(), Error> {
        if !self.partitions_enabled {
            self.op(
                mt::SETDRVBUFFER,
                sys::MT_ST_SETBOOLEANS | sys::MT_ST_CAN_PARTITIONS,
            )?;
            self.partitions_enabled = true;
        }
        Ok(())
    }

    /// Standard INQUIRY data of the drive (needs the sg node).
    pub fn inquiry(&mut self) -> Result<Inquiry, Error> {
        let sg = self.sg("INQUIRY")?;
        let mut buf = [0u8; 96];
        let n = execute(
            sg,
            "INQUIRY",
            &inquiry_cdb(None, 96),
            DataDirection::FromDevice(&mut buf),
            timeouts::SHORT,
            Ctx::default(),
        )?;
        decode_inquiry(&buf[..n.min(buf.len())]).map_err(|source| Error::Decode {
            device: sg_name(sg),
            command: "INQUIRY",
            source,
        })
    }

    /// The drive's serial number (VPD 80h; needs the sg node).
    pub fn serial(&mut self) -> Result<String, Error> {
        let sg = self.sg("INQUIRY VPD 80h")?;
        let mut buf = [0u8; 255];
        let n = execute(
            sg,
            "INQUIRY",
            &inquiry_cdb(Some(0x80), 255),
            DataDirection::FromDevice(&mut buf),
            timeouts::SHORT,
            Ctx::default(),
        )?;
        decode_vpd_serial(&buf[..n.min(buf.len())]).map_err(|source| Error::Decode {
            device: sg_name(sg),
            command: "INQUIRY",
            source,
        })
    }

    /// Reads one log page (current cumulative values). Pages the drive does not have
    /// give [`Error::Unsupported`].
    pub fn log_page(&mut self, page: u8) -> Result<Vec<u8>, Error> {
        let sg = self.sg("LOG SENSE")?;
        let mut buf = vec![0u8; 0x2000];
        let result = execute(
            sg,
            "LOG SENSE",
            &log_sense_cdb(page, 0, 0x2000),
            DataDirection::FromDevice(&mut buf),
            timeouts::SHORT,
            Ctx::default(),
        );
        match result {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(Error::IllegalRequest { asc: 0x24, .. }) => Err(Error::Unsupported {
                device: sg_name(sg),
                what: "this log page",
            }),
            Err(e) => Err(e),
        }
    }

    /// Volume statistics (log page 17h).
    pub fn volume_statistics(&mut self) -> Result<VolumeStatistics, Error> {
        let b = self.log_page(log::page::VOLUME_STATISTICS)?;
        log::decode_volume_statistics(&b).map_err(|source| self.decode("LOG SENSE", source))
    }

    /// Remaining and maximum capacity of both partitions (log page 31h).
    pub fn tape_capacity(&mut self) -> Result<TapeCapacity, Error> {
        let b = self.log_page(log::page::TAPE_CAPACITY)?;
        log::decode_tape_capacity(&b).map_err(|source| self.decode("LOG SENSE", source))
    }

    /// READ POSITION, long form (needs the sg node). Position fields are `None` when the
    /// drive does not know them.
    pub fn read_position_long(&mut self) -> Result<LongPosition, Error> {
        let sg = self.sg("READ POSITION long form")?;
        let mut buf = [0u8; 32];
        let n = execute(
            sg,
            "READ POSITION",
            &read_position_long_cdb(),
            DataDirection::FromDevice(&mut buf),
            timeouts::MEDIUM,
            Ctx::default(),
        )?;
        decode_read_position_long(&buf[..n.min(32)]).map_err(|source| Error::Decode {
            device: sg_name(sg),
            command: "READ POSITION",
            source,
        })
    }

    /// All MAM attributes of `partition` in one READ ATTRIBUTE.
    pub fn read_attributes(&mut self, partition: u8) -> Result<Vec<MamEntry>, Error> {
        let sg = self.sg("READ ATTRIBUTE")?;
        let mut buf = vec![0u8; 0x1_0000];
        let cdb = read_attribute_cdb(attribute_service::VALUES, partition, 0, buf.len() as u32);
        let n = execute(
            sg,
            "READ ATTRIBUTE",
            &cdb,
            DataDirection::FromDevice(&mut buf),
            timeouts::MEDIUM,
            Ctx::default(),
        )?;
        mam::decode_attributes(&buf[..n.min(buf.len())]).map_err(|source| Error::Decode {
            device: sg_name(sg),
            command: "READ ATTRIBUTE",
            source,
        })
    }

    /// The drive's record length limits (READ BLOCK LIMITS through the sg node), read once;
    /// `None` without an sg node or when the drive does not answer.
    pub fn block_limits(&mut self) -> Option<BlockLimits> {
        if let Some(l) = self.block_limits {
            return l;
        }
        let limits = self.sg.as_mut().and_then(|sg| {
            let mut buf = [0u8; 6];
            let n = execute(
                sg,
                "READ BLOCK LIMITS",
                &read_block_limits_cdb(),
                DataDirection::FromDevice(&mut buf),
                timeouts::SHORT,
                Ctx::default(),
            )
            .ok()?;
            decode_block_limits(&buf[..n.min(6)]).ok()
        });
        self.block_limits = Some(limits);
        limits
    }

    fn decode(&self, command: &'static str, source: crate::DecodeError) -> Error {
        let device = self.sg.as_ref().map_or_else(|| self.name_str(), sg_name);
        Error::Decode {
            device,
            command,
            source,
        }
    }

    /// After an error during positioning: where did it stop?
    fn stopped_early(&self, e: Error) -> Error {
        match self.gstat() {
            Ok(g) if g & gmt::EOD != 0 => Error::PositionStoppedEarly {
                device: self.name_str(),
                what: "end of data",
            },
            Ok(g) if g & gmt::EOF != 0 => Error::PositionStoppedEarly {
                device: self.name_str(),
                what: "filemark",
            },
            Ok(g) if g & gmt::BOT != 0 => Error::PositionStoppedEarly {
                device: self.name_str(),
                what: "beginning of partition",
            },
            _ => e,
        }
    }

    /// The drive's logical block from `MTIOCPOS` (READ POSITION). EIO on a ready drive
    /// means the drive rejected READ POSITION or said the position is unknown (tgt's stub
    /// answers "unknown" even at BOT): remembered as "no positioning" until the next load.
    fn read_position(&mut self) -> Result<u64, Error> {
        if self.positioning == Some(false) {
            return Err(self.no_positioning("READ POSITION"));
        }
        match sys::mtiocpos(self.file.as_fd()) {
            Ok(p) => {
                self.positioning = Some(true);
                Ok(p.mt_blkno.max(0) as u64)
            }
            Err(Errno::EIO) if self.gstat().is_ok_and(|g| g & gmt::ONLINE != 0) => {
                self.positioning = Some(false);
                Err(self.no_positioning("READ POSITION"))
            }
            Err(e) => Err(self.errno(e)),
        }
    }

    fn no_positioning(&self, what: &'static str) -> Error {
        Error::Unsupported {
            device: self.name_str(),
            what,
        }
    }

    fn current_block(&self) -> u64 {
        sys::mtiocpos(self.file.as_fd())
            .map(|p| p.mt_blkno.max(0) as u64)
            .unwrap_or(0)
    }
}

fn sg_name(sg: &SgDevice) -> String {
    sg.path().display().to_string()
}

fn count(n: i64, device: String) -> Result<i32, Error> {
    i32::try_from(n).map_err(|_| Error::Unsupported {
        device,
        what: "space or locate beyond 2^31 blocks through st",
    })
}

impl TapeDrive for StDrive {
    fn name(&self) -> String {
        self.name_str()
    }

    fn status(&mut self) -> Result<DriveStatus, Error> {
        let g = self.get()?;
        let gstat = g.mt_gstat as u32;
        let ready = gstat & gmt::ONLINE != 0;
        let dsreg = g.mt_dsreg as u64;
        Ok(DriveStatus {
            ready,
            write_protected: gstat & gmt::WR_PROT != 0,
            bot: gstat & gmt::BOT != 0,
            eod: gstat & gmt::EOD != 0,
            eot: gstat & gmt::EOT != 0,
            block_size: (dsreg & 0x00FF_FFFF) as u32,
            density_code: ((dsreg >> 24) & 0xFF) as u8,
            partition: (ready && g.mt_resid >= 0).then_some(g.mt_resid as u8),
            block: None,
        })
    }

    fn load(&mut self) -> Result<(), Error> {
        self.positioning = None;
        self.op(mt::LOAD, 1)?;
        self.partitions_enabled = false;
        self.set_block_size(0)
    }

    fn unload(&mut self) -> Result<(), Error> {
        self.positioning = None;
        self.op(mt::OFFL, 1)
    }

    fn set_medium_lock(&mut self, locked: bool) -> Result<(), Error> {
        self.op(if locked { mt::LOCK } else { mt::UNLOCK }, 1)
    }

    fn rewind(&mut self) -> Result<(), Error> {
        let g = self.get()?;
        if self.partitions_enabled && g.mt_resid > 0 {
            self.op(mt::SETPART, 0)?;
        }
        self.op(mt::REW, 1)
    }

    fn set_block_size(&mut self, size: u32) -> Result<(), Error> {
        let size = i32::try_from(size).map_err(|_| Error::Unsupported {
            device: self.name_str(),
            what: "block size over 2 GiB",
        })?;
        self.op(mt::SETBLK, size)
    }

    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, Error> {
        // st refuses (EINVAL) a read larger than the drive's maximum block length; no
        // record can be longer, so asking for at most that much loses nothing.
        let len = match self.block_limits() {
            Some(l) if l.max > 0 => buf.len().min(l.max as usize),
            _ => buf.len(),
        };
        let buffer_len = buf.len();
        match nix::unistd::read(&self.file, &mut buf[..len]) {
            Ok(0) => {
                // st returns 0 for a filemark and at end of data; MTIOCGET tells which.
                if self.gstat()? & gmt::EOD != 0 {
                    Ok(ReadOutcome::EndOfData)
                } else {
                    Ok(ReadOutcome::Filemark)
                }
            }
            Ok(n) => {
                // A record handed back while the driver reports end of data is not data:
                // tgt (1.0.85) answers a read at end of data with CHECK CONDITION, BLANK
                // CHECK + EOM and a whole buffer of zeros (residual 0, seen on the wire).
                // st passes the bytes on: after a filemark it reports EOD; after a record it
                // takes the EOM bit for early warning (EOT) and returns the full request.
                // A real drive sets EOM on a read only at the end of the partition, where no
                // record can fill the buffer, and a real record never leaves st at EOD.
                let g = self.gstat()?;
                if g & gmt::EOD != 0 || (g & gmt::EOT != 0 && n == len) {
                    Ok(ReadOutcome::EndOfData)
                } else {
                    Ok(ReadOutcome::Record(n))
                }
            }
            // st: the record is longer than the buffer; the tape is after the record.
            Err(Errno::ENOMEM) => Err(Error::RecordTooLong {
                device: self.name_str(),
                record_len: 0,
                buffer_len,
            }),
            Err(Errno::EIO) => {
                let g = self.gstat()?;
                if g & gmt::EOD != 0 {
                    Ok(ReadOutcome::EndOfData)
                } else if g & gmt::ONLINE == 0 {
                    Err(Error::NotReady {
                        device: self.name_str(),
                    })
                } else {
                    Err(Error::MediumError {
                        device: self.name_str(),
                        block: self.current_block(),
                    })
                }
            }
            Err(e) => Err(self.errno(e)),
        }
    }

    fn write_record(&mut self, data: &[u8]) -> Result<WriteOutcome, Error> {
        if let Some(l) = self.block_limits()
            && (data.len() < usize::from(l.min) || (l.max > 0 && data.len() > l.max as usize))
        {
            return Err(Error::Unsupported {
                device: self.name_str(),
                what: "a record length outside the drive's block limits",
            });
        }
        match nix::unistd::write(&self.file, data) {
            Ok(n) if n == data.len() => Ok(WriteOutcome::Written),
            Ok(_) => Err(Error::EndOfMedium {
                device: self.name_str(),
            }),
            // Past the early warning st refuses every other write with ENOSPC; the next
            // one is allowed (room for a trailer).
            Err(Errno::ENOSPC) => match nix::unistd::write(&self.file, data) {
                Ok(n) if n == data.len() => Ok(WriteOutcome::EarlyWarning),
                Ok(_) | Err(Errno::ENOSPC | Errno::EIO) => Err(Error::EndOfMedium {
                    device: self.name_str(),
                }),
                Err(e) => Err(self.errno(e)),
            },
            Err(Errno::EIO) => {
                let g = self.gstat()?;
                if g & gmt::WR_PROT != 0 {
                    Err(Error::WriteProtected {
                        device: self.name_str(),
                    })
                } else if g & gmt::ONLINE == 0 {
                    Err(Error::NotReady {
                        device: self.name_str(),
                    })
                } else {
                    Err(Error::MediumError {
                        device: self.name_str(),
                        block: self.current_block(),
                    })
                }
            }
            Err(e) => Err(self.errno(e)),
        }
    }

    fn write_filemarks(&mut self, count: u32) -> Result<WriteOutcome, Error> {
        let n = i32::try_from(count).map_err(|_| Error::Unsupported {
            device: self.name_str(),
            what: "more than 2^31 filemarks",
        })?;
        match sys::mtioctop(self.file.as_fd(), mt::WEOF, n) {
            Ok(()) => {}
            Err(Errno::ENOSPC) => {
                return Err(Error::EndOfMedium {
                    device: self.name_str(),
                });
            }
            Err(e) => return Err(self.errno(e)),
        }
        if self.gstat()? & gmt::EOT != 0 {
            Ok(WriteOutcome::EarlyWarning)
        } else {
            Ok(WriteOutcome::Written)
        }
    }

    fn space(&mut self, how: Space) -> Result<(), Error> {
        let device = self.name_str();
        let (op, n) = match how {
            Space::Records(0) | Space::Filemarks(0) => return Ok(()),
            Space::Records(n) if n > 0 => (mt::FSR, count(n, device)?),
            Space::Records(n) => (mt::BSR, count(-n, device)?),
            Space::Filemarks(n) if n > 0 => (mt::FSF, count(n, device)?),
            Space::Filemarks(n) => (mt::BSF, count(-n, device)?),
            Space::EndOfData => (mt::EOM, 1),
        };
        match self.op(op, n) {
            Ok(()) => Ok(()),
            Err(e @ Error::Io { .. }) => Err(self.stopped_early(e)),
            Err(e) => Err(e),
        }
    }

    fn position(&mut self) -> Result<Position, Error> {
        // st answers MTIOCPOS with EIO when the drive's READ POSITION fails or says the
        // position is unknown (tgt's stub): the drive cannot report positions.
        let block = self.read_position()?;
        let g = self.get()?;
        Ok(Position {
            partition: g.mt_resid.clamp(0, 255) as u8,
            block,
        })
    }

    fn locate(&mut self, to: Position) -> Result<(), Error> {
        // Without READ POSITION, st's MTSEEK fails (tgt 1.0.85 has no LOCATE either) and
        // nothing could confirm where the tape went: say so instead of trying.
        if self.positioning.is_none() {
            match self.read_position() {
                Ok(_) | Err(Error::Unsupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if self.positioning == Some(false) {
            return Err(self.no_positioning("LOCATE (the drive reports no position)"));
        }
        let block = count(i64::try_from(to.block).unwrap_or(i64::MAX), self.name_str())?;
        let g = self.get()?;
        if g.mt_resid != i64::from(to.partition) {
            self.enable_partitions()?;
            self.op(mt::SETPART, i32::from(to.partition))?;
        }
        match self.op(mt::SEEK, block) {
            Ok(()) => Ok(()),
            Err(e @ Error::Io { .. }) => Err(self.stopped_early(e)),
            Err(e) => Err(e),
        }
    }

    fn partition_count(&mut self) -> Result<u8, Error> {
        // Medium partition mode page 11h, byte 3: ADDITIONAL PARTITIONS DEFINED.
        let sg = self.sg("MODE SENSE page 11h")?;
        let mut buf = [0u8; 256];
        let result = execute(
            sg,
            "MODE SENSE(10)",
            &mode_sense10_cdb(0x11, 256),
            DataDirection::FromDevice(&mut buf),
            timeouts::SHORT,
            Ctx::default(),
        );
        match result {
            Ok(n) => {
                let page =
                    mode_page(&buf[..n.min(buf.len())], true).map_err(|source| Error::Decode {
                        device: sg_name(sg),
                        command: "MODE SENSE(10)",
                        source,
                    })?;
                Ok(page.get(3).copied().unwrap_or(0).saturating_add(1))
            }
            // No medium partition page: the drive cannot partition.
            Err(Error::IllegalRequest { .. }) => Ok(1),
            Err(e) => Err(e),
        }
    }

    fn create_two_partitions(&mut self, first_partition_bytes: u64) -> Result<(), Error> {
        if self.sg.is_some() {
            // A drive without the medium partition page (11h) cannot partition at all.
            let sg = self.sg("MODE SENSE page 11h")?;
            let mut buf = [0u8; 256];
            let probe = execute(
                sg,
                "MODE SENSE(10)",
                &mode_sense10_cdb(0x11, 256),
                DataDirection::FromDevice(&mut buf),
                timeouts::SHORT,
                Ctx::default(),
            );
            if let Err(Error::IllegalRequest { .. }) = probe {
                return Err(Error::Unsupported {
                    device: self.name_str(),
                    what: "partitioning",
                });
            }
        }
        self.enable_partitions()?;
        // st's MTMKPART: a negative count is the size of partition 0 in megabytes (10^6
        // bytes), the physically first partition on LTO-5 and later.
        let mb = first_partition_bytes.div_ceil(1_000_000).max(1);
        let mb = i32::try_from(mb).map_err(|_| Error::Unsupported {
            device: self.name_str(),
            what: "partition over 2^31 MB",
        })?;
        match self.op(mt::MKPART, -mb) {
            Ok(()) => Ok(()),
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(nix::libc::EINVAL) => {
                Err(Error::Unsupported {
                    device: self.name_str(),
                    what: "partitioning",
                })
            }
            Err(e) => Err(e),
        }
    }

    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<MamAttribute>, Error> {
        let sg = self.sg("READ ATTRIBUTE")?;
        let mut buf = vec![0u8; 0x1_0000];
        let cdb = read_attribute_cdb(attribute_service::VALUES, partition, id, buf.len() as u32);
        let n = match execute(
            sg,
            "READ ATTRIBUTE",
            &cdb,
            DataDirection::FromDevice(&mut buf),
            timeouts::MEDIUM,
            Ctx::default(),
        ) {
            Ok(n) => n,
            // 24/00 invalid field: no attribute at or after `id` on this medium.
            Err(Error::IllegalRequest { asc: 0x24, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let entries =
            mam::decode_attributes(&buf[..n.min(buf.len())]).map_err(|source| Error::Decode {
                device: sg_name(sg),
                command: "READ ATTRIBUTE",
                source,
            })?;
        // The reply lists attributes from `id` on; it may not include `id` itself.
        Ok(entries
            .into_iter()
            .map(|e| e.attribute)
            .find(|a| a.id == id))
    }

    fn write_attribute(&mut self, partition: u8, attribute: &MamAttribute) -> Result<(), Error> {
        let sg = self.sg("WRITE ATTRIBUTE")?;
        let list = mam::encode_attributes(&[MamEntry {
            attribute: attribute.clone(),
            read_only: false,
        }]);
        let cdb = write_attribute_cdb(partition, list.len() as u32);
        execute(
            sg,
            "WRITE ATTRIBUTE",
            &cdb,
            DataDirection::ToDevice(&list),
            timeouts::MEDIUM,
            Ctx::default(),
        )
        .map(|_| ())
    }

    fn capacity(&mut self) -> Result<Capacity, Error> {
        let partition = usize::from(self.get()?.mt_resid.clamp(0, 1) as u8);
        let c = self.tape_capacity()?;
        Ok(Capacity {
            remaining: c.remaining[partition],
            maximum: c.maximum[partition],
        })
    }

    fn tape_alerts(&mut self) -> Result<Vec<TapeAlert>, Error> {
        // 2Eh is the page every LTO drive has (reading clears the flags); some drives
        // only offer the 12h bitmap.
        let b = match self.log_page(log::page::TAPE_ALERT) {
            Ok(b) => b,
            Err(Error::Unsupported { .. }) => self.log_page(log::page::TAPE_ALERT_RESPONSE)?,
            Err(e) => return Err(e),
        };
        log::decode_tape_alerts(&b).map_err(|source| self.decode("LOG SENSE", source))
    }
}

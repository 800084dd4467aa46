//! [`SgDevice`]: the real [`ScsiTransport`], SG_IO on a `/dev/sgN` node.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;
use crate::sys;
use crate::transport::{Completion, DataDirection, ScsiTransport};

/// Sense buffer size: SPC allows up to 252 bytes (mhVTL returns 96).
const SENSE_LEN: usize = 252;

/// A SCSI generic node (`/dev/sgN`) opened for SG_IO.
///
/// The ioctl returns 0 even when the command failed: every call checks the SCSI status,
/// the host (adapter) status, the driver status and the sense data.
#[derive(Debug)]
pub struct SgDevice {
    file: File,
    path: PathBuf,
}

impl SgDevice {
    /// Opens `path` read-write (non-blocking open, as sg recommends for SG_IO).
    pub fn open(path: impl AsRef<Path>) -> Result<SgDevice, Error> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        Ok(SgDevice { file, path })
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What the kernel said about one SG_IO call, before it becomes a [`Completion`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SgOutcome {
    pub(crate) status: u8,
    pub(crate) host_status: u16,
    pub(crate) driver_status: u16,
    pub(crate) resid: i32,
    pub(crate) dxfer_len: usize,
    pub(crate) sense_len: usize,
}

/// Checks host and driver status and computes the transferred length.
///
/// A residual outside `0..=dxfer_len` happens when a transport (iSCSI) reports an overflow:
/// the device had more data than the allocation allowed, and the whole buffer was filled.
pub(crate) fn interpret(
    device: &str,
    command: &'static str,
    o: SgOutcome,
    timeout: Duration,
) -> Result<usize, Error> {
    let driver = o.driver_status & 0x0F;
    if o.host_status == sys::DID_TIME_OUT || driver == sys::DRIVER_TIMEOUT {
        return Err(Error::Timeout {
            device: device.to_owned(),
            command,
            timeout,
        });
    }
    if o.host_status != 0 || (driver != 0 && driver != sys::DRIVER_SENSE) {
        return Err(Error::Transport {
            device: device.to_owned(),
            command,
            host_status: o.host_status,
            driver_status: o.driver_status,
        });
    }
    let transferred = match usize::try_from(o.resid) {
        Ok(r) if r <= o.dxfer_len => o.dxfer_len - r,
        _ => o.dxfer_len,
    };
    Ok(transferred)
}

/// A name for the command in messages, from its opcode.
pub(crate) fn command_name(opcode: u8) -> &'static str {
    use crate::scsi::opcode as op;
    match opcode {
        op::TEST_UNIT_READY => "TEST UNIT READY",
        op::REWIND => "REWIND",
        op::REQUEST_SENSE => "REQUEST SENSE",
        op::INITIALIZE_ELEMENT_STATUS => "INITIALIZE ELEMENT STATUS",
        op::INQUIRY => "INQUIRY",
        op::MODE_SENSE_6 => "MODE SENSE(6)",
        op::LOAD_UNLOAD => "LOAD UNLOAD",
        op::PREVENT_ALLOW_MEDIUM_REMOVAL => "PREVENT ALLOW MEDIUM REMOVAL",
        op::READ_POSITION => "READ POSITION",
        op::LOG_SENSE => "LOG SENSE",
        op::MODE_SENSE_10 => "MODE SENSE(10)",
        op::READ_ATTRIBUTE => "READ ATTRIBUTE",
        op::WRITE_ATTRIBUTE => "WRITE ATTRIBUTE",
        op::MOVE_MEDIUM => "MOVE MEDIUM",
        op::READ_ELEMENT_STATUS => "READ ELEMENT STATUS",
        _ => "SCSI command",
    }
}

impl ScsiTransport for SgDevice {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
        timeout: Duration,
    ) -> Result<Completion, Error> {
        let command = command_name(cdb.first().copied().unwrap_or(0xFF));
        if cdb.is_empty() || cdb.len() > 16 {
            return Err(Error::Unsupported {
                device: self.name(),
                what: "CDB longer than 16 bytes",
            });
        }
        let mut sense = [0u8; SENSE_LEN];
        let (direction, ptr, len) = match data {
            DataDirection::None => (sys::SG_DXFER_NONE, std::ptr::null_mut(), 0usize),
            DataDirection::FromDevice(buf) => {
                (sys::SG_DXFER_FROM_DEV, buf.as_mut_ptr().cast(), buf.len())
            }
            // The kernel only reads a TO_DEV buffer; sg_io_hdr has one pointer type for both.
            DataDirection::ToDevice(buf) => (
                sys::SG_DXFER_TO_DEV,
                buf.as_ptr().cast_mut().cast(),
                buf.len(),
            ),
        };
        let dxfer_len = u32::try_from(len).map_err(|_| Error::Unsupported {
            device: self.name(),
            what: "data transfer over 4 GiB",
        })?;
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let mut hdr = sys::SgIoHdr {
            interface_id: sys::SG_INTERFACE_ID,
            dxfer_direction: direction,
            cmd_len: cdb.len() as u8,
            mx_sb_len: SENSE_LEN as u8,
            iovec_count: 0,
            dxfer_len,
            dxferp: ptr,
            cmdp: cdb.as_ptr(),
            sbp: sense.as_mut_ptr(),
            timeout: timeout_ms,
            flags: 0,
            pack_id: 0,
            usr_ptr: std::ptr::null_mut(),
            status: 0,
            masked_status: 0,
            msg_status: 0,
            sb_len_wr: 0,
            host_status: 0,
            driver_status: 0,
            resid: 0,
            duration: 0,
            info: 0,
        };
        sys::sg_io(self.file.as_fd(), &mut hdr).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::from(e),
        })?;
        let outcome = SgOutcome {
            status: hdr.status,
            host_status: hdr.host_status,
            driver_status: hdr.driver_status,
            resid: hdr.resid,
            dxfer_len: len,
            sense_len: usize::from(hdr.sb_len_wr).min(SENSE_LEN),
        };
        let transferred = interpret(&self.name(), command, outcome, timeout)?;
        Ok(Completion {
            status: outcome.status,
            sense: sense[..outcome.sense_len].to_vec(),
            transferred,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(host: u16, driver: u16, resid: i32) -> SgOutcome {
        SgOutcome {
            status: 0,
            host_status: host,
            driver_status: driver,
            resid,
            dxfer_len: 64,
            sense_len: 0,
        }
    }

    #[test]
    fn status_checks() {
        let t = Duration::from_secs(1);
        assert_eq!(interpret("d", "X", outcome(0, 0, 10), t).unwrap(), 54);
        // DRIVER_SENSE alone is not a failure: the sense says what happened.
        assert_eq!(interpret("d", "X", outcome(0, 0x08, 0), t).unwrap(), 64);
        // iSCSI overflow: resid larger than the buffer means the buffer was filled.
        assert_eq!(interpret("d", "X", outcome(0, 0, 360), t).unwrap(), 64);
        assert_eq!(interpret("d", "X", outcome(0, 0, -5), t).unwrap(), 64);
        assert!(matches!(
            interpret("d", "X", outcome(3, 0, 0), t),
            Err(Error::Timeout { .. })
        ));
        assert!(matches!(
            interpret("d", "X", outcome(0, 6, 0), t),
            Err(Error::Timeout { .. })
        ));
        assert!(matches!(
            interpret("d", "X", outcome(1, 0, 0), t),
            Err(Error::Transport { host_status: 1, .. })
        ));
        assert!(matches!(
            interpret("d", "X", outcome(0, 4, 0), t),
            Err(Error::Transport { .. })
        ));
    }
}

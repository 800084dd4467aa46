//! The [`ScsiTransport`] seam: send one CDB, get status, sense and data back.
//!
//! The real implementation is SG_IO on `/dev/sgN`; the virtual library's SMC emulator is
//! another. Everything that builds CDBs and parses replies runs unchanged on both.

use std::time::Duration;

use crate::Error;

/// Direction and buffer of a command's data phase.
#[derive(Debug)]
pub enum DataDirection<'a> {
    /// No data phase.
    None,
    /// The device sends data into this buffer (e.g. INQUIRY, READ ELEMENT STATUS).
    FromDevice(&'a mut [u8]),
    /// The host sends this data to the device (e.g. MODE SELECT, WRITE ATTRIBUTE).
    ToDevice(&'a [u8]),
}

/// SCSI status byte values (SAM-5) that callers see.
pub mod status {
    /// GOOD.
    pub const GOOD: u8 = 0x00;
    /// CHECK CONDITION: sense data describes the problem.
    pub const CHECK_CONDITION: u8 = 0x02;
    /// CONDITION MET.
    pub const CONDITION_MET: u8 = 0x04;
    /// BUSY.
    pub const BUSY: u8 = 0x08;
    /// RESERVATION CONFLICT.
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    /// TASK SET FULL.
    pub const TASK_SET_FULL: u8 = 0x28;
}

/// How a command completed at the SCSI level. Transport failures (the ioctl failing, a
/// timeout, a host or driver error) are `Err` from [`ScsiTransport::execute`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The SCSI status byte (see [`status`]).
    pub status: u8,
    /// Sense bytes returned with CHECK CONDITION (empty otherwise).
    pub sense: Vec<u8>,
    /// Bytes actually transferred in the data phase (requested length minus residual).
    pub transferred: usize,
}

/// Something that executes SCSI commands: a `/dev/sgN` node or an emulator.
pub trait ScsiTransport {
    /// Device name for messages (e.g. `/dev/sg3`, `vtl:/srv/vtl changer`).
    fn name(&self) -> String;
    /// Executes one command. `timeout` bounds how long the device may take.
    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
        timeout: Duration,
    ) -> Result<Completion, Error>;
}

impl<T: ScsiTransport + ?Sized> ScsiTransport for Box<T> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
        timeout: Duration,
    ) -> Result<Completion, Error> {
        (**self).execute(cdb, data, timeout)
    }
}

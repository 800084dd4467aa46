//! The only unsafe code of the workspace: the kernel's `#[repr(C)]` structures for SG_IO
//! and the st driver (libc defines neither) and the ioctl calls on them, through `nix`.
//!
//! Every `unsafe` block here passes a pointer to a live, correctly sized structure to an
//! ioctl on an open file descriptor; the kernel reads and writes only within it and within
//! the buffers it points to, whose lengths the same structure states.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc::{c_int, c_long, c_short, c_uchar, c_uint, c_ushort, c_void};

/// `struct sg_io_hdr` from `<scsi/sg.h>` (88 bytes on x86_64).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SgIoHdr {
    /// 'S' for SCSI generic.
    pub interface_id: c_int,
    /// SG_DXFER_*.
    pub dxfer_direction: c_int,
    /// CDB length.
    pub cmd_len: c_uchar,
    /// Size of the sense buffer.
    pub mx_sb_len: c_uchar,
    /// 0: no scatter gather.
    pub iovec_count: c_ushort,
    /// Data buffer length.
    pub dxfer_len: c_uint,
    /// Data buffer.
    pub dxferp: *mut c_void,
    /// CDB.
    pub cmdp: *const c_uchar,
    /// Sense buffer.
    pub sbp: *mut c_uchar,
    /// Timeout in milliseconds.
    pub timeout: c_uint,
    /// SG_FLAG_*.
    pub flags: c_uint,
    /// Unused.
    pub pack_id: c_int,
    /// Unused.
    pub usr_ptr: *mut c_void,
    /// SCSI status byte.
    pub status: c_uchar,
    /// Shifted, masked status (obsolete).
    pub masked_status: c_uchar,
    /// Messaging level data.
    pub msg_status: c_uchar,
    /// Sense bytes actually written.
    pub sb_len_wr: c_uchar,
    /// Host adapter status (DID_*).
    pub host_status: c_ushort,
    /// Driver status (DRIVER_*).
    pub driver_status: c_ushort,
    /// dxfer_len minus bytes actually transferred.
    pub resid: c_int,
    /// Command duration in milliseconds.
    pub duration: c_uint,
    /// SG_INFO_*.
    pub info: c_uint,
}

/// `interface_id` value.
pub(crate) const SG_INTERFACE_ID: c_int = b'S' as c_int;
/// No data phase.
pub(crate) const SG_DXFER_NONE: c_int = -1;
/// Host to device.
pub(crate) const SG_DXFER_TO_DEV: c_int = -2;
/// Device to host.
pub(crate) const SG_DXFER_FROM_DEV: c_int = -3;
/// host_status DID_TIME_OUT.
pub(crate) const DID_TIME_OUT: c_ushort = 0x03;
/// driver_status DRIVER_TIMEOUT (low nibble 6).
pub(crate) const DRIVER_TIMEOUT: c_ushort = 0x06;
/// driver_status DRIVER_SENSE (0x08): sense data is valid, not an error by itself.
pub(crate) const DRIVER_SENSE: c_ushort = 0x08;

/// `struct mtop` from `<sys/mtio.h>` (8 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct MtOp {
    /// MT* operation.
    pub mt_op: c_short,
    /// Count.
    pub mt_count: c_int,
}

/// `struct mtget` from `<sys/mtio.h>` (48 bytes on x86_64).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MtGet {
    /// Drive type.
    pub mt_type: c_long,
    /// Residual count; the st driver puts the current partition here.
    pub mt_resid: c_long,
    /// Block size (bits 23..0) and density (bits 31..24).
    pub mt_dsreg: c_long,
    /// Generic status bits (GMT_*).
    pub mt_gstat: c_long,
    /// Error register.
    pub mt_erreg: c_long,
    /// File number, -1 when unknown.
    pub mt_fileno: c_int,
    /// Block number in the file, -1 when unknown.
    pub mt_blkno: c_int,
}

/// `struct mtpos` from `<sys/mtio.h>` (8 bytes on x86_64).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MtPos {
    /// Current block number.
    pub mt_blkno: c_long,
}

/// st operations (`mt_op`).
pub(crate) mod mt {
    pub const FSF: i16 = 1;
    pub const BSF: i16 = 2;
    pub const FSR: i16 = 3;
    pub const BSR: i16 = 4;
    pub const WEOF: i16 = 5;
    pub const REW: i16 = 6;
    pub const OFFL: i16 = 7;
    pub const EOM: i16 = 12;
    pub const SETBLK: i16 = 20;
    pub const SEEK: i16 = 22;
    pub const SETDRVBUFFER: i16 = 24;
    pub const LOCK: i16 = 28;
    pub const UNLOCK: i16 = 29;
    pub const LOAD: i16 = 30;
    pub const SETPART: i16 = 33;
    pub const MKPART: i16 = 34;
}

/// MTSETDRVBUFFER argument: set the boolean options given in the low bits.
pub(crate) const MT_ST_SETBOOLEANS: c_int = 0x3000_0000;
/// st option: the driver may use partitions.
pub(crate) const MT_ST_CAN_PARTITIONS: c_int = 0x400;

/// `mt_gstat` bits.
pub(crate) mod gmt {
    pub const EOF: u32 = 0x8000_0000;
    pub const BOT: u32 = 0x4000_0000;
    pub const EOT: u32 = 0x2000_0000;
    pub const EOD: u32 = 0x0800_0000;
    pub const WR_PROT: u32 = 0x0400_0000;
    pub const ONLINE: u32 = 0x0100_0000;
}

mod ioctls {
    use super::{MtGet, MtOp, MtPos, SgIoHdr};
    // SG_IO is 0x2285, a "bad" ioctl number without direction/size encoding.
    nix::ioctl_readwrite_bad!(sg_io, 0x2285, SgIoHdr);
    nix::ioctl_write_ptr!(mtioctop, b'm', 1, MtOp);
    nix::ioctl_read!(mtiocget, b'm', 2, MtGet);
    nix::ioctl_read!(mtiocpos, b'm', 3, MtPos);
}

/// Issues SG_IO. The header's pointers must be valid for the lengths it states.
pub(crate) fn sg_io(fd: BorrowedFd<'_>, hdr: &mut SgIoHdr) -> nix::Result<()> {
    // SAFETY: `hdr` is a valid, exclusive sg_io_hdr; its buffers (cmdp/cmd_len,
    // dxferp/dxfer_len, sbp/mx_sb_len) are set by `sgio.rs` from live slices that outlive
    // this call.
    unsafe { ioctls::sg_io(fd.as_raw_fd(), hdr) }.map(|_| ())
}

/// MTIOCTOP: one st operation.
pub(crate) fn mtioctop(fd: BorrowedFd<'_>, op: i16, count: i32) -> nix::Result<()> {
    let arg = MtOp {
        mt_op: op,
        mt_count: count,
    };
    // SAFETY: `arg` is a valid mtop the kernel only reads.
    unsafe { ioctls::mtioctop(fd.as_raw_fd(), &arg) }.map(|_| ())
}

/// MTIOCGET: the st driver's status.
pub(crate) fn mtiocget(fd: BorrowedFd<'_>) -> nix::Result<MtGet> {
    let mut out = MtGet::default();
    // SAFETY: `out` is a valid mtget the kernel fills.
    unsafe { ioctls::mtiocget(fd.as_raw_fd(), &mut out) }?;
    Ok(out)
}

/// MTIOCPOS: the current block number (READ POSITION through st).
pub(crate) fn mtiocpos(fd: BorrowedFd<'_>) -> nix::Result<MtPos> {
    let mut out = MtPos::default();
    // SAFETY: `out` is a valid mtpos the kernel fills.
    unsafe { ioctls::mtiocpos(fd.as_raw_fd(), &mut out) }?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn struct_layouts_match_the_kernel_on_x86_64() {
        assert_eq!(size_of::<SgIoHdr>(), 88);
        assert_eq!(offset_of!(SgIoHdr, dxfer_direction), 4);
        assert_eq!(offset_of!(SgIoHdr, cmd_len), 8);
        assert_eq!(offset_of!(SgIoHdr, mx_sb_len), 9);
        assert_eq!(offset_of!(SgIoHdr, iovec_count), 10);
        assert_eq!(offset_of!(SgIoHdr, dxfer_len), 12);
        assert_eq!(offset_of!(SgIoHdr, dxferp), 16);
        assert_eq!(offset_of!(SgIoHdr, cmdp), 24);
        assert_eq!(offset_of!(SgIoHdr, sbp), 32);
        assert_eq!(offset_of!(SgIoHdr, timeout), 40);
        assert_eq!(offset_of!(SgIoHdr, flags), 44);
        assert_eq!(offset_of!(SgIoHdr, pack_id), 48);
        assert_eq!(offset_of!(SgIoHdr, usr_ptr), 56);
        assert_eq!(offset_of!(SgIoHdr, status), 64);
        assert_eq!(offset_of!(SgIoHdr, sb_len_wr), 67);
        assert_eq!(offset_of!(SgIoHdr, host_status), 68);
        assert_eq!(offset_of!(SgIoHdr, driver_status), 70);
        assert_eq!(offset_of!(SgIoHdr, resid), 72);
        assert_eq!(offset_of!(SgIoHdr, duration), 76);
        assert_eq!(offset_of!(SgIoHdr, info), 80);
        assert_eq!(size_of::<MtOp>(), 8);
        assert_eq!(offset_of!(MtOp, mt_count), 4);
        assert_eq!(size_of::<MtGet>(), 48);
        assert_eq!(offset_of!(MtGet, mt_gstat), 24);
        assert_eq!(offset_of!(MtGet, mt_fileno), 40);
        assert_eq!(offset_of!(MtGet, mt_blkno), 44);
        assert_eq!(size_of::<MtPos>(), 8);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ioctl_numbers_match_the_kernel_headers() {
        // <sys/mtio.h>: MTIOCTOP _IOW('m', 1, struct mtop) = 0x40086d01,
        // MTIOCGET _IOR('m', 2, struct mtget) = 0x80306d02, MTIOCPOS _IOR('m', 3, ...) = 0x80086d03.
        assert_eq!(
            nix::request_code_write!(b'm', 1, size_of::<MtOp>()),
            0x4008_6d01
        );
        assert_eq!(
            nix::request_code_read!(b'm', 2, size_of::<MtGet>()),
            0x8030_6d02
        );
        assert_eq!(
            nix::request_code_read!(b'm', 3, size_of::<MtPos>()),
            0x8008_6d03
        );
    }
}

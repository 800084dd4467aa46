//! Exit codes. Distinct per failure class so scripts can branch on them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | other failure |
//! | 2 | usage error (bad arguments) |
//! | 3 | I/O error on a local file |
//! | 4 | authentication failed: wrong key or passphrase, or tampered / corrupt data |
//! | 5 | catalog error |
//! | 6 | tape device or library error |
//! | 7 | remote source (SSH / rsync / SFTP) error |
//! | 8 | object storage error |
//! | 9 | configuration error |
//! | 10 | LTFS format error |
//! | 11 | tape medium error: a block of the cartridge cannot be written or read |
//! | 12 | drive not ready (no cartridge threaded, or still becoming ready) |
//! | 13 | unit attention the drive keeps reporting |
//! | 14 | cartridge write protected |
//! | 15 | wrong cartridge: its volume is not the one the catalog knows under that barcode |
//!
//! 11 to 15 are the tape faults an operator acts on (replace the cartridge, check the
//! drive, slide the tab, put the right cartridge in); any other tape or library error is 6.

/// Bad command-line arguments.
pub const USAGE: u8 = 2;
/// Any failure without a more specific code.
pub const OTHER: u8 = 1;
/// Local I/O failure.
pub const IO: u8 = 3;
/// Tape medium error.
pub const MEDIUM_ERROR: u8 = 11;
/// Drive not ready.
pub const NOT_READY: u8 = 12;
/// Unit attention that does not clear.
pub const UNIT_ATTENTION: u8 = 13;
/// Cartridge write protected.
pub const WRITE_PROTECTED: u8 = 14;
/// Wrong cartridge under a barcode.
pub const WRONG_CARTRIDGE: u8 = 15;

/// Maps an error (by the first typed error in its chain) to an exit code.
pub fn code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(code) = crate::cmd::exit_code_of(cause) {
            return code;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return IO;
        }
    }
    OTHER
}

/// True when the error is a broken pipe on stdout (`tapebackup files | head`): exit 0.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

//! Fuzzes LOG SENSE page decoding: generic, TapeAlert, tape capacity, volume statistics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_scsi::log;

fuzz_target!(|data: &[u8]| {
    let _ = log::decode_log_page(data);
    let _ = log::decode_tape_alerts(data);
    let _ = log::decode_tape_capacity(data);
    let _ = log::decode_volume_statistics(data);
});

//! Fuzzes sense data parsing (fixed and descriptor formats), as returned by any device.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sense) = tape_scsi::parse_sense(data) {
        let _ = sense.to_string();
        let _ = tape_scsi::encode_fixed_sense(&sense);
    }
});

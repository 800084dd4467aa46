//! Virtual cartridge MAM attribute files (`attr_<partition>_<id>`: 5-byte header + value).
//! A decoded attribute must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(attr) = tape_scsi::decode_attribute_file(data) {
        let again = tape_scsi::encode_attribute_file(&attr).expect("a decoded attribute encodes");
        // The format byte keeps only its two low bits.
        assert_eq!(again[5..], data[5..]);
        assert_eq!(again[..2], data[..2]);
    }
});

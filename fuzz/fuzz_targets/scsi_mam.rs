//! Fuzzes READ ATTRIBUTE reply decoding (attribute values and attribute list).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tape_scsi::mam;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = mam::decode_attributes(data) {
        for e in &entries {
            let _ = mam::attribute_text(&e.attribute);
        }
        let _ = mam::encode_attributes(&entries);
    }
    let _ = mam::decode_attribute_list(data);
});

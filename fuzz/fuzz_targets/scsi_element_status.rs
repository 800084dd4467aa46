//! Fuzzes READ ELEMENT STATUS reply decoding and the inventory built from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = tape_scsi::scsi::smc::decode_element_status(data) {
        let inventory = tape_scsi::Inventory::from_elements(reply.elements);
        let _ = inventory.mtx_status("fuzz");
    }
});

//! Virtual library state file (`library.json`): decoding validates the invariants; a
//! decoded state must serialize and decode back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = tape_scsi::decode_state(data) {
        let json = tape_scsi::encode_state(&state).expect("a decoded state encodes");
        assert_eq!(tape_scsi::decode_state(&json).as_ref(), Ok(&state));
    }
});

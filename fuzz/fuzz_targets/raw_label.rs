//! The raw on-tape format's metadata records (label, tape file header, trailer): parsing
//! must never panic, and whatever parses must re-encode to a record that parses back to
//! the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapebackup::workflow::raw::{encode_record, parse_record};

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = parse_record(data) {
        let again = encode_record(&record);
        assert_eq!(parse_record(&again).ok(), Some(record));
    }
});

//! Fuzzes the LTFS XML label and VOL1 label parsers (bytes read from an untrusted tape);
//! whatever parses must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ltfs::fuzzing::label(data);
});

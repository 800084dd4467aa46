//! Fuzzes the LTFS index parser (XML read from an untrusted tape); whatever parses must
//! round-trip through our writer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ltfs::fuzzing::index(data);
});

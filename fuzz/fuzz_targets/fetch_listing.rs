//! Fuzzes the remote listing parser (`find -printf` output from an untrusted host), in both
//! record shapes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [fetch::ListingFormat::Find, fetch::ListingFormat::FindWithHash] {
        if let Ok(entries) = fetch::parse_listing(data, format) {
            for e in entries {
                // What the parser accepts must be safe to join under staging.
                assert!(fetch::is_safe_relative_path(&e.path));
            }
        }
    }
});

//! Arbitrary bytes to cloud's parsers of S3 answers (ListObjectVersions, GetBucketVersioning).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloud::parse_list_versions(data);
    let _ = cloud::parse_versioning(data);
});

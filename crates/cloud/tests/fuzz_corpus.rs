//! Replays the committed seeds of the `cloud_s3_xml` fuzz target through the same functions
//! the target calls, so CI catches regressions without libFuzzer.

use std::path::Path;

#[test]
fn fuzz_seeds_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/cloud_s3_xml");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed directory {} missing: {e}", dir.display()));
    let mut count = 0;
    let mut parsed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| {
            (
                cloud::parse_list_versions(&data).is_ok(),
                cloud::parse_versioning(&data).is_ok(),
            )
        });
        let (a, b) = result.unwrap_or_else(|_| panic!("panic on seed {}", path.display()));
        parsed += usize::from(a) + usize::from(b);
        count += 1;
    }
    assert!(count > 0, "no seeds in {}", dir.display());
    // The valid seeds must parse: the corpus is not only garbage.
    assert!(parsed >= 4, "only {parsed} seeds parsed");
}

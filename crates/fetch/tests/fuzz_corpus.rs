//! Replays the committed seeds of the `fetch_listing` fuzz target through the same calls
//! the target makes, so CI catches regressions without libFuzzer.

use std::path::Path;

use fetch::{ListingFormat, is_safe_relative_path, parse_listing};

#[test]
fn fuzz_seeds_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/fetch_listing");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed directory {} missing: {e}", dir.display()));
    let mut count = 0;
    let mut parsed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| {
            let mut ok = 0;
            for format in [ListingFormat::Find, ListingFormat::FindWithHash] {
                if let Ok(entries) = parse_listing(&data, format) {
                    assert!(entries.iter().all(|e| is_safe_relative_path(&e.path)));
                    ok += 1;
                }
            }
            ok
        });
        match result {
            Ok(ok) => parsed += ok,
            Err(_) => panic!("panic on seed {}", path.display()),
        }
        count += 1;
    }
    assert!(count > 0, "no seeds in {}", dir.display());
    // The real find outputs among the seeds parse.
    assert!(parsed >= 3, "only {parsed} seed parses succeeded");
}

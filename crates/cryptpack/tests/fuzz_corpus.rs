//! Replays the committed seeds of the `cryptpack_decode` fuzz target through the same
//! function the target calls, so CI catches regressions without libFuzzer.

use std::path::Path;

#[test]
fn fuzz_seeds_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/cryptpack_decode");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed directory {} missing: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| cryptpack::fuzz_decode(&data));
        assert!(result.is_ok(), "panic on seed {}", path.display());
        count += 1;
    }
    assert!(count > 0, "no seeds in {}", dir.display());
}

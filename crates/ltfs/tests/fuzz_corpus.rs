//! Replays the committed fuzz seeds (`fuzz/seeds/ltfs_*`) through the functions the fuzz
//! targets call, so CI catches regressions without libFuzzer.

use std::path::PathBuf;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    assert!(!entries.is_empty(), "no seeds in {}", dir.display());
    for path in entries {
        let data = std::fs::read(&path).expect("seed");
        let outcome = std::panic::catch_unwind(|| f(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn ltfs_label_seeds_do_not_panic() {
    replay("ltfs_label", ltfs::fuzzing::label);
}

#[test]
fn ltfs_index_seeds_do_not_panic() {
    replay("ltfs_index", ltfs::fuzzing::index);
}

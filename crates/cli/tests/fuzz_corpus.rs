//! Replays the committed seeds of the `raw_label` fuzz target through the same functions
//! the target calls, so CI catches regressions without libFuzzer.

use std::path::Path;

use tapebackup::workflow::raw::{encode_record, parse_record};

#[test]
fn raw_label_seeds_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/raw_label");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed directory {} missing: {e}", dir.display()));
    let mut count = 0;
    let mut parsed = 0;
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ok = std::panic::catch_unwind(|| match parse_record(&data) {
            Ok(record) => {
                let again = encode_record(&record);
                assert_eq!(parse_record(&again).ok(), Some(record));
                true
            }
            Err(_) => false,
        })
        .unwrap_or_else(|_| panic!("panic on seed {}", path.display()));
        parsed += usize::from(ok);
        count += 1;
    }
    assert!(count > 0, "no seeds in {}", dir.display());
    // The four valid seeds (label, pack header, snapshot header, trailer) must parse and
    // the broken ones must not.
    assert_eq!(parsed, 4, "{parsed} of {count} seeds parsed");
}

//! Replays the committed fuzz seeds (fuzz/seeds/vtl_*) through the same functions and
//! checks the fuzz targets run, so CI catches regressions without libFuzzer. Seeds named
//! `broken*` must be rejected, the others accepted.

use std::panic::catch_unwind;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8]) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("seed");
        let accepted = catch_unwind(|| run(&data));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        match accepted {
            Ok(ok) => assert_eq!(
                ok,
                !name.starts_with("broken"),
                "{}: accepted = {ok}",
                path.display()
            ),
            Err(_) => panic!("{} panicked", path.display()),
        }
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn vtl_attr() {
    replay("vtl_attr", |data| {
        match tape_scsi::decode_attribute_file(data) {
            Ok(attr) => {
                let again =
                    tape_scsi::encode_attribute_file(&attr).expect("a decoded attribute encodes");
                assert_eq!(again[5..], data[5..]);
                assert_eq!(again[..2], data[..2]);
                true
            }
            Err(_) => false,
        }
    });
}

#[test]
fn vtl_tc_conf() {
    replay("vtl_tc_conf", |data| {
        match tape_scsi::TcConf::from_bytes(data) {
            Ok(conf) => {
                let xml = conf.to_xml().expect("renders");
                assert_eq!(tape_scsi::TcConf::from_xml(&xml).as_ref(), Ok(&conf));
                true
            }
            Err(_) => false,
        }
    });
}

#[test]
fn vtl_state() {
    replay("vtl_state", |data| match tape_scsi::decode_state(data) {
        Ok(state) => {
            let json = tape_scsi::encode_state(&state).expect("a decoded state encodes");
            assert_eq!(tape_scsi::decode_state(&json).as_ref(), Ok(&state));
            true
        }
        Err(_) => false,
    });
}

//! Replays the committed fuzz seeds (fuzz/seeds/scsi_*) through the same functions the fuzz
//! targets call, so CI catches parser regressions without libFuzzer.

use std::panic::catch_unwind;
use std::path::Path;

use tape_scsi::{log, mam};

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            catch_unwind(|| run(&data)).is_ok(),
            "{} panicked",
            path.display()
        );
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn scsi_sense() {
    replay("scsi_sense", |data| {
        if let Ok(sense) = tape_scsi::parse_sense(data) {
            let _ = sense.to_string();
            let _ = tape_scsi::encode_fixed_sense(&sense);
        }
    });
}

#[test]
fn scsi_element_status() {
    replay("scsi_element_status", |data| {
        if let Ok(reply) = tape_scsi::scsi::smc::decode_element_status(data) {
            let inventory = tape_scsi::Inventory::from_elements(reply.elements);
            let _ = inventory.mtx_status("fuzz");
        }
    });
}

#[test]
fn scsi_log_page() {
    replay("scsi_log_page", |data| {
        let _ = log::decode_log_page(data);
        let _ = log::decode_tape_alerts(data);
        let _ = log::decode_tape_capacity(data);
        let _ = log::decode_volume_statistics(data);
    });
}

#[test]
fn scsi_mam() {
    replay("scsi_mam", |data| {
        if let Ok(entries) = mam::decode_attributes(data) {
            for e in &entries {
                let _ = mam::attribute_text(&e.attribute);
            }
            let _ = mam::encode_attributes(&entries);
        }
        let _ = mam::decode_attribute_list(data);
    });
}

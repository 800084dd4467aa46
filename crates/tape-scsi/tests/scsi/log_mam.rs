//! Log pages and MAM attributes from mhVTL's IBM LTO-6 personality.

use tape_scsi::log::{
    decode_log_page, decode_tape_alerts, decode_tape_capacity, decode_volume_statistics,
};
use tape_scsi::mam::{attribute_name, attribute_text, decode_attribute_list, decode_attributes};

use crate::fixtures::{read, scsi_fixtures};

#[test]
fn every_captured_log_page_decodes() {
    let Some(dir) = scsi_fixtures() else { return };
    let mut n = 0;
    for entry in std::fs::read_dir(dir.join("mhvtl")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Page 00h lists page codes, not parameters.
        if name.contains("log_sense") && !name.contains(".sense.") && !name.contains("_p00") {
            let page = decode_log_page(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let code: u8 =
                u8::from_str_radix(name.split("_p").last().unwrap().get(..2).unwrap(), 16).unwrap();
            assert_eq!(page.page, code, "{name}");
            n += 1;
        }
    }
    assert!(n >= 25, "{n}");
}

#[test]
fn capacity_statistics_and_alerts() {
    let Some(dir) = scsi_fixtures() else { return };
    let mib = 1u64 << 20;
    let c = decode_tape_capacity(&read(&dir, "mhvtl/drive0_log_sense_p31.bin")).unwrap();
    assert_eq!(
        (c.remaining[0], c.maximum[0], c.maximum[1]),
        (500 * mib, 500 * mib, 0)
    );
    let full = decode_tape_capacity(&read(&dir, "mhvtl/drive0_log_sense_p31_at_eom.bin")).unwrap();
    assert_eq!((full.remaining[0], full.maximum[0]), (0, 2 * mib));
    let v = decode_volume_statistics(&read(&dir, "mhvtl/drive0_log_sense_p17.bin")).unwrap();
    assert_eq!(v.native_capacity_mb, Some(500));
    assert!(v.parameters.len() > 30);
    // No alert is set on a fresh virtual cartridge.
    assert!(
        decode_tape_alerts(&read(&dir, "mhvtl/drive0_log_sense_p2e.bin"))
            .unwrap()
            .is_empty()
    );
    // Wrong page for the decoder.
    assert!(decode_tape_capacity(&read(&dir, "mhvtl/drive0_log_sense_p17.bin")).is_err());
    assert!(decode_tape_alerts(&read(&dir, "mhvtl/drive0_log_sense_p31.bin")).is_err());
}

#[test]
fn tape_alert_flags_from_both_pages() {
    // 2Eh: parameters 1..64, bit 0 of the value; flag 20 "clean now" and 4 "media".
    let mut b = vec![0x2E, 0, 0, 0];
    for flag in 1u16..=64 {
        b.extend(flag.to_be_bytes());
        b.extend([0xC0, 1, u8::from(flag == 20 || flag == 4)]);
    }
    let len = (b.len() - 4) as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    let alerts = decode_tape_alerts(&b).unwrap();
    assert_eq!(
        alerts.iter().map(|a| a.flag).collect::<Vec<_>>(),
        vec![4, 20]
    );
    assert_eq!(alerts[1].name, "clean now");
    assert_eq!(alerts[1].severity, "critical");
    // 12h: a 64-bit map, flag 1 is the most significant bit.
    let b = [
        0x12, 0, 0, 12, 0, 0, 0x03, 8, 0x80, 0, 0x10, 0, 0, 0, 0, 0x01,
    ];
    let flags: Vec<u8> = decode_tape_alerts(&b)
        .unwrap()
        .iter()
        .map(|a| a.flag)
        .collect();
    assert_eq!(flags, vec![1, 20, 64]);
}

#[test]
fn malformed_log_pages() {
    assert!(decode_log_page(&[0x17, 0]).is_err());
    // Parameter longer than the page.
    assert!(decode_log_page(&[0x17, 0, 0, 6, 0, 1, 0, 9, 1, 2]).is_err());
    // PAGE LENGTH beyond the reply: bounded by the reply.
    assert!(
        decode_log_page(&[0x17, 0, 0xFF, 0xFF, 0, 1, 0, 1, 7])
            .unwrap()
            .parameters
            .len()
            == 1
    );
}

#[test]
fn mam_from_mhvtl() {
    let Some(dir) = scsi_fixtures() else { return };
    let attrs = decode_attributes(&read(&dir, "mhvtl/drive0_read_attribute_sa0_p0.bin")).unwrap();
    let get = |id| attrs.iter().find(|e| e.attribute.id == id).unwrap();
    assert_eq!(attribute_text(&get(0x0000).attribute), "500");
    assert!(get(0x0000).read_only);
    assert_eq!(attribute_text(&get(0x0005).attribute), "LTO-CVE");
    assert!(attribute_text(&get(0x020A).attribute).contains("DRV00001"));
    assert_eq!(attribute_name(0x0806), "barcode");
    let list =
        decode_attribute_list(&read(&dir, "mhvtl/drive0_read_attribute_sa1_p0.bin")).unwrap();
    assert_eq!(list.len(), 39);
    assert!(list.contains(&0x0000) && list.contains(&0x1623));
    for id in list.iter().filter(|id| **id < 0x1000) {
        assert!(
            attrs.iter().any(|e| e.attribute.id == *id),
            "{id:#06x} listed but not returned"
        );
    }
    assert!(decode_attributes(&[0, 0, 0, 9, 0, 1, 0, 0, 8]).is_err());
    assert!(decode_attributes(&[0, 0]).is_err());
}

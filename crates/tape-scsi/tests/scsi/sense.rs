//! Sense data: every captured sense buffer against the capture's own decode, then the
//! tape conditions one by one, then short, malformed and descriptor-format input.

use tape_scsi::{FieldPointer, SenseKey, parse_sense};

use crate::fixtures::{read, scsi_fixtures};

#[test]
fn every_captured_sense_matches_the_recorded_key_asc_ascq() {
    let Some(dir) = scsi_fixtures() else { return };
    let mut checked = 0;
    for lib in ["tgt", "mhvtl"] {
        let records = std::fs::read_to_string(dir.join(lib).join("records.jsonl")).unwrap();
        for line in records.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let (Some(file), Some(expected)) =
                (r["sense_file"].as_str(), r["sk_asc_ascq"].as_str())
            else {
                continue;
            };
            let path = dir.join(lib).join(file);
            if !path.is_file() {
                continue;
            }
            let sense = parse_sense(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let got = format!(
                "{:X}/{:02X}/{:02X}",
                sense.key.code(),
                sense.asc,
                sense.ascq
            );
            assert_eq!(got, expected, "{lib}/{file}");
            assert!(!sense.descriptor_format);
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} sense captures checked");
}

struct Case {
    file: &'static str,
    key: SenseKey,
    asc_ascq: (u8, u8),
    filemark: bool,
    eom: bool,
    ili: bool,
    information: Option<i64>,
}

const fn case(
    file: &'static str,
    key: SenseKey,
    asc_ascq: (u8, u8),
    flags: (bool, bool, bool),
    information: Option<i64>,
) -> Case {
    Case {
        file,
        key,
        asc_ascq,
        filemark: flags.0,
        eom: flags.1,
        ili: flags.2,
        information,
    }
}

const NONE: (bool, bool, bool) = (false, false, false);
const FM: (bool, bool, bool) = (true, false, false);
const EOM: (bool, bool, bool) = (false, true, false);
const ILI: (bool, bool, bool) = (false, false, true);

#[test]
fn tape_conditions_decode_as_each_emulator_reports_them() {
    let Some(dir) = scsi_fixtures() else { return };
    use SenseKey::*;
    let cases = [
        // Filemark: both give NO SENSE + FILEMARK, INFORMATION = the requested length.
        case(
            "tgt/drive0_read_filemark.sense.bin",
            NoSense,
            (0, 1),
            FM,
            Some(65536),
        ),
        case(
            "mhvtl/drive0_read_filemark.sense.bin",
            NoSense,
            (0, 1),
            FM,
            Some(65536),
        ),
        // ILI: requested minus actual, negative when the record was longer.
        case(
            "tgt/drive0_read_ili_overlength_record.sense.bin",
            NoSense,
            (0, 0),
            ILI,
            Some(-32768),
        ),
        case(
            "mhvtl/drive0_read_ili_overlength_record.sense.bin",
            NoSense,
            (0, 0),
            ILI,
            Some(-32768),
        ),
        case(
            "tgt/drive0_read_ili_underlength_record.sense.bin",
            NoSense,
            (0, 0),
            ILI,
            Some(65536),
        ),
        // End of data: tgt EOM + BLANK CHECK without INFORMATION, mhVTL 00/05 with it.
        case(
            "tgt/drive0_read_eod.sense.bin",
            BlankCheck,
            (0, 0),
            EOM,
            None,
        ),
        case(
            "mhvtl/drive0_read_eod.sense.bin",
            BlankCheck,
            (0, 5),
            NONE,
            Some(65536),
        ),
        // Early warning, then (mhVTL) volume overflow.
        case(
            "mhvtl/drive0_write_tiny_01.sense.bin",
            NoSense,
            (0, 2),
            EOM,
            Some(0),
        ),
        case(
            "mhvtl/drive0_write_tiny_09.sense.bin",
            VolumeOverflow,
            (0, 2),
            EOM,
            Some(262144),
        ),
        case(
            "tgt/drive0_tur_first.sense.bin",
            UnitAttention,
            (0x29, 0),
            NONE,
            None,
        ),
        case(
            "tgt/drive0_tur_no_medium.sense.bin",
            NotReady,
            (0x3A, 0),
            NONE,
            None,
        ),
        case(
            "mhvtl/changer_move_dest_full.sense.bin",
            IllegalRequest,
            (0x3B, 0x0D),
            NONE,
            Some(0),
        ),
    ];
    for c in cases {
        let s = parse_sense(&read(&dir, c.file)).unwrap();
        assert_eq!(s.key, c.key, "{}", c.file);
        assert_eq!((s.asc, s.ascq), c.asc_ascq, "{}", c.file);
        assert_eq!(
            (s.filemark, s.eom, s.ili),
            (c.filemark, c.eom, c.ili),
            "{}",
            c.file
        );
        assert_eq!(s.information, c.information, "{}", c.file);
    }
}

#[test]
fn mhvtl_field_pointer_names_the_cdb_byte() {
    let Some(dir) = scsi_fixtures() else { return };
    let s = parse_sense(&read(&dir, "mhvtl/changer_move_invalid_element.sense.bin")).unwrap();
    assert_eq!((s.asc, s.ascq), (0x21, 0x01));
    assert_eq!(
        s.field_pointer,
        Some(FieldPointer {
            in_cdb: true,
            bit: None,
            byte: 6
        })
    );
    assert_eq!(s.asc_name(), "invalid element address");
}

#[test]
fn descriptor_format_with_information_stream_and_sks() {
    #[rustfmt::skip]
    let b = [
        0x72, 0x05, 0x24, 0x00, 0, 0, 0, 28,
        // information descriptor: VALID, 8-byte INFORMATION = -2
        0x00, 0x0A, 0x80, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
        // sense key specific: SKSV, C/D, BPV bit 3, byte 0x0102
        0x02, 0x06, 0, 0, 0xCB, 0x01, 0x02, 0,
        // stream commands: FILEMARK | ILI
        0x04, 0x02, 0, 0xA0,
    ];
    let s = parse_sense(&b).unwrap();
    assert!(s.descriptor_format);
    assert_eq!(s.key, SenseKey::IllegalRequest);
    assert_eq!(s.information, Some(-2));
    assert!(s.filemark && s.ili && !s.eom);
    assert_eq!(
        s.field_pointer,
        Some(FieldPointer {
            in_cdb: true,
            bit: Some(3),
            byte: 0x0102
        })
    );
    // Deferred descriptor sense.
    let mut d = b;
    d[0] = 0x73;
    assert!(parse_sense(&d).unwrap().deferred);
    // A descriptor cut by the end keeps what came before it.
    let s = parse_sense(&b[..30]).unwrap();
    assert_eq!(s.information, Some(-2));
    assert!(s.field_pointer.is_some());
    assert!(!s.filemark && !s.ili);
}

#[test]
fn short_and_malformed_sense() {
    assert!(parse_sense(&[]).is_err());
    assert!(parse_sense(&[0x70]).is_err());
    assert!(parse_sense(&[0x72, 0x02]).is_err());
    assert!(
        parse_sense(&[0x00; 18]).is_err(),
        "response code 00h is not sense"
    );
    assert!(parse_sense(&[0x7F; 18]).is_err(), "vendor response code");
    // Three bytes of fixed sense give the key; ASC/ASCQ absent read as 0.
    let s = parse_sense(&[0x70, 0, 0x02]).unwrap();
    assert_eq!((s.key, s.asc, s.ascq), (SenseKey::NotReady, 0, 0));
    // ADDITIONAL SENSE LENGTH shorter than the buffer: bytes after it are ignored.
    let mut b = [0u8; 18];
    b[0] = 0x70;
    b[2] = 0x02;
    b[7] = 4; // ends at byte 12: ASC/ASCQ not included
    b[12] = 0x3A;
    let s = parse_sense(&b).unwrap();
    assert_eq!(s.asc, 0);
    // VALID without a full INFORMATION field.
    let s = parse_sense(&[0xF0, 0, 0, 1, 2]).unwrap();
    assert_eq!(s.information, None);
}

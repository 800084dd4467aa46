//! Property tests: what the encoders write, the decoders read back.

use proptest::prelude::*;
use tape_scsi::log::{LogPage, LogParameter, decode_log_page, encode_log_page};
use tape_scsi::mam::{MamEntry, decode_attributes, encode_attributes};
use tape_scsi::scsi::smc::{
    DeviceIdentifier, ElementStatus, ElementType, VolumeTag, decode_element_status,
    encode_element_status,
};
use tape_scsi::{FieldPointer, MamAttribute, Sense, SenseKey, encode_fixed_sense, parse_sense};

fn sense_strategy() -> impl Strategy<Value = Sense> {
    (
        any::<bool>(),
        (0u8..16).prop_filter("key codes 0x0..0xE", |k| *k != 0xC && *k != 0xF),
        any::<(u8, u8)>(),
        any::<(bool, bool, bool)>(),
        proptest::option::of(any::<i32>()),
        proptest::option::of((any::<bool>(), proptest::option::of(0u8..8), any::<u16>())),
    )
        .prop_map(
            |(deferred, key, (asc, ascq), (filemark, eom, ili), info, fp)| Sense {
                response_code: if deferred { 0x71 } else { 0x70 },
                deferred,
                descriptor_format: false,
                key: SenseKey::from_code(key),
                asc,
                ascq,
                filemark,
                eom,
                ili,
                information: info.map(i64::from),
                // The field pointer is only decoded for ILLEGAL REQUEST.
                field_pointer: fp
                    .filter(|_| key == 5)
                    .map(|(in_cdb, bit, byte)| FieldPointer { in_cdb, bit, byte }),
            },
        )
}

fn element_strategy(t: ElementType) -> impl Strategy<Value = ElementStatus> {
    (
        any::<u16>(),
        any::<(bool, bool, bool)>(),
        any::<(u8, u8)>(),
        proptest::option::of(any::<u16>()),
        0u8..8,
        proptest::option::of(("[A-Z0-9]{1,32}", any::<u16>())),
        proptest::option::of("[A-Z0-9]{10}"),
    )
        .prop_map(
            move |(
                address,
                (full, except, access),
                (asc, ascq),
                source,
                medium_type,
                tag,
                serial,
            )| {
                ElementStatus {
                    element_type: t,
                    address,
                    full,
                    except,
                    access,
                    imported: false,
                    asc,
                    ascq,
                    source,
                    medium_type,
                    volume_tag: tag.map(|(barcode, sequence)| VolumeTag {
                        barcode,
                        sequence: Some(sequence),
                    }),
                    alternate_tag: None,
                    identifier: serial.filter(|_| t == ElementType::Drive).map(|s| {
                        let mut value = b"IBM     ULT3580-TD6     ".to_vec();
                        value.extend(s.bytes());
                        DeviceIdentifier {
                            code_set: 2,
                            identifier_type: 1,
                            value,
                        }
                    }),
                    truncated: false,
                }
            },
        )
}

fn elements_strategy() -> impl Strategy<Value = Vec<ElementStatus>> {
    (
        proptest::collection::vec(element_strategy(ElementType::Transport), 0..2),
        proptest::collection::vec(element_strategy(ElementType::Storage), 0..20),
        proptest::collection::vec(element_strategy(ElementType::ImportExport), 0..3),
        proptest::collection::vec(element_strategy(ElementType::Drive), 0..4),
    )
        .prop_map(|(a, b, c, d)| {
            let mut all: Vec<ElementStatus> = a.into_iter().chain(b).chain(c).chain(d).collect();
            for e in &mut all {
                if e.element_type == ElementType::Drive && e.identifier.is_none() {
                    e.identifier = Some(DeviceIdentifier {
                        code_set: 2,
                        identifier_type: 1,
                        value: vec![b'X'; 34],
                    });
                }
            }
            all
        })
}

proptest! {
    #[test]
    fn fixed_sense_round_trips(s in sense_strategy()) {
        prop_assert_eq!(parse_sense(&encode_fixed_sense(&s)).unwrap(), s);
    }

    #[test]
    fn element_status_round_trips(elements in elements_strategy()) {
        let bytes = encode_element_status(&elements, true, true);
        let reply = decode_element_status(&bytes).unwrap();
        prop_assert!(!reply.truncated);
        prop_assert_eq!(reply.elements, elements);
    }

    #[test]
    fn element_status_never_panics_on_prefixes(elements in elements_strategy(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_element_status(&elements, true, false);
        let n = cut.index(bytes.len() + 1);
        let _ = decode_element_status(&bytes[..n]);
    }

    #[test]
    fn log_pages_round_trip(page in 0u8..0x40, params in proptest::collection::vec((any::<u16>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..30)) {
        let page = LogPage {
            page,
            subpage: 0,
            parameters: params.into_iter().map(|(code, control, value)| LogParameter { code, control, value }).collect(),
        };
        prop_assert_eq!(decode_log_page(&encode_log_page(&page)).unwrap(), page);
    }

    #[test]
    fn mam_round_trips(attrs in proptest::collection::vec((any::<u16>(), 0u8..3, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..20)) {
        let entries: Vec<MamEntry> = attrs
            .into_iter()
            .map(|(id, format, read_only, value)| MamEntry { attribute: MamAttribute { id, format, value }, read_only })
            .collect();
        prop_assert_eq!(decode_attributes(&encode_attributes(&entries)).unwrap(), entries);
    }

    #[test]
    fn sense_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_sense(&bytes);
    }
}

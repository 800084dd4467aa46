//! The SMC emulator's bytes: every supported command decoded by the SCSI code, arbitrary
//! CDBs never crash it, and random MOVE MEDIUM sequences match a model of the library.

use std::time::Duration;

use proptest::prelude::*;
use tape_scsi::scsi::inquiry::{
    decode_inquiry, decode_vpd_device_id, decode_vpd_serial, inquiry_cdb,
};
use tape_scsi::scsi::smc::{decode_element_address_assignment, mode_sense6_cdb, mode_sense10_cdb};
use tape_scsi::{
    Changer, DataDirection, Error, LibraryOptions, ScsiChanger, ScsiTransport, SenseKey,
    SmcEmulator, VirtualLibrary, parse_sense, status,
};

const T: Duration = Duration::from_secs(1);

fn library(slots: usize, cartridges: usize) -> (tempfile::TempDir, VirtualLibrary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LibraryOptions {
        slots,
        drives: 2,
        ie: 2,
        capacity: 1 << 20,
        reserve: None,
        barcode_prefix: "P".to_owned(),
        cartridges: Some(cartridges),
    };
    let lib = VirtualLibrary::create(dir.path(), &opts).expect("create library");
    (dir, lib)
}

/// Runs a data-in command; `Ok(bytes)` on GOOD, `Err((key, asc, ascq))` on CHECK CONDITION.
fn data_in(t: &mut SmcEmulator, cdb: &[u8], len: usize) -> Result<Vec<u8>, (SenseKey, u8, u8)> {
    let mut buf = vec![0u8; len];
    let c = t
        .execute(cdb, DataDirection::FromDevice(&mut buf), T)
        .expect("emulator never fails the transport");
    if c.status == status::GOOD {
        buf.truncate(c.transferred);
        Ok(buf)
    } else {
        assert_eq!(c.status, status::CHECK_CONDITION);
        let s = parse_sense(&c.sense).expect("fixed sense");
        Err((s.key, s.asc, s.ascq))
    }
}

#[test]
fn inquiry_and_vpd_pages() {
    let (_d, lib) = library(4, 1);
    let mut t = lib.changer();
    let std = data_in(&mut t, &inquiry_cdb(None, 255), 255).expect("inquiry");
    assert_eq!(std.len(), 36);
    let inq = decode_inquiry(&std).expect("decode");
    assert_eq!(
        (inq.device_type, inq.removable, inq.revision.as_str()),
        (8, true, "0001")
    );
    // Allocation shorter than the data: cut, never overrun.
    assert_eq!(
        data_in(&mut t, &inquiry_cdb(None, 5), 255)
            .expect("short")
            .len(),
        5
    );
    let pages = data_in(&mut t, &inquiry_cdb(Some(0x00), 255), 255).expect("vpd 00");
    assert_eq!(pages, [0x08, 0x00, 0x00, 0x03, 0x00, 0x80, 0x83]);
    let serial =
        decode_vpd_serial(&data_in(&mut t, &inquiry_cdb(Some(0x80), 255), 255).expect("vpd 80"))
            .expect("serial");
    assert_eq!(serial, lib.state().expect("state").serial);
    let ids =
        decode_vpd_device_id(&data_in(&mut t, &inquiry_cdb(Some(0x83), 255), 255).expect("vpd 83"))
            .expect("ids");
    assert_eq!(ids.len(), 1);
    assert!(ids[0].to_text().contains(&serial), "{}", ids[0].to_text());
    assert_eq!(
        data_in(&mut t, &inquiry_cdb(Some(0xB0), 255), 255),
        Err((SenseKey::IllegalRequest, 0x24, 0x00))
    );
}

#[test]
fn mode_sense_pages() {
    let (_d, lib) = library(10, 1);
    let mut t = lib.changer();
    let six = data_in(&mut t, &mode_sense6_cdb(0x1D, 255), 255).expect("mode sense 6");
    let ten = data_in(&mut t, &mode_sense10_cdb(0x1D, 256), 256).expect("mode sense 10");
    let (a6, a10) = (
        decode_element_address_assignment(&six, false).expect("decode 6"),
        decode_element_address_assignment(&ten, true).expect("decode 10"),
    );
    assert_eq!(a6, a10);
    assert_eq!(
        (a6.storage.first, a6.storage.count, a6.import_export.count),
        (0x1000, 10, 2)
    );
    let all = data_in(&mut t, &mode_sense6_cdb(0x3F, 255), 255).expect("all pages");
    assert_eq!(usize::from(all[0]) + 1, all.len(), "MODE DATA LENGTH");
    assert_eq!(
        (all[4], all[4 + 20], all[4 + 24]),
        (0x1D, 0x1E, 0x1F),
        "pages 1Dh, 1Eh, 1Fh in order"
    );
    // Changeable values: none.
    let changeable =
        data_in(&mut t, &[0x1A, 0x08, 0x40 | 0x1D, 0, 255, 0], 255).expect("changeable");
    assert!(changeable[6..].iter().all(|&b| b == 0));
    assert_eq!(
        data_in(&mut t, &[0x1A, 0x08, 0xC0 | 0x1D, 0, 255, 0], 255),
        Err((SenseKey::IllegalRequest, 0x39, 0x00))
    );
    assert_eq!(
        data_in(&mut t, &mode_sense6_cdb(0x01, 255), 255),
        Err((SenseKey::IllegalRequest, 0x24, 0x00))
    );
}

#[test]
fn request_sense_unit_ready_and_short_cdbs() {
    let (_d, lib) = library(2, 1);
    let mut t = lib.changer();
    let sense = data_in(&mut t, &[0x03, 0, 0, 0, 252, 0], 252).expect("request sense");
    let s = parse_sense(&sense).expect("sense");
    assert_eq!((s.key, s.asc, s.ascq), (SenseKey::NoSense, 0, 0));
    let c = t
        .execute(&[0, 0, 0, 0, 0, 0], DataDirection::None, T)
        .expect("tur");
    assert_eq!(c.status, status::GOOD);
    assert_eq!(
        data_in(&mut t, &[0xB8, 0x10, 0], 64),
        Err((SenseKey::IllegalRequest, 0x24, 0x00))
    );
    assert_eq!(
        data_in(&mut t, &[], 64),
        Err((SenseKey::IllegalRequest, 0x24, 0x00))
    );
    let mut changer = ScsiChanger::new(lib.changer());
    changer
        .initialize_element_status()
        .expect("initialize element status");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any CDB: GOOD, or CHECK CONDITION with valid fixed sense; the state stays valid.
    #[test]
    fn arbitrary_cdbs_never_crash(cdb in proptest::collection::vec(any::<u8>(), 0..20), op in prop::sample::select(vec![0x00u8, 0x03, 0x07, 0x12, 0x1A, 0x1E, 0x37, 0x5A, 0xA5, 0xB8, 0x4D]), alloc in 0usize..600) {
        let (_d, lib) = library(3, 2);
        let mut t = lib.changer();
        let mut cdb = cdb;
        if let Some(first) = cdb.first_mut() {
            *first = op;
        }
        let mut buf = vec![0u8; alloc];
        let c = t.execute(&cdb, DataDirection::FromDevice(&mut buf), T).expect("no transport error");
        prop_assert!(c.transferred <= alloc);
        if c.status == status::CHECK_CONDITION {
            prop_assert!(parse_sense(&c.sense).is_ok());
        } else {
            prop_assert_eq!(c.status, status::GOOD);
        }
        prop_assert!(lib.state().is_ok());
    }

    /// Random moves between all elements (and invalid addresses) through the SCSI changer
    /// code, against a model: same outcome, same final inventory.
    #[test]
    fn random_moves_match_the_model(moves in proptest::collection::vec((0usize..10, 0usize..10), 1..25)) {
        let (_d, lib) = library(4, 3);
        let mut changer = ScsiChanger::new(lib.changer());
        // Addresses: 2 I/E, 2 drives, 4 slots, and two that do not exist.
        let addresses: [u16; 10] = [0x0002, 0x0003, 0x0100, 0x0101, 0x1000, 0x1001, 0x1002, 0x1003, 0x1004, 0x0050];
        let mut model: Vec<Option<String>> = vec![None, None, None, None, Some("P00001L5".into()), Some("P00002L5".into()), Some("P00003L5".into()), None, None, None];
        for (from, to) in moves {
            let got = changer.move_medium(addresses[from], addresses[to]);
            let want: Result<(), &str> = if from >= 8 || to >= 8 {
                Err("no such element")
            } else if model[from].is_none() {
                Err("source empty")
            } else if from == to {
                Ok(())
            } else if model[to].is_some() {
                Err("destination full")
            } else {
                model[to] = model[from].take();
                Ok(())
            };
            match (&got, want) {
                (Ok(()), Ok(())) => {}
                (Err(Error::NoSuchElement { .. }), Err("no such element")) => {}
                (Err(Error::SourceEmpty { .. }), Err("source empty")) => {}
                (Err(Error::DestinationFull { .. }), Err("destination full")) => {}
                // A drive the changer loaded is threaded: unload it first.
                (Err(Error::IllegalRequest { asc: 0x53, ascq: 0x02, .. }), Ok(())) if (2..4).contains(&from) => {
                    model[from] = model[to].take();
                    let mut d = lib.drive(from - 2).expect("drive");
                    tape_scsi::TapeDrive::unload(&mut d).expect("unload");
                    drop(d);
                    changer.move_medium(addresses[from], addresses[to]).expect("move after unload");
                    model[to] = model[from].take();
                }
                (got, want) => prop_assert!(false, "move {from}->{to}: got {got:?}, model {want:?}"),
            }
        }
        let inv = changer.inventory().expect("inventory");
        for (i, want) in model.iter().take(8).enumerate() {
            let e = inv.by_address(addresses[i]).expect("element");
            prop_assert_eq!(&e.barcode, want, "element {:#06x}", addresses[i]);
            prop_assert_eq!(e.full, want.is_some());
        }
    }
}

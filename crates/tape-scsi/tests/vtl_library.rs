//! The virtual library: the SMC emulator under the real SCSI changer code, drives moving
//! between processes' views, persistence, locking, faults, and the emulator's bytes
//! compared with replies captured from real emulated libraries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tape_scsi::scsi::smc::{
    ElementStatusRequest, ElementType, decode_element_status, move_medium_cdb,
    read_element_status_cdb,
};
use tape_scsi::{
    CartridgeFaults, Changer, DataDirection, DriveFaults, Error, LibraryOptions, Position,
    ReadOutcome, ScsiChanger, ScsiTransport, SenseKey, TapeDrive, VirtualLibrary, parse_sense,
    status,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn shared() -> Option<PathBuf> {
    let dir = match std::env::var_os("TAPEBACKUP_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "../shared not found at {} (required in CI)",
        dir.display()
    );
    println!("SKIP: ../shared not found");
    None
}

fn library(dir: &Path, slots: usize, cartridges: Option<usize>) -> VirtualLibrary {
    let opts = LibraryOptions {
        slots,
        drives: 2,
        ie: 1,
        capacity: 1 << 20,
        reserve: None,
        barcode_prefix: "A0".to_owned(),
        cartridges,
    };
    VirtualLibrary::create(dir, &opts).expect("create library")
}

#[test]
fn inventory_through_the_scsi_changer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = library(dir.path(), 8, Some(5));
    let mut changer = ScsiChanger::new(lib.changer());
    changer.test_unit_ready()?;
    let inq = changer.inquiry()?;
    assert_eq!(
        (inq.device_type, inq.vendor.as_str(), inq.product.as_str()),
        (8, "TAPEBKUP", "VIRTUAL LIBRARY")
    );
    assert_eq!(changer.serial()?, Some(lib.state()?.serial));
    let a = changer.element_addresses()?;
    assert_eq!((a.transport.first, a.transport.count), (1, 1));
    assert_eq!((a.import_export.first, a.import_export.count), (2, 1));
    assert_eq!((a.drives.first, a.drives.count), (0x100, 2));
    assert_eq!((a.storage.first, a.storage.count), (0x1000, 8));
    let inv = changer.inventory()?;
    assert_eq!(inv.storage.len(), 8);
    assert_eq!(inv.drives.len(), 2);
    assert_eq!(inv.import_export.len(), 1);
    for n in 1..=8u16 {
        let slot = inv.slot(n).ok_or("slot")?;
        if n <= 5 {
            assert!(slot.full);
            assert_eq!(
                slot.barcode.as_deref(),
                Some(format!("A000{n:02}L5").as_str())
            );
        } else {
            assert!(!slot.full && slot.barcode.is_none());
        }
    }
    assert_eq!(
        inv.drive(0).and_then(|d| d.drive_serial.clone()).as_deref(),
        Some("VDRV00001")
    );
    assert_eq!(inv.drive_by_serial("VDRV00002").map(|d| d.number), Some(1));
    let mtx = inv.mtx_status("vtl");
    assert!(
        mtx.contains("Storage Element 1:Full :VolumeTag=A00001L5"),
        "{mtx}"
    );
    Ok(())
}

#[test]
fn load_write_unload_across_handles_and_restarts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = library(dir.path(), 8, Some(5));
    let mut changer = ScsiChanger::new(lib.changer());
    changer.load(3, 0)?;
    let inv = changer.inventory()?;
    let d0 = inv.drive(0).ok_or("drive 0")?;
    assert!(d0.full);
    assert_eq!(d0.barcode.as_deref(), Some("A00003L5"));
    assert_eq!(d0.source_slot, Some(3));
    assert!(!inv.slot(3).ok_or("slot 3")?.full);

    let mut drive = lib.drive(0)?;
    assert_eq!(drive.barcode(), Some("A00003L5"));
    assert!(drive.status()?.ready);
    drive.write_record(b"hello")?;
    drive.write_filemarks(1)?;
    drive.write_record(b"world")?;
    drive.write_filemarks(1)?;
    drive.locate(Position {
        partition: 0,
        block: 2,
    })?;
    // Only one handle at a time, like /dev/nstN.
    assert!(matches!(lib.drive(0), Err(Error::Busy { .. })));
    // A loaded drive cannot be emptied by the changer.
    match changer.unload(0, None) {
        Err(Error::IllegalRequest {
            asc: 0x53,
            ascq: 0x02,
            ..
        }) => {}
        other => panic!("unload of a loaded drive: {other:?}"),
    }
    drop(drive);

    // A new process: the position and the data are still there.
    let lib = VirtualLibrary::open(dir.path())?;
    let mut drive = lib.drive(0)?;
    assert_eq!(
        drive.position()?,
        Position {
            partition: 0,
            block: 2
        }
    );
    let mut buf = [0u8; 16];
    assert_eq!(drive.read_record(&mut buf)?, ReadOutcome::Record(5));
    assert_eq!(&buf[..5], b"world");
    drive.unload()?;
    assert!(!drive.status()?.ready);
    let mut changer = ScsiChanger::new(lib.changer());
    assert_eq!(changer.unload(0, None)?, 3, "back to the slot it came from");
    assert!(!drive.status()?.ready);
    assert!(matches!(
        drive.read_record(&mut buf),
        Err(Error::NotReady { .. })
    ));

    // The same cartridge in the other drive, through the open handle's eyes too.
    changer.load(3, 1)?;
    let mut d1 = lib.drive(1)?;
    d1.rewind()?;
    assert_eq!(d1.read_record(&mut buf)?, ReadOutcome::Record(5));
    assert_eq!(&buf[..5], b"hello");
    d1.unload()?;
    changer.unload(1, Some(8))?;
    changer.load(8, 0)?;
    // The drive-0 handle opened earlier sees the cartridge the changer put in.
    assert_eq!(drive.status()?.block, Some(0));
    assert_eq!(drive.barcode(), Some("A00003L5"));
    assert_eq!(drive.read_record(&mut buf)?, ReadOutcome::Record(5));
    Ok(())
}

#[test]
fn move_errors_carry_smc_sense() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = library(dir.path(), 4, Some(2));
    let mut changer = ScsiChanger::new(lib.changer());
    assert!(matches!(
        changer.move_medium(0x1003, 0x1002),
        Err(Error::SourceEmpty {
            address: 0x1003,
            ..
        })
    ));
    assert!(matches!(
        changer.move_medium(0x1000, 0x1001),
        Err(Error::DestinationFull {
            address: 0x1001,
            ..
        })
    ));
    assert!(matches!(
        changer.move_medium(0x1000, 0x1004),
        Err(Error::NoSuchElement { .. })
    ));
    assert!(matches!(
        changer.move_medium(0x0999, 0x1002),
        Err(Error::NoSuchElement { .. })
    ));
    // Raw bytes: fixed-format sense with the keys and codes of SMC-3.
    let mut t = lib.changer();
    let c = t.execute(
        &move_medium_cdb(1, 0x1003, 0x1002),
        DataDirection::None,
        Duration::from_secs(1),
    )?;
    assert_eq!(c.status, status::CHECK_CONDITION);
    let s = parse_sense(&c.sense)?;
    assert_eq!(
        (s.key, s.asc, s.ascq),
        (SenseKey::IllegalRequest, 0x3B, 0x0E)
    );
    let c = t.execute(
        &move_medium_cdb(1, 0x1000, 0x7777),
        DataDirection::None,
        Duration::from_secs(1),
    )?;
    let s = parse_sense(&c.sense)?;
    assert_eq!(
        (s.key, s.asc, s.ascq),
        (SenseKey::IllegalRequest, 0x21, 0x01)
    );
    assert_eq!(s.field_pointer.map(|f| (f.in_cdb, f.byte)), Some((true, 6)));
    let c = t.execute(
        &[0xEE, 0, 0, 0, 0, 0],
        DataDirection::None,
        Duration::from_secs(1),
    )?;
    assert_eq!(
        parse_sense(&c.sense).map(|s| (s.asc, s.ascq))?,
        (0x20, 0x00)
    );
    // Nothing moved.
    let inv = changer.inventory()?;
    assert!(inv.slot(1).ok_or("slot")?.full && inv.slot(2).ok_or("slot")?.full);
    // The I/E slot: export, then the inventory shows it was not placed by an operator.
    changer.move_medium(0x1000, 0x0002)?;
    let inv = changer.inventory()?;
    let ie = &inv.import_export[0];
    assert!(ie.full && !ie.imported);
    assert_eq!(ie.barcode.as_deref(), Some("A00001L5"));
    Ok(())
}

#[test]
fn large_library_is_paged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = library(dir.path(), 700, Some(3));
    let mut changer = ScsiChanger::new(lib.changer());
    let inv = changer.inventory()?;
    assert_eq!(inv.storage.len(), 700);
    assert_eq!(inv.slot(700).map(|s| s.address), Some(0x1000 + 699));
    assert_eq!(inv.storage.iter().filter(|s| s.full).count(), 3);
    Ok(())
}

#[test]
fn element_status_bytes_match_the_captured_layout() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = library(dir.path(), 6, Some(4));
    let mut t = lib.changer();
    let mut changer = ScsiChanger::new(lib.changer());
    changer.load(1, 0)?;
    let ask = |t: &mut tape_scsi::SmcEmulator,
               element_type,
               volume_tags,
               device_id,
               allocation|
     -> Result<Vec<u8>, Error> {
        let req = ElementStatusRequest {
            element_type,
            start: 0,
            count: 0xFFFF,
            volume_tags,
            device_id,
            allocation,
        };
        let mut buf = vec![0u8; 65536];
        let c = t.execute(
            &read_element_status_cdb(&req),
            DataDirection::FromDevice(&mut buf),
            Duration::from_secs(1),
        )?;
        assert_eq!(c.status, status::GOOD);
        buf.truncate(c.transferred);
        Ok(buf)
    };
    // Descriptor lengths as mhVTL and tgt report them: 16, 52, 86, 50.
    let desc_len = |b: &[u8]| u16::from_be_bytes([b[10], b[11]]);
    assert_eq!(
        desc_len(&ask(
            &mut t,
            Some(ElementType::Storage),
            false,
            false,
            65535
        )?),
        16
    );
    assert_eq!(
        desc_len(&ask(
            &mut t,
            Some(ElementType::Storage),
            true,
            false,
            65535
        )?),
        52
    );
    assert_eq!(
        desc_len(&ask(&mut t, Some(ElementType::Drive), true, true, 65535)?),
        86
    );
    assert_eq!(
        desc_len(&ask(&mut t, Some(ElementType::Drive), false, true, 65535)?),
        50
    );
    let drives = ask(&mut t, Some(ElementType::Drive), true, true, 65535)?;
    let reply = decode_element_status(&drives)?;
    assert!(!reply.truncated);
    let d0 = &reply.elements[0];
    assert_eq!(
        (d0.full, d0.source, d0.medium_type),
        (true, Some(0x1000), 1)
    );
    assert_eq!(
        d0.identifier.as_ref().map(|i| i.serial()).as_deref(),
        Some("VDRV00001")
    );
    // A short allocation keeps the full-report header counts.
    let all = ask(&mut t, None, true, false, 65535)?;
    let short = ask(&mut t, None, true, false, 64)?;
    assert_eq!(short.len(), 64);
    assert_eq!(short[..8], all[..8]);
    let reply = decode_element_status(&short)?;
    assert!(reply.truncated);
    // Type 0 pages come in address order MT, IE, DT, ST, like mhVTL's.
    let reply = decode_element_status(&all)?;
    let kinds: Vec<ElementType> = reply.elements.iter().map(|e| e.element_type).collect();
    let mut dedup = kinds.clone();
    dedup.dedup();
    assert_eq!(
        dedup,
        [
            ElementType::Transport,
            ElementType::ImportExport,
            ElementType::Drive,
            ElementType::Storage
        ]
    );

    // Compare with a real capture: same page header layout and volume tag placement.
    let Some(shared) = shared() else {
        return Ok(());
    };
    let captured =
        std::fs::read(shared.join("fixtures/scsi/mhvtl/changer_res_drive_voltag_dvcid_L.bin"))?;
    let theirs = decode_element_status(&captured)?;
    let mine = decode_element_status(&drives)?;
    assert_eq!(desc_len(&captured), desc_len(&drives));
    assert_eq!(captured[8], drives[8], "element type code");
    assert_eq!(captured[9] & 0x80, drives[9] & 0x80, "PVOLTAG");
    let (t0, m0) = (&theirs.elements[0], &mine.elements[0]);
    assert_eq!(
        (t0.full, t0.medium_type, t0.source.is_some()),
        (m0.full, m0.medium_type, m0.source.is_some())
    );
    assert_eq!(
        t0.identifier
            .as_ref()
            .map(|i| (i.code_set, i.identifier_type, i.value.len())),
        m0.identifier
            .as_ref()
            .map(|i| (i.code_set, i.identifier_type, i.value.len()))
    );
    let captured_p1d =
        std::fs::read(shared.join("fixtures/scsi/mhvtl/changer_mode_sense6_p1d.bin"))?;
    let mut mine_p1d = vec![0u8; 255];
    let c = t.execute(
        &[0x1A, 0x08, 0x1D, 0x00, 0xFF, 0x00],
        DataDirection::FromDevice(&mut mine_p1d),
        Duration::from_secs(1),
    )?;
    mine_p1d.truncate(c.transferred);
    assert_eq!(mine_p1d.len(), captured_p1d.len());
    assert_eq!(mine_p1d[4..6], captured_p1d[4..6], "page code and length");
    let captured_sense =
        std::fs::read(shared.join("fixtures/scsi/mhvtl/changer_move_src_empty.sense.bin"))?;
    let c = t.execute(
        &move_medium_cdb(1, 0x1005, 0x1004),
        DataDirection::None,
        Duration::from_secs(1),
    )?;
    let (a, b) = (parse_sense(&captured_sense)?, parse_sense(&c.sense)?);
    assert_eq!((a.key, a.asc, a.ascq), (b.key, b.asc, b.ascq));
    Ok(())
}

#[test]
fn faults_follow_cartridges_and_drives() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = library(dir.path(), 4, Some(2));
    lib.set_cartridge_faults(
        "A00002L5",
        CartridgeFaults {
            reported_barcode: Some("WRONG1L5".to_owned()),
            ..Default::default()
        },
    )?;
    lib.set_drive_faults(
        1,
        DriveFaults {
            unit_attention_after_load: true,
            ..Default::default()
        },
    )?;
    let mut changer = ScsiChanger::new(lib.changer());
    let inv = changer.inventory()?;
    assert_eq!(
        inv.slot(2).and_then(|s| s.barcode.clone()).as_deref(),
        Some("WRONG1L5")
    );
    changer.load(2, 1)?;
    let mut d = lib.drive(1)?;
    assert_eq!(
        d.barcode(),
        Some("A00002L5"),
        "the cartridge itself is A00002L5"
    );
    assert!(matches!(
        d.write_record(b"x"),
        Err(Error::UnitAttention { .. })
    ));
    d.write_record(b"x")?;
    drop(d);
    // Persistent for other processes too.
    lib.set_drive_faults(
        1,
        DriveFaults {
            not_ready: true,
            ..Default::default()
        },
    )?;
    let mut d = VirtualLibrary::open(dir.path())?.drive(1)?;
    assert!(matches!(d.position(), Err(Error::NotReady { .. })));
    lib.set_drive_faults(1, DriveFaults::default())?;
    assert!(
        d.position().is_ok(),
        "an open handle sees the fault cleared"
    );
    Ok(())
}

#[test]
fn concurrent_updates_are_serialized() -> TestResult {
    let dir = tempfile::tempdir()?;
    library(dir.path(), 40, Some(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || -> Result<(), Error> {
                let lib = VirtualLibrary::open(&path)?;
                for i in 0..8 {
                    lib.add_blank_cartridge(Some(&format!("T{t}{i:02}")))?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "thread panicked")??;
    }
    let state = VirtualLibrary::open(dir.path())?.state()?;
    assert_eq!(state.cartridges.len(), 32, "no update was lost");
    assert_eq!(state.slots.iter().flatten().count(), 32);
    Ok(())
}

#[test]
fn reference_cartridge_imports_and_loads() -> TestResult {
    let Some(shared) = shared() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let lib = library(dir.path(), 4, Some(1));
    let slot = lib.import_cartridge(
        &shared.join("fixtures/ltfs/reference-tape0"),
        "TST001L5",
        None,
    )?;
    assert_eq!(slot, 2);
    assert!(
        lib.import_cartridge(
            &shared.join("fixtures/ltfs/reference-tape0"),
            "TST001L5",
            None
        )
        .is_err()
    );
    let mut changer = ScsiChanger::new(lib.changer());
    changer.load(2, 0)?;
    let mut d = lib.drive(0)?;
    assert_eq!(d.partition_count()?, 2);
    let mut buf = vec![0u8; 1 << 20];
    d.locate(Position {
        partition: 1,
        block: 9,
    })?;
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(524_288));
    let want = std::fs::read(shared.join("fixtures/ltfs/reference-tape0/1_9_R"))?;
    assert!(buf[..want.len()] == want[..]);
    // Writable: the copy is ours, the fixture is untouched.
    d.locate(Position {
        partition: 1,
        block: 15,
    })?;
    d.write_record(b"appended")?;
    d.write_filemarks(1)?;
    assert!(!shared.join("fixtures/ltfs/reference-tape0/1_15_R").exists());
    Ok(())
}

//! A virtual library can emulate drives that cannot partition and lack READ POSITION /
//! LOCATE (like LTO-4 and older, or tgt): those calls are `Unsupported`, the rest works,
//! and the setting persists in the library state.
#![allow(clippy::unwrap_used)] // test code: a failure is a test failure

use tape_scsi::{
    Changer, DriveCapabilities, Error, LibraryOptions, Position, ReadOutcome, ScsiChanger, Space,
    TapeDrive, VirtualLibrary,
};

#[test]
fn capabilities_switch_off_partitioning_and_locate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vtl");
    let lib = VirtualLibrary::create(
        &dir,
        &LibraryOptions {
            slots: 2,
            drives: 1,
            capacity: 8 << 20,
            ..LibraryOptions::default()
        },
    )
    .unwrap();
    assert!(lib.state().unwrap().capabilities.is_default());
    lib.set_capabilities(DriveCapabilities {
        partitions: false,
        locate: false,
    })
    .unwrap();
    // Persisted: a new handle sees it.
    let lib = VirtualLibrary::open(&dir).unwrap();
    assert!(!lib.state().unwrap().capabilities.partitions);

    let mut changer = ScsiChanger::new(lib.changer());
    changer.load(1, 0).unwrap();
    let mut d = lib.drive(0).unwrap();
    d.load().unwrap();
    assert!(matches!(
        d.create_two_partitions(1 << 20),
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(d.partition_count().unwrap(), 1);
    assert!(matches!(d.position(), Err(Error::Unsupported { .. })));
    assert!(matches!(
        d.locate(Position::default()),
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(d.status().unwrap().block, None);
    // Records, filemarks and spacing still work.
    d.write_record(b"one").unwrap();
    d.write_filemarks(1).unwrap();
    d.write_record(b"two").unwrap();
    d.write_filemarks(1).unwrap();
    d.rewind().unwrap();
    d.space(Space::Filemarks(1)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(d.read_record(&mut buf).unwrap(), ReadOutcome::Record(3));
    assert_eq!(&buf[..3], b"two");

    // Switched back on, the same drive handle sees it at its next command.
    lib.set_capabilities(DriveCapabilities::default()).unwrap();
    assert!(d.position().is_ok());
    d.unload().unwrap();
    drop(d);
    changer.unload(0, None).unwrap();
}

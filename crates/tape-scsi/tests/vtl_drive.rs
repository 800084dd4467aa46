//! The virtual drive: conformance suite, end-of-medium sequence, the reference LTFS
//! cartridge, durability, and random operation sequences against a model of the tape.

use std::path::PathBuf;

use proptest::prelude::*;
use tape_scsi::conformance::{self, Outcome};
use tape_scsi::{
    CartridgeFaults, CartridgeOptions, DriveFaults, Error, FaultOp, MamAttribute, MediumErrorFault,
    Position, ReadOutcome, Space, TapeDrive, VirtualDrive, WriteOutcome,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `$TAPEBACKUP_SHARED` or `<workspace>/../shared`; `None` (after printing SKIP) when
/// absent outside CI.
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

fn new_drive(capacity: u64, reserve: Option<u64>) -> (tempfile::TempDir, VirtualDrive) {
    let dir = tempfile::tempdir().expect("tempdir");
    let drive = VirtualDrive::create_cartridge(
        &dir.path().join("c"),
        &CartridgeOptions { capacity, reserve },
    )
    .expect("create cartridge");
    (dir, drive)
}

#[test]
fn conformance_suite_passes_on_a_standalone_virtual_drive() {
    let (_dir, mut drive) = new_drive(64 << 20, None);
    let report = conformance::run(
        &mut drive,
        &conformance::Options {
            write: true,
            partition: true,
            max_record: 300_000,
        },
    );
    println!("{report}");
    assert!(report.passed(), "{report}");
    for c in &report.checks {
        assert_eq!(c.outcome, Outcome::Passed, "{}", c.name);
    }
}

#[test]
fn conformance_read_only_run_skips_writes() {
    let (_dir, mut drive) = new_drive(1 << 20, None);
    let report = conformance::run(&mut drive, &conformance::Options::default());
    assert!(report.passed(), "{report}");
    assert!(matches!(
        report.outcome("write_records"),
        Some(Outcome::Skipped(_))
    ));
    assert_eq!(report.outcome("read_first_object"), Some(&Outcome::Passed));
}

#[test]
fn early_warning_sequence() -> TestResult {
    // Early warning at 40 000 bytes, 10 000 bytes of reserve after it.
    let (_dir, mut d) = new_drive(40_000, Some(10_000));
    let rec = vec![0xA5u8; 7000];
    for i in 0..5 {
        assert_eq!(
            d.write_record(&rec)?,
            WriteOutcome::Written,
            "record {i} (35 000 bytes after)"
        );
    }
    assert!(!d.status()?.eot);
    // Crosses the early-warning point: succeeds as a plain write (st returns the count).
    assert_eq!(d.write_record(&rec)?, WriteOutcome::Written);
    assert!(d.status()?.eot);
    assert_eq!(d.capacity()?.remaining, 0);
    // Past it: every write still succeeds but says so...
    assert_eq!(d.write_record(&rec)?, WriteOutcome::EarlyWarning);
    // ...until the reserve is used up (49 000 + 7000 > 50 000): nothing is written.
    assert!(matches!(
        d.write_record(&rec),
        Err(Error::EndOfMedium { .. })
    ));
    assert_eq!(
        d.position()?,
        Position {
            partition: 0,
            block: 7
        }
    );
    // What still fits in the reserve is written, and so are filemarks (trailer room).
    assert_eq!(d.write_record(&[1u8; 1000])?, WriteOutcome::EarlyWarning);
    assert_eq!(d.write_filemarks(1)?, WriteOutcome::EarlyWarning);
    assert_eq!(d.write_filemarks(0)?, WriteOutcome::EarlyWarning);
    assert!(matches!(
        d.write_record(&[1u8; 1]),
        Err(Error::EndOfMedium { .. })
    ));
    // Everything written reads back.
    d.rewind()?;
    let mut buf = vec![0u8; 8000];
    for _ in 0..7 {
        assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(7000));
    }
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(1000));
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Filemark);
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::EndOfData);
    // Overwriting from the start frees the space again.
    d.rewind()?;
    assert_eq!(d.write_record(&rec)?, WriteOutcome::Written);
    assert!(!d.status()?.eot);
    Ok(())
}

#[test]
fn early_end_of_medium_fault() -> TestResult {
    let (_dir, mut d) = new_drive(1 << 20, Some(4096));
    d.set_cartridge_faults(CartridgeFaults {
        early_warning_at: Some(10_000),
        ..Default::default()
    })?;
    assert_eq!(d.write_record(&[0u8; 6000])?, WriteOutcome::Written);
    assert_eq!(d.write_record(&[0u8; 6000])?, WriteOutcome::Written);
    assert_eq!(d.write_record(&[0u8; 1000])?, WriteOutcome::EarlyWarning);
    assert!(matches!(
        d.write_record(&[0u8; 6000]),
        Err(Error::EndOfMedium { .. })
    ));
    Ok(())
}

#[test]
fn injected_faults() -> TestResult {
    let (_dir, mut d) = new_drive(1 << 20, None);
    for i in 0..4u8 {
        d.write_record(&[i; 100])?;
    }
    d.write_filemarks(1)?;
    d.set_cartridge_faults(CartridgeFaults {
        medium_errors: vec![MediumErrorFault {
            partition: 0,
            block: 2,
            on: FaultOp::Read,
        }],
        ..Default::default()
    })?;
    d.rewind()?;
    let mut buf = [0u8; 100];
    d.read_record(&mut buf)?;
    d.read_record(&mut buf)?;
    assert!(matches!(
        d.read_record(&mut buf),
        Err(Error::MediumError { block: 2, .. })
    ));
    assert_eq!(
        d.position()?.block,
        3,
        "a failed read moves past the bad record"
    );
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(100));
    assert_eq!(buf[0], 3);

    d.set_cartridge_faults(CartridgeFaults {
        write_protected: true,
        ..Default::default()
    })?;
    assert!(matches!(
        d.write_record(&[0; 10]),
        Err(Error::WriteProtected { .. })
    ));
    assert!(matches!(
        d.write_filemarks(1),
        Err(Error::WriteProtected { .. })
    ));
    let attr = MamAttribute {
        id: 0x0803,
        format: 2,
        value: vec![b'x'; 160],
    };
    assert!(matches!(
        d.write_attribute(0, &attr),
        Err(Error::WriteProtected { .. })
    ));
    assert!(d.status()?.write_protected);
    d.rewind()?;
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(100));

    d.set_cartridge_faults(CartridgeFaults::default())?;
    d.set_drive_faults(DriveFaults {
        not_ready: true,
        ..Default::default()
    })?;
    assert!(matches!(
        d.read_record(&mut buf),
        Err(Error::NotReady { .. })
    ));
    assert!(!d.status()?.ready);
    d.set_drive_faults(DriveFaults::default())?;
    assert!(d.status()?.ready);
    Ok(())
}

#[test]
fn unit_attention_after_load() -> TestResult {
    let (_dir, mut d) = new_drive(1 << 20, None);
    d.set_drive_faults(DriveFaults {
        unit_attention_after_load: true,
        ..Default::default()
    })?;
    d.unload()?;
    assert!(matches!(d.position(), Err(Error::NotReady { .. })));
    d.load()?;
    assert!(matches!(d.position(), Err(Error::UnitAttention { .. })));
    assert_eq!(
        d.position()?,
        Position::default(),
        "only the first command sees it"
    );
    Ok(())
}

#[test]
fn medium_lock_prevents_unload() -> TestResult {
    let (_dir, mut d) = new_drive(1 << 20, None);
    d.set_medium_lock(true)?;
    assert!(d.unload().is_err());
    d.set_medium_lock(false)?;
    d.unload()?;
    Ok(())
}

#[test]
fn writes_are_durable_at_filemarks_and_survive_a_crash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cart = dir.path().join("c");
    let mut d = VirtualDrive::create_cartridge(
        &cart,
        &CartridgeOptions {
            capacity: 1 << 20,
            reserve: None,
        },
    )?;
    d.write_record(b"first")?;
    d.write_filemarks(1)?;
    d.write_record(b"second")?;
    d.write_filemarks(0)?;
    // A crash: no Drop, no further flush.
    std::mem::forget(d);
    let mut d = VirtualDrive::open_cartridge(&cart)?;
    let mut buf = [0u8; 16];
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(5));
    assert_eq!(&buf[..5], b"first");
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Filemark);
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(6));
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::EndOfData);
    // Partitions and MAM survive a reopen too.
    d.create_two_partitions(100_000)?;
    d.write_attribute(
        1,
        &MamAttribute {
            id: 0x080C,
            format: 0,
            value: vec![1, 2, 3],
        },
    )?;
    d.locate(Position {
        partition: 1,
        block: 0,
    })?;
    d.write_record(b"p1")?;
    d.write_filemarks(1)?;
    drop(d);
    let mut d = VirtualDrive::open_cartridge(&cart)?;
    assert_eq!(d.partition_count()?, 2);
    assert_eq!(
        d.capacity()?.maximum,
        102_400,
        "partition 0 rounded up to 4 KiB"
    );
    assert_eq!(
        d.read_attribute(1, 0x080C)?.map(|a| a.value),
        Some(vec![1, 2, 3])
    );
    assert_eq!(d.read_attribute(0, 0x080C)?, None);
    d.locate(Position {
        partition: 1,
        block: 0,
    })?;
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(2));
    assert!(matches!(
        d.locate(Position {
            partition: 2,
            block: 0
        }),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(
        d.locate(Position {
            partition: 0,
            block: 5
        }),
        Err(Error::PositionStoppedEarly { .. })
    ));
    assert_eq!(
        d.position()?,
        Position {
            partition: 0,
            block: 0
        }
    );
    Ok(())
}

/// The reference cartridge written by the reference LTFS implementation loads as a tape
/// and reads back exactly, record for record.
#[test]
fn reference_ltfs_cartridge_reads_back_exactly() -> TestResult {
    let Some(shared) = shared() else {
        return Ok(());
    };
    let src = shared.join("fixtures/ltfs/reference-tape0");
    let mut d = VirtualDrive::open_cartridge(&src)?;
    assert_eq!(d.partition_count()?, 2);
    assert_eq!(d.status()?.density_code, 0x58);
    let layouts: [(u8, &str); 2] = [(0, "RFRFFRF"), (1, "RFRFFRFRRRRRFRF")];
    let mut buf = vec![0u8; 1 << 20];
    for (p, layout) in layouts {
        d.locate(Position {
            partition: p,
            block: 0,
        })?;
        for (b, kind) in layout.chars().enumerate() {
            let got = d.read_record(&mut buf)?;
            if kind == 'R' {
                let want = std::fs::read(src.join(format!("{p}_{b}_R")))?;
                assert_eq!(got, ReadOutcome::Record(want.len()), "{p}_{b}");
                assert!(buf[..want.len()] == want[..], "{p}_{b} bytes");
            } else {
                assert_eq!(got, ReadOutcome::Filemark, "{p}_{b}");
            }
        }
        assert_eq!(d.read_record(&mut buf)?, ReadOutcome::EndOfData);
        assert_eq!(
            d.position()?,
            Position {
                partition: p,
                block: layout.len() as u64
            }
        );
    }
    // The VOL1 label and the MAM attributes.
    d.rewind()?;
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(80));
    assert!(buf.starts_with(b"VOL1"));
    let barcode = d.read_attribute(0, 0x0806)?.ok_or("no 0x0806")?;
    assert!(barcode.value.starts_with(b"TST001"));
    let coherency = d.read_attribute(1, 0x080C)?.ok_or("no 0x080C")?;
    assert_eq!(coherency.value.len(), 70);
    // Space over the LTFS structure like an LTFS reader does.
    d.locate(Position {
        partition: 1,
        block: 0,
    })?;
    d.space(Space::Filemarks(3))?;
    assert_eq!(d.position()?.block, 5);
    d.space(Space::EndOfData)?;
    d.space(Space::Filemarks(-1))?;
    assert_eq!(d.position()?.block, 14);
    d.space(Space::Records(-1))?;
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(4156));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Random operation sequences against a model of the tape.

#[derive(Debug, Clone)]
enum Op {
    Write(usize),
    Filemarks(u32),
    Read,
    SpaceRecords(i64),
    SpaceFilemarks(i64),
    SpaceEod,
    Rewind,
    Locate(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..3000).prop_map(Op::Write),
        2 => (0u32..3).prop_map(Op::Filemarks),
        4 => Just(Op::Read),
        2 => (-4i64..5).prop_map(Op::SpaceRecords),
        2 => (-3i64..4).prop_map(Op::SpaceFilemarks),
        1 => Just(Op::SpaceEod),
        1 => Just(Op::Rewind),
        2 => (0u64..30).prop_map(Op::Locate),
    ]
}

/// The model: a list of objects (`Some(len)` record, `None` filemark) and a position.
#[derive(Debug, Default)]
struct Model {
    tape: Vec<Option<usize>>,
    pos: usize,
    ew: usize,
    reserve: usize,
}

/// What an operation observably did, compared between drive and model.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Ok,
    Write(WriteOutcome),
    Read(ReadOutcome, Option<u8>),
    Stopped,
    EndOfMedium,
}

impl Model {
    fn used(&self, upto: usize) -> usize {
        self.tape[..upto].iter().flatten().sum()
    }

    fn apply(&mut self, op: &Op, serial: u8) -> Seen {
        match *op {
            Op::Write(len) => {
                let used = self.used(self.pos);
                if used + len > self.ew + self.reserve {
                    return Seen::EndOfMedium;
                }
                self.tape.truncate(self.pos);
                self.tape.push(Some(len));
                self.pos += 1;
                Seen::Write(if used >= self.ew {
                    WriteOutcome::EarlyWarning
                } else {
                    WriteOutcome::Written
                })
            }
            Op::Filemarks(n) => {
                let at_eod = self.pos == self.tape.len();
                let used = self.used(self.pos);
                if n == 0 {
                    let past = at_eod && used >= self.ew;
                    return Seen::Write(if past {
                        WriteOutcome::EarlyWarning
                    } else {
                        WriteOutcome::Written
                    });
                }
                self.tape.truncate(self.pos);
                for _ in 0..n {
                    self.tape.push(None);
                }
                self.pos += n as usize;
                Seen::Write(if used >= self.ew {
                    WriteOutcome::EarlyWarning
                } else {
                    WriteOutcome::Written
                })
            }
            Op::Read => match self.tape.get(self.pos) {
                None => Seen::Read(ReadOutcome::EndOfData, None),
                Some(None) => {
                    self.pos += 1;
                    Seen::Read(ReadOutcome::Filemark, None)
                }
                Some(Some(len)) => {
                    self.pos += 1;
                    let _ = serial;
                    Seen::Read(ReadOutcome::Record(*len), None)
                }
            },
            Op::SpaceRecords(n) => {
                if n >= 0 {
                    for _ in 0..n {
                        match self.tape.get(self.pos) {
                            None => return Seen::Stopped,
                            Some(None) => {
                                self.pos += 1;
                                return Seen::Stopped;
                            }
                            Some(Some(_)) => self.pos += 1,
                        }
                    }
                } else {
                    for _ in 0..n.unsigned_abs() {
                        if self.pos == 0 {
                            return Seen::Stopped;
                        }
                        self.pos -= 1;
                        if self.tape[self.pos].is_none() {
                            return Seen::Stopped;
                        }
                    }
                }
                Seen::Ok
            }
            Op::SpaceFilemarks(n) => {
                if n >= 0 {
                    for _ in 0..n {
                        loop {
                            match self.tape.get(self.pos) {
                                None => return Seen::Stopped,
                                Some(o) => {
                                    self.pos += 1;
                                    if o.is_none() {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                } else {
                    for _ in 0..n.unsigned_abs() {
                        loop {
                            if self.pos == 0 {
                                return Seen::Stopped;
                            }
                            self.pos -= 1;
                            if self.tape[self.pos].is_none() {
                                break;
                            }
                        }
                    }
                }
                Seen::Ok
            }
            Op::SpaceEod => {
                self.pos = self.tape.len();
                Seen::Ok
            }
            Op::Rewind => {
                self.pos = 0;
                Seen::Ok
            }
            Op::Locate(b) => {
                let b = b as usize;
                if b > self.tape.len() {
                    self.pos = self.tape.len();
                    return Seen::Stopped;
                }
                self.pos = b;
                Seen::Ok
            }
        }
    }
}

fn drive_apply(d: &mut VirtualDrive, op: &Op, serial: u8, buf: &mut [u8]) -> Seen {
    let r = match *op {
        Op::Write(len) => d.write_record(&vec![serial; len]).map(Seen::Write),
        Op::Filemarks(n) => d.write_filemarks(n).map(Seen::Write),
        Op::Read => d.read_record(buf).map(|o| Seen::Read(o, None)),
        Op::SpaceRecords(n) => d.space(Space::Records(n)).map(|()| Seen::Ok),
        Op::SpaceFilemarks(n) => d.space(Space::Filemarks(n)).map(|()| Seen::Ok),
        Op::SpaceEod => d.space(Space::EndOfData).map(|()| Seen::Ok),
        Op::Rewind => d.rewind().map(|()| Seen::Ok),
        Op::Locate(b) => d
            .locate(Position {
                partition: 0,
                block: b,
            })
            .map(|()| Seen::Ok),
    };
    match r {
        Ok(s) => s,
        Err(Error::PositionStoppedEarly { .. }) => Seen::Stopped,
        Err(Error::EndOfMedium { .. }) => Seen::EndOfMedium,
        Err(e) => panic!("{op:?}: unexpected error {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let (_dir, mut d) = new_drive(20_000, Some(8192));
        let mut m = Model { ew: 20_000, reserve: 8192, ..Model::default() };
        let mut buf = vec![0u8; 4096];
        // Record contents: each write fills the record with its op number, and a model
        // of contents checks reads return the right record's bytes.
        let mut contents: Vec<Option<u8>> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let serial = i as u8;
            let pos_before = m.pos;
            let want = m.apply(op, serial);
            let got = drive_apply(&mut d, op, serial, &mut buf);
            prop_assert_eq!(&got, &want, "op {} {:?}", i, op);
            match (op, &got) {
                (Op::Write(_), Seen::Write(_)) => {
                    contents.truncate(pos_before);
                    contents.push(Some(serial));
                }
                (Op::Filemarks(n), Seen::Write(_)) if *n > 0 => {
                    contents.truncate(pos_before);
                    contents.extend(std::iter::repeat_n(None, *n as usize));
                }
                (Op::Read, Seen::Read(ReadOutcome::Record(len), _)) => {
                    let fill = contents[pos_before].expect("model says record");
                    prop_assert!(buf[..*len].iter().all(|&b| b == fill), "op {} read wrong bytes", i);
                }
                _ => {}
            }
            let p = d.position().expect("position");
            prop_assert_eq!(p, Position { partition: 0, block: m.pos as u64 }, "position after op {} {:?}", i, op);
        }
        // And the whole tape survives a reopen.
        let dir = d.cartridge_dir().expect("dir");
        drop(d);
        let mut d = VirtualDrive::open_cartridge(&dir).expect("reopen");
        for (b, o) in m.tape.iter().enumerate() {
            let got = d.read_record(&mut buf).expect("read");
            match o {
                Some(len) => prop_assert_eq!(got, ReadOutcome::Record(*len), "block {}", b),
                None => prop_assert_eq!(got, ReadOutcome::Filemark, "block {}", b),
            }
        }
        prop_assert_eq!(d.read_record(&mut buf).expect("read"), ReadOutcome::EndOfData);
    }
}

#[test]
fn device_attributes() -> TestResult {
    let (_dir, mut d) = new_drive(64 << 20, None);
    let mib = |a: Option<MamAttribute>| {
        a.map(|a| u64::from_be_bytes(a.value.try_into().unwrap_or_default()))
    };
    assert_eq!(mib(d.read_attribute(0, 0x0001)?), Some(64));
    assert_eq!(mib(d.read_attribute(0, 0x0000)?), Some(64));
    assert_eq!(d.read_attribute(0, 0x0009)?, None, "never written");
    d.write_record(&vec![0u8; 3 << 20])?;
    d.write_record(b"x")?;
    assert_eq!(
        mib(d.read_attribute(0, 0x0000)?),
        Some(60),
        "64 MiB - 3 MiB - 1 byte, rounded down"
    );
    let vcr = |d: &mut VirtualDrive| -> Result<Vec<u8>, Error> {
        Ok(d.read_attribute(0, 0x0009)?
            .map(|a| a.value)
            .unwrap_or_default())
    };
    assert_eq!(
        vcr(&mut d)?,
        [0, 0, 0, 1],
        "advanced once by this load's writes"
    );
    d.unload()?;
    d.load()?;
    assert_eq!(vcr(&mut d)?, [0, 0, 0, 1], "reading does not change it");
    d.write_filemarks(1)?;
    assert_eq!(vcr(&mut d)?, [0, 0, 0, 2]);
    d.create_two_partitions(1 << 20)?;
    assert_eq!(vcr(&mut d)?, [0, 0, 0, 3]);
    assert_eq!(
        d.read_attribute(1, 0x0009)?.map(|a| a.value),
        Some(vec![0, 0, 0, 3]),
        "one per volume"
    );
    assert_eq!(mib(d.read_attribute(1, 0x0001)?), Some(63));
    let attr = MamAttribute {
        id: 0x0009,
        format: 0,
        value: vec![0, 0, 0, 9],
    };
    assert!(matches!(
        d.write_attribute(0, &attr),
        Err(Error::InvalidRequest { .. })
    ));
    Ok(())
}

#[test]
fn tape_alerts_follow_errors_and_faults() -> TestResult {
    let (_dir, mut d) = new_drive(1 << 20, None);
    assert!(d.tape_alerts()?.is_empty());
    d.write_record(&[1; 10])?;
    d.set_cartridge_faults(CartridgeFaults {
        medium_errors: vec![MediumErrorFault {
            partition: 0,
            block: 0,
            on: FaultOp::Read,
        }],
        ..Default::default()
    })?;
    d.rewind()?;
    assert!(d.read_record(&mut [0u8; 10]).is_err());
    let flags: Vec<u8> = d.tape_alerts()?.iter().map(|a| a.flag).collect();
    assert_eq!(flags, [3, 5], "hard error, read failure");
    assert!(d.tape_alerts()?.is_empty(), "reading clears them");
    d.set_drive_faults(DriveFaults {
        tape_alerts: vec![0x14],
        ..Default::default()
    })?;
    d.set_cartridge_faults(CartridgeFaults {
        write_protected: true,
        ..Default::default()
    })?;
    assert!(d.write_record(b"x").is_err());
    let alerts = d.tape_alerts()?;
    assert_eq!(alerts.iter().map(|a| a.flag).collect::<Vec<_>>(), [9, 0x14]);
    assert_eq!(
        d.tape_alerts()?.iter().map(|a| a.flag).collect::<Vec<_>>(),
        [0x14],
        "an injected alert stays"
    );
    Ok(())
}

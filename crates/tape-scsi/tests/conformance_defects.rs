//! The conformance suite on drives that misbehave the way tgt 1.0.85 does (seen through the
//! Linux st driver in `cargo xtask vm-smoke`): no READ POSITION/LOCATE, over-length reads
//! that transfer (buffer - record) bytes, SPACE records that ignore filemarks, backward
//! SPACE filemarks that stop one object early, SPACE filemarks into end of data answered
//! without saying so. Each defect must be recognised precisely (`DeviceDefect`), the
//! features it lacks reported as unsupported, and any *other* wrong answer must still fail.

use std::io;

use tape_scsi::conformance::{self, Outcome};
use tape_scsi::{
    Capacity, CartridgeOptions, DriveStatus, Error, MamAttribute, Position, ReadOutcome, Space,
    TapeDrive, VirtualDrive, WriteOutcome,
};

/// Which of tgt's defects the wrapper reproduces.
#[derive(Debug, Clone, Copy, Default)]
struct Defects {
    /// position() and locate() answer Unsupported.
    no_positioning: bool,
    /// A read into a buffer longer than the record returns the record's length but only the
    /// first (buffer - record) bytes of it; the rest of the buffer keeps its old contents.
    overlength_read: bool,
    /// Like `overlength_read`, but the bytes that arrive are garbage from the start: not a
    /// recognised defect, so the check must fail.
    overlength_read_garbage: bool,
    /// SPACE records moves over filemarks as if they were records, answering success.
    space_records_ignores_filemarks: bool,
    /// Backward SPACE filemarks ends one object early.
    backward_filemarks_one_early: bool,
    /// Backward SPACE filemarks ends two objects early: not a recognised defect.
    backward_filemarks_two_early: bool,
    /// SPACE filemarks into end of data fails with a plain I/O error.
    space_past_eod_io_error: bool,
}

struct Tgtish {
    inner: VirtualDrive,
    d: Defects,
}

fn eio(device: String) -> Error {
    Error::Io {
        path: device.into(),
        source: io::Error::from_raw_os_error(5),
    }
}

impl TapeDrive for Tgtish {
    fn name(&self) -> String {
        format!("tgt-like {}", self.inner.name())
    }
    fn status(&mut self) -> Result<DriveStatus, Error> {
        self.inner.status()
    }
    fn load(&mut self) -> Result<(), Error> {
        self.inner.load()
    }
    fn unload(&mut self) -> Result<(), Error> {
        self.inner.unload()
    }
    fn set_medium_lock(&mut self, locked: bool) -> Result<(), Error> {
        self.inner.set_medium_lock(locked)
    }
    fn rewind(&mut self) -> Result<(), Error> {
        self.inner.rewind()
    }
    fn set_block_size(&mut self, size: u32) -> Result<(), Error> {
        self.inner.set_block_size(size)
    }
    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome, Error> {
        if !(self.d.overlength_read || self.d.overlength_read_garbage) {
            return self.inner.read_record(buf);
        }
        let before = buf.to_vec();
        let got = self.inner.read_record(buf)?;
        if let ReadOutcome::Record(n) = got {
            let delivered = buf.len() - n;
            if n < buf.len() && delivered < n {
                let from = if self.d.overlength_read_garbage {
                    0
                } else {
                    delivered
                };
                buf[from..n].copy_from_slice(&before[from..n]);
                if self.d.overlength_read_garbage {
                    for b in &mut buf[..n] {
                        *b ^= 0x5a;
                    }
                }
            }
        }
        Ok(got)
    }
    fn write_record(&mut self, data: &[u8]) -> Result<WriteOutcome, Error> {
        self.inner.write_record(data)
    }
    fn write_filemarks(&mut self, count: u32) -> Result<WriteOutcome, Error> {
        self.inner.write_filemarks(count)
    }
    fn space(&mut self, how: Space) -> Result<(), Error> {
        match how {
            Space::Records(n) if self.d.space_records_ignores_filemarks && n != 0 => {
                let here = self.inner.position()?.block as i64;
                self.inner.space(Space::EndOfData)?;
                let eod = self.inner.position()?.block as i64;
                let to = (here + n).clamp(0, eod);
                self.inner.locate(Position {
                    partition: 0,
                    block: to as u64,
                })
            }
            Space::Filemarks(n)
                if n < 0
                    && (self.d.backward_filemarks_one_early
                        || self.d.backward_filemarks_two_early) =>
            {
                self.inner.space(how)?;
                let early = if self.d.backward_filemarks_two_early {
                    2
                } else {
                    1
                };
                let here = self.inner.position()?.block;
                self.inner.locate(Position {
                    partition: 0,
                    block: here.saturating_sub(early),
                })
            }
            Space::Filemarks(n) if n > 0 && self.d.space_past_eod_io_error => {
                match self.inner.space(how) {
                    Err(Error::PositionStoppedEarly { .. }) => Err(eio(self.name())),
                    other => other,
                }
            }
            _ => self.inner.space(how),
        }
    }
    fn position(&mut self) -> Result<Position, Error> {
        if self.d.no_positioning {
            return Err(Error::Unsupported {
                device: self.name(),
                what: "READ POSITION",
            });
        }
        self.inner.position()
    }
    fn locate(&mut self, to: Position) -> Result<(), Error> {
        if self.d.no_positioning {
            return Err(Error::Unsupported {
                device: self.name(),
                what: "LOCATE",
            });
        }
        self.inner.locate(to)
    }
    fn partition_count(&mut self) -> Result<u8, Error> {
        Ok(1)
    }
    fn create_two_partitions(&mut self, _first: u64) -> Result<(), Error> {
        Err(Error::Unsupported {
            device: self.name(),
            what: "partitioning",
        })
    }
    fn read_attribute(&mut self, _p: u8, _id: u16) -> Result<Option<MamAttribute>, Error> {
        Err(Error::Unsupported {
            device: self.name(),
            what: "READ ATTRIBUTE",
        })
    }
    fn write_attribute(&mut self, _p: u8, _a: &MamAttribute) -> Result<(), Error> {
        // tgt answers WRITE ATTRIBUTE with ILLEGAL REQUEST 24/00, not "unsupported".
        Err(Error::IllegalRequest {
            device: self.name(),
            command: "WRITE ATTRIBUTE",
            asc: 0x24,
            ascq: 0,
            asc_name: "invalid field in CDB",
            field_byte: None,
        })
    }
    fn capacity(&mut self) -> Result<Capacity, Error> {
        Err(Error::Unsupported {
            device: self.name(),
            what: "LOG SENSE",
        })
    }
}

fn run(d: Defects) -> (tempfile::TempDir, conformance::Report) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = VirtualDrive::create_cartridge(
        &dir.path().join("c"),
        &CartridgeOptions {
            capacity: 64 << 20,
            reserve: None,
        },
    )
    .expect("cartridge");
    let mut drive = Tgtish { inner, d };
    let report = conformance::run(
        &mut drive,
        &conformance::Options {
            write: true,
            partition: true,
            max_record: 256 * 1024,
        },
    );
    println!("{report}");
    (dir, report)
}

fn outcome<'a>(r: &'a conformance::Report, name: &str) -> &'a Outcome {
    r.outcome(name)
        .unwrap_or_else(|| panic!("no check {name} in the report"))
}

fn is_defect(o: &Outcome, needle: &str) -> bool {
    matches!(o, Outcome::DeviceDefect(why) if why.contains(needle))
}

fn is_failed(o: &Outcome) -> bool {
    matches!(o, Outcome::Failed(_))
}

#[test]
fn a_drive_without_positioning_is_tested_with_rewind_and_space() {
    let (_d, r) = run(Defects {
        no_positioning: true,
        ..Defects::default()
    });
    assert_eq!(r.failures().count(), 0, "{r}");
    assert_eq!(r.defects().count(), 0, "{r}");
    assert!(matches!(
        outcome(&r, "read_position"),
        Outcome::Unsupported(_)
    ));
    assert!(matches!(
        outcome(&r, "locate_and_read"),
        Outcome::Unsupported(why) if why.contains("rewind + SPACE")
    ));
    for name in [
        "read_back_exact",
        "read_back_larger_buffer",
        "read_past_eod",
        "space_records_stops_at_filemark",
        "space_filemarks",
        "space_filemarks_past_eod",
        "space_to_eod",
        "record_too_long",
        "overwrite_truncates",
    ] {
        assert_eq!(outcome(&r, name), &Outcome::Passed, "{name}");
    }
    assert!(matches!(
        outcome(&r, "mam_write_read"),
        Outcome::Unsupported(_)
    ));
    assert!(matches!(
        outcome(&r, "two_partitions"),
        Outcome::Unsupported(_)
    ));
}

#[test]
fn every_tgt_defect_is_recognised_and_nothing_fails() {
    let (_d, r) = run(Defects {
        no_positioning: true,
        overlength_read: true,
        space_records_ignores_filemarks: true,
        backward_filemarks_one_early: true,
        space_past_eod_io_error: true,
        ..Defects::default()
    });
    assert_eq!(r.failures().count(), 0, "{r}");
    assert!(!r.passed());
    assert!(is_defect(
        outcome(&r, "read_back_larger_buffer"),
        "only its first 1 byte(s) right"
    ));
    assert_eq!(outcome(&r, "read_back_exact"), &Outcome::Passed);
    assert!(is_defect(
        outcome(&r, "space_records_stops_at_filemark"),
        "went on over the filemark"
    ));
    assert!(is_defect(
        outcome(&r, "space_records_stops_at_filemark"),
        "went back over the filemark"
    ));
    assert!(is_defect(
        outcome(&r, "space_filemarks"),
        "one object early"
    ));
    assert!(is_defect(
        outcome(&r, "space_filemarks_past_eod"),
        "did not report end of data"
    ));
    // Checks that do not involve the defects still pass.
    for name in [
        "read_past_eod",
        "space_records",
        "space_to_eod",
        "record_too_long",
        "overwrite_truncates",
    ] {
        assert_eq!(outcome(&r, name), &Outcome::Passed, "{name}");
    }
}

#[test]
fn an_unrecognised_wrong_answer_still_fails() {
    let (_d, r) = run(Defects {
        no_positioning: true,
        overlength_read_garbage: true,
        backward_filemarks_two_early: true,
        ..Defects::default()
    });
    assert!(is_failed(outcome(&r, "read_back_larger_buffer")), "{r}");
    assert!(is_failed(outcome(&r, "space_filemarks")), "{r}");
    assert_eq!(outcome(&r, "read_back_exact"), &Outcome::Passed);
}

#[test]
fn a_defect_is_found_on_a_drive_that_reports_positions_too() {
    let (_d, r) = run(Defects {
        space_records_ignores_filemarks: true,
        ..Defects::default()
    });
    assert!(
        is_defect(
            outcome(&r, "space_records_stops_at_filemark"),
            "went on over the filemark"
        ),
        "{r}"
    );
    assert_eq!(outcome(&r, "read_position"), &Outcome::Passed);
    assert!(!r.passed());
}

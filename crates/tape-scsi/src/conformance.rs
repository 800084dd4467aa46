//! One drive-semantics test suite, written against [`TapeDrive`]: run on the virtual drive
//! in the tests and on real drives by `cargo xtask hw-smoke`.
//!
//! [`run`] executes named checks in order and returns a [`Report`]. With
//! [`Options::write`] unset the suite only reads (status, rewind, position, reading the
//! first objects, capacity, MAM); with it set the tape is **overwritten** from the beginning
//! of partition 0, so use a scratch cartridge. Checks a device does not support (fixed
//! block mode, partitions, MAM) are reported as [`Outcome::Unsupported`], never failed.
//!
//! ```
//! use tape_scsi::conformance::{self, Options};
//! use tape_scsi::{CartridgeOptions, VirtualDrive};
//!
//! # fn main() -> Result<(), tape_scsi::Error> {
//! # let tmp = tempfile::tempdir().map_err(|e| tape_scsi::Error::Io { path: "tmp".into(), source: e })?;
//! let options = CartridgeOptions { capacity: 16 << 20, reserve: None };
//! let mut drive = VirtualDrive::create_cartridge(&tmp.path().join("scratch"), &options)?;
//! let report = conformance::run(&mut drive, &Options { write: true, ..Options::default() });
//! println!("{report}");
//! assert!(report.passed());
//! # Ok(())
//! # }
//! ```

use std::fmt;

use crate::{Error, MamAttribute, Position, ReadOutcome, Space, TapeDrive};

/// What the suite may do to the tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Overwrite the cartridge (data, MAM attribute 0x0803). Off: read-only checks.
    pub write: bool,
    /// Also reformat into two partitions (destroys everything; implies `write`).
    pub partition: bool,
    /// Largest record to write and read back, in bytes.
    pub max_record: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            write: false,
            partition: false,
            max_record: 256 * 1024,
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The drive behaved as specified.
    Passed,
    /// It did not: what went wrong.
    Failed(String),
    /// The drive does not support what the check needs ([`Error::Unsupported`]).
    Unsupported(String),
    /// Not run (a read-only run, or an earlier check it depends on failed).
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short stable name, e.g. `read_back_exact`.
    pub name: &'static str,
    /// What happened.
    pub outcome: Outcome,
}

/// All checks of one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Device name.
    pub device: String,
    /// The checks in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// The outcome of a check by name.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "drive conformance: {}", self.device)?;
        for c in &self.checks {
            match &c.outcome {
                Outcome::Passed => writeln!(f, "  PASS  {}", c.name)?,
                Outcome::Failed(why) => writeln!(f, "  FAIL  {}: {why}", c.name)?,
                Outcome::Unsupported(why) => writeln!(f, "  UNSUP {}: {why}", c.name)?,
                Outcome::Skipped(why) => writeln!(f, "  SKIP  {}: {why}", c.name)?,
            }
        }
        let failed = self.failures().count();
        write!(f, "{} checks, {failed} failed", self.checks.len())
    }
}

/// A check's body: `Err(text)` fails it, `Ok(Some(text))` marks it unsupported.
type CheckResult = Result<Option<String>, String>;

fn fail<T>(what: impl fmt::Display) -> Result<T, String> {
    Err(what.to_string())
}

fn expect_eq<T: PartialEq + fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        fail(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

fn e2s(what: &str, e: Error) -> String {
    format!("{what}: {e}")
}

/// Deterministic record contents: record `i` of `len` bytes.
fn pattern(i: usize, len: usize) -> Vec<u8> {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The layout the write checks put on tape: records (by size) and filemarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Record(usize),
    Filemark,
}

fn layout(max: usize) -> Vec<Item> {
    // 4 bytes is the smallest record every drive we know accepts (tgt's block limits start
    // at 4; LTO drives accept 1).
    let sizes = [4, 512, 4096, 65_536, 65_537, max];
    let mut items: Vec<Item> = sizes
        .iter()
        .map(|&s| Item::Record(s.min(max).max(1)))
        .collect();
    items.push(Item::Filemark);
    items.push(Item::Record(100.min(max)));
    items.push(Item::Record(max.min(32 * 1024)));
    items.push(Item::Filemark);
    items.push(Item::Filemark);
    items.push(Item::Record(5.min(max)));
    items
}

struct Suite<'a> {
    drive: &'a mut dyn TapeDrive,
    opts: &'a Options,
    items: Vec<Item>,
    report: Report,
    written: bool,
    /// `false` once `position()` answered [`Error::Unsupported`]: position checks are then
    /// skipped (and reported once, by the `read_position` check) instead of failed.
    position_supported: bool,
}

impl Suite<'_> {
    fn check(
        &mut self,
        name: &'static str,
        needs_write: bool,
        body: impl FnOnce(&mut Self) -> CheckResult,
    ) {
        let outcome = if needs_write && !self.opts.write {
            Outcome::Skipped("read-only run".to_owned())
        } else if needs_write && name != "write_records" && !self.written {
            Outcome::Skipped("the test data was not written".to_owned())
        } else {
            match body(self) {
                Ok(None) => Outcome::Passed,
                Ok(Some(why)) => Outcome::Unsupported(why),
                Err(why) => Outcome::Failed(why),
            }
        };
        self.report.checks.push(Check { name, outcome });
    }

    fn pos(&mut self) -> Result<Position, String> {
        self.drive.position().map_err(|e| e2s("position", e))
    }

    fn expect_pos(&mut self, what: &str, block: u64) -> Result<(), String> {
        if !self.position_supported {
            return Ok(());
        }
        let p = match self.drive.position() {
            Ok(p) => p,
            Err(Error::Unsupported { .. }) => {
                self.position_supported = false;
                return Ok(());
            }
            Err(e) => return fail(e2s("position", e)),
        };
        expect_eq(
            what,
            p,
            Position {
                partition: 0,
                block,
            },
        )
    }

    fn locate(&mut self, block: u64) -> Result<(), String> {
        self.drive
            .locate(Position {
                partition: 0,
                block,
            })
            .map_err(|e| e2s("locate", e))
    }

    /// Block number of item `i` and its record index.
    fn read_expect(&mut self, i: usize, buf: &mut [u8]) -> Result<(), String> {
        let got = self
            .drive
            .read_record(buf)
            .map_err(|e| e2s(&format!("read block {i}"), e))?;
        match self.items[i] {
            Item::Filemark => expect_eq(&format!("block {i}"), got, ReadOutcome::Filemark),
            Item::Record(len) => {
                expect_eq(&format!("block {i}"), got, ReadOutcome::Record(len))?;
                if buf[..len] != pattern(i, len)[..] {
                    return fail(format!(
                        "block {i}: record bytes differ from what was written"
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Runs the suite on `drive`.
pub fn run(drive: &mut dyn TapeDrive, opts: &Options) -> Report {
    let opts = &Options {
        write: opts.write || opts.partition,
        ..opts.clone()
    };
    let max = opts.max_record.max(1);
    let device = drive.name();
    let mut s = Suite {
        drive,
        opts,
        items: layout(max),
        report: Report {
            device,
            checks: Vec::new(),
        },
        written: false,
        position_supported: true,
    };
    let mut buf = vec![0u8; max + 1];

    s.check("read_position", false, |s| match s.drive.position() {
        Ok(_) => Ok(None),
        Err(Error::Unsupported { .. }) => {
            s.position_supported = false;
            Ok(Some("no position report (READ POSITION)".to_owned()))
        }
        Err(e) => fail(e2s("position", e)),
    });

    s.check("status_ready", false, |s| {
        let st = s.drive.status().map_err(|e| e2s("status", e))?;
        if !st.ready {
            return fail("drive reports not ready");
        }
        Ok(None)
    });
    s.check("variable_block_mode", false, |s| {
        match s.drive.set_block_size(0) {
            Ok(()) => Ok(None),
            Err(Error::Unsupported { .. }) => {
                Ok(Some("cannot select variable block mode".to_owned()))
            }
            Err(e) => fail(e2s("set_block_size(0)", e)),
        }
    });
    s.check("rewind_to_bot", false, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        s.expect_pos("position after rewind", 0)?;
        let st = s.drive.status().map_err(|e| e2s("status", e))?;
        if !st.bot {
            return fail("status does not report BOT after rewind");
        }
        Ok(None)
    });
    s.check("read_first_object", false, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        let mut big = vec![0u8; 4 << 20];
        match s.drive.read_record(&mut big) {
            Ok(ReadOutcome::Record(_) | ReadOutcome::Filemark)
            | Err(Error::RecordTooLong { .. }) => {
                s.expect_pos("position after one read", 1)?;
            }
            Ok(ReadOutcome::EndOfData) => s.expect_pos("position after reading a blank tape", 0)?,
            Err(e) => return fail(e2s("read", e)),
        }
        Ok(None)
    });
    s.check("capacity", false, |s| match s.drive.capacity() {
        Ok(c) if c.remaining <= c.maximum => Ok(None),
        Ok(c) => fail(format!(
            "remaining {} exceeds maximum {}",
            c.remaining, c.maximum
        )),
        Err(Error::Unsupported { .. }) => Ok(Some("no capacity report".to_owned())),
        Err(e) => fail(e2s("capacity", e)),
    });
    s.check("mam_read", false, |s| {
        match s.drive.read_attribute(0, 0x0000) {
            // 0x0000 REMAINING CAPACITY IN PARTITION is a device attribute every LTO has;
            // a virtual cartridge may simply not have it.
            Ok(_) => Ok(None),
            Err(Error::Unsupported { .. }) => Ok(Some("no MAM".to_owned())),
            Err(e) => fail(e2s("read_attribute", e)),
        }
    });

    s.check("write_records", true, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        for (i, item) in s.items.clone().into_iter().enumerate() {
            match item {
                Item::Record(len) => s
                    .drive
                    .write_record(&pattern(i, len))
                    .map_err(|e| e2s(&format!("write block {i}"), e))?,
                Item::Filemark => s
                    .drive
                    .write_filemarks(1)
                    .map_err(|e| e2s(&format!("filemark at block {i}"), e))?,
            };
        }
        s.drive.write_filemarks(0).map_err(|e| e2s("flush", e))?;
        let n = s.items.len() as u64;
        s.expect_pos("position after writing", n)?;
        s.written = true;
        Ok(None)
    });
    s.check("read_back_exact", true, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        for i in 0..s.items.len() {
            s.read_expect(i, &mut buf)?;
            s.expect_pos(&format!("position after block {i}"), i as u64 + 1)?;
        }
        Ok(None)
    });
    s.check("read_past_eod", true, |s| {
        let n = s.items.len() as u64;
        s.locate(n)?;
        for attempt in 0..2 {
            let got = s
                .drive
                .read_record(&mut buf)
                .map_err(|e| e2s("read at end of data", e))?;
            expect_eq(
                &format!("read {attempt} at end of data"),
                got,
                ReadOutcome::EndOfData,
            )?;
            s.expect_pos("position after reading at end of data", n)?;
        }
        let st = s.drive.status().map_err(|e| e2s("status", e))?;
        if !st.eod {
            return fail("status does not report EOD at end of data");
        }
        Ok(None)
    });
    s.check("locate_and_read", true, |s| {
        for i in [3usize, 0, 7, 2] {
            s.locate(i as u64)?;
            s.expect_pos("position after locate", i as u64)?;
            s.read_expect(i, &mut buf)?;
        }
        Ok(None)
    });
    s.check("space_records", true, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        s.drive
            .space(Space::Records(2))
            .map_err(|e| e2s("space 2 records", e))?;
        s.expect_pos("after spacing 2 records", 2)?;
        s.read_expect(2, &mut buf)?;
        s.drive
            .space(Space::Records(-2))
            .map_err(|e| e2s("space -2 records", e))?;
        s.expect_pos("after spacing back 2 records", 1)?;
        s.read_expect(1, &mut buf)?;
        s.drive
            .space(Space::Records(0))
            .map_err(|e| e2s("space 0 records", e))?;
        s.expect_pos("after spacing 0 records", 2)?;
        Ok(None)
    });
    s.check("space_records_stops_at_filemark", true, |s| {
        let fm = s
            .items
            .iter()
            .position(|i| *i == Item::Filemark)
            .unwrap_or(0) as u64;
        s.locate(fm - 1)?;
        match s.drive.space(Space::Records(3)) {
            Err(Error::PositionStoppedEarly { .. }) => {}
            Ok(()) => return fail("spacing records over a filemark did not stop"),
            Err(e) => return fail(e2s("space records over a filemark", e)),
        }
        s.expect_pos("after spacing forward into a filemark (EOM side)", fm + 1)?;
        match s.drive.space(Space::Records(-3)) {
            Err(Error::PositionStoppedEarly { .. }) => {}
            Ok(()) => return fail("spacing records back over a filemark did not stop"),
            Err(e) => return fail(e2s("space records back over a filemark", e)),
        }
        s.expect_pos("after spacing back into a filemark (BOT side)", fm)?;
        Ok(None)
    });
    s.check("space_filemarks", true, |s| {
        let fms: Vec<u64> = s
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| **i == Item::Filemark)
            .map(|(b, _)| b as u64)
            .collect();
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        s.drive
            .space(Space::Filemarks(1))
            .map_err(|e| e2s("space 1 filemark", e))?;
        s.expect_pos("after the first filemark", fms[0] + 1)?;
        s.drive
            .space(Space::Filemarks(2))
            .map_err(|e| e2s("space 2 filemarks", e))?;
        s.expect_pos("after the third filemark", fms[2] + 1)?;
        s.drive
            .space(Space::Filemarks(-1))
            .map_err(|e| e2s("space -1 filemark", e))?;
        s.expect_pos("before the third filemark", fms[2])?;
        s.drive
            .space(Space::Filemarks(-2))
            .map_err(|e| e2s("space -2 filemarks", e))?;
        s.expect_pos("before the first filemark", fms[0])?;
        s.read_expect(fms[0] as usize, &mut buf)?;
        Ok(None)
    });
    s.check("space_filemarks_past_eod", true, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        match s.drive.space(Space::Filemarks(10)) {
            Err(Error::PositionStoppedEarly { .. }) => {}
            Ok(()) => {
                return fail("spacing 10 filemarks on a tape with 3 did not report end of data");
            }
            Err(e) => return fail(e2s("space filemarks past end of data", e)),
        }
        s.expect_pos("after spacing into end of data", s.items.len() as u64)?;
        Ok(None)
    });
    s.check("space_to_eod", true, |s| {
        {
            s.drive.rewind().map_err(|e| e2s("rewind", e))?;
            s.drive
                .space(Space::EndOfData)
                .map_err(|e| e2s("space to end of data", e))?;
            s.expect_pos("at end of data", s.items.len() as u64)?;
            let st = s.drive.status().map_err(|e| e2s("status", e))?;
            expect_eq("status eod", st.eod, true)
        }
        .map(|()| None)
    });
    s.check("record_too_long", true, |s| {
        let (i, len) = s
            .items
            .iter()
            .enumerate()
            .find_map(|(i, it)| match it {
                Item::Record(l) if *l > 1 => Some((i, *l)),
                _ => None,
            })
            .unwrap_or((0, 1));
        s.locate(i as u64)?;
        let mut small = vec![0u8; len - 1];
        match s.drive.read_record(&mut small) {
            Err(Error::RecordTooLong { .. }) => {}
            Ok(o) => {
                return fail(format!(
                    "reading a {len}-byte record into {} bytes gave {o:?}",
                    len - 1
                ));
            }
            Err(e) => return fail(e2s("short read", e)),
        }
        s.expect_pos("after an overlong record", i as u64 + 1)?;
        Ok(None)
    });
    s.check("overwrite_truncates", true, |s| {
        s.locate(4)?;
        let data = pattern(1000, 300.min(max));
        s.drive
            .write_record(&data)
            .map_err(|e| e2s("overwrite", e))?;
        s.drive.write_filemarks(0).map_err(|e| e2s("flush", e))?;
        s.locate(4)?;
        let got = s
            .drive
            .read_record(&mut buf)
            .map_err(|e| e2s("read the new record", e))?;
        expect_eq("new record", got, ReadOutcome::Record(data.len()))?;
        if buf[..data.len()] != data[..] {
            return fail("new record bytes differ");
        }
        let got = s
            .drive
            .read_record(&mut buf)
            .map_err(|e| e2s("read after the new record", e))?;
        expect_eq("after the new record", got, ReadOutcome::EndOfData)?;
        s.drive
            .space(Space::EndOfData)
            .map_err(|e| e2s("space to end of data", e))?;
        s.expect_pos("end of data after overwrite", 5)?;
        s.locate(3)?;
        s.read_expect(3, &mut buf)?;
        Ok(None)
    });
    s.check("mam_write_read", true, |s| {
        let value = b"tapebackup conformance".to_vec();
        let mut padded = value.clone();
        padded.resize(160, 0);
        let attr = MamAttribute {
            id: 0x0803,
            format: 2,
            value: padded.clone(),
        };
        match s.drive.write_attribute(0, &attr) {
            Ok(()) => {}
            Err(Error::Unsupported { .. }) => return Ok(Some("no MAM".to_owned())),
            Err(e) => return fail(e2s("write_attribute 0x0803", e)),
        }
        let got = s
            .drive
            .read_attribute(0, 0x0803)
            .map_err(|e| e2s("read_attribute 0x0803", e))?;
        match got {
            Some(a) if a.id == 0x0803 && a.value.starts_with(&value) => Ok(None),
            other => fail(format!("read back {other:?}")),
        }
    });
    s.check("two_partitions", true, |s| {
        if !s.opts.partition {
            return Ok(Some("not requested (Options::partition)".to_owned()));
        }
        let cap = s.drive.capacity().map_err(|e| e2s("capacity", e))?;
        match s.drive.create_two_partitions((cap.maximum / 10).max(1)) {
            Ok(()) => {}
            Err(Error::Unsupported { .. }) => return Ok(Some("cannot partition".to_owned())),
            Err(e) => return fail(e2s("create_two_partitions", e)),
        }
        expect_eq(
            "partition count",
            s.drive
                .partition_count()
                .map_err(|e| e2s("partition_count", e))?,
            2,
        )?;
        for p in [1u8, 0] {
            s.drive
                .locate(Position {
                    partition: p,
                    block: 0,
                })
                .map_err(|e| e2s("locate partition", e))?;
            let data = pattern(usize::from(p) + 77, 4096.min(max));
            s.drive.write_record(&data).map_err(|e| e2s("write", e))?;
            s.drive.write_filemarks(1).map_err(|e| e2s("filemark", e))?;
            expect_eq(
                "position",
                s.pos()?,
                Position {
                    partition: p,
                    block: 2,
                },
            )?;
        }
        for p in [0u8, 1] {
            s.drive
                .locate(Position {
                    partition: p,
                    block: 0,
                })
                .map_err(|e| e2s("locate partition", e))?;
            let data = pattern(usize::from(p) + 77, 4096.min(max));
            let got = s.drive.read_record(&mut buf).map_err(|e| e2s("read", e))?;
            expect_eq("record", got, ReadOutcome::Record(data.len()))?;
            if buf[..data.len()] != data[..] {
                return fail(format!("partition {p} record differs"));
            }
            let got = s.drive.read_record(&mut buf).map_err(|e| e2s("read", e))?;
            expect_eq("filemark", got, ReadOutcome::Filemark)?;
            let got = s.drive.read_record(&mut buf).map_err(|e| e2s("read", e))?;
            expect_eq("end of data", got, ReadOutcome::EndOfData)?;
        }
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        expect_eq(
            "position after rewind",
            s.pos()?,
            Position {
                partition: 0,
                block: 0,
            },
        )?;
        Ok(None)
    });
    s.check("partition_count", false, |s| {
        match s.drive.partition_count() {
            Ok(n) if (1..=4).contains(&n) => Ok(None),
            Ok(n) => fail(format!("{n} partitions")),
            Err(Error::Unsupported { .. }) => Ok(Some("no partition report".to_owned())),
            Err(e) => fail(e2s("partition_count", e)),
        }
    });
    s.report
}

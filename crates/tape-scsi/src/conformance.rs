//! One drive-semantics test suite, written against [`TapeDrive`]: run on the virtual drive
//! in the tests, on real drives by `cargo xtask hw-smoke` and on tgt's emulated drive
//! through the Linux st driver by `cargo xtask vm-smoke`.
//!
//! [`run`] executes named checks in order and returns a [`Report`]. With
//! [`Options::write`] unset the suite only reads (status, rewind, position, reading the
//! first objects, capacity, MAM); with it set the tape is **overwritten** from the beginning
//! of partition 0, so use a scratch cartridge. Checks a device does not support (fixed
//! block mode, partitions, MAM) are reported as [`Outcome::Unsupported`], never failed.
//! A drive without READ POSITION / LOCATE is positioned with rewind + SPACE instead, and
//! where the check is about LOCATE itself it says so ([`Outcome::Unsupported`]).
//!
//! Positions are checked by reading, too: after a SPACE the suite reads the next two
//! objects and finds where in the test layout they are. That is how it recognises the
//! defects of tgt 1.0.85 precisely and reports them as [`Outcome::DeviceDefect`]: an
//! over-length read that transfers (buffer - record) bytes (the record read into an
//! exact-size buffer is the control), SPACE over records that ignores filemarks, backward
//! SPACE over filemarks that stops one object early, SPACE into end of data answered
//! without BLANK CHECK. Any other wrong answer is [`Outcome::Failed`]. Reads other than the
//! over-length check use a buffer of twice the largest record, so that defect cannot hide
//! what they check.
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
    /// The drive answered wrongly in one precise, recognised way (an emulator or firmware
    /// defect, e.g. tgt's backward filemark spacing), while the check's control
    /// measurement passed: the text says what the drive did and what it should have done.
    /// Any other wrong answer is [`Outcome::Failed`].
    DeviceDefect(String),
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
    /// True when the drive conforms: no check failed and no device defect was found.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none() && self.defects().next().is_none()
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
    }

    /// The checks that found a recognised device defect.
    pub fn defects(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::DeviceDefect(_)))
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
                Outcome::DeviceDefect(why) => writeln!(f, "  DEFECT {}: {why}", c.name)?,
                Outcome::Skipped(why) => writeln!(f, "  SKIP  {}: {why}", c.name)?,
            }
        }
        let failed = self.failures().count();
        let defects = self.defects().count();
        write!(
            f,
            "{} checks, {failed} failed, {defects} device defects",
            self.checks.len()
        )
    }
}

/// A check's body: `Err(text)` fails it, `Ok(outcome)` is its outcome.
type CheckResult = Result<Outcome, String>;

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

/// What one read found, in terms of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Record number `i` of the layout, byte-exact.
    Record(usize),
    /// A record that is not in the layout (or whose bytes differ): its length.
    Unknown(usize),
    Filemark,
    EndOfData,
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Record(i) => write!(f, "record {i}"),
            Seen::Unknown(n) => write!(f, "an unknown {n}-byte record"),
            Seen::Filemark => write!(f, "a filemark"),
            Seen::EndOfData => write!(f, "end of data"),
        }
    }
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
    /// `None` until the first locate; `Some(false)` once it answered
    /// [`Error::Unsupported`]: objects are then reached with rewind + SPACE.
    locate_supported: Option<bool>,
    /// Read buffer of twice the largest record (within the drive's limits): big enough
    /// that a device mishandling over-length reads (see `read_back_larger_buffer`) does
    /// not hide what the other checks look at.
    buf: Vec<u8>,
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
                Ok(o) => o,
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

    /// Moves to logical object `i` of partition 0: LOCATE when the drive has it, else
    /// rewind and SPACE over the filemarks and records before `i`.
    fn seek(&mut self, i: usize) -> Result<(), String> {
        if self.locate_supported != Some(false) {
            match self.drive.locate(Position {
                partition: 0,
                block: i as u64,
            }) {
                Ok(()) => {
                    self.locate_supported = Some(true);
                    return Ok(());
                }
                Err(Error::Unsupported { .. }) => self.locate_supported = Some(false),
                Err(e) => return fail(e2s(&format!("locate {i}"), e)),
            }
        }
        let before = &self.items[..i.min(self.items.len())];
        let filemarks = before.iter().filter(|it| **it == Item::Filemark).count();
        let records = before
            .iter()
            .rev()
            .take_while(|it| **it != Item::Filemark)
            .count();
        self.drive
            .rewind()
            .map_err(|e| e2s(&format!("rewind (to reach object {i})"), e))?;
        if filemarks > 0 {
            self.drive
                .space(Space::Filemarks(filemarks as i64))
                .map_err(|e| e2s(&format!("space {filemarks} filemarks (to object {i})"), e))?;
        }
        if records > 0 {
            self.drive
                .space(Space::Records(records as i64))
                .map_err(|e| e2s(&format!("space {records} records (to object {i})"), e))?;
        }
        Ok(())
    }

    /// Reads one object and names it in terms of the layout.
    fn read_seen(&mut self) -> Result<Seen, String> {
        let got = self
            .drive
            .read_record(&mut self.buf)
            .map_err(|e| e2s("read", e))?;
        Ok(match got {
            ReadOutcome::Filemark => Seen::Filemark,
            ReadOutcome::EndOfData => Seen::EndOfData,
            ReadOutcome::Record(n) => self
                .items
                .iter()
                .enumerate()
                .find(|(i, it)| **it == Item::Record(n) && self.buf[..n] == pattern(*i, n)[..])
                .map_or(Seen::Unknown(n), |(i, _)| Seen::Record(i)),
        })
    }

    /// What reading from object `x` on must give (two objects).
    fn window_at(&self, x: usize) -> [Seen; 2] {
        let at = |j: usize| match self.items.get(j) {
            Some(Item::Record(_)) => Seen::Record(j),
            Some(Item::Filemark) => Seen::Filemark,
            None => Seen::EndOfData,
        };
        [at(x), at(x + 1)]
    }

    /// Reads two objects and finds where the tape was: `Ok(Some(x))` when they are exactly
    /// objects `x` and `x + 1` of the layout (end of data after the last), `Ok(None)` when
    /// they match no place. Moves the tape.
    fn landed(&mut self) -> Result<(Option<usize>, String), String> {
        let a = self.read_seen()?;
        let b = self.read_seen()?;
        let text = format!("{a}, then {b}");
        let seen = [a, b];
        let at = (0..=self.items.len()).find(|&x| self.window_at(x) == seen);
        Ok((at, text))
    }

    /// Checks that the tape is at object `want` by reading from there.
    fn expect_landed(&mut self, what: &str, want: usize) -> Result<(), String> {
        let (at, text) = self.landed()?;
        if at == Some(want) {
            Ok(())
        } else {
            fail(format!(
                "{what}: expected object {want} next, read {text} ({})",
                describe(at)
            ))
        }
    }

    fn read_expect(&mut self, i: usize) -> Result<(), String> {
        let got = self
            .drive
            .read_record(&mut self.buf)
            .map_err(|e| e2s(&format!("read block {i}"), e))?;
        self.expect_item(i, got, None)
    }

    fn expect_item(&self, i: usize, got: ReadOutcome, data: Option<&[u8]>) -> Result<(), String> {
        match self.items[i] {
            Item::Filemark => expect_eq(&format!("block {i}"), got, ReadOutcome::Filemark),
            Item::Record(len) => {
                expect_eq(&format!("block {i}"), got, ReadOutcome::Record(len))?;
                let data = data.unwrap_or(&self.buf);
                if data[..len] != pattern(i, len)[..] {
                    return fail(format!(
                        "block {i}: record bytes differ from what was written"
                    ));
                }
                Ok(())
            }
        }
    }
}

fn describe(at: Option<usize>) -> String {
    match at {
        Some(x) => format!("the tape was at object {x}"),
        None => "no place in the test layout reads like that".to_owned(),
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
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
        locate_supported: None,
        buf: vec![0u8; 2 * max],
    };

    s.check("read_position", false, |s| match s.drive.position() {
        Ok(_) => Ok(Outcome::Passed),
        Err(Error::Unsupported { .. }) => {
            s.position_supported = false;
            Ok(Outcome::Unsupported(
                "no position report (READ POSITION)".to_owned(),
            ))
        }
        Err(e) => fail(e2s("position", e)),
    });

    s.check("status_ready", false, |s| {
        let st = s.drive.status().map_err(|e| e2s("status", e))?;
        if !st.ready {
            return fail("drive reports not ready");
        }
        Ok(Outcome::Passed)
    });
    s.check("variable_block_mode", false, |s| {
        match s.drive.set_block_size(0) {
            Ok(()) => Ok(Outcome::Passed),
            Err(Error::Unsupported { .. }) => Ok(Outcome::Unsupported(
                "cannot select variable block mode".to_owned(),
            )),
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
        Ok(Outcome::Passed)
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
        Ok(Outcome::Passed)
    });
    s.check("capacity", false, |s| match s.drive.capacity() {
        Ok(c) if c.remaining <= c.maximum => Ok(Outcome::Passed),
        Ok(c) => fail(format!(
            "remaining {} exceeds maximum {}",
            c.remaining, c.maximum
        )),
        Err(Error::Unsupported { .. }) => Ok(Outcome::Unsupported("no capacity report".to_owned())),
        Err(e) => fail(e2s("capacity", e)),
    });
    s.check("mam_read", false, |s| {
        match s.drive.read_attribute(0, 0x0000) {
            // 0x0000 REMAINING CAPACITY IN PARTITION is a device attribute every LTO has;
            // a virtual cartridge may simply not have it.
            Ok(_) => Ok(Outcome::Passed),
            Err(Error::Unsupported { .. }) => Ok(Outcome::Unsupported("no MAM".to_owned())),
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
        Ok(Outcome::Passed)
    });
    // Every record read into a buffer of exactly its size: no over-length read involved.
    s.check("read_back_exact", true, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        for i in 0..s.items.len() {
            let len = match s.items[i] {
                Item::Record(len) => len,
                Item::Filemark => max,
            };
            let mut exact = vec![0u8; len];
            let got = s
                .drive
                .read_record(&mut exact)
                .map_err(|e| e2s(&format!("read block {i}"), e))?;
            s.expect_item(i, got, Some(&exact))?;
            s.expect_pos(&format!("position after block {i}"), i as u64 + 1)?;
        }
        Ok(Outcome::Passed)
    });
    // Every record read into a buffer one byte longer than the largest record, as a reader
    // of variable-length records does: the drive must hand back the record and say how
    // long it was.
    s.check("read_back_larger_buffer", true, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        let mut larger = vec![0u8; max + 1];
        let mut defects = Vec::new();
        for i in 0..s.items.len() {
            let got = s
                .drive
                .read_record(&mut larger)
                .map_err(|e| e2s(&format!("read block {i} into {} bytes", max + 1), e))?;
            let Item::Record(len) = s.items[i] else {
                s.expect_item(i, got, Some(&larger))?;
                continue;
            };
            expect_eq(&format!("block {i}"), got, ReadOutcome::Record(len))?;
            let want = pattern(i, len);
            let Some(first_bad) = first_difference(&larger[..len], &want) else {
                continue;
            };
            // Control: the same record into an exact-size buffer.
            s.seek(i)?;
            let mut exact = vec![0u8; len];
            let again = s
                .drive
                .read_record(&mut exact)
                .map_err(|e| e2s(&format!("re-read block {i} into {len} bytes"), e))?;
            let delivered = larger.len() - len;
            if again == ReadOutcome::Record(len) && exact == want && (delivered..len).contains(&first_bad) {
                defects.push(format!(
                    "block {i}: a {len}-byte record read into a {}-byte buffer had only its first {first_bad} byte(s) right, \
                     though the drive reported all {len}; read into a {len}-byte buffer it is byte-exact. \
                     The drive transfers (buffer - record) = {delivered} byte(s) of an over-length read instead of the record",
                    larger.len()
                ));
            } else {
                return fail(format!(
                    "block {i}: record bytes differ from what was written (first difference at byte {first_bad}; \
                     re-read into {len} bytes: {again:?}, {})",
                    if exact == want { "byte-exact" } else { "differs too" }
                ));
            }
        }
        Ok(if defects.is_empty() {
            Outcome::Passed
        } else {
            Outcome::DeviceDefect(defects.join("; "))
        })
    });
    s.check("read_past_eod", true, |s| {
        let n = s.items.len();
        // LOCATE to end of data, or space there: the reads must say end of data either way.
        let located = if s.locate_supported == Some(false) {
            Err(None)
        } else {
            s.drive
                .locate(Position {
                    partition: 0,
                    block: n as u64,
                })
                .map_err(Some)
        };
        match located {
            Ok(()) => {}
            Err(None | Some(Error::Unsupported { .. })) => {
                s.locate_supported = Some(false);
                s.drive.rewind().map_err(|e| e2s("rewind", e))?;
                s.drive
                    .space(Space::EndOfData)
                    .map_err(|e| e2s("space to end of data", e))?;
            }
            Err(Some(e)) => return fail(e2s(&format!("locate {n}"), e)),
        }
        for attempt in 0..2 {
            let got = s
                .drive
                .read_record(&mut s.buf)
                .map_err(|e| e2s("read at end of data", e))?;
            expect_eq(
                &format!("read {attempt} at end of data"),
                got,
                ReadOutcome::EndOfData,
            )?;
            s.expect_pos("position after reading at end of data", n as u64)?;
        }
        let st = s.drive.status().map_err(|e| e2s("status", e))?;
        if !st.eod {
            return fail("status does not report EOD at end of data");
        }
        Ok(Outcome::Passed)
    });
    s.check("locate_and_read", true, |s| {
        for i in [3usize, 0, 7, 2] {
            s.seek(i)?;
            s.expect_pos("position after locate", i as u64)?;
            s.read_expect(i)?;
        }
        Ok(if s.locate_supported == Some(false) {
            Outcome::Unsupported(
                "no LOCATE (the drive reports no position); objects 3, 0, 7, 2 were reached \
                 with rewind + SPACE instead and read back byte-exact"
                    .to_owned(),
            )
        } else {
            Outcome::Passed
        })
    });
    s.check("space_records", true, |s| {
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        s.drive
            .space(Space::Records(2))
            .map_err(|e| e2s("space 2 records", e))?;
        s.expect_pos("after spacing 2 records", 2)?;
        s.read_expect(2)?;
        s.drive
            .space(Space::Records(-2))
            .map_err(|e| e2s("space -2 records", e))?;
        s.expect_pos("after spacing back 2 records", 1)?;
        s.read_expect(1)?;
        s.drive
            .space(Space::Records(0))
            .map_err(|e| e2s("space 0 records", e))?;
        s.expect_pos("after spacing 0 records", 2)?;
        s.read_expect(2)?;
        Ok(Outcome::Passed)
    });
    s.check("space_records_stops_at_filemark", true, |s| {
        let fm = s
            .items
            .iter()
            .position(|i| *i == Item::Filemark)
            .unwrap_or(0);
        let mut defects = Vec::new();
        // Forward from the last record before the filemark: SPACE stops after the filemark.
        s.seek(fm - 1)?;
        match s.drive.space(Space::Records(3)) {
            Err(Error::PositionStoppedEarly { .. }) => {
                s.expect_pos("after spacing forward into a filemark (EOM side)", fm as u64 + 1)?;
                s.expect_landed("after spacing forward into a filemark", fm + 1)?;
            }
            Ok(()) => {
                let (at, text) = s.landed()?;
                if at == Some(fm + 2) {
                    defects.push(format!(
                        "SPACE 3 records from object {} answered GOOD and went on over the filemark \
                         (object {fm}) as if it were a record, to object {}; it must stop just after the filemark \
                         with CHECK CONDITION/FILEMARK",
                        fm - 1,
                        fm + 2
                    ));
                } else {
                    return fail(format!(
                        "spacing records over a filemark did not stop; then read {text} ({})",
                        describe(at)
                    ));
                }
            }
            Err(e) => return fail(e2s("space records over a filemark", e)),
        }
        // Backward from just after the filemark: SPACE stops before it (BOT side).
        s.seek(fm + 1)?;
        match s.drive.space(Space::Records(-3)) {
            Err(Error::PositionStoppedEarly { .. }) => {
                s.expect_pos("after spacing back into a filemark (BOT side)", fm as u64)?;
                s.expect_landed("after spacing back into a filemark", fm)?;
            }
            Ok(()) => {
                let (at, text) = s.landed()?;
                if at == Some(fm + 1 - 3) {
                    defects.push(format!(
                        "SPACE -3 records from object {} answered GOOD and went back over the filemark \
                         (object {fm}) to object {}; it must stop on the filemark's BOT side",
                        fm + 1,
                        fm + 1 - 3
                    ));
                } else {
                    return fail(format!(
                        "spacing records back over a filemark did not stop; then read {text} ({})",
                        describe(at)
                    ));
                }
            }
            Err(e) => return fail(e2s("space records back over a filemark", e)),
        }
        Ok(if defects.is_empty() {
            Outcome::Passed
        } else {
            Outcome::DeviceDefect(defects.join("; "))
        })
    });
    s.check("space_filemarks", true, |s| {
        let fms: Vec<usize> = s
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| **i == Item::Filemark)
            .map(|(b, _)| b)
            .collect();
        // (forward, backward) filemark counts from BOT, and the object that must come next.
        let steps = [
            (1i64, 0i64, fms[0] + 1),
            (3, 0, fms[2] + 1),
            (3, 1, fms[2]),
            (3, 3, fms[0]),
        ];
        let mut defects = Vec::new();
        for (fwd, back, want) in steps {
            let what = if back == 0 {
                format!("after spacing {fwd} filemark(s) from BOT")
            } else {
                format!("after spacing {fwd} filemark(s) from BOT and {back} back")
            };
            s.drive.rewind().map_err(|e| e2s("rewind", e))?;
            s.drive
                .space(Space::Filemarks(fwd))
                .map_err(|e| e2s(&format!("space {fwd} filemarks"), e))?;
            if back > 0 {
                s.drive
                    .space(Space::Filemarks(-back))
                    .map_err(|e| e2s(&format!("space -{back} filemarks"), e))?;
            }
            s.expect_pos(&what, want as u64)?;
            let (at, text) = s.landed()?;
            if at == Some(want) {
                continue;
            }
            if back > 0 && at == Some(want - 1) {
                defects.push(format!(
                    "{what}: read {text}, so the tape stopped one object early (before object {}); \
                     backward SPACE FILEMARKS must stop on the BOT side of the last filemark crossed (object {want})",
                    want - 1
                ));
            } else {
                return fail(format!(
                    "{what}: expected object {want} next, read {text} ({})",
                    describe(at)
                ));
            }
        }
        Ok(if defects.is_empty() {
            Outcome::Passed
        } else {
            Outcome::DeviceDefect(defects.join("; "))
        })
    });
    s.check("space_filemarks_past_eod", true, |s| {
        let n = s.items.len();
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        match s.drive.space(Space::Filemarks(10)) {
            Err(Error::PositionStoppedEarly { .. }) => {
                s.expect_pos("after spacing into end of data", n as u64)?;
                s.expect_landed("after spacing into end of data", n)?;
                Ok(Outcome::Passed)
            }
            Ok(()) => {
                fail("spacing 10 filemarks on a tape with 3 did not report end of data")
            }
            Err(e @ Error::Io { .. }) => {
                let (at, text) = s.landed()?;
                if at == Some(n) {
                    Ok(Outcome::DeviceDefect(format!(
                        "spacing 10 filemarks on a tape with 3 stopped at end of data (reads there give {text}), \
                         but the drive did not report end of data ({e}; SSC: CHECK CONDITION, BLANK CHECK, 00/05)"
                    )))
                } else {
                    fail(format!(
                        "space filemarks past end of data: {e}; then read {text} ({})",
                        describe(at)
                    ))
                }
            }
            Err(e) => fail(e2s("space filemarks past end of data", e)),
        }
    });
    s.check("space_to_eod", true, |s| {
        let n = s.items.len();
        s.drive.rewind().map_err(|e| e2s("rewind", e))?;
        s.drive
            .space(Space::EndOfData)
            .map_err(|e| e2s("space to end of data", e))?;
        s.expect_pos("at end of data", n as u64)?;
        let st = s.drive.status().map_err(|e| e2s("status", e))?;
        expect_eq("status eod", st.eod, true)?;
        s.expect_landed("after spacing to end of data", n)?;
        Ok(Outcome::Passed)
    });
    s.check("record_too_long", true, |s| {
        let (i, len) = s
            .items
            .iter()
            .enumerate()
            .find_map(|(i, it)| match it {
                // Not the tiniest: st refuses a read below the drive's minimum block
                // length (tgt: 4 bytes) before the drive sees it.
                Item::Record(l) if *l > 64 => Some((i, *l)),
                _ => None,
            })
            .unwrap_or((0, 1));
        s.seek(i)?;
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
        s.expect_landed("after an overlong record", i + 1)?;
        Ok(Outcome::Passed)
    });
    s.check("overwrite_truncates", true, |s| {
        s.seek(4)?;
        let len = 300.min(max);
        let data = pattern(4, len);
        s.drive
            .write_record(&data)
            .map_err(|e| e2s("overwrite", e))?;
        s.drive.write_filemarks(0).map_err(|e| e2s("flush", e))?;
        // The tape now holds records 0-3 and the new record 4, then end of data.
        s.items.truncate(4);
        s.items.push(Item::Record(len));
        s.seek(4)?;
        s.read_expect(4)?;
        let got = s
            .drive
            .read_record(&mut s.buf)
            .map_err(|e| e2s("read after the new record", e))?;
        expect_eq("after the new record", got, ReadOutcome::EndOfData)?;
        s.drive
            .space(Space::EndOfData)
            .map_err(|e| e2s("space to end of data", e))?;
        s.expect_pos("end of data after overwrite", 5)?;
        s.seek(3)?;
        s.read_expect(3)?;
        Ok(Outcome::Passed)
    });
    s.check("mam_write_read", true, |s| {
        // A drive without READ ATTRIBUTE has no MAM to write either (tgt rejects WRITE
        // ATTRIBUTE with 24/00 rather than 20/00).
        if let Err(Error::Unsupported { .. }) = s.drive.read_attribute(0, 0x0000) {
            return Ok(Outcome::Unsupported(
                "no MAM (READ ATTRIBUTE rejected)".to_owned(),
            ));
        }
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
            Err(Error::Unsupported { .. }) => return Ok(Outcome::Unsupported("no MAM".to_owned())),
            Err(e) => return fail(e2s("write_attribute 0x0803", e)),
        }
        let got = s
            .drive
            .read_attribute(0, 0x0803)
            .map_err(|e| e2s("read_attribute 0x0803", e))?;
        match got {
            Some(a) if a.id == 0x0803 && a.value.starts_with(&value) => Ok(Outcome::Passed),
            other => fail(format!("read back {other:?}")),
        }
    });
    s.check("two_partitions", true, |s| {
        if !s.opts.partition {
            return Ok(Outcome::Unsupported(
                "not requested (Options::partition)".to_owned(),
            ));
        }
        // A drive without a capacity report may still partition: ask for 1 GB then.
        let first = match s.drive.capacity() {
            Ok(cap) => (cap.maximum / 10).max(1),
            Err(Error::Unsupported { .. }) => 1_000_000_000,
            Err(e) => return fail(e2s("capacity", e)),
        };
        match s.drive.create_two_partitions(first) {
            Ok(()) => {}
            Err(Error::Unsupported { .. }) => {
                return Ok(Outcome::Unsupported("cannot partition".to_owned()));
            }
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
            let got = s
                .drive
                .read_record(&mut s.buf)
                .map_err(|e| e2s("read", e))?;
            expect_eq("record", got, ReadOutcome::Record(data.len()))?;
            if s.buf[..data.len()] != data[..] {
                return fail(format!("partition {p} record differs"));
            }
            let got = s
                .drive
                .read_record(&mut s.buf)
                .map_err(|e| e2s("read", e))?;
            expect_eq("filemark", got, ReadOutcome::Filemark)?;
            let got = s
                .drive
                .read_record(&mut s.buf)
                .map_err(|e| e2s("read", e))?;
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
        Ok(Outcome::Passed)
    });
    s.check("partition_count", false, |s| {
        match s.drive.partition_count() {
            Ok(n) if (1..=4).contains(&n) => Ok(Outcome::Passed),
            Ok(n) => fail(format!("{n} partitions")),
            Err(Error::Unsupported { .. }) => {
                Ok(Outcome::Unsupported("no partition report".to_owned()))
            }
            Err(e) => fail(e2s("partition_count", e)),
        }
    });
    s.report
}

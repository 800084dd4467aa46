//! Library-level probes: `tape-scsi` called directly on the guest's devices, where the CLI
//! has no command for the condition (the conformance suite, a read past end of data, a
//! write with no cartridge, a move to a full slot at the SCSI level).
//!
//! Each probe runs in its own process (`xtask vm-smoke-guest --probe NAME ...`, started by
//! the guest program with a time limit), so a hang or a panic in our code is caught and
//! reported as a failed check instead of stalling the VM. It prints one JSON line: a list
//! of [`ProbeCheck`]s.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tape_scsi::conformance;
use tape_scsi::{
    Changer, Error, ReadOutcome, ScsiChanger, SgDevice, StDrive, StOptions, TapeDrive,
};

use super::report::Outcome;

/// The probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    /// The shared TapeDrive conformance suite, writing (and trying to partition).
    Conformance,
    /// Write a record and a filemark, rewind, read up to end of data and past it.
    ReadPastEod,
    /// Write to a drive that holds no cartridge.
    WriteNotLoaded,
    /// MOVE MEDIUM from a full slot to another full slot.
    MoveToFull,
}

/// Arguments of one probe.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Which probe to run.
    #[arg(long, value_enum)]
    pub probe: Option<Probe>,
    /// Tape node (`/dev/nst0`).
    #[arg(long)]
    pub tape: Option<PathBuf>,
    /// SCSI generic node of the drive or of the changer.
    #[arg(long)]
    pub sg: Option<PathBuf>,
    /// MOVE MEDIUM source element address.
    #[arg(long)]
    pub source: Option<u16>,
    /// MOVE MEDIUM destination element address.
    #[arg(long)]
    pub destination: Option<u16>,
}

/// One result of a probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeCheck {
    /// Name (becomes `<probe>.<name>` in the report).
    pub name: String,
    /// Verdict.
    pub outcome: Outcome,
    /// What happened.
    pub detail: String,
}

fn check(name: &str, outcome: Outcome, detail: impl Into<String>) -> ProbeCheck {
    ProbeCheck {
        name: name.into(),
        outcome,
        detail: detail.into(),
    }
}

/// Runs the probe and prints its JSON line.
pub fn main(a: &ProbeArgs, probe: Probe) -> anyhow::Result<()> {
    let checks = match probe {
        Probe::Conformance => conformance_probe(a),
        Probe::ReadPastEod => read_past_eod(a),
        Probe::WriteNotLoaded => write_not_loaded(a),
        Probe::MoveToFull => move_to_full(a),
    };
    println!("{}", serde_json::to_string(&checks)?);
    Ok(())
}

fn open_drive(a: &ProbeArgs) -> Result<StDrive, Error> {
    StDrive::open(&StOptions {
        tape: a.tape.clone().unwrap_or_else(|| PathBuf::from("/dev/nst0")),
        sg: a.sg.clone(),
    })
}

fn conformance_probe(a: &ProbeArgs) -> Vec<ProbeCheck> {
    let mut drive = match open_drive(a) {
        Ok(d) => d,
        Err(e) => return vec![check("open", Outcome::Fail, format!("open: {e}"))],
    };
    let opts = conformance::Options {
        write: true,
        partition: true,
        max_record: 256 * 1024,
    };
    let report = conformance::run(&mut drive, &opts);
    report
        .checks
        .iter()
        .map(|c| match &c.outcome {
            conformance::Outcome::Passed => check(c.name, Outcome::Pass, "passed"),
            conformance::Outcome::Failed(why) => check(c.name, Outcome::Fail, why.clone()),
            conformance::Outcome::Unsupported(why) => {
                check(c.name, Outcome::Unsupported, why.clone())
            }
            conformance::Outcome::DeviceDefect(why) => {
                check(c.name, Outcome::DeviceDefect, why.clone())
            }
            conformance::Outcome::Skipped(why) => check(c.name, Outcome::Skipped, why.clone()),
        })
        .collect()
}

/// Rewind, write one 64 KiB record and a filemark, rewind, read: record, filemark, end of
/// data, and once more past it. The reads at and past EOD must be typed answers
/// (`EndOfData` or a typed error), never data, an untyped I/O error or a hang.
fn read_past_eod(a: &ProbeArgs) -> Vec<ProbeCheck> {
    let mut out = Vec::new();
    let mut drive = match open_drive(a) {
        Ok(d) => d,
        Err(e) => return vec![check("open", Outcome::Fail, format!("open: {e}"))],
    };
    let data: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let setup = (|| -> Result<(), Error> {
        drive.set_block_size(0)?;
        drive.rewind()?;
        drive.write_record(&data)?;
        drive.write_filemarks(1)?;
        drive.rewind()?;
        Ok(())
    })();
    if let Err(e) = setup {
        out.push(check(
            "write",
            Outcome::Fail,
            format!("writing the test data: {e}"),
        ));
        return out;
    }
    let mut buf = vec![0u8; 1 << 20];
    match drive.read_record(&mut buf) {
        Ok(ReadOutcome::Record(n)) if n == data.len() && buf[..n] == data[..] => out.push(check(
            "record",
            Outcome::Pass,
            "64 KiB record read back byte-exact",
        )),
        other => out.push(check(
            "record",
            Outcome::Fail,
            format!("expected the 64 KiB record, got {other:?}"),
        )),
    }
    match drive.read_record(&mut buf) {
        Ok(ReadOutcome::Filemark) => out.push(check("filemark", Outcome::Pass, "filemark")),
        other => out.push(check(
            "filemark",
            Outcome::Fail,
            format!("expected the filemark, got {other:?}"),
        )),
    }
    // Every read from here on, for the evidence: the first must be EndOfData, the next
    // one too (or a typed error); data here is a wrong answer.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let got = drive.read_record(&mut buf);
        seen.push(match &got {
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("Err({e})"),
        });
        let position = drive
            .status()
            .map(|s| format!("eod={} block={:?}", s.eod, s.block))
            .unwrap_or_else(|e| format!("status: {e}"));
        seen.push(format!("[{position}]"));
    }
    let all = seen.join(" ");
    let first = seen.first().map(String::as_str);
    let second = seen.get(2).map(String::as_str);
    out.push(check(
        "at_eod",
        if first == Some("EndOfData") {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        format!("reads after the filemark: {all}"),
    ));
    out.push(check(
        "past_eod",
        if second
            .is_some_and(|s| s == "EndOfData" || (s.starts_with("Err(") && !s.contains("os error")))
        {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        format!("second read after the filemark: {}", second.unwrap_or("-")),
    ));
    out
}

/// Opening and writing on an empty drive must give [`Error::NotReady`].
fn write_not_loaded(a: &ProbeArgs) -> Vec<ProbeCheck> {
    let result = open_drive(a).and_then(|mut d| d.write_record(&[0u8; 512]));
    let (outcome, detail) = match &result {
        Err(Error::NotReady { .. }) => (
            Outcome::Pass,
            format!("typed error: {}", result_text(&result)),
        ),
        _ => (
            Outcome::Fail,
            format!("expected Error::NotReady, got {}", result_text(&result)),
        ),
    };
    vec![check("not_ready", outcome, detail)]
}

/// MOVE MEDIUM to a full element must give [`Error::DestinationFull`] with its address.
fn move_to_full(a: &ProbeArgs) -> Vec<ProbeCheck> {
    let (Some(sg), Some(src), Some(dst)) = (a.sg.clone(), a.source, a.destination) else {
        return vec![check(
            "args",
            Outcome::Fail,
            "needs --sg, --source, --destination",
        )];
    };
    let result = SgDevice::open(&sg).and_then(|t| ScsiChanger::new(t).move_medium(src, dst));
    let (outcome, detail) = match &result {
        Err(Error::DestinationFull { address, .. }) if *address == dst => (
            Outcome::Pass,
            format!("typed error: {}", result_text(&result)),
        ),
        _ => (
            Outcome::Fail,
            format!(
                "expected Error::DestinationFull {{ address: {dst} }}, got {}",
                result_text(&result)
            ),
        ),
    };
    vec![check("destination_full", outcome, detail)]
}

fn result_text<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("{e} [{e:?}]"),
    }
}

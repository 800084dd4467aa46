//! Checks of our own code on the guest's real devices, each cross-checked with mtx/mt:
//! the `tape-scsi` library through probes (sense handling, the conformance suite) and the
//! `tapebackup` binary.

use std::time::{Duration, Instant};

use super::checks::initial_inventory_diff;
use super::guest::{ADDR_SLOT0, Guest, TAPES};
use super::report::Outcome;

/// Runs our checks. The library starts and must end in the initial inventory.
pub fn run_all(g: &mut Guest) {
    super::cli::run_all(g);
    if !initial_inventory_diff(&match g.mtx_status().0 {
        Ok(m) => m,
        Err(_) => return,
    })
    .is_empty()
    {
        // A CLI check left the library in another state: the probes need the start state.
        return;
    }
    scsi_move_to_full(g);
    scsi_write_not_loaded(g);
    if !rig_move(g, "load", &["load", "2", "0"]) {
        return;
    }
    scsi_read_past_eod(g);
    scsi_conformance(g);
    rig_tgt_defects(g);
    if rig_move(g, "unload", &["unload", "2", "0"]) {
        super::workflow::run_all(g);
    }
}

/// Records the probe's checks as `<prefix>.<name>`, with `evidence` attached to each, or a
/// single failed `<prefix>` when the probe itself failed. Returns true when nothing failed.
fn record_probe(
    g: &mut Guest,
    prefix: &str,
    args: &[&str],
    limit: Duration,
    cross_check: &dyn Fn(&mut Guest) -> String,
) -> bool {
    let t = Instant::now();
    let (result, transcript) = g.probe(args, limit);
    let mut evidence = transcript;
    evidence.push_str(&cross_check(g));
    match result {
        Err(why) => {
            g.record(prefix, Outcome::Fail, format!("probe {why}"), evidence, t);
            false
        }
        Ok(checks) if checks.is_empty() => {
            g.record(
                prefix,
                Outcome::Fail,
                "probe returned no checks".into(),
                evidence,
                t,
            );
            false
        }
        Ok(checks) => {
            let mut ok = true;
            let n = checks.len();
            for (i, c) in checks.into_iter().enumerate() {
                ok &= c.outcome != Outcome::Fail;
                // The evidence (probe transcript and cross-check) goes with the last one.
                let ev = if i + 1 == n {
                    evidence.clone()
                } else {
                    String::new()
                };
                g.record(&format!("{prefix}.{}", c.name), c.outcome, c.detail, ev, t);
            }
            ok
        }
    }
}

/// `mtx status` transcript plus whether it still shows the initial inventory.
fn mtx_unchanged(g: &mut Guest) -> String {
    let (parsed, mut text) = g.mtx_status();
    match parsed {
        Ok(s) => {
            let diff = initial_inventory_diff(&s);
            if diff.is_empty() {
                text.push_str("(cross-check: inventory unchanged)\n");
            } else {
                text.push_str(&format!(
                    "(cross-check: inventory CHANGED: {})\n",
                    diff.join("; ")
                ));
            }
        }
        Err(e) => text.push_str(&format!("(cross-check: mtx unusable: {e:#})\n")),
    }
    text
}

fn mt_status(g: &mut Guest, node: &str) -> String {
    g.run("mt", &["-f", node, "status"]).transcript()
}

/// MOVE MEDIUM slot 1 -> slot 2 (both full) must give DestinationFull(1001) and change
/// nothing.
fn scsi_move_to_full(g: &mut Guest) {
    let Ok(sg) = g.changer_sg() else {
        g.record(
            "scsi.move_to_full",
            Outcome::Fail,
            "no changer".into(),
            String::new(),
            Instant::now(),
        );
        return;
    };
    let src = ADDR_SLOT0.to_string();
    let dst = (ADDR_SLOT0 + 1).to_string();
    let args = [
        "move-to-full",
        "--sg",
        &sg,
        "--source",
        &src,
        "--destination",
        &dst,
    ];
    let limit = Duration::from_secs(g.job.command_timeout_secs);
    record_probe(g, "scsi.move_to_full", &args, limit, &|g| {
        let text = mtx_unchanged(g);
        if text.contains("CHANGED") {
            g.record(
                "scsi.move_to_full.no_change",
                Outcome::Fail,
                "the failed move changed the inventory".into(),
                String::new(),
                Instant::now(),
            );
        }
        text
    });
}

/// A write to drive 1 (empty) must give NotReady.
fn scsi_write_not_loaded(g: &mut Guest) {
    let Some(sg) = g.drive_sg("nst1") else {
        g.record(
            "scsi.write_not_loaded",
            Outcome::Fail,
            "no nst1".into(),
            String::new(),
            Instant::now(),
        );
        return;
    };
    let args = ["write-not-loaded", "--tape", "/dev/nst1", "--sg", &sg];
    let limit = Duration::from_secs(g.job.command_timeout_secs);
    record_probe(g, "scsi.write_not_loaded", &args, limit, &|g| {
        mt_status(g, "/dev/nst1")
    });
}

/// Drive 0 holds TAPE002L6: write, read to EOD and past it.
fn scsi_read_past_eod(g: &mut Guest) {
    let Some(sg) = g.drive_sg("nst0") else {
        g.record(
            "scsi.read_past_eod",
            Outcome::Fail,
            "no nst0".into(),
            String::new(),
            Instant::now(),
        );
        return;
    };
    let args = ["read-past-eod", "--tape", "/dev/nst0", "--sg", &sg];
    let limit = Duration::from_secs(g.job.command_timeout_secs);
    record_probe(g, "scsi.read_past_eod", &args, limit, &|g| {
        mt_status(g, "/dev/nst0")
    });
}

/// The TapeDrive conformance suite on /dev/nst0 (writing, partitioning asked for).
fn scsi_conformance(g: &mut Guest) {
    let Some(sg) = g.drive_sg("nst0") else {
        g.record(
            "conformance",
            Outcome::Fail,
            "no nst0".into(),
            String::new(),
            Instant::now(),
        );
        return;
    };
    let args = ["conformance", "--tape", "/dev/nst0", "--sg", &sg];
    let limit = Duration::from_secs(g.job.command_timeout_secs * 2);
    record_probe(g, "conformance", &args, limit, &|g| {
        mt_status(g, "/dev/nst0")
    });
}

/// mtx load/unload used to set up a state (not a check of our code): records a check only
/// when it fails. For `load 2 0` the drive must then hold TAPE002L6; for `unload` the
/// library must be back to the initial inventory.
fn rig_move(g: &mut Guest, what: &str, mtx_args: &[&str]) -> bool {
    let t = Instant::now();
    let Ok(sg) = g.changer_sg() else {
        return false;
    };
    let mut args = vec!["-f", sg.as_str()];
    args.extend_from_slice(mtx_args);
    let r = g.run("mtx", &args);
    let (parsed, text) = g.mtx_status();
    let mut evidence = r.transcript();
    evidence.push_str(&text);
    let ok = r.ok()
        && match (&parsed, what) {
            (Ok(s), "load") => s
                .drive(0)
                .is_some_and(|d| d.barcode.as_deref() == Some(TAPES[1])),
            (Ok(s), _) => initial_inventory_diff(s).is_empty(),
            (Err(_), _) => false,
        };
    if !ok {
        g.record(
            &format!("rig.mtx_{what}"),
            Outcome::Fail,
            format!(
                "mtx {} did not give the expected inventory",
                mtx_args.join(" ")
            ),
            evidence,
            t,
        );
    }
    ok
}

/// The tgt defects the conformance suite diagnoses, shown with standard tools only (dd, mt
/// and sg_raw on the drive's sg node), so the report proves them independently of our
/// code. A defect that shows is recorded as [`Outcome::DeviceDefect`]; a device that
/// behaves as SSC says passes; a rig that cannot even read a record back exactly fails.
fn rig_tgt_defects(g: &mut Guest) {
    let Some(sg) = g.drive_sg("nst0") else {
        return;
    };
    let work = g.work.clone();
    let rec = work.join("rec256k");
    let exact = work.join("exact.bin");
    let over = work.join("over.bin");
    let (rec_s, exact_s, over_s) = (
        rec.to_string_lossy().into_owned(),
        exact.to_string_lossy().into_owned(),
        over.to_string_lossy().into_owned(),
    );

    // 1. Over-length read: one 262144-byte record, read by SCSI READ(6) with 262144 and
    // with 262145 bytes.
    let t = Instant::now();
    let data: Vec<u8> = (0..262_144u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut evidence = String::new();
    let mut problems = Vec::new();
    if let Err(e) = std::fs::write(&rec, &data) {
        problems.push(format!("cannot write {rec_s}: {e}"));
    }
    let steps: [(&str, Vec<&str>); 6] = [
        ("mt", vec!["-f", "/dev/nst0", "rewind"]),
        (
            "dd",
            vec!["of=/dev/nst0", "bs=262144", "count=1", "status=none"],
        ),
        ("mt", vec!["-f", "/dev/nst0", "weof", "1"]),
        ("mt", vec!["-f", "/dev/nst0", "rewind"]),
        (
            "sg_raw",
            vec![
                "-r", "262144", "-o", &exact_s, &sg, "08", "00", "04", "00", "00", "00",
            ],
        ),
        ("mt", vec!["-f", "/dev/nst0", "rewind"]),
    ];
    let if_arg = format!("if={rec_s}");
    for (prog, args) in steps {
        let mut args = args;
        if prog == "dd" {
            args.insert(0, &if_arg);
        }
        let r = g.run(prog, &args);
        evidence.push_str(&r.transcript());
        if !r.ok() {
            problems.push(format!("`{}` failed", r.cmdline));
        }
    }
    // CHECK CONDITION (ILI) is the expected answer here, so sg_raw's exit code is not used.
    let r = g.run(
        "sg_raw",
        &[
            "-r", "262145", "-o", &over_s, &sg, "08", "00", "04", "00", "01", "00",
        ],
    );
    evidence.push_str(&r.transcript());
    let exact_ok = std::fs::read(&exact).is_ok_and(|b| b == data);
    let over_bytes = std::fs::read(&over).map(|b| b.len()).unwrap_or(0);
    let text = format!("{}{}", r.stdout, r.stderr);
    let ili_info_1 = text.contains("ILI") && text.contains("Info fld=0x1 ");
    evidence.push_str(&format!(
        "(exact-size read byte-exact: {exact_ok}; over-length read delivered {over_bytes} byte(s))\n"
    ));
    let (outcome, detail) = if !problems.is_empty() || !exact_ok {
        problems.push(
            "the 262144-byte record did not read back exactly with a 262144-byte READ(6)".into(),
        );
        (Outcome::Fail, problems.join("; "))
    } else if over_bytes == 262_144 {
        (
            Outcome::Pass,
            "READ(6) of 262145 bytes on a 262144-byte record delivered the whole record".into(),
        )
    } else if over_bytes == 1 && ili_info_1 {
        (
            Outcome::DeviceDefect,
            "tgt bug shown with sg_raw: READ(6) of 262145 bytes on a 262144-byte record delivers 1 byte \
             (residual 262144) with sense NO SENSE + ILI, INFORMATION 1: tgt transfers (requested - record) \
             bytes of an over-length read instead of the record, while its sense gives the right length, so \
             st returns 262144 bytes of which only the first is data. Exact-size reads are byte-exact."
                .into(),
        )
    } else {
        (
            Outcome::Fail,
            format!(
                "over-length READ(6) delivered {over_bytes} bytes (ILI with INFORMATION 1: {ili_info_1})"
            ),
        )
    };
    g.record("rig.tgt_overlength_read", outcome, detail, evidence, t);

    // 2. SPACE 10 filemarks on a tape with one: SSC says BLANK CHECK, 00/05.
    let t = Instant::now();
    let mut evidence = String::new();
    let rw = g.run("mt", &["-f", "/dev/nst0", "rewind"]);
    evidence.push_str(&rw.transcript());
    let r = g.run("sg_raw", &[&sg, "11", "01", "00", "00", "0a", "00"]);
    evidence.push_str(&r.transcript());
    let text = format!("{}{}", r.stdout, r.stderr);
    let eod = text.contains("End-of-data detected");
    let (outcome, detail) = if !rw.ok() || !eod {
        (
            Outcome::Fail,
            "SPACE 10 filemarks past end of data did not report end-of-data (00/05)".into(),
        )
    } else if text.contains("Blank check") {
        (
            Outcome::Pass,
            "SPACE 10 filemarks past end of data: BLANK CHECK, end-of-data detected".into(),
        )
    } else {
        (
            Outcome::DeviceDefect,
            "tgt bug shown with sg_raw: SPACE 10 filemarks past end of data answers sense key NO SENSE \
             with 00/05 (end-of-data detected) instead of BLANK CHECK, so st reports EIO without \
             its EOD status"
                .into(),
        )
    };
    g.record("rig.tgt_space_past_eod", outcome, detail, evidence, t);
}

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
    rig_move(g, "unload", &["unload", "2", "0"]);
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

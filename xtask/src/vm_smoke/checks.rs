//! The checks the guest runs once the library is up. The rig checks use only standard tools
//! (sysfs, mtx, mt) and prove the path; the `tapebackup` checks run our binary against the
//! same devices and cross-check every answer with mtx/mt.

use std::time::Instant;

use super::guest::{CHANGER_SERIAL, DRIVE_SERIALS, Guest, N_IE, N_SLOTS, TAPES, kernel_devices};
use super::mtx::MtxStatus;
use super::report::Outcome;

/// Runs every check in order. A failed check does not stop the ones after it, except where
/// a later check needs the library in a known state that could not be restored.
pub fn run_all(g: &mut Guest) {
    rig_kernel_devices(g);
    if !rig_mtx_initial(g) {
        return;
    }
    rig_mt_empty(g);
    if rig_load_unload(g) && g.job.tapebackup.is_some() {
        super::ours::run_all(g);
    }
}

/// Differences between an mtx inventory and the initial one (drives empty, cartridges in
/// slots 1.., the rest empty, two I/E slots last). Empty means "equal".
pub fn initial_inventory_diff(s: &MtxStatus) -> Vec<String> {
    let mut diff = Vec::new();
    if s.drives.len() != DRIVE_SERIALS.len() {
        diff.push(format!(
            "{} drives, expected {}",
            s.drives.len(),
            DRIVE_SERIALS.len()
        ));
    }
    for d in s.drives.iter().filter(|d| d.full) {
        diff.push(format!("drive {} is full ({:?})", d.index, d.barcode));
    }
    let total = (N_SLOTS + N_IE) as usize;
    if s.slots.len() != total {
        diff.push(format!("{} slots, expected {total}", s.slots.len()));
    }
    for slot in &s.slots {
        let expected = TAPES.get(slot.number as usize - 1).copied();
        let ie_expected = slot.number > N_SLOTS;
        if slot.import_export != ie_expected {
            diff.push(format!(
                "slot {} import/export={} expected {ie_expected}",
                slot.number, slot.import_export
            ));
        }
        if slot.barcode.as_deref() != expected || slot.full != expected.is_some() {
            diff.push(format!(
                "slot {}: full={} barcode={:?}, expected {:?}",
                slot.number, slot.full, slot.barcode, expected
            ));
        }
    }
    diff
}

fn rig_kernel_devices(g: &mut Guest) {
    let t = Instant::now();
    let devs = kernel_devices();
    let mut evidence = String::from("sg     hctl      type vendor model       serial    node\n");
    for d in &devs {
        evidence.push_str(&format!(
            "{:<6} {:<9} {:<4} {:<6} {:<11} {:<9} {}\n",
            d.sg,
            d.hctl,
            d.pdt,
            d.vendor,
            d.model,
            d.serial,
            d.nst.as_deref().or(d.sch.as_deref()).unwrap_or("-")
        ));
    }
    let mut problems = Vec::new();
    let changer: Vec<_> = devs.iter().filter(|d| d.pdt == 8).collect();
    if changer.len() != 1 || changer[0].serial != CHANGER_SERIAL || changer[0].sch.is_none() {
        problems.push(format!(
            "expected one changer with serial {CHANGER_SERIAL} and a sch node"
        ));
    }
    for serial in DRIVE_SERIALS {
        if !devs
            .iter()
            .any(|d| d.pdt == 1 && d.serial == serial && d.nst.is_some())
        {
            problems.push(format!(
                "no tape drive with serial {serial} and an nst node"
            ));
        }
    }
    let outcome = if problems.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    let detail = if problems.is_empty() {
        "sysfs shows the changer and both drives with their serials".to_string()
    } else {
        problems.join("; ")
    };
    g.record("rig.kernel_devices", outcome, detail, evidence, t);
}

fn rig_mtx_initial(g: &mut Guest) -> bool {
    let t = Instant::now();
    let (parsed, evidence) = g.mtx_status();
    let (outcome, detail) = match parsed {
        Err(e) => (Outcome::Fail, format!("mtx status unusable: {e:#}")),
        Ok(s) => {
            let diff = initial_inventory_diff(&s);
            if diff.is_empty() {
                (
                    Outcome::Pass,
                    format!(
                        "mtx sees {} drives, {} slots ({} I/E), cartridges {}",
                        s.drives.len(),
                        s.slots.len(),
                        s.import_export_slots().len(),
                        TAPES.join(",")
                    ),
                )
            } else {
                (Outcome::Fail, diff.join("; "))
            }
        }
    };
    let pass = outcome == Outcome::Pass;
    g.record("rig.mtx_status", outcome, detail, evidence, t);
    pass
}

fn rig_mt_empty(g: &mut Guest) {
    let t = Instant::now();
    let r = g.run("mt", &["-f", "/dev/nst0", "status"]);
    let (outcome, detail) = if r.ok() && r.stdout.contains("DR_OPEN") {
        (
            Outcome::Pass,
            "mt status on the empty drive: DR_OPEN (no cartridge)".to_string(),
        )
    } else {
        (
            Outcome::Fail,
            "mt status did not report an empty drive (DR_OPEN)".to_string(),
        )
    };
    g.record("rig.mt_status_empty", outcome, detail, r.transcript(), t);
}

/// mtx load 1 0 -> mt sees ONLINE -> mtx unload 1 0 -> inventory as at start.
fn rig_load_unload(g: &mut Guest) -> bool {
    let t = Instant::now();
    let Ok(sg) = g.changer_sg() else {
        g.record(
            "rig.mtx_load_unload",
            Outcome::Fail,
            "no changer".into(),
            String::new(),
            t,
        );
        return false;
    };
    let mut evidence = String::new();
    let mut problems = Vec::new();
    let load = g.run("mtx", &["-f", &sg, "load", "1", "0"]);
    evidence.push_str(&load.transcript());
    if !load.ok() {
        problems.push("mtx load 1 0 failed".to_string());
    }
    let (after_load, text) = g.mtx_status();
    evidence.push_str(&text);
    match after_load {
        Ok(s) => {
            let d0 = s.drive(0);
            if !d0.is_some_and(|d| d.full && d.barcode.as_deref() == Some(TAPES[0])) {
                problems.push(format!("after load, drive 0 is {d0:?}"));
            }
            if s.slot(1).is_none_or(|s| s.full) {
                problems.push("after load, slot 1 is not empty".into());
            }
        }
        Err(e) => problems.push(format!("{e:#}")),
    }
    let mt = g.run("mt", &["-f", "/dev/nst0", "status"]);
    evidence.push_str(&mt.transcript());
    if !(mt.ok() && mt.stdout.contains("ONLINE")) {
        problems.push("mt status after load does not say ONLINE".into());
    }
    let unload = g.run("mtx", &["-f", &sg, "unload", "1", "0"]);
    evidence.push_str(&unload.transcript());
    if !unload.ok() {
        problems.push("mtx unload 1 0 failed".into());
    }
    let (after_unload, text) = g.mtx_status();
    evidence.push_str(&text);
    let restored = match after_unload {
        Ok(s) => {
            let diff = initial_inventory_diff(&s);
            if !diff.is_empty() {
                problems.push(format!("after unload: {}", diff.join("; ")));
            }
            diff.is_empty()
        }
        Err(e) => {
            problems.push(format!("{e:#}"));
            false
        }
    };
    let outcome = if problems.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    let detail = if problems.is_empty() {
        "mtx load 1 0, mt status ONLINE, mtx unload 1 0: inventory back to the start".to_string()
    } else {
        problems.join("; ")
    };
    g.record("rig.mtx_load_unload", outcome, detail, evidence, t);
    restored
}

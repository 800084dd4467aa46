//! Checks of the `tapebackup` binary on the guest's devices. Every answer is compared with
//! an independent view: sysfs (the kernel) for `devices`, `mtx status` for the library,
//! `mt status` for the drive. Errors must come with exit code 6 (tape device or library
//! error) and the typed error's message, never a panic (exit 101) or a hang.

use std::time::Instant;

use serde_json::Value;

use super::checks::initial_inventory_diff;
use super::guest::{
    ADDR_DRIVE0, ADDR_IE0, ADDR_SLOT0, DRIVE_SERIALS, Guest, Ran, TAPES, kernel_devices,
};
use super::mtx::{self, MtxStatus};
use super::report::Outcome;

/// Exit code of tape device and library errors (crates/cli/src/exit.rs).
const EXIT_TAPE: i32 = 6;
/// Exit code of "drive not ready" (crates/cli/src/exit.rs, one of the tape faults an
/// operator acts on).
const EXIT_NOT_READY: i32 = 12;

/// Runs the CLI checks; the library starts and ends in the initial inventory.
pub fn run_all(g: &mut Guest) {
    devices(g);
    inventory_vs_mtx(g, "cli.inventory_vs_mtx");
    status_vs_mtx(g);
    drive_not_loaded(g);
    if !load(g) {
        return;
    }
    inventory_vs_mtx(g, "cli.inventory_vs_mtx_loaded");
    drive_status_loaded(g);
    drive_unsupported(g, "cli.drive_mam", &["mam"], "MAM (READ ATTRIBUTE)");
    drive_unsupported(g, "cli.drive_alerts", &["alerts"], "TapeAlert (LOG SENSE)");
    move_to_ie_and_back(g);
    move_to_full(g);
    unload(g);
}

impl Guest {
    /// Runs our binary.
    pub(super) fn tb(&mut self, args: &[&str]) -> Ran {
        let exe = self
            .job
            .tapebackup
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.run(&exe, args)
    }
}

/// Outcome from a list of problems.
fn verdict(problems: &[String], ok_text: &str) -> (Outcome, String) {
    if problems.is_empty() {
        (Outcome::Pass, ok_text.to_string())
    } else {
        (Outcome::Fail, problems.join("; "))
    }
}

fn json_of(r: &Ran, problems: &mut Vec<String>) -> Option<Value> {
    if !r.ok() {
        problems.push(format!("`{}` failed", r.cmdline));
        return None;
    }
    match serde_json::from_str(r.stdout.trim()) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("`{}` printed no JSON: {e}", r.cmdline));
            None
        }
    }
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// `tapebackup devices` against sysfs: kind, sg, nst, sch and serial of each device.
fn devices(g: &mut Guest) {
    let t = Instant::now();
    let mut problems = Vec::new();
    let json = g.tb(&["--json", "devices"]);
    let table = g.tb(&["devices"]);
    let lsscsi = g.run("lsscsi", &["-g"]);
    let mut evidence = table.transcript();
    evidence.push_str(&lsscsi.transcript());
    evidence.push_str(&json.transcript());
    if !table.ok() {
        problems.push("`tapebackup devices` failed".into());
    }
    if let Some(v) = json_of(&json, &mut problems) {
        let list = v.as_array().cloned().unwrap_or_default();
        let kernel: Vec<_> = kernel_devices()
            .into_iter()
            .filter(|d| d.pdt == 1 || d.pdt == 8)
            .collect();
        if list.len() != kernel.len() {
            problems.push(format!(
                "{} devices listed, the kernel has {} changers/tape drives",
                list.len(),
                kernel.len()
            ));
        }
        for k in &kernel {
            let Some(d) = list.iter().find(|d| s(&d["hctl"]) == Some(k.hctl.as_str())) else {
                problems.push(format!("{} ({}) not listed", k.hctl, k.sg));
                continue;
            };
            let kind = if k.pdt == 8 { "changer" } else { "tape" };
            let want_sg = format!("/dev/{}", k.sg);
            let want_nst = k.nst.as_ref().map(|n| format!("/dev/{n}"));
            let want_sch = k.sch.as_ref().map(|n| format!("/dev/{n}"));
            let pairs = [
                (
                    "kind",
                    Some(kind.to_string()),
                    s(&d["kind"]).map(str::to_string),
                ),
                ("sg", Some(want_sg), s(&d["sg"]).map(str::to_string)),
                ("tape", want_nst, s(&d["tape"]).map(str::to_string)),
                ("changer", want_sch, s(&d["changer"]).map(str::to_string)),
                (
                    "serial",
                    Some(k.serial.clone()),
                    s(&d["serial"]).map(str::to_string),
                ),
            ];
            for (field, want, got) in pairs {
                if want != got {
                    problems.push(format!(
                        "{}: {field} is {got:?}, the kernel says {want:?}",
                        k.hctl
                    ));
                }
            }
        }
    }
    let (o, d) = verdict(
        &problems,
        "changer and both drives found with the kernel's sg/nst/sch mapping and serials",
    );
    g.record("cli.devices", o, d, evidence, t);
}

/// Compares `tapebackup --json library inventory` with mtx, element by element.
fn compare_inventory(v: &Value, m: &MtxStatus) -> Vec<String> {
    let mut problems = Vec::new();
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let drives = arr("drives");
    let slots = arr("slots");
    let ie = arr("import_export");
    if drives.len() != m.drives.len() {
        problems.push(format!(
            "{} drives, mtx has {}",
            drives.len(),
            m.drives.len()
        ));
    }
    for md in &m.drives {
        let Some(d) = drives
            .iter()
            .find(|d| d["number"].as_u64() == Some(md.index.into()))
        else {
            problems.push(format!("drive {} missing", md.index));
            continue;
        };
        let full = d["full"].as_bool();
        let barcode = s(&d["barcode"]).map(str::to_string);
        let source = d["source_slot"].as_u64().map(|n| n as u32);
        let address = d["address"].as_u64();
        if full != Some(md.full) || barcode != md.barcode {
            problems.push(format!(
                "drive {}: full={full:?} barcode={barcode:?}, mtx: full={} barcode={:?}",
                md.index, md.full, md.barcode
            ));
        }
        if md.full && source != md.source_slot {
            problems.push(format!(
                "drive {}: source slot {source:?}, mtx says {:?}",
                md.index, md.source_slot
            ));
        }
        let want_addr = u64::from(ADDR_DRIVE0 + md.index);
        if address != Some(want_addr) {
            problems.push(format!(
                "drive {}: address {address:?}, tgt has {want_addr}",
                md.index
            ));
        }
        let serial = s(&d["drive_serial"]);
        let want_serial = DRIVE_SERIALS.get(md.index as usize).copied();
        // tgt sends every READ ELEMENT STATUS reply 8 bytes short, which cuts the last
        // drive's DVCID serial (see the shared SCSI fixtures): there, no serial is the right
        // answer too. A wrong serial never is.
        let last = md.index as usize + 1 == m.drives.len();
        if serial != want_serial && !(last && serial.is_none()) {
            problems.push(format!(
                "drive {}: serial {serial:?}, tgt has {want_serial:?}",
                md.index
            ));
        }
    }
    let n_storage = m.slots.iter().filter(|s| !s.import_export).count();
    if slots.len() != n_storage || ie.len() != m.slots.len() - n_storage {
        problems.push(format!(
            "{} slots + {} I/E, mtx has {} + {}",
            slots.len(),
            ie.len(),
            n_storage,
            m.slots.len() - n_storage
        ));
    }
    for ms in &m.slots {
        let list = if ms.import_export { &ie } else { &slots };
        let Some(e) = list
            .iter()
            .find(|e| e["number"].as_u64() == Some(ms.number.into()))
        else {
            problems.push(format!(
                "slot {} missing (import/export={})",
                ms.number, ms.import_export
            ));
            continue;
        };
        let full = e["full"].as_bool();
        let barcode = s(&e["barcode"]).map(str::to_string);
        if full != Some(ms.full) || barcode != ms.barcode {
            problems.push(format!(
                "slot {}: full={full:?} barcode={barcode:?}, mtx: full={} barcode={:?}",
                ms.number, ms.full, ms.barcode
            ));
        }
        let want_addr = if ms.import_export {
            ADDR_IE0 + ms.number - 1 - n_storage as u32
        } else {
            ADDR_SLOT0 + ms.number - 1
        };
        if e["address"].as_u64() != Some(want_addr.into()) {
            problems.push(format!(
                "slot {}: address {:?}, tgt has {want_addr}",
                ms.number,
                e["address"].as_u64()
            ));
        }
    }
    problems
}

/// `tapebackup library inventory` agrees with `mtx status` slot for slot.
fn inventory_vs_mtx(g: &mut Guest, name: &str) {
    let t = Instant::now();
    let mut problems = Vec::new();
    let json = g.tb(&["--json", "library", "inventory"]);
    let table = g.tb(&["library", "inventory"]);
    let (m, mtx_text) = g.mtx_status();
    let mut evidence = table.transcript();
    evidence.push_str(&mtx_text);
    evidence.push_str(&json.transcript());
    if !table.ok() {
        problems.push("`tapebackup library inventory` failed".into());
    }
    match (json_of(&json, &mut problems), m) {
        (Some(v), Ok(m)) => problems.extend(compare_inventory(&v, &m)),
        (_, Err(e)) => problems.push(format!("mtx: {e:#}")),
        (None, _) => {}
    }
    let (o, d) = verdict(
        &problems,
        "inventory agrees with mtx for every drive and slot (state, barcode, source, address, drive serial)",
    );
    g.record(name, o, d, evidence, t);
}

/// `tapebackup library status` (mtx layout) parses as mtx output equal to mtx's own.
fn status_vs_mtx(g: &mut Guest) {
    let t = Instant::now();
    let ours = g.tb(&["library", "status"]);
    let (m, mtx_text) = g.mtx_status();
    let mut evidence = ours.transcript();
    evidence.push_str(&mtx_text);
    let mut problems = Vec::new();
    if !ours.ok() {
        problems.push("`tapebackup library status` failed".into());
    } else {
        match (mtx::parse(&ours.stdout), m) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => problems.push(format!("differs from mtx: ours {a:?}, mtx {b:?}")),
            (Err(e), _) => problems.push(format!("our mtx-layout output does not parse: {e:#}")),
            (_, Err(e)) => problems.push(format!("mtx: {e:#}")),
        }
    }
    let (o, d) = verdict(&problems, "mtx-layout status equals mtx status");
    g.record("cli.status_vs_mtx", o, d, evidence, t);
}

/// A failing command: exit `code`, no panic, and stderr containing `needle`.
fn expect_tape_error(r: &Ran, code: i32, needle: &str, problems: &mut Vec<String>) {
    if r.timed_out {
        problems.push(format!("`{}` hung", r.cmdline));
    } else if r.code != Some(code) {
        problems.push(format!(
            "`{}` exited {:?}, expected {code}",
            r.cmdline, r.code
        ));
    }
    if r.stderr.contains("panicked") {
        problems.push("it panicked".into());
    }
    if !r.stderr.to_lowercase().contains(&needle.to_lowercase()) {
        problems.push(format!("message lacks {needle:?}"));
    }
}

/// Drive 1 is empty: `drive rewind` must fail with NotReady; `drive status` must say
/// not ready; mt agrees.
fn drive_not_loaded(g: &mut Guest) {
    let t = Instant::now();
    let mut problems = Vec::new();
    let rewind = g.tb(&["drive", "--drive", "/dev/nst1", "rewind"]);
    let status = g.tb(&["--json", "drive", "--drive", "/dev/nst1", "status"]);
    let mt = g.run("mt", &["-f", "/dev/nst1", "status"]);
    let mut evidence = rewind.transcript();
    evidence.push_str(&status.transcript());
    evidence.push_str(&mt.transcript());
    expect_tape_error(&rewind, EXIT_NOT_READY, "not ready", &mut problems);
    if let Some(v) = json_of(&status, &mut problems)
        && v["ready"].as_bool() != Some(false)
    {
        problems.push(format!(
            "status says ready={:?} for an empty drive",
            v["ready"]
        ));
    }
    if !mt.stdout.contains("DR_OPEN") {
        problems.push("mt does not show DR_OPEN (rig)".into());
    }
    let (o, d) = verdict(
        &problems,
        "empty drive: rewind fails with exit 12 \"drive not ready\", status says not ready, mt: DR_OPEN",
    );
    g.record("cli.drive_not_loaded", o, d, evidence, t);
}

/// Runs a library command and checks mtx afterwards with `expect`.
fn library_step(
    g: &mut Guest,
    name: &str,
    args: &[&str],
    ok_text: &str,
    expect: &dyn Fn(&MtxStatus) -> Vec<String>,
) -> bool {
    let t = Instant::now();
    let mut all = vec!["library"];
    all.extend_from_slice(args);
    let r = g.tb(&all);
    let (m, mtx_text) = g.mtx_status();
    let mut evidence = r.transcript();
    evidence.push_str(&mtx_text);
    let mut problems = Vec::new();
    if !r.ok() {
        problems.push(format!("`{}` failed", r.cmdline));
    }
    match m {
        Ok(m) => problems.extend(expect(&m)),
        Err(e) => problems.push(format!("mtx: {e:#}")),
    }
    let (o, d) = verdict(&problems, ok_text);
    let pass = o == Outcome::Pass;
    g.record(name, o, d, evidence, t);
    pass
}

fn expect_slot(m: &MtxStatus, slot: u32, barcode: Option<&str>) -> Vec<String> {
    match m.slot(slot) {
        Some(s) if s.full == barcode.is_some() && s.barcode.as_deref() == barcode => Vec::new(),
        other => vec![format!("mtx slot {slot}: {other:?}, expected {barcode:?}")],
    }
}

/// `library load 1 0`: mtx shows TAPE001L6 in drive 0 from slot 1, slot 1 empty.
fn load(g: &mut Guest) -> bool {
    library_step(
        g,
        "cli.load",
        &["load", "1", "0"],
        "library load 1 0: mtx shows TAPE001L6 in drive 0 (from slot 1), slot 1 empty",
        &|m| {
            let mut p = expect_slot(m, 1, None);
            match m.drive(0) {
                Some(d)
                    if d.full
                        && d.barcode.as_deref() == Some(TAPES[0])
                        && d.source_slot == Some(1) => {}
                other => p.push(format!("mtx drive 0: {other:?}")),
            }
            p
        },
    )
}

/// `drive status` on the loaded drive: ready, BOT after load; mt agrees (ONLINE).
fn drive_status_loaded(g: &mut Guest) {
    let t = Instant::now();
    let mut problems = Vec::new();
    let json = g.tb(&["--json", "drive", "--drive", "/dev/nst0", "status"]);
    let text = g.tb(&["drive", "--drive", "/dev/nst0", "status"]);
    let mt = g.run("mt", &["-f", "/dev/nst0", "status"]);
    let mut evidence = text.transcript();
    evidence.push_str(&mt.transcript());
    evidence.push_str(&json.transcript());
    if !text.ok() {
        problems.push("`tapebackup drive status` failed".into());
    }
    if let Some(v) = json_of(&json, &mut problems) {
        if v["ready"].as_bool() != Some(true) {
            problems.push(format!("ready={:?}", v["ready"]));
        }
        if v["block_size"].as_u64() != Some(0) {
            problems.push(format!(
                "block_size={:?}, expected 0 (variable)",
                v["block_size"]
            ));
        }
        if v["write_protected"].as_bool() != Some(false) {
            problems.push(format!("write_protected={:?}", v["write_protected"]));
        }
    }
    if !(mt.ok() && mt.stdout.contains("ONLINE")) {
        problems.push("mt does not show ONLINE".into());
    }
    let (o, d) = verdict(
        &problems,
        "loaded drive: ready, variable block mode; mt: ONLINE",
    );
    g.record("cli.drive_status_loaded", o, d, evidence, t);
}

/// A feature tgt lacks: exit 6 with "not supported", no panic, no hang -> Unsupported.
/// Success with a real answer is also fine (a future tgt); anything else fails.
fn drive_unsupported(g: &mut Guest, name: &str, action: &[&str], what: &str) {
    let t = Instant::now();
    let mut args = vec!["drive", "--drive", "/dev/nst0"];
    args.extend_from_slice(action);
    let r = g.tb(&args);
    let evidence = r.transcript();
    let (o, d) = if r.ok() {
        (Outcome::Pass, format!("{what}: answered"))
    } else {
        let mut problems = Vec::new();
        expect_tape_error(&r, EXIT_TAPE, "not supported", &mut problems);
        if problems.is_empty() {
            (
                Outcome::Unsupported,
                format!(
                    "{what}: tgt lacks it; reported cleanly: {}",
                    r.stderr.trim()
                ),
            )
        } else {
            (Outcome::Fail, format!("{what}: {}", problems.join("; ")))
        }
    };
    g.record(name, o, d, evidence, t);
}

/// `library move 2 9` (slot -> first I/E slot), then `library move 9 2`.
fn move_to_ie_and_back(g: &mut Guest) {
    let Ok(Some(ie)) = g
        .mtx_status()
        .0
        .map(|m| m.import_export_slots().first().copied())
    else {
        g.record(
            "cli.move_to_ie",
            Outcome::Fail,
            "mtx shows no I/E slot".into(),
            String::new(),
            Instant::now(),
        );
        return;
    };
    let ie_s = ie.to_string();
    let out = library_step(
        g,
        "cli.move_to_ie",
        &["move", "2", &ie_s],
        &format!("library move 2 {ie}: mtx shows TAPE002L6 in I/E slot {ie}, slot 2 empty"),
        &|m| {
            let mut p = expect_slot(m, 2, None);
            p.extend(expect_slot(m, ie, Some(TAPES[1])));
            p
        },
    );
    if out {
        library_step(
            g,
            "cli.move_from_ie",
            &["move", &ie_s, "2"],
            &format!("library move {ie} 2: TAPE002L6 back in slot 2, I/E slot {ie} empty"),
            &|m| {
                let mut p = expect_slot(m, 2, Some(TAPES[1]));
                p.extend(expect_slot(m, ie, None));
                p
            },
        );
    }
}

/// `library move 3 4` (both full): exit 6, "destination element 1003 is full", nothing moved.
fn move_to_full(g: &mut Guest) {
    let t = Instant::now();
    let r = g.tb(&["library", "move", "3", "4"]);
    let (m, mtx_text) = g.mtx_status();
    let mut evidence = r.transcript();
    evidence.push_str(&mtx_text);
    let mut problems = Vec::new();
    let dst = ADDR_SLOT0 + 3;
    expect_tape_error(
        &r,
        EXIT_TAPE,
        &format!("destination element {dst} is full"),
        &mut problems,
    );
    match m {
        Ok(m) => {
            problems.extend(expect_slot(&m, 3, Some(TAPES[2])));
            problems.extend(expect_slot(&m, 4, Some(TAPES[3])));
        }
        Err(e) => problems.push(format!("mtx: {e:#}")),
    }
    let (o, d) = verdict(
        &problems,
        &format!(
            "move to a full slot: exit 6, \"destination element {dst} is full\"; mtx: nothing moved"
        ),
    );
    g.record("cli.move_to_full", o, d, evidence, t);
}

/// `library unload 0`: the cartridge goes home; mtx shows the initial inventory.
fn unload(g: &mut Guest) {
    library_step(
        g,
        "cli.unload",
        &["unload", "0"],
        "library unload 0: TAPE001L6 back in slot 1, mtx shows the initial inventory",
        &initial_inventory_diff,
    );
}

//! Faults injected into the virtual library while `run` writes: each fails with one clear
//! line on stderr and its own exit code, and the next run, once the fault is cleared,
//! finishes with nothing lost and nothing recorded twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{copy_dir, noise, ok, tb, walk};
use tape_scsi::{CartridgeFaults, DriveFaults, FaultOp, MediumErrorFault, VirtualLibrary};

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    ws: PathBuf,
    root: PathBuf,
}

impl Setup {
    fn lib(&self) -> VirtualLibrary {
        VirtualLibrary::open(&self.ws.join("vtl")).unwrap()
    }

    fn barcodes(&self) -> Vec<String> {
        self.lib()
            .state()
            .unwrap()
            .cartridges
            .keys()
            .cloned()
            .collect()
    }

    /// Adds files to the source, so the next run has something to write.
    fn more(&self, tag: &str) {
        for i in 0..4 {
            std::fs::write(
                self.src.join(format!("{tag}-{i}.bin")),
                noise(&format!("{tag}{i}"), 700 << 10),
            )
            .unwrap();
        }
    }
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello tape\n").unwrap();
    std::fs::write(src.join("sub/big.bin"), noise("big", 3 << 20)).unwrap();
    let ws = root.join("ws");
    let source = format!("s={}", src.display());
    ok(
        &root,
        &[
            "init",
            ws.to_str().unwrap(),
            "--source",
            &source,
            "--capacity",
            "64MiB",
        ],
    );
    let s = Setup {
        _tmp: tmp,
        src,
        ws,
        root,
    };
    s.more("first");
    s
}

/// `run` fails with `code` and a one-line message containing every one of `words`.
fn fails(s: &Setup, code: i32, words: &[&str]) -> String {
    let out: Output = tb(&s.ws, &["-q", "run"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{err}");
    for w in words {
        assert!(lines[0].contains(w), "{w:?} not in {err}");
    }
    err
}

/// The next run finishes; then nothing is lost, nothing recorded twice, every pack is on
/// tape and reads back, and a restore is byte-exact.
fn recovers(s: &Setup) {
    ok(&s.ws, &["-q", "run"]);
    ok(&s.ws, &["catalog", "check"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["to_pack"], 0, "{status}");
    assert_eq!(status["packs_unwritten"], 0, "{status}");
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
    let to = s.root.join("restored");
    let _ = std::fs::remove_dir_all(&to);
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    let files = walk(&s.src);
    for f in &files {
        let rel = f.strip_prefix(&s.src).unwrap();
        assert_eq!(
            std::fs::read(f).unwrap(),
            std::fs::read(to.join("s").join(rel)).unwrap_or_default(),
            "{} differs",
            rel.display()
        );
    }
    assert_eq!(files.len(), walk(&to.join("s")).len());
}

#[test]
fn medium_error_while_writing() {
    let s = setup();
    // Every cartridge fails to write a block early on its data partition.
    for b in s.barcodes() {
        s.lib()
            .set_cartridge_faults(
                &b,
                CartridgeFaults {
                    medium_errors: vec![MediumErrorFault {
                        partition: 1,
                        block: 12,
                        on: FaultOp::Write,
                    }],
                    ..CartridgeFaults::default()
                },
            )
            .unwrap();
    }
    fails(&s, 11, &["medium error", "block 12"]);
    for b in s.barcodes() {
        s.lib()
            .set_cartridge_faults(&b, CartridgeFaults::default())
            .unwrap();
    }
    recovers(&s);
}

#[test]
fn drive_not_ready() {
    let s = setup();
    s.lib()
        .set_drive_faults(
            0,
            DriveFaults {
                not_ready: true,
                ..DriveFaults::default()
            },
        )
        .unwrap();
    fails(&s, 12, &["not ready"]);
    s.lib().set_drive_faults(0, DriveFaults::default()).unwrap();
    recovers(&s);
}

#[test]
fn unit_attention_after_load_is_cleared_and_the_run_goes_on() {
    // A unit attention after a load is what real drives report when a cartridge was
    // changed: the workflow acknowledges it and goes on.
    let s = setup();
    s.lib()
        .set_drive_faults(
            0,
            DriveFaults {
                unit_attention_after_load: true,
                ..DriveFaults::default()
            },
        )
        .unwrap();
    recovers(&s);
    // Also on a second session (an appendable tape loaded again).
    s.more("second");
    recovers(&s);
}

#[test]
fn write_protected_cartridge() {
    let s = setup();
    ok(&s.ws, &["-q", "run"]);
    // The appendable tape (the first run's) is write protected; more to write: it is
    // skipped (reported) and the packs go to a blank tape.
    let written = written_tape(&s);
    let protect = |b: &str, on: bool| {
        s.lib()
            .set_cartridge_faults(
                b,
                CartridgeFaults {
                    write_protected: on,
                    ..CartridgeFaults::default()
                },
            )
            .unwrap();
    };
    protect(&written, true);
    s.more("second");
    let report: serde_json::Value = serde_json::from_str(&ok(&s.ws, &["--json", "run"])).unwrap();
    let w = &report["write"];
    assert_eq!(
        w["skipped"],
        serde_json::json!([format!("{written}: write protected")]),
        "{w}"
    );
    assert!(w["packs"].as_u64().unwrap() > 0, "{w}");
    assert!(!w["tapes"].to_string().contains(&written), "{w}");
    assert_eq!(w["formatted"].as_array().unwrap().len(), 1, "{w}");
    // Only write-protected cartridges left: the run stops with exit 14, naming them.
    for b in s.barcodes() {
        protect(&b, true);
    }
    s.more("third");
    fails(&s, 14, &[&written, "write protected"]);
    for b in s.barcodes() {
        protect(&b, false);
    }
    recovers(&s);
}

#[test]
fn wrong_cartridge_in_the_slot() {
    let s = setup();
    ok(&s.ws, &["-q", "run"]);
    let written = written_tape(&s);
    // Another LTFS volume (formatted elsewhere) sits where the catalog's tape should be:
    // swap the cartridge's directory with one formatted by a second workspace.
    let other = setup();
    ok(&other.ws, &["-q", "run"]);
    let lib = s.lib();
    let mine = lib.cartridge_dir(&written).unwrap();
    let theirs = other.lib().cartridge_dir(&written).unwrap();
    let aside = s.root.join("aside");
    std::fs::rename(&mine, &aside).unwrap();
    copy_dir(&theirs, &mine);
    s.more("second");
    fails(&s, 15, &["wrong cartridge", &written]);
    // The right cartridge goes back in the slot.
    std::fs::remove_dir_all(&mine).unwrap();
    std::fs::rename(&aside, &mine).unwrap();
    recovers(&s);
}

/// The barcode of the (one) tape holding packs.
fn written_tape(s: &Setup) -> String {
    let tapes: serde_json::Value = serde_json::from_str(&ok(&s.ws, &["--json", "tapes"])).unwrap();
    let with_packs: Vec<String> = tapes
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["packs"].as_u64().unwrap_or(0) > 0)
        .filter_map(|t| t["label"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(with_packs.len(), 1, "{tapes}");
    with_packs[0].clone()
}

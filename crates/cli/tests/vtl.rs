//! `tapebackup vtl`: the built binary against real library directories; effects checked
//! through the tape-scsi API in this (another) process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tape_scsi::{Changer, Error, Position, ReadOutcome, ScsiChanger, TapeDrive, VirtualLibrary};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn tapebackup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapebackup"))
        .args(args)
        .output()
        .expect("run tapebackup")
}

fn ok(args: &[&str]) -> String {
    let out = tapebackup(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

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

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn create_and_status_json() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("lib");
    let text = ok(&[
        "vtl",
        "create",
        s(&dir),
        "--slots",
        "8",
        "--drives",
        "2",
        "--ie",
        "1",
        "--capacity",
        "2GiB",
        "--barcode-prefix",
        "A0",
    ]);
    assert!(text.contains("slot  1   A00001L5"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(&["--json", "vtl", "status", s(&dir)]))?;
    assert_eq!(v["capacity"], 2u64 << 30);
    assert_eq!(v["slots"].as_array().map(Vec::len), Some(8));
    assert_eq!(v["slots"][7]["barcode"], "A00008L5");
    assert_eq!(v["drives"][1]["serial"], "VDRV00002");
    assert_eq!(v["ie"].as_array().map(Vec::len), Some(1));
    // The library works from another process.
    let lib = VirtualLibrary::open(&dir)?;
    assert_eq!(lib.state()?.cartridges.len(), 8);
    let cart = lib.cartridge_dir("A00001L5")?;
    assert!(cart.join("filedebug_tc_conf.xml").is_file());
    assert!(cart.join("0_0_E").is_file());
    Ok(())
}

#[test]
fn errors_and_exit_codes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("lib");
    ok(&[
        "vtl",
        "create",
        s(&dir),
        "--slots",
        "2",
        "--capacity",
        "500M",
    ]);
    let out = tapebackup(&["vtl", "create", s(&dir)]);
    assert_eq!(out.status.code(), Some(6), "library error");
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let out = tapebackup(&[
        "vtl",
        "create",
        s(&tmp.path().join("x")),
        "--capacity",
        "2 lots",
    ]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    let out = tapebackup(&[
        "vtl",
        "fault",
        s(&dir),
        "--drive",
        "0",
        "--write-protect",
        "on",
    ]);
    assert_eq!(out.status.code(), Some(2), "cartridge flag on a drive");
    let out = tapebackup(&["vtl", "status", s(&tmp.path().join("nothing"))]);
    assert_eq!(out.status.code(), Some(6));
    Ok(())
}

#[test]
fn faults_set_by_the_cli_reach_drives_in_other_processes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("lib");
    ok(&[
        "vtl",
        "create",
        s(&dir),
        "--slots",
        "3",
        "--capacity",
        "1M",
        "--barcode-prefix",
        "F",
    ]);
    let lib = VirtualLibrary::open(&dir)?;
    let mut changer = ScsiChanger::new(lib.changer());
    changer.load(1, 0)?;
    {
        let mut d = lib.drive(0)?;
        for i in 0..4u8 {
            d.write_record(&[i; 64])?;
        }
        d.write_filemarks(1)?;
    }
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "--json",
        "vtl",
        "fault",
        s(&dir),
        "--cartridge",
        "F00001L5",
        "--medium-error",
        "0:2:read",
        "--early-warning-at",
        "128",
    ]))?;
    assert_eq!(v["faults"]["medium_errors"][0]["block"], 2);
    ok(&[
        "vtl",
        "fault",
        s(&dir),
        "--drive",
        "0",
        "--unit-attention-after-load",
        "on",
    ]);
    let mut d = lib.drive(0)?;
    let mut buf = [0u8; 64];
    d.locate(Position {
        partition: 0,
        block: 2,
    })?;
    assert!(matches!(
        d.read_record(&mut buf),
        Err(Error::MediumError { block: 2, .. })
    ));
    assert!(d.status()?.eot || d.capacity()?.remaining == 0);
    d.unload()?;
    d.load()?;
    assert!(matches!(d.position(), Err(Error::UnitAttention { .. })));
    // Cleared by the CLI while the drive is open: the next command sees it.
    ok(&[
        "vtl",
        "fault",
        s(&dir),
        "--cartridge",
        "F00001L5",
        "--clear",
    ]);
    d.locate(Position {
        partition: 0,
        block: 2,
    })?;
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(64));
    ok(&["vtl", "fault", s(&dir), "--drive", "0", "--not-ready", "on"]);
    assert!(matches!(d.position(), Err(Error::NotReady { .. })));
    let text = ok(&["vtl", "status", s(&dir)]);
    assert!(
        text.contains("faults: not-ready; unit-attention-after-load"),
        "{text}"
    );
    Ok(())
}

#[test]
fn import_the_reference_cartridge() -> TestResult {
    let Some(shared) = shared() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("lib");
    ok(&[
        "vtl",
        "create",
        s(&dir),
        "--slots",
        "4",
        "--cartridges",
        "2",
    ]);
    let src = shared.join("fixtures/ltfs/reference-tape0");
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "--json",
        "vtl",
        "import-cartridge",
        s(&dir),
        s(&src),
        "--barcode",
        "TST001L5",
    ]))?;
    assert_eq!(v["slot"], 3);
    let out = tapebackup(&[
        "vtl",
        "import-cartridge",
        s(&dir),
        s(&tmp.path().join("nope")),
        "--barcode",
        "X1",
    ]);
    assert_eq!(out.status.code(), Some(6));
    let lib = VirtualLibrary::open(&dir)?;
    ScsiChanger::new(lib.changer()).load(3, 1)?;
    let mut d = lib.drive(1)?;
    let mut buf = vec![0u8; 1 << 20];
    assert_eq!(d.read_record(&mut buf)?, ReadOutcome::Record(80));
    assert!(buf.starts_with(b"VOL1"));
    let added = ok(&["vtl", "add-cartridge", s(&dir)]);
    // Slot 3 emptied when its cartridge went to drive 1.
    assert!(added.contains("VT0003L5 in slot 3"), "{added}");
    Ok(())
}

#[test]
fn concurrent_processes_do_not_lose_updates() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("lib");
    ok(&[
        "vtl",
        "create",
        s(&dir),
        "--slots",
        "24",
        "--cartridges",
        "0",
        "--capacity",
        "1M",
    ]);
    // Six processes at once, four cartridges each: every state change is read-modify-write
    // under the library lock, so all 24 must be there.
    let children: Vec<_> = (0..6)
        .map(|p| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 0..4 {
                    let out = tapebackup(&[
                        "vtl",
                        "add-cartridge",
                        s(&dir),
                        "--barcode",
                        &format!("C{p}{i}"),
                    ]);
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for c in children {
        c.join().map_err(|_| "a child failed")?;
    }
    let state = VirtualLibrary::open(&dir)?.state()?;
    assert_eq!(state.cartridges.len(), 24);
    assert!(state.slots.iter().all(Option::is_some));
    Ok(())
}

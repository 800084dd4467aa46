//! `tapebackup devices`, `library` and `drive` run as a binary against a virtual library
//! (the same SMC code path as hardware) and a fake sysfs tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tape_scsi::{LibraryOptions, VirtualLibrary};

fn tapebackup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapebackup"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running tapebackup: {e}"))
}

fn ok(args: &[&str]) -> String {
    let out = tapebackup(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("stdout: {e}"))
}

fn library() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path().join("vtl");
    let options = LibraryOptions {
        slots: 4,
        drives: 2,
        ie: 1,
        capacity: 4 << 20,
        reserve: None,
        barcode_prefix: "T0".into(),
        cartridges: Some(3),
    };
    VirtualLibrary::create(&dir, &options).unwrap_or_else(|e| panic!("vtl create: {e}"));
    (tmp, dir)
}

#[test]
fn status_load_move_unload_on_a_virtual_library() {
    let (_tmp, dir) = library();
    let vtl = dir.to_str().unwrap();
    let status = ok(&["library", "--vtl", vtl, "status"]);
    assert!(
        status.contains(":2 Drives, 5 Slots ( 1 Import/Export )"),
        "{status}"
    );
    assert!(status.contains("Data Transfer Element 0:Empty"), "{status}");
    assert!(
        status.contains("Storage Element 1:Full :VolumeTag=T00001L5"),
        "{status}"
    );
    assert!(status.contains("Storage Element 4:Empty"), "{status}");
    assert!(
        status.contains("Storage Element 5 IMPORT/EXPORT:Empty"),
        "{status}"
    );

    ok(&["library", "--vtl", vtl, "load", "2", "1"]);
    let inv: serde_json::Value =
        serde_json::from_str(&ok(&["--json", "library", "--vtl", vtl, "inventory"])).unwrap();
    let d1 = &inv["drives"][1];
    assert_eq!(
        (d1["full"].as_bool(), d1["source_slot"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(d1["barcode"], "T00002L5");
    assert_eq!(inv["slots"][1]["full"], false);
    assert!(inv["drives"][0]["drive_serial"].is_string());

    // The drive sees the cartridge.
    let st: serde_json::Value = serde_json::from_str(&ok(&[
        "--json", "drive", "--vtl", vtl, "--number", "1", "status",
    ]))
    .unwrap();
    assert_eq!(st["ready"], true);
    ok(&["drive", "--vtl", vtl, "--number", "1", "rewind"]);

    // Loading into a full drive fails with the tape exit code and a one-line message.
    let out = tapebackup(&["library", "--vtl", vtl, "load", "1", "1"]);
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is full"), "{err}");

    ok(&["library", "--vtl", vtl, "move", "slot3", "5"]);
    let status = ok(&["library", "status", "--vtl", vtl]);
    assert!(
        status.contains("Storage Element 5 IMPORT/EXPORT:Full :VolumeTag=T00003L5"),
        "{status}"
    );

    // Unload ejects the threaded cartridge first, then returns it home.
    let out: serde_json::Value =
        serde_json::from_str(&ok(&["--json", "library", "--vtl", vtl, "unload", "1"])).unwrap();
    assert_eq!(out["slot"], 2);
    let status = ok(&["library", "--vtl", vtl, "status"]);
    assert!(status.contains("Data Transfer Element 1:Empty"), "{status}");
    assert!(
        status.contains("Storage Element 2:Full :VolumeTag=T00002L5"),
        "{status}"
    );

    // Nothing to unload now.
    let out = tapebackup(&["library", "--vtl", vtl, "unload", "1"]);
    assert_eq!(out.status.code(), Some(6));
}

#[test]
fn drive_status_of_an_empty_drive_and_bad_selections() {
    let (_tmp, dir) = library();
    let vtl = dir.to_str().unwrap();
    let text = ok(&["drive", "--vtl", vtl, "status"]);
    assert!(text.contains("not ready"), "{text}");
    let out = tapebackup(&["drive", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name a drive"));
    let out = tapebackup(&["library", "--vtl", vtl, "--changer", "/dev/sg9", "status"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "conflicting flags are a usage error"
    );
    let out = tapebackup(&["library", "--vtl", "/nonexistent/vtl", "status"]);
    assert_eq!(out.status.code(), Some(6));
}

#[test]
fn devices_lists_the_fake_sysfs_tree() {
    let sysfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tape-scsi/tests/fixtures/sysfs");
    let sysfs = sysfs.to_str().unwrap();
    let text = ok(&["devices", "--sysfs", sysfs]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].contains("tape")
            && lines[1].contains("DRV00001")
            && lines[1].contains("/dev/nst0")
            && lines[1].contains("/dev/sg1")
    );
    assert!(
        lines[3].contains("changer")
            && lines[3].contains("LIB00001")
            && lines[3].contains("/dev/sch0")
    );
    let all = ok(&["devices", "--all", "--sysfs", sysfs]);
    assert_eq!(all.lines().count(), 5);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["--json", "devices", "--sysfs", sysfs])).unwrap();
    assert_eq!(json[1]["serial"], "DRV00002");
    assert_eq!(json[1]["tape"], "/dev/nst1");
}

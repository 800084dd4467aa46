//! Discovery on a fake sysfs tree shaped like the tgt library's (tests/fixtures/sysfs):
//! bus devices as links into /sys/devices, class links back, one old-style
//! `scsi_generic:sgN` link, and vpd_pg80 files copied from the tgt captures.

use std::path::{Path, PathBuf};

use tape_scsi::{DeviceKind, discover_in, find_by_serial};

/// hctl, kind, vendor, model, serial, sg, tape, changer.
type Row = (
    String,
    DeviceKind,
    String,
    String,
    Option<String>,
    Option<PathBuf>,
    Option<PathBuf>,
    Option<PathBuf>,
);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs")
}

#[test]
fn lists_changer_and_drives_like_lsscsi() {
    let devices = discover_in(&root(), Path::new("/dev")).unwrap();
    let rows: Vec<Row> = devices
        .iter()
        .map(|d| {
            (
                d.hctl.clone(),
                d.kind,
                d.vendor.clone(),
                d.model.clone(),
                d.serial.clone(),
                d.sg.clone(),
                d.tape.clone(),
                d.changer.clone(),
            )
        })
        .collect();
    let p = |s: &str| Some(PathBuf::from(s));
    assert_eq!(
        rows,
        vec![
            (
                "0:0:0:0".into(),
                DeviceKind::Other(12),
                "IET".into(),
                "Controller".into(),
                None,
                p("/dev/sg0"),
                None,
                None
            ),
            (
                "0:0:0:1".into(),
                DeviceKind::Tape,
                "HP".into(),
                "Ultrium-6".into(),
                Some("DRV00001".into()),
                p("/dev/sg1"),
                p("/dev/nst0"),
                None
            ),
            (
                "0:0:0:2".into(),
                DeviceKind::Tape,
                "HP".into(),
                "Ultrium-6".into(),
                Some("DRV00002".into()),
                p("/dev/sg2"),
                p("/dev/nst1"),
                None
            ),
            (
                "0:0:0:3".into(),
                DeviceKind::Changer,
                "STK".into(),
                "L700".into(),
                Some("LIB00001".into()),
                p("/dev/sg3"),
                None,
                p("/dev/sch0")
            ),
        ]
    );
    assert_eq!(devices[1].revision, "0001");
    let d = find_by_serial(&devices, DeviceKind::Tape, "DRV00002").unwrap();
    assert_eq!(d.tape.as_deref(), Some(Path::new("/dev/nst1")));
    assert!(find_by_serial(&devices, DeviceKind::Changer, "DRV00002").is_none());
}

#[test]
fn a_kernel_without_scsi_has_no_devices() {
    let empty = std::env::temp_dir().join(format!("tape-scsi-no-sysfs-{}", std::process::id()));
    assert!(discover_in(&empty, Path::new("/dev")).unwrap().is_empty());
}

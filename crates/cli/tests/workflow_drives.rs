//! Several drives: `tapes.drives = [0, 1]` writes two tapes at once from one shared pack
//! queue; every pack is written exactly once and restores byte-exact, with both drives
//! reading tapes at once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::collections::HashMap;

use common::{noise, ok, same_tree, tb};

/// `pipelined`: `run` (packs sealed by each drive's session as it writes them; on raw
/// tapes through a pack file) instead of `get`, `pack`, `write`.
fn two_drive_write(raw: bool, pipelined: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    // 12 packs of 1.5 MiB on 8 MiB cartridges: more than one tape's worth.
    for i in 0..12 {
        std::fs::write(
            src.join(format!("f{i:02}.bin")),
            noise(&format!("f{i}"), 3 << 19),
        )
        .unwrap();
    }
    let ws = root.join("ws");
    let source = format!("s={}", src.display());
    let mut init = vec![
        "init",
        ws.to_str().unwrap(),
        "--source",
        &source,
        "--drives",
        "2",
        "--capacity",
        "8MiB",
    ];
    if raw {
        init.push("--no-partitions");
    }
    ok(root, &init);
    let cfg = ws.join("tapebackup.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("drives = []"), "{text}");
    std::fs::write(&cfg, text.replace("drives = []", "drives = [0, 1]")).unwrap();

    let out = if pipelined {
        tb(&ws, &["run"])
    } else {
        ok(&ws, &["get"]);
        ok(&ws, &["pack"]);
        tb(&ws, &["write"])
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("wrote 12 pack(s)"), "{stdout}");
    // Both drives loaded tapes.
    assert!(stderr.contains("into drive 0"), "{stderr}");
    assert!(stderr.contains("into drive 1"), "{stderr}");

    // The catalog: every pack complete exactly once; locations on at least two tapes,
    // each written by its own session.
    let cat = catalog::Catalog::open(ws.join("catalog.db")).unwrap();
    let mut parts: HashMap<i64, Vec<(u32, u32)>> = HashMap::new();
    let mut used = 0;
    for v in cat.read().volumes().unwrap() {
        let locs = cat.read().locations_on_volume(v.id).unwrap();
        if !locs.is_empty() {
            used += 1;
        }
        for l in locs {
            parts
                .entry(l.pack.get())
                .or_default()
                .push((l.part.index, l.part.count));
        }
    }
    assert!(used >= 2, "only {used} tape(s) used");
    assert_eq!(parts.len(), 12, "{parts:?}");
    for (pack, mut p) in parts {
        p.sort();
        let count = p[0].1;
        let want: Vec<(u32, u32)> = (0..count).map(|i| (i, count)).collect();
        assert_eq!(p, want, "pack {pack} recorded as {p:?}");
    }
    drop(cat);

    // Verify reads with both drives too.
    let out = tb(&ws, &["verify"]);
    let v = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{v}\n{stderr}");
    assert!(v.contains(" 0 failed"), "{v}");
    assert!(stderr.contains("into drive 0"), "{stderr}");
    assert!(stderr.contains("into drive 1"), "{stderr}");
    // Restore with both drives: each takes a tape, parts of spanning packs may come from
    // either drive.
    let to = root.join("restored");
    let out = tb(&ws, &["restore", "--to", to.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("into drive 0"), "{stderr}");
    assert!(stderr.contains("into drive 1"), "{stderr}");
    same_tree(&src, &to.join("s"));
}

#[test]
fn two_drives_write_two_tapes_at_once() {
    two_drive_write(false, false);
}

#[test]
fn two_raw_drives_write_two_tapes_at_once() {
    two_drive_write(true, false);
}

#[test]
fn two_drives_stream_packs_onto_two_tapes_at_once() {
    two_drive_write(false, true);
}

#[test]
fn two_raw_drives_run_through_pack_files() {
    two_drive_write(true, true);
}

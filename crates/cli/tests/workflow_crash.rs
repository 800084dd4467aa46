//! A write SIGKILLed right after it formatted a blank tape (LTFS, or the raw label) and
//! before the catalog marked the tape appendable: the next write recognises its own
//! half-initialised tape (the UUID recorded before formatting is on the tape), formats it
//! again and uses it; nothing is skipped and a restore is byte-exact. A tape whose label
//! carries another UUID is still never overwritten. A `run` SIGKILLed after it streamed
//! packs onto the tape and before it recorded them packs those contents again. A restore
//! SIGKILLed with restored files under temporary names resumes: the leftovers go, every
//! file lands byte-exact, and nothing temporary stays in the destination.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use common::{copy_dir, noise, ok, walk};

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    ws: PathBuf,
    root: PathBuf,
}

/// A workspace with packs ready to write (`get` and `pack` done); `raw` gives drives
/// that cannot partition (so the raw format).
fn setup(raw: bool) -> Setup {
    let s = fresh(raw);
    ok(&s.ws, &["get"]);
    ok(&s.ws, &["pack"]);
    s
}

/// A workspace where nothing was fetched yet.
fn fresh(raw: bool) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello crash\n").unwrap();
    for i in 0..3 {
        std::fs::write(
            src.join(format!("sub/f{i}.bin")),
            noise(&format!("f{i}"), 900 << 10),
        )
        .unwrap();
    }
    let ws = root.join("ws");
    let source = format!("s={}", src.display());
    let mut args = vec![
        "init",
        ws.to_str().unwrap(),
        "--source",
        &source,
        "--capacity",
        "64MiB",
    ];
    if raw {
        args.extend(["--no-partitions", "--no-locate"]);
    }
    ok(&root, &args);
    Setup {
        _tmp: tmp,
        src,
        ws,
        root,
    }
}

/// Runs `write` with the kill hook at `point` and SIGKILLs it once it reports being there.
fn write_killed_after(ws: &Path, point: &str) {
    killed_after(ws, &["write"], point);
}

/// Runs the command `args` with the kill hook at `point` and SIGKILLs it once it reports
/// being there.
fn killed_after(ws: &Path, args: &[&str], point: &str) {
    let command = args.join(" ");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tapebackup"))
        .arg("-q")
        .args(args)
        .current_dir(ws)
        .env_remove("TAPEBACKUP_CONFIG")
        .env_remove("TAPEBACKUP_CATALOG")
        .env("TAPEBACKUP_KILL_AFTER", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut reached = false;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.starts_with(&format!("TAPEBACKUP_KILL_AFTER={point}")) {
            reached = true;
            break;
        }
        seen.push(line);
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        reached,
        "{command} never reached the kill point {point} ({status}):\n{}",
        seen.join("\n")
    );
}

fn tapes(ws: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&ok(ws, &["--json", "tapes"])).unwrap();
    v.as_array().unwrap().clone()
}

/// The one tape the catalog knows with a volume UUID, and that UUID.
fn reserved_tape(ws: &Path) -> (String, String) {
    let with_uuid: Vec<(String, String)> = tapes(ws)
        .iter()
        .filter_map(|t| {
            let u = t.pointer("/medium/ltfs_uuid")?.as_str()?;
            Some((t["label"].as_str()?.to_owned(), u.to_owned()))
        })
        .collect();
    assert_eq!(with_uuid.len(), 1, "{with_uuid:?}");
    with_uuid[0].clone()
}

/// Everything is on tape, verifies, and restores byte-exact.
fn all_written_and_restorable(s: &Setup) {
    ok(&s.ws, &["catalog", "check"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["packs_unwritten"], 0, "{status}");
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
    let to = s.root.join("restored");
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
fn run_killed_after_streaming_packs_packs_them_again() {
    // `run` streamed every pack onto the tape and wrote the index covering them, then
    // died before the transaction that records packs and locations: the catalog has
    // no pack, the contents still wait, nothing was deleted. The next run packs them again
    // (new names, the same tape appended) and everything restores byte-exact.
    let s = fresh(false);
    killed_after(&s.ws, &["run"], "streamed");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["packs"], 0, "{status}");
    assert_eq!(status["to_pack"], 4, "{status}");
    ok(&s.ws, &["catalog", "check"]);
    let out = ok(&s.ws, &["run"]);
    assert!(out.contains("packed 4 file(s)"), "{out}");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["to_pack"], 0, "{status}");
    all_written_and_restorable(&s);
}

fn killed_after_format_then_resumed(raw: bool) {
    let s = setup(raw);
    write_killed_after(&s.ws, "format");
    // The catalog knows the tape as blank, under the UUID the format wrote.
    let (barcode, uuid) = reserved_tape(&s.ws);
    assert_eq!(uuid.starts_with("raw:"), raw, "{uuid}");
    let t = tapes(&s.ws);
    let state = t.iter().find(|t| t["label"] == barcode.as_str()).unwrap()["state"].clone();
    assert_eq!(state, "blank", "{t:?}");

    let out = common::tb(&s.ws, &["--json", "write"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        err.contains(&format!("{barcode}: formatted by an interrupted run")),
        "the half-initialised tape was not recognised:\n{err}"
    );
    assert_eq!(report["skipped"], serde_json::json!([]), "{report}");
    assert_eq!(report["tapes"], serde_json::json!([barcode]), "{report}");
    assert_eq!(
        report["formatted"],
        serde_json::json!([barcode]),
        "{report}"
    );
    // Formatted again under the same UUID, now appendable and holding every pack.
    let t = tapes(&s.ws);
    let tape = t.iter().find(|t| t["label"] == barcode.as_str()).unwrap();
    assert_eq!(tape["state"], "appendable", "{tape}");
    assert_eq!(tape["medium"]["ltfs_uuid"], uuid.as_str(), "{tape}");
    assert!(tape["packs"].as_u64().unwrap() > 0, "{tape}");
    all_written_and_restorable(&s);
}

#[test]
fn ltfs_tape_formatted_then_killed_is_reused() {
    killed_after_format_then_resumed(false);
}

#[test]
fn raw_tape_labelled_then_killed_is_reused() {
    killed_after_format_then_resumed(true);
}

#[test]
fn killed_twice_after_format_keeps_the_uuid() {
    // A second crash at the same point reuses the UUID recorded first, so the tape is
    // still recognised whichever label is on it.
    let s = setup(false);
    write_killed_after(&s.ws, "format");
    let first = reserved_tape(&s.ws);
    write_killed_after(&s.ws, "format");
    assert_eq!(reserved_tape(&s.ws), first);
    ok(&s.ws, &["-q", "write"]);
    all_written_and_restorable(&s);
}

#[test]
fn another_volume_under_the_reserved_barcode_is_not_overwritten() {
    // Killed after formatting; then the cartridge is swapped for an LTFS volume formatted
    // by another workspace under the same barcode. Its UUID is not the reserved one: it
    // is skipped, left as it was, and the packs go to another tape.
    let s = setup(false);
    write_killed_after(&s.ws, "format");
    let (barcode, _) = reserved_tape(&s.ws);
    let other = setup(false);
    ok(&other.ws, &["-q", "write"]);
    let theirs_written = tapes(&other.ws)
        .iter()
        .any(|t| t["label"] == barcode.as_str() && t["packs"].as_u64().unwrap_or(0) > 0);
    assert!(
        theirs_written,
        "the other workspace did not write {barcode}"
    );
    let lib = tape_scsi::VirtualLibrary::open(&s.ws.join("vtl")).unwrap();
    let mine = lib.cartridge_dir(&barcode).unwrap();
    let other_lib = tape_scsi::VirtualLibrary::open(&other.ws.join("vtl")).unwrap();
    let theirs = other_lib.cartridge_dir(&barcode).unwrap();
    std::fs::remove_dir_all(&mine).unwrap();
    copy_dir(&theirs, &mine);
    let before = dir_bytes(&mine);

    let out = common::tb(&s.ws, &["--json", "write"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = report["skipped"].to_string();
    assert!(
        skipped.contains(&barcode) && skipped.contains("not overwritten"),
        "{report}"
    );
    assert!(!report["tapes"].to_string().contains(&barcode), "{report}");
    assert_eq!(dir_bytes(&mine), before, "the other volume was changed");
    all_written_and_restorable(&s);
}

/// Every file under `d` with its contents, sorted by path.
fn dir_bytes(d: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = walk(d);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap();
            (f, b)
        })
        .collect()
}

#[test]
fn restore_killed_before_its_files_land_resumes() {
    let s = setup(false);
    ok(&s.ws, &["write"]);
    let to = s.root.join("restored");
    let to_arg = to.to_str().unwrap();
    // Killed with files written under temporary names, before the sync that precedes
    // their renames: none is at its place or marked restored.
    killed_after(&s.ws, &["restore", "--to", to_arg], "restore-pending");
    let temps: Vec<PathBuf> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".tapebackup-restore-"))
        })
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert!(!walk(&temps[0]).is_empty(), "no file was pending");
    assert!(!to.join("s").join("a.txt").exists());
    let job = temps[0]
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(".tapebackup-restore-"))
        .unwrap()
        .to_owned();
    let out = ok(&s.ws, &["restore", "--resume", &job, "--to", to_arg]);
    assert!(out.contains("restored 4 file(s)"), "{out}");
    common::same_tree(&s.src, &to.join("s"));
    // Only the restored tree is left: no temporary directory, no temporary file.
    let names: Vec<String> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["s".to_owned()]);
}

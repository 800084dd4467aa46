//! The raw on-tape format end to end: a virtual library whose drives cannot partition (and
//! lack READ POSITION / LOCATE, like tgt), run → verify → restore, appending, spanning,
//! forced LTFS refused, damaged tape files; and a property test of the raw writer and
//! reader over an in-memory drive.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{noise, ok, same_tree, tb};
use proptest::prelude::*;
use tape_scsi::{Changer, ScsiChanger, TapeDrive, VirtualLibrary};
use tapebackup::workflow::raw::{
    self, FileKind, Label, NoProgress, OnEarlyWarning, RawReader, RawWriter,
};

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    ws: PathBuf,
    root: PathBuf,
}

/// A workspace over a virtual library of drives that cannot partition nor locate.
fn setup(capacity: &str, extra: &[&str]) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello raw tape\n").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("sub/big.bin"), noise("big", 6 << 20)).unwrap();
    std::fs::write(src.join("sub/odd.bin"), noise("odd", 300_001)).unwrap();
    let ws = root.join("ws");
    let source = format!("s={}", src.display());
    let mut args = vec![
        "init",
        ws.to_str().unwrap(),
        "--source",
        &source,
        "--capacity",
        capacity,
        "--no-partitions",
        "--no-locate",
    ];
    args.extend_from_slice(extra);
    ok(&root, &args);
    Setup {
        _tmp: tmp,
        src,
        ws,
        root,
    }
}

fn tapes_json(ws: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(ws, &["--json", "tapes"])).unwrap()
}

/// Barcodes of the tapes the catalog knows as raw volumes.
fn raw_tapes(ws: &Path) -> Vec<String> {
    let v = tapes_json(ws);
    let s = v.to_string();
    let mut out = Vec::new();
    for t in v
        .as_array()
        .or_else(|| v.get("tapes").and_then(|t| t.as_array()))
        .unwrap_or_else(|| panic!("tapes --json: {s}"))
    {
        let uuid = t
            .get("ltfs_uuid")
            .or_else(|| t.pointer("/medium/ltfs_uuid"))
            .and_then(|u| u.as_str())
            .unwrap_or_default();
        if uuid.starts_with("raw:") {
            out.push(
                t.get("barcode")
                    .or_else(|| t.pointer("/medium/barcode"))
                    .and_then(|b| b.as_str())
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    out
}

/// Loads `barcode` into drive 0 of the workspace's virtual library and runs `f` on it.
fn with_tape<T>(ws: &Path, barcode: &str, f: impl FnOnce(&mut dyn TapeDrive) -> T) -> T {
    let lib = VirtualLibrary::open(&ws.join("vtl")).unwrap();
    let mut changer = ScsiChanger::new(lib.changer());
    let inv = changer.inventory().unwrap();
    let el = inv.find_barcode(barcode).unwrap();
    // A killed run may have left it in drive 0.
    if el.kind != tape_scsi::ElementType::Drive {
        if inv.drive(0).is_some_and(|d| d.full) {
            let mut d = lib.drive(0).unwrap();
            d.unload().unwrap();
            drop(d);
            changer.unload(0, None).unwrap();
        }
        changer.load(el.number, 0).unwrap();
    }
    let mut d = lib.drive(0).unwrap();
    d.load().unwrap();
    let out = f(&mut d);
    d.unload().unwrap();
    drop(d);
    changer.unload(0, None).unwrap();
    out
}

fn headers(ws: &Path, barcode: &str) -> Vec<raw::FileHeader> {
    with_tape(ws, barcode, |d| {
        let mut r = RawReader::open(d).unwrap();
        assert_eq!(r.label().barcode, barcode);
        r.files().unwrap()
    })
}

fn kinds(h: &[raw::FileHeader]) -> String {
    h.iter()
        .map(|h| match h.kind {
            FileKind::Pack { .. } => 'P',
            FileKind::Snapshot { .. } => 'S',
        })
        .collect()
}

#[test]
fn raw_run_verify_restore_and_append() {
    let s = setup("64MiB", &[]);
    let out = ok(&s.ws, &["run"]);
    assert!(out.contains("formatted VT0001L5 (raw)"), "{out}");
    let tapes = raw_tapes(&s.ws);
    assert_eq!(tapes.len(), 1, "{}", tapes_json(&s.ws));
    let h = headers(&s.ws, &tapes[0]);
    // Two packs (the small files bundled in one), then the snapshot.
    assert_eq!(kinds(&h), "PPS", "{h:?}");
    for (i, f) in h.iter().enumerate() {
        assert_eq!(f.file, i as u64 + 1);
    }

    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains("2 ok, 0 failed"), "{v}");
    let v = ok(&s.ws, &["verify", "--no-key"]);
    assert!(v.contains("2 ok, 0 failed"), "{v}");
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));

    // A second session appends to the same tape after the first one's snapshot.
    std::fs::write(s.src.join("a.txt"), b"hello raw tape, again\n").unwrap();
    std::fs::write(s.src.join("new.bin"), noise("new", 700_000)).unwrap();
    let again = ok(&s.ws, &["run"]);
    assert!(
        again.contains("wrote 1 pack(s)") && !again.contains("formatted"),
        "{again}"
    );
    assert_eq!(raw_tapes(&s.ws), tapes);
    let h = headers(&s.ws, &tapes[0]);
    assert_eq!(kinds(&h), "PPSPS", "{h:?}");
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains("3 ok, 0 failed"), "{v}");
    let to2 = s.root.join("restored2");
    ok(&s.ws, &["restore", "--to", to2.to_str().unwrap()]);
    same_tree(&s.src, &to2.join("s"));
}

#[test]
fn raw_packs_span_small_tapes() {
    // 4 MiB cartridges: the 6 MiB pack fills a tape and continues on the next.
    let s = setup("4MiB", &[]);
    let out = ok(&s.ws, &["run"]);
    assert!(out.contains("is full"), "{out}");
    let tapes = raw_tapes(&s.ws);
    assert!(tapes.len() >= 2, "{tapes:?}");
    // Every tape ends its session with a catalog snapshot.
    for t in &tapes {
        let h = headers(&s.ws, t);
        assert!(kinds(&h).ends_with('S'), "{t}: {h:?}");
    }
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
}

#[test]
fn forced_ltfs_is_refused_on_a_drive_that_cannot_partition() {
    let s = setup("64MiB", &[]);
    let cfg = s.ws.join("tapebackup.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("format = \"auto\""), "{text}");
    std::fs::write(&cfg, text.replace("format = \"auto\"", "format = \"ltfs\"")).unwrap();
    let out = tb(&s.ws, &["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("cannot partition"), "{err}");
    // Nothing was recorded as written.
    assert!(raw_tapes(&s.ws).is_empty());
}

#[test]
fn a_damaged_tape_file_gives_a_clear_error() {
    let s = setup("64MiB", &[]);
    ok(&s.ws, &["run"]);
    let tapes = raw_tapes(&s.ws);
    // Cut the tape inside the first pack's file: one data record survives, then a stray
    // record and end of data (no trailer, no filemark) — an interrupted overwrite.
    let big = with_tape(&s.ws, &tapes[0], |d| {
        let mut r = RawReader::open(d).unwrap();
        let files = r.files().unwrap();
        let big = files
            .iter()
            .find(
                |h| matches!(&h.kind, FileKind::Pack { pack_length, .. } if *pack_length > 1 << 20),
            )
            .unwrap()
            .file;
        r.seek_file(big).unwrap().unwrap();
        drop(r);
        let mut buf = vec![0u8; 1 << 20];
        assert!(matches!(
            d.read_record(&mut buf).unwrap(),
            tape_scsi::ReadOutcome::Record(_)
        ));
        d.write_record(b"garbage where the rest of the pack was")
            .unwrap();
        d.write_filemarks(0).unwrap();
        big
    });
    assert!(big >= 1);
    let v = tb(&s.ws, &["verify", "--no-key"]);
    let text =
        String::from_utf8_lossy(&v.stdout).into_owned() + &String::from_utf8_lossy(&v.stderr);
    assert!(!v.status.success(), "{text}");
    assert!(
        text.contains("damaged") || text.contains("fewer files"),
        "{text}"
    );
    let to = s.root.join("restored");
    let r = tb(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "{err}");
    assert!(
        err.contains("damaged") || err.contains("fewer files") || err.contains("ends"),
        "{err}"
    );
    // Nothing half-restored under the big file's name.
    assert!(!to.join("s/sub/big.bin").exists());
}

#[test]
fn garbage_instead_of_a_label_is_not_raw() {
    let mut d = ltfs::MemoryDrive::new(8 << 20);
    d.write_record(b"VOL1 something else entirely").unwrap();
    d.write_filemarks(1).unwrap();
    let e = RawReader::open(&mut d).unwrap_err();
    assert!(matches!(e, raw::RawError::NotRaw { .. }), "{e}");
    assert!(raw::probe(&mut d).unwrap().is_none());
    let mut blank = ltfs::MemoryDrive::new(8 << 20);
    assert!(RawReader::open(&mut blank).is_err());
    assert!(raw::probe(&mut blank).unwrap().is_none());
}

fn label(block_size: u32) -> Label {
    Label {
        volume_uuid: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
        barcode: "PT0001L5".into(),
        created_at: 1_700_000_000,
        writer: "test".into(),
        block_size,
    }
}

fn pack_kind(i: usize, data: &[u8], offset: u64) -> FileKind {
    FileKind::Pack {
        pack_id: i as i64 + 1,
        name: format!("pack-{i}"),
        pack_length: data.len() as u64,
        offset,
    }
}

fn read_all(r: &mut RawReader<'_>, file: u64) -> Vec<u8> {
    r.seek_file(file).unwrap().unwrap();
    let mut out = Vec::new();
    r.data().read_to_end(&mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Files written in two sessions (format, then append after a crash that left a
    /// partial file) read back byte-exact, by number and by listing.
    #[test]
    fn raw_writer_reader_round_trip(
        sizes in prop::collection::vec(0usize..20_000, 1..8),
        split in 0usize..8,
        crash_after in 1u64..4,
        block in prop::sample::select(vec![4096u32, 8192]),
    ) {
        let files: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| noise(&format!("f{i}"), *n))
            .collect();
        let split = split.min(files.len());
        let mut d = ltfs::MemoryDrive::new(64 << 20);
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let mut numbers = Vec::new();
        {
            let mut w = RawWriter::format(&mut d, label(block)).unwrap();
            for (i, f) in files[..split].iter().enumerate() {
                let n = w
                    .write_file(pack_kind(i, f, 0), &mut f.as_slice(), OnEarlyWarning::Cut, &NoProgress, &cancel)
                    .unwrap();
                prop_assert!(n.complete);
                prop_assert_eq!(n.length, f.len() as u64);
                numbers.push(n.file);
            }
        }
        // A crash in the middle of the next file: a few writes get through.
        d.fail_writes_after(Some(crash_after));
        {
            let mut w = RawWriter::append(&mut d, Some(&label(block).volume_uuid), 1).unwrap();
            let junk = noise("junk", 3 * block as usize);
            let _ = w.write_file(pack_kind(99, &junk, 0), &mut junk.as_slice(), OnEarlyWarning::Cut, &NoProgress, &cancel);
        }
        d.fail_writes_after(None);
        {
            let known = numbers.last().copied().unwrap_or(1);
            let mut w = RawWriter::append(&mut d, Some(&label(block).volume_uuid), known).unwrap();
            prop_assert!(w.next_file() > split as u64);
            for (i, f) in files.iter().enumerate().skip(split) {
                let n = w
                    .write_file(pack_kind(i, f, 0), &mut f.as_slice(), OnEarlyWarning::Cut, &NoProgress, &cancel)
                    .unwrap();
                numbers.push(n.file);
            }
        }
        let mut r = RawReader::open(&mut d).unwrap();
        prop_assert_eq!(r.label(), &label(block));
        let listed = r.files().unwrap();
        for (i, f) in files.iter().enumerate() {
            prop_assert_eq!(&read_all(&mut r, numbers[i]), f);
            let h = listed.iter().find(|h| h.file == numbers[i]).unwrap();
            prop_assert_eq!(&h.kind, &pack_kind(i, f, 0));
        }
        // Only complete files are listed, and the junk of the crash is gone or complete.
        for h in &listed {
            if let FileKind::Pack { pack_id, .. } = h.kind {
                prop_assert!(pack_id <= files.len() as i64 || pack_id == 100);
            }
        }
    }

    /// A file cut at early warning continues on a second tape at the right offset.
    #[test]
    fn raw_cut_at_early_warning_continues(len in 1usize..200_000, reserve in 1u64..4) {
        let block = 4096u32;
        let data = noise("cut", len);
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let mut first = ltfs::MemoryDrive::new(64 << 10);
        first.set_early_warning_reserve((reserve * 16) << 10);
        let mut w = RawWriter::format(&mut first, label(block)).unwrap();
        let a = w
            .write_file(pack_kind(0, &data, 0), &mut data.as_slice(), OnEarlyWarning::Cut, &NoProgress, &cancel)
            .unwrap();
        drop(w);
        let mut second = ltfs::MemoryDrive::new(64 << 20);
        let mut w2 = RawWriter::format(&mut second, label(block)).unwrap();
        let rest = &data[a.length as usize..];
        let b = w2
            .write_file(pack_kind(0, &data, a.length), &mut &rest[..], OnEarlyWarning::Cut, &NoProgress, &cancel)
            .unwrap();
        prop_assert!(b.complete);
        prop_assert_eq!(a.complete, a.length == len as u64);
        drop(w2);
        let mut joined = read_all(&mut RawReader::open(&mut first).unwrap(), a.file);
        joined.extend(read_all(&mut RawReader::open(&mut second).unwrap(), b.file));
        prop_assert_eq!(joined, data);
    }
}

#[test]
fn killed_raw_writes_resume_without_loss_or_duplicates() {
    // SIGKILL `write` at several points (label, pack files, snapshot), then finish:
    // nothing lost, nothing recorded twice, and every tape file on the tape is complete.
    let s = setup("64MiB", &[]);
    for i in 0..12u64 {
        std::fs::write(
            s.src.join(format!("sub/f{i}.bin")),
            noise(&format!("f{i}"), 1 << 20),
        )
        .unwrap();
    }
    ok(&s.ws, &["get"]);
    ok(&s.ws, &["pack"]);
    for delay_ms in [20u64, 60, 120, 200, 350, 600] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tapebackup"))
            .args(["-q", "write"])
            .current_dir(&s.ws)
            .env_remove("TAPEBACKUP_CONFIG")
            .env_remove("TAPEBACKUP_CATALOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL; it may already have finished
        let _ = child.wait();
    }
    ok(&s.ws, &["write"]);
    ok(&s.ws, &["catalog", "check"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["to_pack"], 0, "{status}");
    assert_eq!(status["packs_unwritten"], 0, "{status}");
    for t in raw_tapes(&s.ws) {
        // Every listed file is complete: its data matches its trailer.
        with_tape(&s.ws, &t, |d| {
            let mut r = RawReader::open(d).unwrap();
            for h in r.files().unwrap() {
                r.seek_file(h.file).unwrap().unwrap();
                std::io::copy(&mut r.data(), &mut std::io::sink()).unwrap();
            }
        });
    }
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));
}

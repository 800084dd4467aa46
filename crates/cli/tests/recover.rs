//! `tapebackup catalog recover --from-tape`: a backup over the virtual library, the catalog
//! deleted, rebuilt from one tape plus the key, then restored byte for byte and verified;
//! wrong key, a tape without snapshot, an existing catalog, packs written after the
//! snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::path::{Path, PathBuf};

use common::{noise, ok, same_tree, tb};

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    ws: PathBuf,
    root: PathBuf,
}

/// A workspace with one source, backed up with `run` onto one tape.
fn backed_up() -> Setup {
    backed_up_with(&[])
}

/// [`backed_up`], with more `init` arguments.
fn backed_up_with(init_args: &[&str]) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello tape\n").unwrap();
    std::fs::write(src.join("sub/big.bin"), noise("big", 3 << 20)).unwrap();
    std::fs::write(src.join("sub/copy.bin"), noise("big", 3 << 20)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
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
    args.extend_from_slice(init_args);
    ok(&root, &args);
    ok(&ws, &["run"]);
    Setup {
        _tmp: tmp,
        src,
        ws,
        root,
    }
}

/// Barcodes of the tapes holding packs.
fn used_tapes(ws: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&ok(ws, &["--json", "tapes"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|t| t["packs"].as_u64().unwrap_or(0) > 0)
        .map(|t| t["label"].as_str().unwrap().to_owned())
        .collect()
}

/// A cartridge of the virtual library the catalog has never seen.
fn unused_tape(ws: &Path, used: &[String]) -> String {
    let lib = tape_scsi::VirtualLibrary::open(&ws.join("vtl")).unwrap();
    lib.state()
        .unwrap()
        .cartridges
        .keys()
        .find(|b| !used.contains(b) && !b.starts_with("CLN"))
        .cloned()
        .unwrap()
}

/// Loads `barcode` into drive 0 of the workspace's virtual library, runs `f` on the drive,
/// puts the cartridge back.
fn with_tape<T>(ws: &Path, barcode: &str, f: impl FnOnce(&mut dyn tape_scsi::TapeDrive) -> T) -> T {
    let mut lib = tape_scsi::LibrarySpec::Virtual {
        dir: ws.join("vtl"),
    }
    .open()
    .unwrap();
    let inv = lib.changer().inventory().unwrap();
    let slot = inv
        .storage
        .iter()
        .find(|e| e.full && e.barcode.as_deref() == Some(barcode))
        .map(|e| e.number)
        .unwrap();
    lib.changer().load(slot, 0).unwrap();
    let mut d = lib.drive(0).unwrap();
    d.load().unwrap();
    d.set_block_size(0).unwrap();
    let out = f(&mut *d);
    d.unload().unwrap();
    drop(d);
    lib.changer().unload(0, None).unwrap();
    out
}

/// Appends a file to the LTFS volume on `barcode` (formatting it first when `format`), as
/// a write session killed before its catalog snapshot leaves it.
fn put_on_tape(ws: &Path, barcode: &str, format: bool, path: &str, data: &[u8]) {
    with_tape(ws, barcode, |d| {
        let volume = if format {
            ltfs::Volume::format(d, &ltfs::FormatOptions::new(barcode)).unwrap()
        } else {
            ltfs::Volume::open(d).unwrap()
        };
        let mut w = volume.into_writer(ltfs::WriterOptions::default()).unwrap();
        w.write_file(
            path,
            &mut &data[..],
            &ltfs::FileOptions::default(),
            &ltfs::Silent,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
        w.finish().unwrap();
    });
}

fn remove_catalog(ws: &Path) {
    for f in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        let _ = std::fs::remove_file(ws.join(f));
    }
}

fn leftovers(ws: &Path) -> Vec<String> {
    std::fs::read_dir(ws)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".recover-") || n.starts_with("catalog.db"))
        .collect()
}

#[test]
fn catalog_rebuilt_from_one_tape_restores_and_verifies() {
    let s = backed_up();
    let tapes = used_tapes(&s.ws);
    assert_eq!(tapes.len(), 1, "{tapes:?}");
    let tape = &tapes[0];
    // A pack written after the snapshot (a later session killed before its snapshot).
    let stray = "0123456789abcdef0123456789abcdef";
    put_on_tape(
        &s.ws,
        tape,
        false,
        &format!("tapebackup/packs/{stray}"),
        &noise("stray", 5000),
    );

    remove_catalog(&s.ws);

    let out = ok(&s.ws, &["catalog", "recover", "--from-tape", tape]);
    assert!(out.contains("recovered catalog"), "{out}");
    assert!(out.contains("tapebackup/catalog/catalog-"), "{out}");
    assert!(
        out.contains(&format!("NOT RECOVERED tapebackup/packs/{stray}")),
        "{out}"
    );
    assert!(
        out.contains("written after its newest catalog snapshot"),
        "{out}"
    );
    // Two packs: a.txt and empty bundled, big.bin once for both paths that hold it.
    assert!(out.contains("recorded in the catalog: 2"), "{out}");
    assert!(leftovers(&s.ws).iter().all(|n| !n.starts_with(".recover-")));

    ok(&s.ws, &["catalog", "check"]);
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
    let jobs = ok(&s.ws, &["jobs"]);
    assert!(jobs.contains("import"), "{jobs}");

    // JSON for scripts: the same facts.
    let again = s.ws.join("again.db");
    let j = ok(
        &s.ws,
        &[
            "--json",
            "catalog",
            "recover",
            "--from-tape",
            tape,
            "--to",
            again.to_str().unwrap(),
        ],
    );
    let j: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(j["installed"], true);
    // a.txt and empty share one pack, big.bin has one, plus the stray.
    assert_eq!(j["packs_on_tape"], 3);
    assert_eq!(j["unknown"][0]["name"], stray);
}

#[test]
fn wrong_key_missing_snapshot_and_existing_catalog_are_refused() {
    let s = backed_up();
    let tape = used_tapes(&s.ws).remove(0);
    let cat = s.ws.join("catalog.db");

    // An existing catalog is never overwritten...
    let before = std::fs::read(&cat).unwrap();
    let o = tb(&s.ws, &["catalog", "recover", "--from-tape", &tape]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already exists") && err.contains("--merge"),
        "{err}"
    );
    assert_eq!(std::fs::read(&cat).unwrap(), before);
    // ...but merged into with --merge (nothing new: the snapshot is this catalog's past).
    let out = ok(
        &s.ws,
        &["catalog", "recover", "--from-tape", &tape, "--merge"],
    );
    assert!(out.contains("merged into catalog"), "{out}");
    assert!(
        out.contains("added: sources 0, files 0, versions 0, packs 0,"),
        "{out}"
    );
    ok(&s.ws, &["catalog", "check"]);

    // Wrong key: exit 4, no catalog, nothing left behind.
    std::fs::rename(&cat, s.root.join("catalog.kept")).unwrap();
    remove_catalog(&s.ws);
    let key = s.ws.join("key.tbk");
    std::fs::rename(&key, s.root.join("key.kept")).unwrap();
    cryptpack::Key::generate()
        .unwrap()
        .write_file(&key)
        .unwrap();
    let o = tb(&s.ws, &["catalog", "recover", "--from-tape", &tape]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("decrypting the catalog snapshot"), "{err}");
    assert!(leftovers(&s.ws).is_empty(), "{:?}", leftovers(&s.ws));
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(s.root.join("key.kept"), &key).unwrap();

    // A tape with an LTFS volume but no snapshot: exit 5, nothing created.
    let other = unused_tape(&s.ws, std::slice::from_ref(&tape));
    put_on_tape(&s.ws, &other, true, "notes.txt", b"not a tapebackup tape\n");
    let o = tb(&s.ws, &["catalog", "recover", "--from-tape", &other]);
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{other} holds no tapebackup catalog snapshot")),
        "{err}"
    );
    assert!(leftovers(&s.ws).is_empty(), "{:?}", leftovers(&s.ws));

    // A blank cartridge: an LTFS error naming the tape.
    let blank = unused_tape(&s.ws, &[tape.clone(), other.clone()]);
    let o = tb(&s.ws, &["catalog", "recover", "--from-tape", &blank]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("reading the LTFS volume on {blank}")),
        "{err}"
    );
    // A barcode not in the library.
    let o = tb(&s.ws, &["catalog", "recover", "--from-tape", "NOPE01L5"]);
    assert_eq!(o.status.code(), Some(6), "{o:?}");

    // The right key still works.
    let out = ok(&s.ws, &["catalog", "recover", "--from-tape", &tape]);
    assert!(out.contains("recovered catalog"), "{out}");
}

#[test]
fn packs_the_catalog_knows_are_reattached_from_a_tape_without_snapshot() {
    let s = backed_up();
    let first = used_tapes(&s.ws).remove(0);
    // A new file, packed but not written: the catalog knows its pack.
    std::fs::write(s.src.join("late.txt"), b"written by a killed session\n").unwrap();
    ok(&s.ws, &["get"]);
    ok(&s.ws, &["pack"]);
    let files: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "files", "late.txt"])).unwrap();
    let pack = files[0]["pack"].as_str().unwrap().to_owned();
    let bytes = std::fs::read(s.ws.join("packs").join(&pack)).unwrap();
    // A session on a fresh tape wrote it and was killed before its snapshot.
    let second = unused_tape(&s.ws, std::slice::from_ref(&first));
    put_on_tape(
        &s.ws,
        &second,
        true,
        &format!("tapebackup/packs/{pack}"),
        &bytes,
    );

    // Without a catalog, that tape cannot rebuild one.
    let o = tb(
        &s.ws,
        &[
            "catalog",
            "recover",
            "--from-tape",
            &second,
            "--to",
            s.root.join("x.db").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(5), "{o:?}");

    // With the catalog (recovered from another tape, or this one): reattached.
    let out = ok(
        &s.ws,
        &["catalog", "recover", "--from-tape", &second, "--merge"],
    );
    assert!(out.contains("holds no catalog snapshot"), "{out}");
    assert!(out.contains(&format!("reattached {pack}")), "{out}");
    assert!(out.contains(&format!("added tape {second}")), "{out}");
    ok(&s.ws, &["catalog", "check"]);

    // Nothing left to write, and the file restores from the second tape.
    let w = ok(&s.ws, &["write"]);
    assert!(w.contains("wrote 0 pack(s)"), "{w}");
    let to = s.root.join("late");
    let r = ok(
        &s.ws,
        &["restore", "late.txt", "--to", to.to_str().unwrap()],
    );
    assert!(r.contains(&second), "{r}");
    assert_eq!(
        std::fs::read(to.join("s/late.txt")).unwrap(),
        b"written by a killed session\n"
    );
    let v = ok(&s.ws, &["verify", "--tape", &second]);
    assert!(v.contains("1 ok, 0 failed"), "{v}");
}

#[test]
fn raw_format_tapes_rebuild_the_catalog_too() {
    use tapebackup::workflow::raw;
    let s = backed_up_with(&["--no-partitions"]);
    let tapes: serde_json::Value = serde_json::from_str(&ok(&s.ws, &["--json", "tapes"])).unwrap();
    let tape = used_tapes(&s.ws).remove(0);
    let t = tapes
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == tape.as_str())
        .unwrap();
    assert!(
        t["medium"]["ltfs_uuid"]
            .as_str()
            .unwrap()
            .starts_with("raw:"),
        "{t}"
    );
    // A pack tape file appended after the snapshot.
    let stray = "fedcba9876543210fedcba9876543210";
    let data = noise("raw stray", 4000);
    let file = with_tape(&s.ws, &tape, |d| {
        let mut w = raw::RawWriter::append(d, None, 1).unwrap();
        w.write_file(
            raw::FileKind::Pack {
                pack_id: 999,
                name: stray.into(),
                pack_length: data.len() as u64,
                offset: 0,
            },
            &mut &data[..],
            raw::OnEarlyWarning::Finish,
            &raw::NoProgress,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap()
        .file
    });

    remove_catalog(&s.ws);
    let out = ok(&s.ws, &["catalog", "recover", "--from-tape", &tape]);
    assert!(out.contains("recovered catalog"), "{out}");
    assert!(out.contains("(snapshot tape file "), "{out}");
    assert!(
        out.contains(&format!("NOT RECOVERED tape file {file} (size unknown)")),
        "{out}"
    );
    // Two packs: a.txt and empty bundled, big.bin once for both paths that hold it.
    assert!(out.contains("recorded in the catalog: 2"), "{out}");
    ok(&s.ws, &["catalog", "check"]);
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");

    // A pack the catalog knows, written by a session killed before its snapshot: merged
    // and reattached after a read-back through the raw trailer check.
    std::fs::write(s.src.join("late.txt"), b"late and raw\n").unwrap();
    ok(&s.ws, &["get"]);
    ok(&s.ws, &["pack"]);
    let files: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "files", "late.txt"])).unwrap();
    let pack = files[0]["pack"].as_str().unwrap().to_owned();
    let bytes = std::fs::read(s.ws.join("packs").join(&pack)).unwrap();
    with_tape(&s.ws, &tape, |d| {
        let mut w = raw::RawWriter::append(d, None, 1).unwrap();
        w.write_file(
            raw::FileKind::Pack {
                pack_id: 1000,
                name: pack.clone(),
                pack_length: bytes.len() as u64,
                offset: 0,
            },
            &mut &bytes[..],
            raw::OnEarlyWarning::Finish,
            &raw::NoProgress,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    });
    let out = ok(
        &s.ws,
        &["catalog", "recover", "--from-tape", &tape, "--merge"],
    );
    assert!(out.contains("merged into catalog"), "{out}");
    assert!(out.contains(&format!("reattached {pack}")), "{out}");
    let w = ok(&s.ws, &["write"]);
    assert!(w.contains("wrote 0 pack(s)"), "{w}");
    let late = s.root.join("late");
    ok(
        &s.ws,
        &["restore", "late.txt", "--to", late.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read(late.join("s/late.txt")).unwrap(),
        b"late and raw\n"
    );
}

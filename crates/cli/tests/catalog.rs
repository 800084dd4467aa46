//! `tapebackup catalog|files|tapes` run as a binary against catalogs built with the
//! catalog crate (and a legacy database built with the seed tool's DDL).

use std::path::Path;
use std::process::{Command, Output};

use catalog::{
    Catalog, Digest, HashAlgo, NewLocation, NewPack, NewTape, PackFormat, PackMember, Part,
    Position, ScannedFile, Timestamp,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn run(args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_tapebackup"))
        .args(args)
        .env_remove("TAPEBACKUP_CATALOG")
        .output()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000 + s)
}

/// A catalog with two files on tape TB0001L8 and one file not yet packed.
fn sample(path: &Path) -> catalog::Result<()> {
    let mut cat = Catalog::open(path)?;
    cat.write(|tx| {
        let src = tx.add_source("nas", "ssh://nas/srv", t(0))?;
        let tape = tx.add_tape(
            &NewTape {
                barcode: "TB0001L8".into(),
                ltfs_uuid: None,
                generation: Some("LTO-8".into()),
                capacity: Some(12_000_000_000_000),
                pool: "default".into(),
            },
            t(0),
        )?;
        for (i, p) in ["photos/a.jpg", "photos/b.jpg", "docs/c.txt"]
            .iter()
            .enumerate()
        {
            let v = tx.record_scan(
                src,
                &ScannedFile {
                    path: (*p).into(),
                    size: 1000,
                    mtime: t(i as i64),
                    mode: 0o644,
                    hash: None,
                },
                t(1),
            )?;
            let h = Digest::new(HashAlgo::Blake3, [i as u8; 32])?;
            tx.record_fetched(v.version, &h, 1000)?;
            if i == 2 {
                continue;
            }
            let pack = tx.record_pack(
                &NewPack {
                    format: PackFormat::Cryptpack,
                    key_id: "k".into(),
                    plain_size: 1000,
                    plain_hash: h,
                    cipher_size: 1100,
                    cipher_hash: Digest::new(HashAlgo::Blake3, [100 + i as u8; 32])?,
                    members: vec![PackMember {
                        version: v.version,
                        offset: 0,
                        length: 1000,
                    }],
                },
                t(2),
            )?;
            tx.record_location(
                &NewLocation {
                    pack: pack.id,
                    volume: tape,
                    part: Part::whole(1100),
                    position: Position::Tape {
                        partition: 1,
                        start_block: 10 * i as u64,
                    },
                    job: None,
                },
                t(3),
            )?;
        }
        Ok(())
    })
}

#[test]
fn files_lists_tables_and_json() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cat.db");
    sample(&db)?;
    let c = db.to_str().ok_or("path")?;

    let o = run(&["files", "--catalog", c])?;
    assert!(o.status.success(), "{o:?}");
    let text = stdout(&o);
    assert!(text.starts_with("SOURCE"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.contains("photos/a.jpg") && text.contains("TB0001L8"),
        "{text}"
    );

    let o = run(&["--json", "files", "photos/*", "--catalog", c])?;
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    let arr = v.as_array().ok_or("not an array")?;
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["path"], "photos/a.jpg");
    assert_eq!(arr[0]["copies"][0]["volume"], "TB0001L8");
    assert_eq!(arr[0]["copies"][0]["position"]["start_block"], 0);
    assert_eq!(arr[1]["copies"][0]["position"]["start_block"], 10);
    assert_eq!(arr[0]["pack"].as_str().map(str::len), Some(32));

    // Filters: by tape, by modification time, by version.
    let o = run(&["--json", "files", "--tape", "TB0001L8", "--catalog", c])?;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout)?
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let o = run(&[
        "--json",
        "files",
        "--modified-since",
        "1700000001",
        "--catalog",
        c,
    ])?;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout)?
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let o = run(&["--json", "files", "--file-version", "2", "--catalog", c])?;
    assert_eq!(stdout(&o).trim(), "[]");
    // The environment variable works as well as the flag.
    let o = Command::new(env!("CARGO_BIN_EXE_tapebackup"))
        .args(["files", "docs/*"])
        .env("TAPEBACKUP_CATALOG", c)
        .output()?;
    assert!(
        stdout(&o).contains("docs/c.txt") && stdout(&o).contains("fetched"),
        "{o:?}"
    );
    Ok(())
}

#[test]
fn tapes_lists_volumes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cat.db");
    sample(&db)?;
    let c = db.to_str().ok_or("path")?;
    let o = run(&["tapes", "--catalog", c])?;
    assert!(o.status.success(), "{o:?}");
    assert!(
        stdout(&o).contains("TB0001L8") && stdout(&o).contains("appendable"),
        "{o:?}"
    );
    let o = run(&["tapes", "--json", "--catalog", c])?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(v[0]["label"], "TB0001L8");
    assert_eq!(v[0]["bytes_used"], 2200);
    assert_eq!(v[0]["packs"], 2);
    assert_eq!(v[0]["medium"]["generation"], "LTO-8");
    Ok(())
}

#[test]
fn check_snapshot_and_merge() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cat.db");
    sample(&db)?;
    let c = db.to_str().ok_or("path")?;
    let o = run(&["catalog", "check", "--catalog", c])?;
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o).trim(), "ok");

    let snap = dir.path().join("snap.db");
    let s = snap.to_str().ok_or("path")?;
    let o = run(&["catalog", "--catalog", c, "snapshot", s])?;
    assert!(o.status.success(), "{o:?}");
    assert!(snap.exists());

    let fresh = dir.path().join("fresh.db");
    let f = fresh.to_str().ok_or("path")?;
    let o = run(&["--json", "catalog", "merge", s, "--catalog", f])?;
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(v["files"], 3);
    assert_eq!(v["locations"], 2);
    let a = run(&["--json", "files", "--catalog", f])?;
    let b = run(&["--json", "files", "--catalog", c])?;
    assert_eq!(stdout(&a), stdout(&b));

    // Damage: a location whose volume bytes disagree; check exits 5 and names it.
    rusqlite::Connection::open(&fresh)?.execute_batch("UPDATE volume SET bytes_used = 7;")?;
    let o = run(&["catalog", "check", "--catalog", f])?;
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    assert!(stdout(&o).contains("bytes used 7"), "{o:?}");
    Ok(())
}

#[test]
fn import_legacy_database() -> TestResult {
    let dir = tempfile::tempdir()?;
    let legacy = dir.path().join("tapebackup.db");
    let l = rusqlite::Connection::open(&legacy)?;
    l.execute_batch(
        "CREATE TABLE files (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT, path TEXT UNIQUE,
           filename_encrypted TEXT UNIQUE, mtime TEXT, md5sum_file TEXT, md5sum_encrypted TEXT,
           tape TEXT, downloaded_date TEXT, packed_date TEXT, written_date TEXT, downloaded INTEGER,
           packed INTEGER, written INTEGER, verified_count INTEGER, verified_last TEXT,
           deleted INTEGER);
         CREATE TABLE tapedevices (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT UNIQUE,
           full_date TEXT, files_count INTEGER, full INTEGER, verified_count INTEGER,
           verified_last TEXT);
         CREATE TABLE alternative_file_names (id INTEGER PRIMARY KEY AUTOINCREMENT,
           filename TEXT, path TEXT UNIQUE, files_id INTEGER, date TEXT);
         INSERT INTO tapedevices (label, full_date, files_count, full, verified_count, verified_last)
           VALUES ('OLD001L5', '1600005000', 1, 1, 0, NULL);
         INSERT INTO files (filename, path, filename_encrypted, mtime, md5sum_file, md5sum_encrypted,
           tape, downloaded_date, packed_date, written_date, downloaded, packed, written,
           verified_count, verified_last, deleted)
           VALUES ('a.jpg', '/m/a.jpg', 'Zq0RandomName', '1500000000',
             '0cc175b9c0f1b6a831c399e269772661', '92eb5ffee6ae2fec3ad71c777531578f', 'OLD001L5',
             '1600000000', '1600000100', '1600000200', 1, 1, 1, 0, NULL, 0);",
    )?;
    drop(l);
    let db = dir.path().join("new.db");
    let c = db.to_str().ok_or("path")?;
    let o = run(&[
        "--json",
        "catalog",
        "import-legacy",
        legacy.to_str().ok_or("path")?,
        "--catalog",
        c,
    ])?;
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(v["schema"], "early");
    assert_eq!(
        (
            v["files"].as_u64(),
            v["packs"].as_u64(),
            v["tapes"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let o = run(&["--json", "files", "--catalog", c])?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(v[0]["pack_format"], "openssl-aes-256-cbc-pbkdf2-100000");
    assert_eq!(v[0]["copies"][0]["position"]["name"], "Zq0RandomName");
    assert_eq!(v[0]["hash"], "md5:0cc175b9c0f1b6a831c399e269772661");
    let o = run(&["tapes", "--catalog", c])?;
    assert!(
        stdout(&o).contains("OLD001L5") && stdout(&o).contains("full"),
        "{o:?}"
    );

    // A second import of the same database is refused with the catalog's exit code.
    let o = run(&[
        "catalog",
        "import-legacy",
        legacy.to_str().ok_or("path")?,
        "--catalog",
        c,
    ])?;
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists"),
        "{o:?}"
    );
    Ok(())
}

#[test]
fn missing_catalog_is_a_clear_error() -> TestResult {
    let o = run(&["files"])?;
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--catalog"),
        "{o:?}"
    );
    let dir = tempfile::tempdir()?;
    let nope = dir.path().join("nope.db");
    let o = run(&["tapes", "--catalog", nope.to_str().ok_or("path")?])?;
    assert!(!o.status.success());
    assert!(!nope.exists(), "a listing must not create a catalog");
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        b"not sqlite at all, clearly not a database file at all....",
    )?;
    let o = run(&[
        "catalog",
        "check",
        "--catalog",
        junk.to_str().ok_or("path")?,
    ])?;
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    Ok(())
}

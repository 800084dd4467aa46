//! Restore of files imported from the seed tool's database: files encrypted with the real
//! `openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -pass file:…`, put in the root of an LTFS
//! volume on a virtual tape (`tapebackup ltfs put`), the seed's database built with its DDL,
//! `catalog import-legacy`, then `restore`: byte-exact; wrong passphrase, no passphrase, and
//! an MD5 mismatch each fail clearly and leave nothing at the destination.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{noise, ok};
use md5::Digest as _;

const LATER_DDL: &str = "
CREATE TABLE file (id INTEGER PRIMARY KEY AUTOINCREMENT, duplicate_id INTEGER, filename TEXT,
  path TEXT UNIQUE, filename_encrypted TEXT UNIQUE, mtime TEXT, filesize INTEGER,
  filesize_encrypted INTEGER, md5sum_file TEXT, md5sum_encrypted TEXT, tape_id INTEGER,
  downloaded_date TEXT, encrypted_date TEXT, written_date TEXT, tapeposition INTEGER,
  downloaded INTEGER, encrypted INTEGER, written INTEGER, verified_count INTEGER,
  verified_last TEXT, deleted INTEGER);
CREATE TABLE tape (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT UNIQUE, full_date TEXT,
  files_count INTEGER, end_of_data INTEGER, full INTEGER, verified_count INTEGER,
  verified_last TEXT);
CREATE TABLE restore_job (id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT, finished TEXT);
CREATE TABLE restore_job_file_map (id INTEGER PRIMARY KEY AUTOINCREMENT, restore_job_id INTEGER,
  file_id INTEGER, status INTEGER);
CREATE TABLE config (name TEXT, value TEXT);
";

const EARLY_DDL: &str = "
CREATE TABLE files (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT, path TEXT UNIQUE,
  filename_encrypted TEXT UNIQUE, mtime TEXT, md5sum_file TEXT, md5sum_encrypted TEXT,
  tape TEXT, downloaded_date TEXT, packed_date TEXT, written_date TEXT, downloaded INTEGER,
  packed INTEGER, written INTEGER, verified_count INTEGER, verified_last TEXT,
  deleted INTEGER);
CREATE TABLE tapedevices (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT UNIQUE,
  full_date TEXT, files_count INTEGER, full INTEGER, verified_count INTEGER,
  verified_last TEXT);
CREATE TABLE alternative_file_names (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT,
  path TEXT UNIQUE, files_id INTEGER, date TEXT);
";

const PASS_ENV: &str = "TAPEBACKUP_LEGACY_PASSPHRASE_FILE";

fn md5_hex(data: &[u8]) -> String {
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `tapebackup ARGS` in `dir` with `envs` set (no config or catalog from outside).
fn tb_env(dir: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tapebackup"));
    c.args(args)
        .current_dir(dir)
        .env_remove("TAPEBACKUP_CONFIG")
        .env_remove("TAPEBACKUP_CATALOG")
        .env_remove(PASS_ENV);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run tapebackup")
}

fn secret_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// One file of the seed tool: plaintext, and its encrypted copy under a generated name.
struct SeedFile {
    path: &'static str,
    data: Vec<u8>,
    enc_name: String,
    enc: PathBuf,
    mtime: i64,
}

/// Encrypts `data` the way the seed tool did, with the real openssl.
fn seed_file(work: &Path, pass: &Path, path: &'static str, data: Vec<u8>, mtime: i64) -> SeedFile {
    let plain = work.join("plain").join(path);
    std::fs::create_dir_all(plain.parent().unwrap()).unwrap();
    std::fs::write(&plain, &data).unwrap();
    let enc_name = blake3::hash(path.as_bytes()).to_hex()[..32].to_owned();
    let enc_dir = work.join("enc");
    std::fs::create_dir_all(&enc_dir).unwrap();
    let enc = enc_dir.join(&enc_name);
    let st = Command::new("openssl")
        .args(["enc", "-aes-256-cbc", "-pbkdf2", "-iter", "100000", "-in"])
        .arg(&plain)
        .arg("-out")
        .arg(&enc)
        .arg("-pass")
        .arg(format!("file:{}", pass.display()))
        .status()
        .expect("openssl (installed by .ci/install-deps) must be on PATH");
    assert!(st.success());
    assert_eq!(&std::fs::read(&enc).unwrap()[..8], b"Salted__");
    SeedFile {
        path,
        data,
        enc_name,
        enc,
        mtime,
    }
}

/// A workspace (config, key, catalog, virtual library) and one of its cartridges holding
/// the encrypted files in the root of its LTFS volume, as the seed tool left its tapes.
fn workspace_with_seed_tape(root: &Path, files: &[&SeedFile]) -> (PathBuf, String) {
    let ws = root.join("ws");
    ok(root, &["init", ws.to_str().unwrap(), "--capacity", "64MiB"]);
    let vtl = ws.join("vtl");
    let mut lib = tape_scsi::LibrarySpec::Virtual { dir: vtl.clone() }
        .open()
        .unwrap();
    let inv = lib.changer().inventory().unwrap();
    let (barcode, slot) = inv
        .storage
        .iter()
        .find_map(|e| {
            let b = e.barcode.clone()?;
            (e.full && !b.starts_with("CLN")).then_some((b, e.number))
        })
        .unwrap();
    drop(lib);
    let v = vtl.to_str().unwrap();
    ok(
        &ws,
        &["library", "--vtl", v, "load", &slot.to_string(), "0"],
    );
    ok(&ws, &["ltfs", "--vtl", v, "format", "--barcode", &barcode]);
    let mut put = vec!["ltfs", "--vtl", v, "put"];
    put.extend(files.iter().map(|f| f.enc.to_str().unwrap()));
    ok(&ws, &put);
    let ls = ok(&ws, &["ltfs", "--vtl", v, "ls"]);
    for f in files {
        assert!(ls.contains(&f.enc_name), "{ls}");
    }
    ok(&ws, &["library", "--vtl", v, "unload", "0"]);
    (ws, barcode)
}

fn regular_files(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(d) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(regular_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn seed_tapes_restore_byte_exact_and_refuse_bad_passphrases_and_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pass = root.join("seed-pass");
    secret_file(&pass, "the seed's enc-key\n");
    let a = seed_file(
        root,
        &pass,
        "photos/a.jpg",
        noise("a", 300_000),
        1_500_000_000,
    );
    let readme = seed_file(
        root,
        &pass,
        "docs/readme.txt",
        b"old files\n".to_vec(),
        1_500_000_100,
    );
    let empty = seed_file(root, &pass, "docs/empty", Vec::new(), 1_500_000_200);
    let bad = seed_file(
        root,
        &pass,
        "broken/bad.txt",
        b"this one\n".to_vec(),
        1_500_000_300,
    );
    let (ws, barcode) = workspace_with_seed_tape(root, &[&a, &readme, &empty, &bad]);

    // The seed's database, later schema; docs/copy.txt is a duplicate of the readme.
    let db = root.join("tapebackup.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(LATER_DDL).unwrap();
    c.execute(
        "INSERT INTO tape (id, label, full, verified_count) VALUES (1, ?1, 0, 0)",
        [&barcode],
    )
    .unwrap();
    for (i, f) in [&a, &readme, &empty, &bad].iter().enumerate() {
        let md5 = if f.path == "broken/bad.txt" {
            md5_hex(b"something else\n")
        } else {
            md5_hex(&f.data)
        };
        let enc = std::fs::read(&f.enc).unwrap();
        c.execute(
            "INSERT INTO file (id, filename, path, filename_encrypted, mtime, filesize, \
             filesize_encrypted, md5sum_file, md5sum_encrypted, tape_id, downloaded_date, \
             encrypted_date, written_date, downloaded, encrypted, written, verified_count, \
             deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, '1600000000', \
             '1600000100', '1600000200', 1, 1, 1, 0, 0)",
            rusqlite::params![
                i as i64 + 1,
                f.path.rsplit('/').next().unwrap(),
                f.path,
                f.enc_name,
                f.mtime.to_string(),
                f.data.len() as i64,
                enc.len() as i64,
                md5,
                md5_hex(&enc),
            ],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO file (id, duplicate_id, filename, path, mtime, filesize, md5sum_file, \
         downloaded, encrypted, written, verified_count, deleted) \
         VALUES (10, 2, 'copy.txt', 'docs/copy.txt', '1500000400', ?1, ?2, 1, 0, 0, 0, 0)",
        rusqlite::params![readme.data.len() as i64, md5_hex(&readme.data)],
    )
    .unwrap();
    drop(c);
    let out = ok(&ws, &["catalog", "import-legacy", db.to_str().unwrap()]);
    assert!(out.contains("packs 4"), "{out}");

    // Restore everything but the broken file.
    let to = root.join("restored");
    let envs = [(PASS_ENV, pass.as_path())];
    let o = tb_env(
        &ws,
        &["restore", "[dp]*", "--to", to.to_str().unwrap()],
        &envs,
    );
    assert!(o.status.success(), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("restored 4 file(s)"), "{stdout}");
    assert!(stdout.contains(&barcode), "{stdout}");
    let base = to.join("legacy");
    for f in [&a, &readme, &empty] {
        let got = base.join(f.path);
        assert_eq!(std::fs::read(&got).unwrap(), f.data, "{}", f.path);
        let mtime = std::fs::metadata(&got).unwrap().modified().unwrap();
        assert_eq!(
            mtime,
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(f.mtime as u64)
        );
    }
    assert_eq!(
        std::fs::read(base.join("docs/copy.txt")).unwrap(),
        readme.data
    );
    assert_eq!(regular_files(&to).len(), 4, "{:?}", regular_files(&to));
    // verify reads the legacy packs back and checks the MD5 of their ciphertext.
    for args in [&["verify"][..], &["verify", "--no-key"][..]] {
        let v = ok(&ws, args);
        assert!(v.contains("4 ok, 0 failed"), "{v}");
    }

    // Wrong passphrase: exit 4 (bad padding or MD5 mismatch), nothing at the destination.
    let wrong = root.join("wrong-pass");
    secret_file(&wrong, "not the seed's key\n");
    let to2 = root.join("wrong");
    let o = tb_env(
        &ws,
        &["restore", "[dp]*", "--to", to2.to_str().unwrap()],
        &[(PASS_ENV, wrong.as_path())],
    );
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("legacy pack"), "{err}");
    assert!(regular_files(&to2).is_empty(), "{:?}", regular_files(&to2));

    // No passphrase and no terminal: told how to give it, never asked on argv.
    let to3 = root.join("nopass");
    let o = tb_env(
        &ws,
        &["restore", "[dp]*", "--to", to3.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(PASS_ENV), "{err}");
    assert!(regular_files(&to3).is_empty());

    // The seed recorded another MD5: exit 4, nothing at the destination.
    let to4 = root.join("broken");
    let o = tb_env(
        &ws,
        &["restore", "broken/*", "--to", to4.to_str().unwrap()],
        &envs,
    );
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("md5 of the decrypted file") && err.contains(&md5_hex(&bad.data)),
        "{err}"
    );
    assert!(regular_files(&to4).is_empty(), "{:?}", regular_files(&to4));
}

#[test]
fn early_schema_without_sizes_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pass = root.join("seed-pass");
    secret_file(&pass, "early days\n");
    let f = seed_file(
        root,
        &pass,
        "music/song.flac",
        noise("song", 70_001),
        1_400_000_000,
    );
    let (ws, barcode) = workspace_with_seed_tape(root, &[&f]);
    let db = root.join("early.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(EARLY_DDL).unwrap();
    c.execute(
        "INSERT INTO tapedevices (label, full, verified_count) VALUES (?1, 1, 0)",
        [&barcode],
    )
    .unwrap();
    c.execute(
        "INSERT INTO files (filename, path, filename_encrypted, mtime, md5sum_file, \
         md5sum_encrypted, tape, downloaded_date, packed_date, written_date, downloaded, \
         packed, written, verified_count, deleted) VALUES ('song.flac', ?1, ?2, '1400000000', \
         ?3, ?4, ?5, '1500000000', '1500000001', '1500000002', 1, 1, 1, 0, 0)",
        rusqlite::params![
            f.path,
            f.enc_name,
            md5_hex(&f.data),
            md5_hex(&std::fs::read(&f.enc).unwrap()),
            barcode
        ],
    )
    .unwrap();
    c.execute(
        "INSERT INTO alternative_file_names (filename, path, files_id, date) \
         VALUES ('same.flac', 'music/same.flac', 1, '1500000005')",
        [],
    )
    .unwrap();
    drop(c);
    ok(
        &ws,
        &[
            "catalog",
            "import-legacy",
            db.to_str().unwrap(),
            "--source-name",
            "old",
        ],
    );
    let to = root.join("r");
    let o = tb_env(
        &ws,
        &["restore", "--to", to.to_str().unwrap()],
        &[(PASS_ENV, pass.as_path())],
    );
    assert!(o.status.success(), "{o:?}");
    for p in ["music/song.flac", "music/same.flac"] {
        assert_eq!(
            std::fs::read(to.join("old").join(p)).unwrap(),
            f.data,
            "{p}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&ok(&ws, &["--json", "jobs"])).unwrap();
    assert!(v.to_string().contains("restore"), "{v}");
}

//! Import of the seed tool's databases, built here with its DDL (both schemas).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use catalog::{
    Catalog, Error, FileQuery, LegacyOptions, LegacySchema, MissingReason, PackFormat, Position,
    RestoreQuery, Silent, Timestamp, VersionSelector, VolumeState,
};

use crate::support::TestResult;

const EARLY_DDL: &str = "
CREATE TABLE files (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT, path TEXT UNIQUE,
  filename_encrypted TEXT UNIQUE, mtime TEXT, md5sum_file TEXT, md5sum_encrypted TEXT,
  tape TEXT, downloaded_date TEXT, packed_date TEXT, written_date TEXT, downloaded INTEGER,
  packed INTEGER, written INTEGER, verified_count INTEGER, verified_last TEXT, deleted INTEGER);
CREATE TABLE tapedevices (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT UNIQUE,
  full_date TEXT, files_count INTEGER, full INTEGER, verified_count INTEGER,
  verified_last TEXT);
CREATE TABLE alternative_file_names (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT,
  path TEXT UNIQUE, files_id INTEGER, date TEXT);
";

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

const MD5_A: &str = "0cc175b9c0f1b6a831c399e269772661";
const MD5_A_ENC: &str = "92eb5ffee6ae2fec3ad71c777531578f";
const MD5_B: &str = "4a8a08f09d37b73795649038408b5f33";
const MD5_B_ENC: &str = "8277e0910d750195b448797616e091ad";
const MD5_C: &str = "e1671797c52e15f763380b45e841ec32";

fn early_db(path: &Path) -> rusqlite::Result<()> {
    let c = rusqlite::Connection::open(path)?;
    c.execute_batch(EARLY_DDL)?;
    c.execute_batch(&format!(
        "INSERT INTO tapedevices (label, full_date, files_count, full, verified_count, verified_last)
           VALUES ('TAPE01L5', '1600005000', 1, 1, 1, '1600009000'),
                  ('TAPE02L5', NULL, 0, 0, 0, NULL);
         INSERT INTO files (filename, path, filename_encrypted, mtime, md5sum_file, md5sum_encrypted,
           tape, downloaded_date, packed_date, written_date, downloaded, packed, written,
           verified_count, verified_last, deleted) VALUES
          ('a.jpg', '/media/a.jpg', 'Xk2j9qA0', '1500000000', '{MD5_A}', '{MD5_A_ENC}', 'TAPE01L5',
             '1600000000', '1600000100.75', '1600000200', 1, 1, 1, 2, '1600008000', 0),
          ('b.jpg', '/media/b.jpg', 'Pq81Lmz3', '1500000001', '{MD5_B}', '{MD5_B_ENC}', NULL,
             '1600000000', '1600000100', NULL, 1, 1, 0, 0, NULL, 0),
          ('c.jpg', '/media/c.jpg', NULL, '1500000002', '{MD5_C}', NULL, NULL,
             '1600000000', NULL, NULL, 1, 0, 0, 0, NULL, 0),
          ('d.jpg', '/media/d.jpg', NULL, '1500000003', NULL, NULL, NULL,
             NULL, NULL, NULL, 0, 0, 0, 0, NULL, 1);
         INSERT INTO alternative_file_names (filename, path, files_id, date)
           VALUES ('a-copy.jpg', '/media/other/a-copy.jpg', 1, '1600000300');"
    ))
}

fn later_db(path: &Path) -> rusqlite::Result<()> {
    let c = rusqlite::Connection::open(path)?;
    c.execute_batch(LATER_DDL)?;
    c.execute_batch(&format!(
        "INSERT INTO tape (label, full_date, files_count, end_of_data, full, verified_count, verified_last)
           VALUES ('L60001L6', NULL, 2, 5000, 0, 0, NULL);
         INSERT INTO file (duplicate_id, filename, path, filename_encrypted, mtime, filesize,
           filesize_encrypted, md5sum_file, md5sum_encrypted, tape_id, downloaded_date,
           encrypted_date, written_date, tapeposition, downloaded, encrypted, written,
           verified_count, verified_last, deleted) VALUES
          (NULL, 'a.jpg', 'srv/a.jpg', 'abcdef0123', '1500000000', 1000, 1040, '{MD5_A}', '{MD5_A_ENC}', 1,
             '1600000000', '1600000100', '1600000200', 1234, 1, 1, 1, 0, NULL, 0),
          (1, 'a2.jpg', 'srv/dup/a.jpg', NULL, '1500000000', 1000, NULL, NULL, NULL, NULL,
             '1600000050', NULL, NULL, NULL, 1, 0, 0, 0, NULL, 0),
          (NULL, 'b.jpg', 'srv/b.jpg', 'zzz999', '1500000001', 2000, 2032, '{MD5_B}', '{MD5_B_ENC}', NULL,
             '1600000000', '1600000100', NULL, NULL, 1, 1, 0, 0, NULL, 0),
          (NULL, 'c.jpg', 'srv/c.jpg', 'lost777', '1500000002', 3000, 3040, '{MD5_C}', NULL, 99,
             '1600000000', '1600000100', '1600000200', 77, 1, 1, 1, 0, NULL, 0);
         INSERT INTO restore_job (started, finished) VALUES ('1600001000', NULL);
         INSERT INTO config (name, value) VALUES ('version', '2');"
    ))
}

fn import(cat: &mut Catalog, db: &Path) -> catalog::Result<catalog::LegacyImport> {
    cat.import_legacy(
        db,
        &LegacyOptions::default(),
        Timestamp::from_unix_seconds(1_700_000_000),
        &Silent,
        &AtomicBool::new(false),
    )
}

#[test]
fn early_schema_imports_files_packs_tapes_and_aliases() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("tapebackup.db");
    early_db(&db)?;
    let mut cat = Catalog::open_in_memory()?;
    let out = import(&mut cat, &db)?;
    assert_eq!(out.schema, LegacySchema::Early);
    assert_eq!(
        (
            out.files,
            out.aliases,
            out.packs,
            out.tapes,
            out.locations,
            out.verifications
        ),
        (5, 1, 2, 2, 1, 2)
    );
    assert!(cat.check()?.is_ok(), "{:?}", cat.check()?);

    let tape1 = cat.read().volume_by_barcode("TAPE01L5")?.ok_or("no tape")?;
    assert_eq!(tape1.state, VolumeState::Full);
    assert_eq!(
        tape1.full_at,
        Some(Timestamp::from_unix_seconds(1_600_005_000))
    );
    let tape2 = cat.read().volume_by_barcode("TAPE02L5")?.ok_or("no tape")?;
    assert_eq!(tape2.state, VolumeState::Appendable);

    let pack = cat.read().pack_by_name("Xk2j9qA0")?.ok_or("no pack")?;
    assert_eq!(pack.format, PackFormat::LegacyOpensslAes256CbcPbkdf2);
    assert_eq!(
        pack.plain_hash.as_ref().map(|d| d.to_hex()),
        Some(MD5_A.to_owned())
    );
    assert_eq!(
        pack.cipher_hash.as_ref().map(|d| d.to_hex()),
        Some(MD5_A_ENC.to_owned())
    );
    assert_eq!(pack.created_at, Timestamp::from_unix_seconds(1_600_000_100));

    let plan = cat.read().plan_restore(&RestoreQuery {
        include_deleted: true,
        ..Default::default()
    })?;
    assert_eq!(plan.runs.len(), 1);
    let read = &plan.runs[0].reads[0];
    assert_eq!(
        read.position,
        Position::LtfsFile {
            name: "Xk2j9qA0".into(),
            start_block: None
        }
    );
    let mut paths: Vec<_> = read.files.iter().map(|f| f.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, vec!["/media/a.jpg", "/media/other/a-copy.jpg"]);
    let missing: Vec<_> = plan
        .missing
        .iter()
        .map(|m| (m.path.as_str(), m.reason))
        .collect();
    assert_eq!(
        missing,
        vec![
            ("/media/b.jpg", MissingReason::NoUsableCopy),
            ("/media/c.jpg", MissingReason::NotPacked),
            ("/media/d.jpg", MissingReason::NotFetched),
        ]
    );
    // d.jpg was deleted at its source.
    let visible = cat.read().search(&FileQuery::default())?;
    assert_eq!(visible.len(), 4);
    // b.jpg is packed but on no tape: the next write picks it up.
    let todo = cat.read().packs_to_write(
        &catalog::CopyTarget {
            copies: 1,
            pool: None,
        },
        10,
    )?;
    assert_eq!(todo.len(), 1);
    assert_eq!(todo[0].name, "Pq81Lmz3");
    let jobs = cat.read().jobs(10)?;
    assert_eq!(jobs[0].kind, catalog::JobKind::Import);
    assert_eq!(jobs[0].outcome, catalog::JobOutcome::Succeeded);
    Ok(())
}

#[test]
fn later_schema_imports_sizes_positions_and_duplicates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("tapebackup.db");
    later_db(&db)?;
    let mut cat = Catalog::open_in_memory()?;
    let out = import(&mut cat, &db)?;
    assert_eq!(out.schema, LegacySchema::Later);
    assert_eq!(
        (out.files, out.aliases, out.packs, out.tapes, out.locations),
        (4, 1, 3, 1, 1)
    );
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].contains("srv/c.jpg"));
    assert!(cat.check()?.is_ok(), "{:?}", cat.check()?);
    let tape = cat.read().volume_by_barcode("L60001L6")?.ok_or("no tape")?;
    assert_eq!(tape.bytes_used, 1040);

    let entry = cat
        .read()
        .locate(out.source, "srv/dup/a.jpg", VersionSelector::Latest)?
        .ok_or("no dup")?;
    assert_eq!(entry.version.size, Some(1000));
    assert_eq!(
        entry.pack.as_ref().map(|p| p.name.as_str()),
        Some("abcdef0123")
    );
    assert_eq!(
        entry.copies[0].position,
        Position::LtfsFile {
            name: "abcdef0123".into(),
            start_block: Some(1234)
        }
    );
    assert_eq!(entry.pack.as_ref().and_then(|p| p.cipher_size), Some(1040));
    let plan = cat.read().plan_restore(&RestoreQuery::default())?;
    assert_eq!(plan.file_count(), 2);
    Ok(())
}

#[test]
fn import_refuses_other_databases_and_repeats() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("tapebackup.db");
    later_db(&db)?;
    let mut cat = Catalog::open_in_memory()?;
    import(&mut cat, &db)?;
    let before = cat.read().summary()?;
    let again = import(&mut cat, &db);
    assert!(
        matches!(again, Err(Error::AlreadyExists { what: "source", .. })),
        "{again:?}"
    );
    assert_eq!(cat.read().summary()?, before);

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)?.execute_batch("CREATE TABLE t (x);")?;
    assert!(matches!(
        import(&mut cat, &other),
        Err(Error::NotLegacy { .. })
    ));
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 4096])?;
    assert!(matches!(
        import(&mut cat, &garbage),
        Err(Error::NotADatabase { .. })
    ));
    Ok(())
}

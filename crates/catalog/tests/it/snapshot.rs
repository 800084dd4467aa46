//! Online snapshots and merging them back.

use std::sync::atomic::AtomicBool;

use catalog::{Catalog, Error, FileQuery, MergeStats, RestoreQuery, Silent};

use crate::support::{TestResult, fetched, file, h, pack, put, t, tape};

fn sample() -> catalog::Result<Catalog> {
    let (mut cat, src, vs) = fetched(&["a/1", "a/2", "b/3"])?;
    cat.write(|tx| {
        let v = tx.add_tape(&tape("SNAP01"), t(0))?;
        let p = pack(tx, &[vs[0], vs[1]], 1)?;
        put(tx, p, v, 5)?;
        let p = pack(tx, &[vs[2]], 2)?;
        put(tx, p, v, 9)?;
        tx.record_verification(
            &catalog::NewVerification {
                job: None,
                volume: v,
                location: None,
                outcome: catalog::VerifyOutcome::Ok,
                detail: None,
            },
            t(30),
        )?;
        // A second version of a/1, not packed yet.
        tx.record_scan(src, &file("a/1", 555, 9), t(40))?;
        Ok::<_, Error>(())
    })?;
    Ok(cat)
}

type Listing = Vec<(String, u32, Option<u64>, usize)>;

fn listing(cat: &Catalog) -> catalog::Result<Listing> {
    Ok(cat
        .read()
        .search(&FileQuery {
            selector: catalog::VersionSelector::Number(1),
            ..Default::default()
        })?
        .into_iter()
        .chain(cat.read().search(&FileQuery::default())?)
        .map(|e| {
            (
                e.version.path,
                e.version.seq,
                e.version.size,
                e.copies.len(),
            )
        })
        .collect())
}

#[test]
fn snapshot_is_one_complete_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let live = dir.path().join("live.db");
    let snap = dir.path().join("snap.db");
    let mut cat = Catalog::open(&live)?;
    let mem = sample()?;
    // Fill the on-disk catalog through a snapshot + merge of the in-memory sample.
    mem.snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    cat.merge_snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    std::fs::remove_file(&snap)?;

    let info = cat.snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    assert_eq!(info.bytes, std::fs::metadata(&snap)?.len());
    assert!(info.pages > 0);
    let names: Vec<_> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("snap.db-") || n.ends_with(".partial")),
        "{names:?}"
    );
    let copy = Catalog::open_read_only(&snap)?;
    assert!(copy.check()?.is_ok());
    assert_eq!(listing(&copy)?, listing(&cat)?);
    assert_eq!(listing(&copy)?, listing(&mem)?);
    Ok(())
}

#[test]
fn cancelled_snapshot_leaves_no_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let snap = dir.path().join("s.db");
    let cat = sample()?;
    let r = cat.snapshot(&snap, &Silent, &AtomicBool::new(true));
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn merge_is_idempotent_and_keeps_both_histories() -> TestResult {
    let dir = tempfile::tempdir()?;
    let snap = dir.path().join("s.db");
    let src_cat = sample()?;
    src_cat.snapshot(&snap, &Silent, &AtomicBool::new(false))?;

    let mut cat = Catalog::open_in_memory()?;
    let first = cat.merge_snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    assert_eq!(
        first,
        MergeStats {
            sources: 1,
            files: 3,
            versions: 4,
            packs: 2,
            volumes: 1,
            locations: 2,
            verifications: 1,
        }
    );
    let again = cat.merge_snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    assert_eq!(again, MergeStats::default());
    assert_eq!(listing(&cat)?, listing(&src_cat)?);
    assert_eq!(
        cat.read().volume_summaries()?[0].volume.bytes_used,
        src_cat.read().volume_summaries()?[0].volume.bytes_used
    );
    let a = cat.read().plan_restore(&RestoreQuery::default())?;
    let b = src_cat.read().plan_restore(&RestoreQuery::default())?;
    assert_eq!(a.file_count(), b.file_count());
    assert!(cat.check()?.is_ok(), "{:?}", cat.check()?);

    // A catalog that saw another change of b/3 keeps it and gains the snapshot's.
    let mut other = Catalog::open_in_memory()?;
    other.write(|tx| {
        let s = tx.add_source("src", "/data", t(0))?;
        tx.record_scan(s, &file("b/3", 7, 7), t(3))
    })?;
    let st = other.merge_snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    assert_eq!(st.versions, 4);
    let s = other.read().source_by_name("src")?.ok_or("no source")?;
    let vs = other.read().versions_of(s.id, "b/3")?;
    assert_eq!(
        vs.iter().map(|v| (v.seq, v.size)).collect::<Vec<_>>(),
        vec![(1, Some(7)), (2, Some(102))]
    );
    assert!(other.check()?.is_ok());
    Ok(())
}

#[test]
fn merge_refuses_a_conflicting_pack_and_changes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let snap = dir.path().join("s.db");
    let src_cat = sample()?;
    src_cat.snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    let name = src_cat.read().pack(catalog::PackId::from_raw(1))?.name;
    // Same pack name, different ciphertext hash.
    let raw = rusqlite::Connection::open(&snap)?;
    raw.execute(
        "UPDATE pack SET cipher_hash = ?1 WHERE name = ?2",
        rusqlite::params![h(999).bytes(), name],
    )?;
    drop(raw);
    let clean = dir.path().join("clean.db");
    src_cat.snapshot(&clean, &Silent, &AtomicBool::new(false))?;
    let mut other = Catalog::open_in_memory()?;
    other.write(|tx| tx.add_source("unrelated", "/", t(0)))?;
    other.merge_snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    let before = (listing(&other)?, other.read().summary()?);
    let r = other.merge_snapshot(&clean, &Silent, &AtomicBool::new(false));
    assert!(matches!(r, Err(Error::AlreadyExists { .. })), "{r:?}");
    assert_eq!((listing(&other)?, other.read().summary()?), before);
    Ok(())
}

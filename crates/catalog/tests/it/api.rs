//! The typed API, operation by operation.

use std::collections::BTreeSet;

use catalog::{
    Catalog, CopyTarget, Error, EventLevel, FileQuery, JobKind, JobOutcome, JobProgress,
    MissingReason, NewLocation, NewObjectVolume, NewVerification, Part, Position, Problem,
    RestoreQuery, ScanChange, TimeRange, VerifyOutcome, VersionSelector, VolumeState,
};

use crate::support::{TestResult, fetched, file, h, pack, put, t, tape};

#[test]
fn scan_decides_new_changed_unchanged() -> TestResult {
    let mut cat = Catalog::open_in_memory()?;
    // (size, mtime, hash, expected change, expected number of versions afterwards)
    let steps: &[(u64, i64, Option<u64>, ScanChange, usize)] = &[
        (10, 1, None, ScanChange::New, 1),
        (10, 1, None, ScanChange::Unchanged, 1),
        (10, 1, Some(5), ScanChange::Unchanged, 1), // hash learnt, same version
        (10, 1, Some(5), ScanChange::Unchanged, 1),
        (10, 1, Some(6), ScanChange::Changed, 2), // same size+mtime, other hash
        (11, 1, None, ScanChange::Changed, 3),    // size
        (11, 2, None, ScanChange::Changed, 4),    // mtime
        (11, 2, None, ScanChange::Unchanged, 4),
    ];
    let src = cat.write(|tx| tx.add_source("s", "/", t(0)))?;
    for (i, (size, mtime, hash, change, n)) in steps.iter().enumerate() {
        let mut f = file("a/b.txt", *size, *mtime);
        f.hash = hash.map(h);
        let out = cat.write(|tx| tx.record_scan(src, &f, t(i as i64)))?;
        assert_eq!(out.change, *change, "step {i}");
        let versions = cat.read().versions_of(src, "a/b.txt")?;
        assert_eq!(versions.len(), *n, "step {i}");
        assert_eq!(
            versions.iter().map(|v| v.seq).collect::<Vec<_>>(),
            (1..=*n as u32).collect::<Vec<_>>()
        );
        assert_eq!(versions.last().map(|v| v.id), Some(out.version));
    }
    let v = cat.read().versions_of(src, "a/b.txt")?;
    assert_eq!(v[0].hash, Some(h(5)));
    assert_eq!(v[0].last_seen, t(3));
    assert!(cat.check()?.is_ok());
    Ok(())
}

#[test]
fn deleted_files_are_marked_and_come_back_as_new_versions() -> TestResult {
    let mut cat = Catalog::open_in_memory()?;
    let src = cat.write(|tx| tx.add_source("s", "/", t(0)))?;
    cat.write(|tx| {
        tx.record_scan(src, &file("keep", 1, 1), t(1))?;
        tx.record_scan(src, &file("gone", 1, 1), t(1))
    })?;
    // Second scan sees only "keep".
    let n = cat.write(|tx| {
        tx.record_scan(src, &file("keep", 1, 1), t(100))?;
        tx.mark_unseen_deleted(src, t(100), t(101))
    })?;
    assert_eq!(n, 1);
    let gone = cat.read().versions_of(src, "gone")?;
    assert_eq!(gone[0].deleted_at, Some(t(101)));
    // Deleted files drop out of the default search and out of the fetch queue.
    let all = cat.read().search(&FileQuery::default())?;
    assert_eq!(all.len(), 1);
    let with_deleted = cat.read().search(&FileQuery {
        include_deleted: true,
        ..Default::default()
    })?;
    assert_eq!(with_deleted.len(), 2);
    assert_eq!(cat.read().versions_to_fetch(10)?.len(), 1);
    // It reappears unchanged: a new version.
    let again = cat.write(|tx| tx.record_scan(src, &file("gone", 1, 1), t(200)))?;
    assert_eq!(again.change, ScanChange::Changed);
    assert_eq!(cat.read().versions_of(src, "gone")?.len(), 2);
    Ok(())
}

#[test]
fn identical_content_is_stored_once_with_path_aliases() -> TestResult {
    let mut cat = Catalog::open_in_memory()?;
    let src = cat.write(|tx| tx.add_source("s", "/", t(0)))?;
    let (a, b) = cat.write(|tx| {
        let a = tx.record_scan(src, &file("one/x.jpg", 100, 1), t(1))?;
        let b = tx.record_scan(src, &file("two/x-copy.jpg", 100, 5), t(1))?;
        let ca = tx.record_fetched(a.version, &h(7), 100)?;
        let cb = tx.record_fetched(b.version, &h(7), 100)?;
        assert_eq!(ca, cb);
        Ok::<_, Error>((a.version, b.version))
    })?;
    assert_eq!(cat.read().summary()?.contents, 1);
    let todo = cat.read().versions_to_pack(10)?;
    assert_eq!(todo.len(), 1, "one content, packed once");
    cat.write(|tx| {
        let p = pack(tx, &[a], 1)?;
        // The alias's content is already packed.
        assert!(matches!(
            pack(tx, &[b], 2),
            Err(Error::AlreadyPacked { version }) if version == b
        ));
        let vol = tx.add_tape(&tape("T00001L8"), t(2))?;
        put(tx, p, vol, 10)?;
        Ok::<_, Error>(())
    })?;
    let plan = cat.read().plan_restore(&RestoreQuery::default())?;
    assert!(plan.missing.is_empty());
    assert_eq!(plan.runs.len(), 1);
    assert_eq!(
        plan.runs[0].reads.len(),
        1,
        "one pack read serves both paths"
    );
    let paths: BTreeSet<_> = plan.runs[0].reads[0]
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from(["one/x.jpg".to_owned(), "two/x-copy.jpg".to_owned()])
    );
    Ok(())
}

#[test]
fn fetch_that_contradicts_the_scan_is_refused() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a"])?;
    let r = cat.write(|tx| tx.record_fetched(vs[0], &h(99), 100));
    assert!(matches!(r, Err(Error::ContentMismatch { .. })), "{r:?}");
    let r = cat.write(|tx| tx.record_fetched(vs[0], &h(0), 55));
    assert!(matches!(r, Err(Error::ContentMismatch { .. })), "{r:?}");
    // Same hash again is fine (idempotent).
    cat.write(|tx| tx.record_fetched(vs[0], &h(0), 100))?;
    assert!(cat.check()?.is_ok());
    Ok(())
}

#[test]
fn pack_records_are_validated_and_named_randomly() -> TestResult {
    let mut cat = Catalog::open_in_memory()?;
    let src = cat.write(|tx| tx.add_source("s", "/", t(0)))?;
    let v = cat.write(|tx| tx.record_scan(src, &file("a", 10, 1), t(1)))?;
    let r = cat.write(|tx| pack(tx, &[v.version], 1));
    assert!(
        matches!(r, Err(Error::InvalidInput { .. })),
        "not fetched: {r:?}"
    );
    cat.write(|tx| tx.record_fetched(v.version, &h(1), 10))?;
    let mut names = BTreeSet::new();
    let p = cat.write(|tx| pack(tx, &[v.version], 1))?;
    let info = cat.read().pack(p)?;
    assert_eq!(info.name.len(), 32);
    assert!(
        info.name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(
        !info.name.contains('a') || info.name != "a",
        "no plaintext in the name"
    );
    names.insert(info.name);
    for _ in 0..100 {
        names.insert(catalog::generate_pack_name()?);
    }
    assert_eq!(names.len(), 101);
    assert_eq!(cat.read().versions_to_pack(10)?.len(), 0);
    Ok(())
}

#[test]
fn a_failed_transaction_leaves_nothing() -> TestResult {
    let mut cat = Catalog::open_in_memory()?;
    let r: Result<(), Error> = cat.write(|tx| {
        let src = tx.add_source("s", "/", t(0))?;
        tx.record_scan(src, &file("a", 1, 1), t(1))?;
        tx.add_source("s", "/again", t(0))?; // duplicate name: fails
        Ok(())
    });
    assert!(matches!(
        r,
        Err(Error::AlreadyExists { what: "source", .. })
    ));
    let s = cat.read().summary()?;
    assert_eq!((s.sources, s.files, s.versions), (0, 0, 0));
    Ok(())
}

#[test]
fn packs_to_write_counts_complete_copies_per_pool() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a", "b", "c"])?;
    let want = |copies, pool: Option<&str>| CopyTarget {
        copies,
        pool: pool.map(str::to_owned),
    };
    cat.write(|tx| {
        let pa = pack(tx, &[vs[0]], 1)?;
        let pb = pack(tx, &[vs[1]], 2)?;
        let _pc = pack(tx, &[vs[2]], 3)?;
        let t1 = tx.add_tape(&tape("T1"), t(0))?;
        let mut other = tape("T2");
        other.pool = "vault".into();
        let t2 = tx.add_tape(&other, t(0))?;
        tx.add_tape(&tape("T3"), t(0))?;
        put(tx, pa, t1, 0)?;
        put(tx, pa, t2, 0)?;
        // pb spans T1 and T3 in two parts: a complete copy only with both.
        let size = tx.read().pack(pb)?.cipher_size.unwrap_or(0);
        tx.record_location(
            &NewLocation {
                pack: pb,
                volume: t1,
                part: Part {
                    index: 0,
                    count: 2,
                    offset: 0,
                    length: Some(size / 2),
                },
                position: Position::Tape {
                    partition: 1,
                    start_block: 100,
                },
                job: None,
            },
            t(3),
        )?;
        Ok::<_, Error>(())
    })?;
    let names = |v: Vec<catalog::PackInfo>| v.into_iter().map(|p| p.id.get()).collect::<Vec<_>>();
    // (copies, pool, expected pack ids)
    let cases: Vec<(u32, Option<&str>, Vec<i64>)> = vec![
        (1, None, vec![2, 3]),
        (2, None, vec![2, 3]),
        (3, None, vec![1, 2, 3]),
        (1, Some("vault"), vec![2, 3]),
        (1, Some("default"), vec![2, 3]),
        (2, Some("default"), vec![1, 2, 3]),
    ];
    for (copies, pool, expected) in &cases {
        assert_eq!(
            names(cat.read().packs_to_write(&want(*copies, *pool), 100)?),
            *expected,
            "copies {copies} pool {pool:?}"
        );
    }
    // Second part of pb on T3 completes it; retiring T2 drops pa's second copy.
    cat.write(|tx| {
        let pb = catalog::PackId::from_raw(2);
        let size = tx.read().pack(pb)?.cipher_size.unwrap_or(0);
        let t3 = tx
            .read()
            .volume_by_barcode("T3")?
            .map(|v| v.id)
            .ok_or(Error::Cancelled)?;
        tx.record_location(
            &NewLocation {
                pack: pb,
                volume: t3,
                part: Part {
                    index: 1,
                    count: 2,
                    offset: size / 2,
                    length: Some(size - size / 2),
                },
                position: Position::Tape {
                    partition: 1,
                    start_block: 0,
                },
                job: None,
            },
            t(4),
        )?;
        let t2 = tx
            .read()
            .volume_by_barcode("T2")?
            .map(|v| v.id)
            .ok_or(Error::Cancelled)?;
        tx.set_volume_state(t2, VolumeState::Retired, t(5))
    })?;
    assert_eq!(
        names(cat.read().packs_to_write(&want(1, None), 100)?),
        vec![3]
    );
    assert_eq!(
        names(cat.read().packs_to_write(&want(2, None), 100)?),
        vec![1, 2, 3]
    );
    assert_eq!(cat.read().copies_of(catalog::PackId::from_raw(2))?, 1);
    assert!(cat.check()?.is_ok(), "{:?}", cat.check()?);
    Ok(())
}

#[test]
fn restore_plan_orders_runs_by_volume_and_position() -> TestResult {
    let (mut cat, _src, vs) = fetched(&[
        "d/1",
        "d/2",
        "d/3",
        "d/4",
        "e/5",
        "d/unpacked",
        "d/unwritten",
    ])?;
    cat.write(|tx| {
        let a = tx.add_tape(&tape("A"), t(0))?;
        let b = tx.add_tape(&tape("B"), t(0))?;
        let p1 = pack(tx, &[vs[0], vs[1]], 1)?; // two files in one pack
        let p2 = pack(tx, &[vs[2]], 2)?;
        let p3 = pack(tx, &[vs[3]], 3)?;
        let p5 = pack(tx, &[vs[4]], 5)?;
        let _p7 = pack(tx, &[vs[6]], 7)?;
        put(tx, p2, a, 500)?;
        put(tx, p1, a, 20)?;
        put(tx, p3, b, 7)?;
        put(tx, p5, a, 90)?;
        Ok::<_, Error>(())
    })?;
    let plan = cat.read().plan_restore(&RestoreQuery {
        pattern: Some("d/*".into()),
        ..Default::default()
    })?;
    let shape: Vec<(String, Vec<u64>)> = plan
        .runs
        .iter()
        .map(|r| {
            (
                r.label.clone(),
                r.reads
                    .iter()
                    .map(|rd| match rd.position {
                        Position::Tape { start_block, .. } => start_block,
                        _ => u64::MAX,
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![("A".to_owned(), vec![20, 500]), ("B".to_owned(), vec![7])]
    );
    assert_eq!(plan.file_count(), 4);
    let first = &plan.runs[0].reads[0];
    assert_eq!(
        first
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.offset))
            .collect::<Vec<_>>(),
        vec![("d/1", 0), ("d/2", 100)]
    );
    let missing: Vec<_> = plan
        .missing
        .iter()
        .map(|m| (m.path.as_str(), m.reason))
        .collect();
    assert_eq!(
        missing,
        vec![
            ("d/unpacked", MissingReason::NotPacked),
            ("d/unwritten", MissingReason::NoUsableCopy)
        ]
    );
    Ok(())
}

#[test]
fn restore_prefers_library_copies_and_never_uses_retired_ones() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["f"])?;
    let (offsite, library) = cat.write(|tx| {
        let p = pack(tx, &[vs[0]], 1)?;
        let off = tx.add_tape(&tape("OFF"), t(0))?;
        let lib = tx.add_tape(&tape("LIB"), t(0))?;
        put(tx, p, off, 1)?;
        put(tx, p, lib, 2)?;
        tx.set_volume_state(off, VolumeState::Offsite, t(1))?;
        Ok::<_, Error>((off, lib))
    })?;
    let label = |cat: &Catalog| -> catalog::Result<Vec<String>> {
        Ok(cat
            .read()
            .plan_restore(&RestoreQuery::default())?
            .runs
            .into_iter()
            .map(|r| r.label)
            .collect())
    };
    assert_eq!(label(&cat)?, vec!["LIB"]);
    cat.write(|tx| tx.set_volume_state(library, VolumeState::Retired, t(2)))?;
    assert_eq!(label(&cat)?, vec!["OFF"]);
    cat.write(|tx| tx.set_volume_state(offsite, VolumeState::Retired, t(2)))?;
    let plan = cat.read().plan_restore(&RestoreQuery::default())?;
    assert!(plan.runs.is_empty());
    assert_eq!(plan.missing[0].reason, MissingReason::NoUsableCopy);
    Ok(())
}

#[test]
fn versions_by_date_and_number() -> TestResult {
    let mut cat = Catalog::open_in_memory()?;
    let src = cat.write(|tx| tx.add_source("s", "/", t(0)))?;
    for (i, size) in [10u64, 20, 30].iter().enumerate() {
        let at = t(100 * (i as i64 + 1));
        cat.write(|tx| {
            let v = tx.record_scan(src, &file("doc", *size, i as i64), at)?;
            tx.record_fetched(v.version, &h(*size), *size)
        })?;
    }
    cat.write(|tx| tx.mark_unseen_deleted(src, t(1000), t(1000)))?;
    // (selector, include_deleted, expected size or none)
    let cases: &[(VersionSelector, bool, Option<u64>)] = &[
        (VersionSelector::Latest, false, None),
        (VersionSelector::Latest, true, Some(30)),
        (VersionSelector::AsOf(t(50)), false, None),
        (VersionSelector::AsOf(t(100)), false, Some(10)),
        (VersionSelector::AsOf(t(250)), false, Some(20)),
        (VersionSelector::AsOf(t(999)), false, Some(30)),
        (VersionSelector::AsOf(t(1000)), false, None),
        (VersionSelector::Number(1), false, Some(10)),
        (VersionSelector::Number(2), false, Some(20)),
        (VersionSelector::Number(4), false, None),
    ];
    for (sel, del, want) in cases {
        let found = cat.read().search(&FileQuery {
            selector: *sel,
            include_deleted: *del,
            ..Default::default()
        })?;
        assert_eq!(
            found.first().and_then(|e| e.version.size),
            *want,
            "{sel:?} deleted={del}"
        );
        if !*del {
            let located = cat.read().locate(src, "doc", *sel)?;
            if *sel != VersionSelector::Latest {
                assert_eq!(
                    located.and_then(|e| e.version.size),
                    *want,
                    "locate {sel:?}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn restore_jobs_resume_where_they_stopped() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a", "b", "c"])?;
    cat.write(|tx| {
        let tp = tx.add_tape(&tape("R"), t(0))?;
        for (i, v) in vs.iter().enumerate() {
            let p = pack(tx, &[*v], i as u64)?;
            put(tx, p, tp, i as u64 * 10)?;
        }
        Ok::<_, Error>(())
    })?;
    let plan = cat.read().plan_restore(&RestoreQuery::default())?;
    let job = cat.write(|tx| tx.start_restore(&plan, t(1)))?;
    assert_eq!(cat.read().restore_progress(job)?, (0, 3));
    cat.write(|tx| tx.mark_restored(job, vs[1], t(2)))?;
    assert_eq!(cat.read().restore_progress(job)?, (1, 3));
    let rest = cat.read().plan_restore_job(job)?;
    let paths: Vec<_> = rest
        .runs
        .iter()
        .flat_map(|r| &r.reads)
        .flat_map(|r| &r.files)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, vec!["a", "c"]);
    assert_eq!(cat.read().restore_pending(job)?, vec![vs[0], vs[2]]);
    assert_eq!(cat.read().unfinished_jobs(JobKind::Restore)?.len(), 1);
    Ok(())
}

#[test]
fn search_by_glob_date_range_and_volume() -> TestResult {
    let (mut cat, src, vs) = fetched(&["photos/2020/a.jpg", "photos/2021/b.jpg", "docs/c.txt"])?;
    let vol = cat.write(|tx| {
        let p = pack(tx, &[vs[1]], 1)?;
        let vol = tx.add_tape(&tape("V"), t(0))?;
        put(tx, p, vol, 3)?;
        Ok::<_, Error>(vol)
    })?;
    let paths = |q: FileQuery| -> catalog::Result<Vec<String>> {
        Ok(cat
            .read()
            .search(&q)?
            .into_iter()
            .map(|e| e.version.path)
            .collect())
    };
    let glob = |g: &str| FileQuery {
        pattern: Some(g.into()),
        ..Default::default()
    };
    assert_eq!(
        paths(glob("photos/*"))?,
        vec!["photos/2020/a.jpg", "photos/2021/b.jpg"]
    );
    assert_eq!(paths(glob("*.txt"))?, vec!["docs/c.txt"]);
    assert_eq!(paths(glob("photos/202[1]/*"))?, vec!["photos/2021/b.jpg"]);
    assert!(paths(glob("PHOTOS/*"))?.is_empty(), "case-sensitive");
    assert_eq!(
        paths(FileQuery {
            volume: Some(vol),
            ..Default::default()
        })?,
        vec!["photos/2021/b.jpg"]
    );
    assert_eq!(
        paths(FileQuery {
            modified: TimeRange {
                from: Some(t(0)),
                to: Some(t(2)),
            },
            ..Default::default()
        })?
        .len(),
        3
    );
    assert!(
        paths(FileQuery {
            modified: TimeRange {
                from: Some(t(2)),
                to: None,
            },
            ..Default::default()
        })?
        .is_empty()
    );
    let e = cat
        .read()
        .locate(src, "photos/2021/b.jpg", VersionSelector::Latest)?
        .ok_or("not found")?;
    assert_eq!(e.copies.len(), 1);
    assert_eq!(e.copies[0].volume_label, "V");
    assert_eq!(e.pack_offset, Some(0));
    assert!(
        cat.read()
            .locate(src, "nope", VersionSelector::Latest)?
            .is_none()
    );
    Ok(())
}

#[test]
fn volumes_locations_jobs_and_verifications() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["x"])?;
    let (vol, obj, job) = cat.write(|tx| {
        let vol = tx.add_tape(&tape("VOL001L8"), t(0))?;
        assert!(matches!(
            tx.add_tape(&tape("VOL001L8"), t(0)),
            Err(Error::AlreadyExists { .. })
        ));
        let obj = tx.add_object_volume(
            &NewObjectVolume {
                bucket: "b".into(),
                prefix: "tb/".into(),
                pool: "cloud".into(),
            },
            t(0),
        )?;
        let job = tx.start_job(JobKind::Write, t(1))?;
        let p = pack(tx, &[vs[0]], 1)?;
        // An object key on a tape is refused.
        let r = tx.record_location(
            &NewLocation {
                pack: p,
                volume: vol,
                part: Part::whole(164),
                position: Position::Object { key: "k".into() },
                job: Some(job),
            },
            t(2),
        );
        assert!(matches!(r, Err(Error::InvalidInput { .. })), "{r:?}");
        let loc = put(tx, p, vol, 0)?;
        tx.record_location(
            &NewLocation {
                pack: p,
                volume: obj,
                part: Part::whole(164),
                position: Position::Object {
                    key: "tb/packname".into(),
                },
                job: Some(job),
            },
            t(2),
        )?;
        tx.log_event(Some(job), EventLevel::Info, "wrote 1 pack", t(3))?;
        tx.update_job(
            job,
            &JobProgress {
                items_done: 1,
                items_failed: 0,
                bytes_done: 164,
                resume_state: Some(b"after pack 1".to_vec()),
            },
        )?;
        tx.mark_volume_full(vol, t(4))?;
        tx.finish_job(job, JobOutcome::Succeeded, None, t(5))?;
        tx.record_verification(
            &NewVerification {
                job: None,
                volume: vol,
                location: Some(loc),
                outcome: VerifyOutcome::Mismatch,
                detail: Some("hash differs".into()),
            },
            t(6),
        )?;
        tx.record_verification(
            &NewVerification {
                job: None,
                volume: vol,
                location: None,
                outcome: VerifyOutcome::Ok,
                detail: None,
            },
            t(7),
        )?;
        Ok::<_, Error>((vol, obj, job))
    })?;
    let r = cat.read();
    let v = r.volume(vol)?;
    assert_eq!(v.state, VolumeState::Full);
    assert_eq!(v.full_at, Some(t(4)));
    assert_eq!(v.bytes_used, 164);
    assert_eq!(r.volume(obj)?.label(), "b/tb/");
    let j = r.job(job)?;
    assert_eq!(j.outcome, JobOutcome::Succeeded);
    assert_eq!(j.resume_state.as_deref(), Some(&b"after pack 1"[..]));
    assert_eq!(r.events(job)?.len(), 1);
    assert!(r.unfinished_jobs(JobKind::Write)?.is_empty());
    let sums = r.volume_summaries()?;
    assert_eq!(sums[0].packs, 1);
    assert_eq!(sums[0].failed_verifications, 1);
    assert_eq!(sums[0].last_verified, Some(t(7)));
    assert_eq!(
        r.verifications_of_pack(catalog::PackId::from_raw(1))?.len(),
        1
    );
    let s = r.summary()?;
    assert_eq!((s.packs, s.packs_unwritten, s.jobs_unfinished), (1, 0, 0));
    assert!(cat.check()?.is_ok(), "{:?}", cat.check()?);
    Ok(())
}

#[test]
fn open_refuses_files_that_are_not_catalogs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x42u8; 8192])?;
    assert!(matches!(
        Catalog::open(&garbage),
        Err(Error::NotADatabase { .. })
    ));
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)?.execute_batch("CREATE TABLE files (id INTEGER);")?;
    assert!(matches!(
        Catalog::open(&foreign),
        Err(Error::NotADatabase { .. })
    ));
    // A real catalog reopens; its file is in WAL mode.
    let good = dir.path().join("good.db");
    drop(Catalog::open(&good)?);
    let c = Catalog::open(&good)?;
    assert_eq!(c.path(), Some(good.as_path()));
    let mode: String =
        rusqlite::Connection::open(&good)?.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
    drop(c);
    assert!(Catalog::open_read_only(&good).is_ok());
    Ok(())
}

#[test]
fn check_finds_broken_invariants() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.db");
    {
        let (mem, _src, vs) = fetched(&["a", "b"])?;
        let mut mem = mem;
        mem.write(|tx| {
            let p = pack(tx, &[vs[0]], 1)?;
            let v = tx.add_tape(&tape("T"), t(0))?;
            put(tx, p, v, 1)?;
            Ok::<_, Error>(())
        })?;
        mem.snapshot(&path, &catalog::Silent, &Default::default())?;
    }
    assert!(Catalog::open(&path)?.check()?.is_ok());
    // Damage it behind the catalog's back.
    let raw = rusqlite::Connection::open(&path)?;
    raw.execute_batch(
        "PRAGMA foreign_keys = OFF;
         DELETE FROM version WHERE id = 2;
         UPDATE volume SET bytes_used = 1;
         UPDATE pack SET name = 'plaintext-name.jpg';
         DELETE FROM pack_member;
         INSERT INTO content (hash_algo, hash, size)
             SELECT hash_algo, hash, size FROM content WHERE id = 1;",
    )?;
    drop(raw);
    let report = Catalog::open(&path)?.check()?;
    let has = |f: &dyn Fn(&Problem) -> bool| report.problems.iter().any(f);
    assert!(has(
        &|p| matches!(p, Problem::FileWithoutVersion { path, .. } if path == "b")
    ));
    assert!(has(&|p| matches!(
        p,
        Problem::VolumeUsageMismatch { recorded: 1, .. }
    )));
    assert!(has(&|p| matches!(p, Problem::BadPackName { .. })));
    assert!(has(&|p| matches!(p, Problem::EmptyPack { .. })));
    assert!(has(&|p| matches!(p, Problem::OrphanContent { .. })));
    let duplicates: Vec<_> = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::DuplicateContent { .. }))
        .collect();
    assert_eq!(duplicates.len(), 1, "{:?}", report.problems);
    assert!(duplicates[0].to_string().ends_with("as content 1"));
    Ok(())
}

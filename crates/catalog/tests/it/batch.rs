//! The batch calls (`record_scans`, `record_fetches`, `record_packs`, `record_locations`):
//! same results as item by item, and all-or-nothing inside a transaction that goes on.

use catalog::{
    Catalog, Error, Fetched, NewLocation, NewPack, PackFormat, PackMember, Part, Position,
    ScanChange, VolumeState,
};

use crate::support::{TestResult, fetched, file, h, t, tape};

#[test]
fn record_scans_matches_record_scan() -> TestResult {
    let listing = vec![
        file("a", 1, 1),
        file("b", 2, 1),
        file("a", 1, 1), // listed twice: unchanged the second time
        file("b", 3, 1), // changed within the same batch
        file("c", 4, 1), // new after known paths (tried as new only after a new one)
        file("a", 1, 1), // known right after a new path (tried as new first, then found)
    ];
    let mut one = Catalog::open_in_memory()?;
    let mut many = Catalog::open_in_memory()?;
    let s1 = one.write(|tx| tx.add_source("s", "/", t(0)))?;
    let s2 = many.write(|tx| tx.add_source("s", "/", t(0)))?;
    let by_item = one.write(|tx| {
        listing
            .iter()
            .map(|f| tx.record_scan(s1, f, t(1)))
            .collect::<catalog::Result<Vec<_>>>()
    })?;
    let by_batch = many.write(|tx| tx.record_scans(s2, &listing, t(1)))?;
    assert_eq!(by_item, by_batch);
    assert_eq!(
        by_batch.iter().map(|o| o.change).collect::<Vec<_>>(),
        [
            ScanChange::New,
            ScanChange::New,
            ScanChange::Unchanged,
            ScanChange::Changed,
            ScanChange::New,
            ScanChange::Unchanged,
        ]
    );
    for path in ["a", "b", "c"] {
        assert_eq!(
            one.read().versions_of(s1, path)?,
            many.read().versions_of(s2, path)?
        );
    }
    // A later scan: "a" is unchanged (last seen moves), "b" is back at size 2.
    let again = many.write(|tx| tx.record_scans(s2, &listing[..2], t(5)))?;
    assert_eq!(
        again.iter().map(|o| o.change).collect::<Vec<_>>(),
        [ScanChange::Unchanged, ScanChange::Changed]
    );
    assert_eq!(many.read().versions_of(s2, "a")?[0].last_seen, t(5));
    assert_eq!(many.read().versions_of(s2, "b")?.len(), 3);
    assert!(many.check()?.is_ok());
    Ok(())
}

/// Runs `f` in a transaction whose closure swallows `f`'s error and also adds a source:
/// when `f` fails the transaction must be rolled back whole, with `TransactionAbandoned`.
fn swallowing<T: std::fmt::Debug>(
    cat: &mut Catalog,
    f: impl FnOnce(&mut catalog::Txn<'_>) -> catalog::Result<T>,
) -> (Option<Error>, catalog::Result<()>) {
    let mut inner = None;
    let outer = cat.write(|tx| {
        tx.add_source("side effect", "/x", t(9))?;
        if let Err(e) = f(tx) {
            inner = Some(e);
        }
        Ok::<_, Error>(())
    });
    (inner, outer)
}

#[test]
fn a_failed_batch_abandons_the_whole_transaction() -> TestResult {
    let (mut cat, src, vs) = fetched(&["x", "y"])?;
    let vol = cat.write(|tx| tx.add_tape(&tape("T00001L8"), t(2)))?;
    let before = cat.read().summary()?;
    let side_effect_absent = |cat: &Catalog| -> catalog::Result<bool> {
        Ok(cat.read().source_by_name("side effect")?.is_none())
    };

    // Scans: the third path is empty.
    let (inner, outer) = swallowing(&mut cat, |tx| {
        tx.record_scans(
            src,
            &[file("new1", 1, 1), file("new2", 1, 1), file("", 1, 1)],
            t(3),
        )
    });
    assert!(
        matches!(inner, Some(Error::InvalidInput { what: "path", .. })),
        "{inner:?}"
    );
    assert!(
        matches!(
            outer,
            Err(Error::TransactionAbandoned { op: "record_scans" })
        ),
        "{outer:?}"
    );
    assert!(cat.read().versions_of(src, "new1")?.is_empty());
    assert!(side_effect_absent(&cat)?);

    // Fetches: the second one has the wrong size.
    let more =
        cat.write(|tx| tx.record_scans(src, &[file("f1", 10, 1), file("f2", 20, 1)], t(3)))?;
    let (inner, outer) = swallowing(&mut cat, |tx| {
        tx.record_fetches(&[
            Fetched {
                version: more[0].version,
                hash: h(100),
                size: 10,
            },
            Fetched {
                version: more[1].version,
                hash: h(101),
                size: 21,
            },
        ])
    });
    assert!(
        matches!(inner, Some(Error::ContentMismatch { .. })),
        "{inner:?}"
    );
    assert!(matches!(
        outer,
        Err(Error::TransactionAbandoned {
            op: "record_fetches"
        })
    ));
    assert_eq!(cat.read().version(more[0].version)?.hash, None);
    assert!(side_effect_absent(&cat)?);

    // Packs: the second pack repeats the first one's content.
    let pack_of = |v| NewPack {
        format: PackFormat::Cryptpack,
        key_id: "k".into(),
        plain_size: 100,
        plain_hash: h(7),
        cipher_size: 164,
        cipher_hash: h(8),
        members: vec![PackMember {
            version: v,
            offset: 0,
            length: 100,
        }],
    };
    let (inner, outer) = swallowing(&mut cat, |tx| {
        tx.record_packs(&[pack_of(vs[0]), pack_of(vs[0])], t(4))
    });
    assert!(
        matches!(inner, Some(Error::AlreadyPacked { .. })),
        "{inner:?}"
    );
    assert!(matches!(
        outer,
        Err(Error::TransactionAbandoned { op: "record_packs" })
    ));
    assert_eq!(cat.read().summary()?.packs, before.packs);
    let packs = cat.write(|tx| tx.record_packs(&[pack_of(vs[0])], t(4)))?;
    assert_eq!(packs.len(), 1);
    assert_eq!(packs[0].name.len(), 32);

    // Locations: the second one is a duplicate of the first.
    let loc = NewLocation {
        pack: packs[0].id,
        volume: vol,
        part: Part::whole(164),
        position: Position::Tape {
            partition: 1,
            start_block: 5,
        },
        job: None,
    };
    let (inner, outer) = swallowing(&mut cat, |tx| {
        tx.record_locations(&[loc.clone(), loc.clone()], t(5))
    });
    assert!(
        matches!(inner, Some(Error::AlreadyExists { .. })),
        "{inner:?}"
    );
    assert!(matches!(
        outer,
        Err(Error::TransactionAbandoned {
            op: "record_locations"
        })
    ));
    let v = cat.read().volume(vol)?;
    assert_eq!((v.bytes_used, v.state), (0, VolumeState::Blank));
    assert!(cat.read().locations_on_volume(vol)?.is_empty());
    assert!(side_effect_absent(&cat)?);

    let ids = cat.write(|tx| tx.record_locations(&[loc], t(5)))?;
    assert_eq!(ids.len(), 1);
    let v = cat.read().volume(vol)?;
    assert_eq!((v.bytes_used, v.state), (164, VolumeState::Appendable));

    // Single-item calls keep the transaction usable after an error.
    cat.write(|tx| {
        assert!(tx.record_scan(src, &file("", 1, 1), t(6)).is_err());
        tx.record_scan(src, &file("after", 1, 1), t(6))
    })?;
    assert_eq!(cat.read().versions_of(src, "after")?.len(), 1);
    let report = cat.check()?;
    assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

#[test]
fn record_locations_refuses_unknown_packs_and_volumes() -> TestResult {
    let (mut cat, _, _) = fetched(&["x"])?;
    let vol = cat.write(|tx| tx.add_tape(&tape("T00001L8"), t(2)))?;
    let loc = |pack: i64, volume| NewLocation {
        pack: catalog::PackId::from_raw(pack),
        volume,
        part: Part::whole(1),
        position: Position::Tape {
            partition: 1,
            start_block: 0,
        },
        job: None,
    };
    let r = cat.write(|tx| tx.record_locations(&[loc(99, vol)], t(3)));
    assert!(
        matches!(r, Err(Error::NotFound { what: "pack", .. })),
        "{r:?}"
    );
    let r = cat.write(|tx| tx.record_locations(&[loc(1, catalog::VolumeId::from_raw(99))], t(3)));
    assert!(
        matches!(r, Err(Error::NotFound { what: "volume", .. })),
        "{r:?}"
    );
    let r =
        cat.write(|tx| tx.record_scans(catalog::SourceId::from_raw(99), &[file("a", 1, 1)], t(3)));
    assert!(
        matches!(r, Err(Error::NotFound { what: "source", .. })),
        "{r:?}"
    );
    Ok(())
}

/// A pack of several members reads all their versions in one statement: every member is
/// still checked (missing, not fetched, already packed), in order, and a content listed
/// twice (two paths with one hash) is one member.
#[test]
fn a_pack_of_several_members_checks_each() -> TestResult {
    use crate::support::pack;
    let (mut cat, src, vs) = fetched(&["a", "b", "c"])?;
    let (alias, unfetched) = cat.write(|tx| {
        let alias = tx.record_scan(src, &file("a-copy", 100, 1), t(1))?.version;
        tx.record_fetched(alias, &h(0), 100)?;
        let unfetched = tx.record_scan(src, &file("d", 7, 1), t(1))?.version;
        Ok::<_, Error>((alias, unfetched))
    })?;
    let missing = catalog::VersionId::from_raw(999);
    let r = cat.write(|tx| pack(tx, &[vs[0], missing], 1));
    assert!(
        matches!(
            r,
            Err(Error::NotFound {
                what: "version",
                ..
            })
        ),
        "{r:?}"
    );
    let r = cat.write(|tx| pack(tx, &[vs[0], vs[1], unfetched], 1));
    assert!(matches!(r, Err(Error::InvalidInput { .. })), "{r:?}");
    let p = cat.write(|tx| pack(tx, &[vs[2], vs[0], alias], 1))?;
    let members = cat.read().pack_contents(p)?;
    assert_eq!(
        members
            .iter()
            .map(|m| (m.offset, m.length))
            .collect::<Vec<_>>(),
        [(0, Some(102)), (102, Some(100))],
        "c, then a once (its alias shares the content)"
    );
    let r = cat.write(|tx| pack(tx, &[vs[1], alias], 2));
    assert!(
        matches!(r, Err(Error::AlreadyPacked { version }) if version == alias),
        "{r:?}"
    );
    assert_eq!(cat.read().summary()?.packs, 1);
    assert!(cat.check()?.is_ok());
    Ok(())
}

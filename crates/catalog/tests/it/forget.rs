//! `Txn::forget_fetched`: a content read in place that could not be captured.

use catalog::{Catalog, Error, VersionId};

use crate::support::{TestResult, fetched, file, h, pack, t};

fn ids(versions: Vec<catalog::VersionInfo>) -> Vec<VersionId> {
    versions.iter().map(|v| v.id).collect()
}

#[test]
fn a_forgotten_fetch_is_fetched_again_and_its_content_goes() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a", "b"])?;
    let before = cat.read().summary()?;
    assert_eq!(cat.read().versions_to_pack(10)?.len(), 2);
    cat.write(|tx| tx.forget_fetched(vs[0]))?;
    assert_eq!(ids(cat.read().versions_to_fetch(10)?), vec![vs[0]]);
    assert_eq!(ids(cat.read().versions_to_pack(10)?), vec![vs[1]]);
    assert_eq!(cat.read().summary()?.contents, before.contents - 1);
    assert_eq!(cat.read().version(vs[0])?.hash, None);
    // Forgetting again, or a version never fetched, changes nothing.
    cat.write(|tx| tx.forget_fetched(vs[0]))?;
    assert_eq!(cat.read().summary()?.contents, before.contents - 1);
    assert!(cat.check()?.is_ok());
    Ok(())
}

#[test]
fn a_content_shared_with_another_version_stays() -> TestResult {
    let mut cat = Catalog::open_in_memory()?;
    let src = cat.write(|tx| tx.add_source("s", "/", t(0)))?;
    let (a, b) = cat.write(|tx| {
        let a = tx.record_scan(src, &file("a", 10, 1), t(1))?.version;
        let b = tx.record_scan(src, &file("b", 10, 1), t(1))?.version;
        tx.record_fetched(a, &h(7), 10)?;
        tx.record_fetched(b, &h(7), 10)?;
        Ok::<_, Error>((a, b))
    })?;
    cat.write(|tx| tx.forget_fetched(a))?;
    assert_eq!(cat.read().summary()?.contents, 1);
    assert_eq!(cat.read().version(b)?.hash, Some(h(7)));
    assert_eq!(ids(cat.read().versions_to_pack(10)?), vec![b]);
    assert!(cat.check()?.is_ok());
    Ok(())
}

#[test]
fn a_packed_content_is_never_forgotten() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a"])?;
    cat.write(|tx| pack(tx, &[vs[0]], 1))?;
    let r: Result<(), Error> = cat.write(|tx| tx.forget_fetched(vs[0]));
    assert!(matches!(r, Err(Error::ContentMismatch { .. })), "{r:?}");
    assert!(cat.read().version(vs[0])?.hash.is_some());
    let r: Result<(), Error> = cat.write(|tx| tx.forget_fetched(VersionId::from_raw(999)));
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    Ok(())
}

/// `versions_to_pack_after` lists only contents recorded after a given one; the highest
/// content id comes back after its row was forgotten, which only a read of everything
/// (`None`) sees again.
#[test]
fn versions_to_pack_after_a_content_and_a_reused_id() -> TestResult {
    let (mut cat, _src, vs) = fetched(&["a", "b", "c"])?;
    let all = cat.read().versions_to_pack(10)?;
    assert_eq!(ids(all.clone()), vs);
    let second = all[1].content;
    assert_eq!(
        ids(cat.read().versions_to_pack_after(second, 10)?),
        vec![vs[2]]
    );
    assert_eq!(ids(cat.read().versions_to_pack_after(None, 10)?), vs);
    // Forget the newest content and record another: it gets the same id.
    let last = all[2].content;
    cat.write(|tx| tx.forget_fetched(vs[2]))?;
    cat.write(|tx| tx.record_fetched(vs[2], &h(99), 102))?;
    let again = cat.read().version(vs[2])?;
    assert_eq!(again.content, last);
    assert_eq!(again.hash, Some(h(99)));
    assert!(cat.read().versions_to_pack_after(last, 10)?.is_empty());
    assert_eq!(ids(cat.read().versions_to_pack_after(None, 10)?), vs);
    Ok(())
}

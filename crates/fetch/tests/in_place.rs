//! `LocalSource::hash_in_place`: a local file hashed where it lies.
#![allow(clippy::unwrap_used)] // test code: a failure is a test failure

use std::sync::atomic::AtomicBool;

use fetch::{ContentHash, Error, LocalSource, Source};

fn listed(src: &LocalSource) -> Vec<fetch::Entry> {
    let mut e = src.list(&AtomicBool::new(false)).unwrap().entries;
    e.sort_by(|a, b| a.path.cmp(&b.path));
    e
}

#[test]
fn hashes_what_is_there_and_notices_changes_since_listing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/a"), b"hello").unwrap();
    std::fs::write(dir.path().join("b"), vec![7u8; 3 << 20]).unwrap();
    let src = LocalSource::new(dir.path());
    let entries = listed(&src);
    let cancel = AtomicBool::new(false);
    for e in &entries {
        let got = src.hash_in_place(e, &cancel).unwrap();
        let bytes = std::fs::read(dir.path().join(e.path_os())).unwrap();
        assert_eq!(got.hash, ContentHash::of(&bytes));
        assert_eq!(got.size, bytes.len() as u64);
        assert!(!got.changed_since_listing);
        assert_eq!(got.path, dir.path().join(e.path_os()));
    }
    // Rewritten after the listing: what is there now, flagged as changed.
    std::fs::write(dir.path().join("d/a"), b"hello, again").unwrap();
    let a = entries.iter().find(|e| e.path == b"d/a").unwrap();
    let got = src.hash_in_place(a, &cancel).unwrap();
    assert_eq!(got.hash, ContentHash::of(b"hello, again"));
    assert!(got.changed_since_listing);
    // Grown far past the size listed (the read buffer is sized by the listing): all of it.
    let grown: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("d/a"), &grown).unwrap();
    let got = src.hash_in_place(a, &cancel).unwrap();
    assert_eq!(got.hash, ContentHash::of(&grown));
    assert_eq!(got.size, grown.len() as u64);
    // Gone: an I/O error naming the file.
    std::fs::remove_file(dir.path().join("d/a")).unwrap();
    let err = src.hash_in_place(a, &cancel).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("d/a"), "{err}");
    // Cancelled before it starts.
    let b = entries.iter().find(|e| e.path == b"b").unwrap();
    let err = src.hash_in_place(b, &AtomicBool::new(true)).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}

#[test]
fn a_symlink_put_in_place_of_a_file_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"not yours").unwrap();
    std::fs::write(dir.path().join("f"), b"data").unwrap();
    let src = LocalSource::new(dir.path());
    let entries = listed(&src);
    std::fs::remove_file(dir.path().join("f")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("f")).unwrap();
    let err = src
        .hash_in_place(&entries[0], &AtomicBool::new(false))
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

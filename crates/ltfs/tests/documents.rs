//! The label, index and VOL1 parsers against the reference implementation's documents.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod common;

use ltfs::{EntryRef, Index, IndexLocation, LtfsLabel, Vol1Label};

fn fixture(name: &str) -> Option<Vec<u8>> {
    let dir = common::shared()?;
    Some(std::fs::read(dir.join("fixtures/ltfs").join(name)).expect("fixture file"))
}

/// Start-tag names in document order, to compare element order with the reference.
fn tag_sequence(xml: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().expect("xml") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                out.push(String::from_utf8_lossy(e.name().as_ref().as_bytes()).into_owned())
            }
            quick_xml::events::Event::Eof => return out,
            _ => {}
        }
    }
}

#[test]
fn reference_labels_parse() {
    for (name, partition) in [("ltfs_label_p0.xml", 0), ("ltfs_label_p1.xml", 1)] {
        let Some(bytes) = fixture(name) else { return };
        let label = LtfsLabel::from_xml(&bytes).unwrap();
        assert_eq!(label.volume_uuid, "59ba123a-6f6e-449e-8628-b2237f9ddc77");
        assert_eq!(label.location, partition);
        assert_eq!(label.index_partition, 0);
        assert_eq!(label.data_partition, 1);
        assert_eq!(label.block_size, 524288);
        assert!(label.compression);
        assert_eq!(
            label.format_time.to_string(),
            "2026-11-21T20:45:26.400123830Z"
        );
        let again = LtfsLabel::from_xml(label.to_xml().unwrap().as_bytes()).unwrap();
        assert_eq!(again, label);
        assert_eq!(
            tag_sequence(&label.to_xml().unwrap()),
            tag_sequence(std::str::from_utf8(&bytes).unwrap())
        );
    }
}

#[test]
fn reference_vol1_parses() {
    let Some(bytes) = fixture("vol1_p0.bin") else {
        return;
    };
    let vol1 = Vol1Label::parse(&bytes).unwrap();
    assert_eq!(vol1.volume_id, "TST001");
    assert_eq!(vol1.to_bytes().as_slice(), bytes.as_slice());
}

#[test]
fn reference_indexes_parse_with_pointers() {
    let cases = [
        ("index_gen1_p0_blk5.xml", 1, (0, 5), Some((1, 5)), 0),
        ("index_gen1_p1_blk5.xml", 1, (1, 5), None, 0),
        ("index_gen2_p0_blk5.xml", 2, (0, 5), Some((1, 13)), 5),
        ("index_gen2_p1_blk13.xml", 2, (1, 13), Some((1, 5)), 5),
    ];
    let loc = |(partition, block)| IndexLocation { partition, block };
    for (name, generation, at, previous, files) in cases {
        let Some(bytes) = fixture(name) else { return };
        let index = Index::from_xml(&bytes).unwrap();
        assert_eq!(index.generation, generation, "{name}");
        assert_eq!(index.location, loc(at), "{name}");
        assert_eq!(index.previous, previous.map(loc), "{name}");
        assert_eq!(index.root.name, "testvol");
        assert_eq!(index.root.file_count(), files, "{name}");
        let again = Index::from_xml(index.to_xml().unwrap().as_bytes()).unwrap();
        assert_eq!(again, index, "{name} round trip");
        assert_eq!(
            tag_sequence(&index.to_xml().unwrap()),
            tag_sequence(std::str::from_utf8(&bytes).unwrap()),
            "{name}: element order differs from the reference"
        );
    }
}

#[test]
fn reference_index_gen2_content() {
    let Some(bytes) = fixture("index_gen2_p1_blk13.xml") else {
        return;
    };
    let index = Index::from_xml(&bytes).unwrap();
    let file = |p: &str| match index.root.lookup(p) {
        Some(EntryRef::File(f)) => f.clone(),
        other => panic!("{p}: {other:?}"),
    };
    let hello = file("hello.txt");
    assert_eq!(hello.length, 11);
    assert_eq!(hello.xattr("myattr"), Some(&b"myvalue"[..]));
    assert_eq!(hello.extents.len(), 1);
    assert_eq!(
        (hello.extents[0].partition, hello.extents[0].start_block),
        (1, 7)
    );
    let big = file("dir1/big.bin");
    assert_eq!(big.length, 1_300_000);
    assert_eq!(big.extents[0].start_block, 8);
    let link = file("link_to_hello");
    assert_eq!(link.symlink.as_deref(), Some("hello.txt"));
    assert!(file("empty.txt").extents.is_empty());
    assert_eq!(file("naïve.txt").length, 5);
    assert!(matches!(
        index.root.lookup("dir1"),
        Some(EntryRef::Directory(_))
    ));
    assert!(index.root.lookup("nope").is_none());
}

#[test]
fn broken_documents_are_errors() {
    for bad in [
        &b""[..],
        b"<ltfsindex version=\"2.4.0\">",
        b"<ltfsindex version=\"9.0.0\"></ltfsindex>",
        b"\xff\xfe",
        b"<ltfslabel version=\"2.4.0\"><creator>x</creator></ltfslabel>",
    ] {
        assert!(Index::from_xml(bad).is_err());
        assert!(LtfsLabel::from_xml(bad).is_err());
    }
}

//! Format, write, read, span, check and recover on the in-memory drive.
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::AtomicBool;

use common::{CrashAfter, bytes, layout};
use ltfs::{
    Coherency, EarlyWarningPolicy, EntryRef, Error, FileOptions, FormatOptions, MemoryDrive,
    Problem, Recovery, Silent, SpanInfo, SpanPart, TapeDrive, Volume, WriterOptions, Xattr,
};

const BS: u32 = 4096;

fn options() -> FormatOptions {
    FormatOptions {
        block_size: BS,
        volume_name: "vol".into(),
        ..FormatOptions::new("TST001")
    }
}

fn no_cancel() -> AtomicBool {
    AtomicBool::new(false)
}

fn put(w: &mut ltfs::VolumeWriter<'_>, path: &str, data: &[u8]) -> ltfs::FileWritten {
    w.write_file(
        path,
        &mut &data[..],
        &FileOptions::default(),
        &Silent,
        &no_cancel(),
    )
    .unwrap()
}

fn read(volume: &mut Volume<'_>, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    volume
        .open_file(path)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn format_writes_the_reference_layout_and_mam() {
    let mut drive = MemoryDrive::new(64 << 20);
    let v = Volume::format(&mut drive, &options()).unwrap();
    assert_eq!(v.index().generation, 1);
    assert!(v.is_consistent());
    drop(v);
    // VOL1 | F | label | F | F | index | F | E on both partitions.
    assert_eq!(layout(&mut drive, 0), "RFRFFRFE");
    assert_eq!(layout(&mut drive, 1), "RFRFFRFE");
    for p in [0u8, 1] {
        let c = drive.read_attribute(p, 0x080C).unwrap().unwrap();
        let c = Coherency::parse(&c.value).unwrap();
        assert_eq!((c.generation, c.index_block), (1, 5));
        for id in [
            0x0800, 0x0801, 0x0802, 0x0803, 0x0804, 0x0805, 0x0806, 0x0808, 0x080B,
        ] {
            assert!(drive.read_attribute(p, id).unwrap().is_some(), "{id:#x}");
        }
    }
    let barcode = drive.read_attribute(0, 0x0806).unwrap().unwrap();
    assert_eq!(&barcode.value[..7], b"TST001 ");
    let v = Volume::open(&mut drive).unwrap();
    assert_eq!(v.barcode(), "TST001");
    assert_eq!(v.volume_name(), "vol");
    assert_eq!(v.index().previous, None.or(v.index().previous));
    assert_eq!(v.index().location.partition, 0);
    assert_eq!(v.index().previous.unwrap().partition, 1);
}

#[test]
fn files_round_trip_with_metadata_and_layout() {
    const BS: u32 = 64 * 1024;
    let mut drive = MemoryDrive::new(64 << 20);
    let v = Volume::format(
        &mut drive,
        &FormatOptions {
            block_size: BS,
            ..options()
        },
    )
    .unwrap();
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    let big = bytes(1, 3 * BS as usize + 100);
    let h = w
        .write_file(
            "hello.txt",
            &mut &b"hello ltfs\n"[..],
            &FileOptions {
                xattrs: vec![Xattr {
                    key: "myattr".into(),
                    value: b"myvalue".to_vec(),
                }],
                ..FileOptions::default()
            },
            &Silent,
            &no_cancel(),
        )
        .unwrap();
    assert_eq!(
        (h.extents[0].partition, h.extents[0].start_block, h.length),
        (1, 7, 11)
    );
    let b = put(&mut w, "dir1/big.bin", &big);
    assert_eq!(
        (b.extents[0].start_block, b.extents[0].byte_count),
        (8, big.len() as u64)
    );
    let e = put(&mut w, "empty.txt", b"");
    assert!(e.extents.is_empty() && e.complete);
    w.symlink("link_to_hello", "hello.txt").unwrap();
    put(&mut w, "naïve.txt", b"caf\xc3\xa9");
    w.set_xattr("dir1/big.bin", "bin", &[0, 1, 2, 255]).unwrap();
    w.finish().unwrap();

    // p1: labels, gen-1 index, hello (1 record), big (4), naïve (1), gen-2 index.
    assert_eq!(layout(&mut drive, 1), "RFRFFRFRRRRRRFRFE");
    assert_eq!(layout(&mut drive, 0), "RFRFFRFE");

    let mut v = Volume::open(&mut drive).unwrap();
    assert!(v.is_consistent());
    assert_eq!(v.index().generation, 2);
    assert_eq!(read(&mut v, "hello.txt"), b"hello ltfs\n");
    assert_eq!(read(&mut v, "dir1/big.bin"), big);
    assert_eq!(read(&mut v, "empty.txt"), b"");
    assert_eq!(read(&mut v, "naïve.txt"), "café".as_bytes());
    let hello = v.file("hello.txt").unwrap();
    assert_eq!(hello.xattr("myattr"), Some(&b"myvalue"[..]));
    assert_eq!(
        v.file("dir1/big.bin").unwrap().xattr("bin"),
        Some(&[0u8, 1, 2, 255][..])
    );
    assert_eq!(
        v.file("link_to_hello").unwrap().symlink.as_deref(),
        Some("hello.txt")
    );
    assert!(matches!(v.file("dir1"), Err(Error::IsADirectory { .. })));
    assert!(matches!(v.file("nope"), Err(Error::NotFound { .. })));

    // A second session appends after the last index and replaces the index partition's.
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    let r = put(&mut w, "dir1/more.bin", b"more");
    assert_eq!(r.extents[0].start_block, 16);
    w.finish().unwrap();
    assert_eq!(layout(&mut drive, 0), "RFRFFRFE");
    let mut v = Volume::open(&mut drive).unwrap();
    assert_eq!(v.index().generation, 3);
    assert_eq!(read(&mut v, "dir1/more.bin"), b"more");
    assert_eq!(read(&mut v, "dir1/big.bin"), big);
}

#[test]
fn periodic_indexes_and_generations() {
    let mut drive = MemoryDrive::new(64 << 20);
    let v = Volume::format(&mut drive, &options()).unwrap();
    let mut w = v
        .into_writer(WriterOptions {
            sync_every_bytes: Some(2 * BS as u64),
            sync_interval: None,
        })
        .unwrap();
    for i in 0..5 {
        put(&mut w, &format!("f{i}"), &bytes(i, 3 * BS as usize));
    }
    w.finish().unwrap();
    let gens = ltfs::generations(&mut drive).unwrap();
    let numbers: Vec<u64> = gens.iter().map(|g| g.generation).collect();
    assert_eq!(numbers, vec![6, 5, 4, 3, 2, 1]);
    assert_eq!(gens[0].files, 5);
    assert_eq!(gens[5].files, 0);
    assert!(ltfs::check(&mut drive).unwrap().is_consistent());
}

#[test]
fn early_warning_splits_a_file_and_the_rest_continues_on_the_next_cartridge() {
    let data = bytes(7, 300 * BS as usize + 123);
    let mut first = MemoryDrive::new(2 << 20);
    let mut second = MemoryDrive::new(64 << 20);
    let opts = FormatOptions {
        index_partition_bytes: Some(256 << 10),
        ..options()
    };
    {
        let v = Volume::format(&mut first, &opts).unwrap();
        drop(v);
    }
    // 1 MiB partition 1 on the small cartridge (capacity/2), reserve 64 KiB.
    first.set_early_warning_reserve(1 << 20);
    let v = Volume::open(&mut first).unwrap();
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    let mut src = std::io::BufReader::new(&data[..]);
    let part1 = w
        .write_file(
            "big",
            &mut src,
            &FileOptions::default(),
            &Silent,
            &no_cancel(),
        )
        .unwrap();
    assert!(!part1.complete && part1.early_warning);
    assert!(part1.length > 0 && part1.length < data.len() as u64);
    assert_eq!(part1.length % u64::from(BS), 0);
    // A small file that must stay whole still goes in after early warning.
    let snap = w
        .write_file(
            "catalog.snapshot",
            &mut &b"snapshot"[..],
            &FileOptions {
                early_warning: EarlyWarningPolicy::Finish,
                ..FileOptions::default()
            },
            &Silent,
            &no_cancel(),
        )
        .unwrap();
    assert!(snap.complete);
    w.finish().unwrap();

    let v = Volume::format(&mut second, &options()).unwrap();
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    let part2 = w
        .write_file(
            "big",
            &mut src,
            &FileOptions {
                span: Some(SpanPart {
                    part: 2,
                    offset: part1.length,
                }),
                ..FileOptions::default()
            },
            &Silent,
            &no_cancel(),
        )
        .unwrap();
    assert!(part2.complete);
    assert_eq!(part1.length + part2.length, data.len() as u64);
    w.finish().unwrap();

    let mut whole = Vec::new();
    for (drive, part, last) in [(&mut first, 1, false), (&mut second, 2, true)] {
        let mut v = Volume::open(drive).unwrap();
        let info = SpanInfo::of(v.file("big").unwrap()).unwrap();
        assert_eq!(
            (info.part, info.offset as usize, info.last),
            (part, whole.len(), last)
        );
        whole.extend(read(&mut v, "big"));
    }
    assert_eq!(whole, data);
}

#[test]
fn cancel_leaves_the_file_out_and_the_volume_writable() {
    let mut drive = MemoryDrive::new(64 << 20);
    let v = Volume::format(&mut drive, &options()).unwrap();
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    let cancel = AtomicBool::new(true);
    let r = w.write_file(
        "x",
        &mut &b"abc"[..],
        &FileOptions::default(),
        &Silent,
        &cancel,
    );
    assert!(matches!(r, Err(Error::Cancelled)));
    put(&mut w, "y", b"yes");
    w.finish().unwrap();
    let mut v = Volume::open(&mut drive).unwrap();
    assert!(v.lookup("x").is_none());
    assert_eq!(read(&mut v, "y"), b"yes");
}

#[test]
fn bad_names_and_write_protect_are_refused() {
    let mut drive = MemoryDrive::new(64 << 20);
    let v = Volume::format(&mut drive, &options()).unwrap();
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    put(&mut w, "a/file", b"1");
    for bad in ["", "a/file/x", "a", "x/..", &"n".repeat(256)] {
        assert!(
            w.write_file(
                bad,
                &mut &b"2"[..],
                &FileOptions::default(),
                &Silent,
                &no_cancel()
            )
            .is_err(),
            "{bad:?}"
        );
    }
    w.finish().unwrap();
    drive.set_write_protected(true);
    let v = Volume::open(&mut drive).unwrap();
    assert!(matches!(
        v.into_writer(WriterOptions::default()),
        Err(Error::ReadOnly { .. })
    ));
}

#[test]
fn not_ltfs_is_a_clear_error() {
    let mut drive = MemoryDrive::new(8 << 20);
    assert!(matches!(
        Volume::open(&mut drive),
        Err(Error::NotPartitioned { partitions: 1 })
    ));
    drive.create_two_partitions(1 << 20).unwrap();
    drive.write_record(b"not a label").unwrap();
    assert!(matches!(
        Volume::open(&mut drive),
        Err(Error::NotLtfs { .. })
    ));
}

/// Writes `files` with a sync after each `sync_after` index, crashing after `crash`
/// write operations. Returns (files surely committed, all files attempted).
type Files = BTreeMap<String, Vec<u8>>;

fn crashing_session(
    drive: &mut MemoryDrive,
    files: &[(String, Vec<u8>)],
    syncs: &[bool],
    crash: u64,
) -> (Files, Files) {
    let mut committed = Files::new();
    let mut attempted = Files::new();
    let mut crashing = CrashAfter {
        inner: drive,
        writes: crash,
    };
    let Ok(v) = Volume::open(&mut crashing) else {
        return (committed, attempted);
    };
    let Ok(mut w) = v.into_writer(WriterOptions {
        sync_every_bytes: None,
        sync_interval: None,
    }) else {
        return (committed, attempted);
    };
    for ((path, data), sync) in files.iter().zip(syncs) {
        attempted.insert(path.clone(), data.clone());
        if w.write_file(
            path,
            &mut &data[..],
            &FileOptions::default(),
            &Silent,
            &no_cancel(),
        )
        .is_err()
        {
            return (committed, attempted);
        }
        if *sync {
            if w.sync().is_err() {
                return (committed, attempted);
            }
            committed = attempted.clone();
        }
    }
    if w.finish().is_ok() {
        committed = attempted.clone();
    }
    (committed, attempted)
}

fn check_after_recovery(
    drive: &mut MemoryDrive,
    committed: &Files,
    attempted: &Files,
    order: &[(String, Vec<u8>)],
) {
    let mut v = Volume::open(drive).unwrap();
    assert!(v.is_consistent());
    let paths: Vec<String> = v
        .index()
        .root
        .walk_files()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for p in committed.keys() {
        assert!(paths.contains(p), "committed {p} lost");
    }
    for p in &paths {
        let got = read(&mut v, p);
        if let Some(rest) = p.strip_prefix("_ltfs_lostandfound/") {
            assert!(
                common::is_salvaged_run(order, &got),
                "salvaged {rest} is not data written in this session"
            );
        } else {
            assert_eq!(Some(&got), attempted.get(p), "{p}");
        }
    }
}

#[test]
fn crash_then_roll_back_or_salvage() {
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("d/f{i}"), bytes(i, (i as usize) * 3000 + 10)))
        .collect();
    let syncs = [false, true, false, false, true, false];
    for crash in 0..40 {
        for mode in [Recovery::RollBack, Recovery::Salvage] {
            let mut drive = MemoryDrive::new(64 << 20);
            Volume::format(&mut drive, &options()).unwrap();
            let (committed, attempted) = crashing_session(&mut drive, &files, &syncs, crash);
            let before = ltfs::check(&mut drive).unwrap();
            let report = ltfs::recover(&mut drive, mode).unwrap();
            assert_eq!(report.repaired, !before.is_consistent(), "crash {crash}");
            check_after_recovery(&mut drive, &committed, &attempted, &files);
            assert!(ltfs::check(&mut drive).unwrap().is_consistent());
            // And the volume takes new files again.
            let v = Volume::open(&mut drive).unwrap();
            let mut w = v.into_writer(WriterOptions::default()).unwrap();
            put(&mut w, "after", b"after crash");
            w.finish().unwrap();
            let mut v = Volume::open(&mut drive).unwrap();
            assert_eq!(read(&mut v, "after"), b"after crash");
        }
    }
}

#[test]
fn check_reports_data_after_the_last_index() {
    let mut drive = MemoryDrive::new(64 << 20);
    Volume::format(&mut drive, &options()).unwrap();
    let v = Volume::open(&mut drive).unwrap();
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    put(&mut w, "lost", &bytes(3, 10_000));
    drop(w); // no finish: like a crash
    let report = ltfs::check(&mut drive).unwrap();
    assert!(report.problems.iter().any(|p| matches!(
        p,
        Problem::DataAfterLastIndex {
            from_block: 7,
            end_of_data: 10
        }
    )));
    let v = Volume::open(&mut drive).unwrap();
    assert!(!v.is_consistent());
    assert!(matches!(
        v.into_writer(WriterOptions::default()),
        Err(Error::NeedsRecovery { .. })
    ));
    let r = ltfs::recover(&mut drive, Recovery::Salvage).unwrap();
    assert_eq!(r.salvaged, vec!["_ltfs_lostandfound/block_1_7".to_string()]);
    let mut v = Volume::open(&mut drive).unwrap();
    assert_eq!(
        read(&mut v, "_ltfs_lostandfound/block_1_7"),
        bytes(3, 10_000)
    );
    assert!(matches!(v.lookup(""), Some(EntryRef::Directory(_))));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ._~%é漢ü😀-]{1,12}".prop_filter("not . or ..", |n| n != "." && n != "..")
    }

    fn tree() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        prop::collection::vec(
            (
                prop::collection::vec(name(), 1..6),
                0usize..(3 * BS as usize + 50),
                any::<u64>(),
            ),
            1..12,
        )
        .prop_map(|raw| {
            // Drop files whose path clashes with a directory of another (or vice versa).
            let mut files: Vec<(String, Vec<u8>)> = Vec::new();
            for (parts, len, seed) in raw {
                let path = parts.join("/");
                let clash = files.iter().any(|(p, _)| {
                    p != &path
                        && (path.starts_with(&format!("{p}/"))
                            || p.starts_with(&format!("{path}/")))
                });
                if !clash {
                    files.retain(|(p, _)| p != &path);
                    files.push((path, bytes(seed, len)));
                }
            }
            files
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn random_trees_read_back_byte_exact(files in tree()) {
            let mut drive = MemoryDrive::new(64 << 20);
            let v = Volume::format(&mut drive, &options()).unwrap();
            let mut w = v.into_writer(WriterOptions::default()).unwrap();
            for (p, d) in &files {
                put(&mut w, p, d);
            }
            w.finish().unwrap();
            let mut v = Volume::open(&mut drive).unwrap();
            prop_assert!(v.is_consistent());
            prop_assert_eq!(v.index().root.file_count(), files.len());
            for (p, d) in &files {
                prop_assert_eq!(&read(&mut v, p), d);
            }
        }

        #[test]
        fn random_crash_then_recovery(
            files in tree(),
            syncs in prop::collection::vec(any::<bool>(), 12),
            crash in 0u64..80,
            salvage in any::<bool>(),
        ) {
            let mut drive = MemoryDrive::new(64 << 20);
            Volume::format(&mut drive, &options()).unwrap();
            let (committed, attempted) = crashing_session(&mut drive, &files, &syncs, crash);
            let mode = if salvage { Recovery::Salvage } else { Recovery::RollBack };
            ltfs::recover(&mut drive, mode).unwrap();
            check_after_recovery(&mut drive, &committed, &attempted, &files);
        }
    }
}

#[test]
fn a_session_without_changes_writes_nothing() {
    let mut drive = MemoryDrive::new(64 << 20);
    Volume::format(&mut drive, &options()).unwrap();
    let before = (layout(&mut drive, 0), layout(&mut drive, 1));
    let v = Volume::open(&mut drive).unwrap();
    drive_untouched(v);
    assert_eq!((layout(&mut drive, 0), layout(&mut drive, 1)), before);
    assert_eq!(ltfs::generations(&mut drive).unwrap().len(), 1);
}

fn drive_untouched(v: Volume<'_>) {
    let w = v.into_writer(WriterOptions::default()).unwrap();
    let v = w.finish().unwrap();
    assert_eq!(v.index().generation, 1);
}

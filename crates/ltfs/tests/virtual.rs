//! The reference cartridge and round trips on the virtual library's drive
//! (`tape_scsi::VirtualDrive`, the reference LTFS file-backend layout on disk).
#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::{CrashAfter, bytes, layout};
use ltfs::{EntryRef, FileOptions, FormatOptions, Recovery, Silent, Volume, WriterOptions};
use md5::{Digest, Md5};
use tape_scsi::{CartridgeOptions, VirtualDrive};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        let mut perm = std::fs::metadata(to.join(e.file_name()))
            .unwrap()
            .permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(to.join(e.file_name()), perm).unwrap();
    }
}

/// A writable copy of the reference cartridge.
fn reference_copy(tmp: &Path) -> Option<VirtualDrive> {
    let shared = common::shared()?;
    let dst = tmp.join("reference-tape0");
    copy_dir(&shared.join("fixtures/ltfs/reference-tape0"), &dst);
    Some(VirtualDrive::open_cartridge(&dst).unwrap())
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
fn reference_cartridge_reads_as_its_readme_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut drive) = reference_copy(tmp.path()) else {
        return;
    };
    let mut v = Volume::open(&mut drive).unwrap();
    assert!(v.is_consistent());
    assert_eq!(v.volume_name(), "testvol");
    assert_eq!(v.barcode(), "TST001");
    assert_eq!(v.index().generation, 2);
    assert_eq!(v.label().block_size, 524288);
    let expected = [
        ("hello.txt", 11, "a8bf7823949917cecb5a67cf726634e8"),
        (
            "dir1/big.bin",
            1_300_000,
            "d780cd80d91e734da5e84b522601fedd",
        ),
        ("empty.txt", 0, "d41d8cd98f00b204e9800998ecf8427e"),
        ("naïve.txt", 5, "07117fe4a1ebd544965dc19573183da2"),
    ];
    for (path, size, md5) in expected {
        let data = read(&mut v, path);
        assert_eq!(data.len(), size, "{path}");
        assert_eq!(md5_hex(&data), md5, "{path}");
    }
    assert_eq!(
        v.file("hello.txt").unwrap().xattr("myattr"),
        Some(&b"myvalue"[..])
    );
    assert_eq!(
        v.file("link_to_hello").unwrap().symlink.as_deref(),
        Some("hello.txt")
    );
    // Exactly these entries, nothing more.
    let mut paths: Vec<String> = v
        .index()
        .root
        .walk_files()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "dir1/big.bin",
            "empty.txt",
            "hello.txt",
            "link_to_hello",
            "naïve.txt"
        ]
    );
    drop(v);
    let report = ltfs::check(&mut drive).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    let gens: Vec<u64> = ltfs::generations(&mut drive)
        .unwrap()
        .iter()
        .map(|g| g.generation)
        .collect();
    assert_eq!(gens, vec![2, 1]);
}

#[test]
fn appending_to_the_reference_cartridge_keeps_its_layout_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut drive) = reference_copy(tmp.path()) else {
        return;
    };
    let v = Volume::open(&mut drive).unwrap();
    let mut w = v.into_writer(WriterOptions::default()).unwrap();
    let data = bytes(5, 700_000);
    let put = w
        .write_file(
            "new/Grüße.bin",
            &mut &data[..],
            &FileOptions::default(),
            &Silent,
            &AtomicBool::new(false),
        )
        .unwrap();
    // Data starts right after the last index construct (blocks 13 index, 14 filemark).
    assert_eq!(put.extents[0].start_block, 15);
    w.finish().unwrap();
    // p0: the index is replaced in place; p1: data, then a new index construct.
    assert_eq!(layout(&mut drive, 0), "RFRFFRFE");
    assert_eq!(layout(&mut drive, 1), "RFRFFRFRRRRRFRFRRFRFE");
    let mut v = Volume::open(&mut drive).unwrap();
    assert!(v.is_consistent());
    assert_eq!(v.index().generation, 3);
    assert_eq!(read(&mut v, "new/Grüße.bin"), data);
    assert_eq!(
        md5_hex(&read(&mut v, "dir1/big.bin")),
        "d780cd80d91e734da5e84b522601fedd"
    );
    assert!(matches!(v.lookup("new"), Some(EntryRef::Directory(_))));
}

fn blank(dir: &Path, capacity: u64) -> VirtualDrive {
    VirtualDrive::create_cartridge(
        dir,
        &CartridgeOptions {
            capacity,
            reserve: None,
        },
    )
    .unwrap()
}

fn options() -> FormatOptions {
    FormatOptions {
        block_size: 4096,
        index_partition_bytes: Some(1 << 20),
        ..FormatOptions::new("VT0001")
    }
}

#[test]
fn format_on_the_virtual_drive_follows_the_reference_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let mut drive = blank(&tmp.path().join("c"), 64 << 20);
    Volume::format(&mut drive, &FormatOptions::new("VT0001")).unwrap();
    assert_eq!(layout(&mut drive, 0), "RFRFFRFE");
    assert_eq!(layout(&mut drive, 1), "RFRFFRFE");
    let v = Volume::open(&mut drive).unwrap();
    assert!(v.is_consistent());
    assert_eq!(v.label().block_size, 524288);
    // MAM attributes persisted as attr_<partition>_<id> files.
    assert!(tmp.path().join("c/attr_0_80c").exists());
    assert!(tmp.path().join("c/attr_1_80c").exists());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    type Files = BTreeMap<String, Vec<u8>>;

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ._~%é漢ü😀-]{1,12}".prop_filter("not . or ..", |n| n != "." && n != "..")
    }

    fn tree() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        prop::collection::vec(
            (
                prop::collection::vec(name(), 1..8),
                0usize..(3 * 4096 + 50),
                any::<u64>(),
            ),
            1..10,
        )
        .prop_map(|raw| {
            let mut files: Vec<(String, Vec<u8>)> = Vec::new();
            for (parts, len, seed) in raw {
                let path = parts.join("/");
                let clash = files.iter().any(|(p, _)| {
                    path.starts_with(&format!("{p}/")) || p.starts_with(&format!("{path}/"))
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
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn random_trees_round_trip_on_the_virtual_drive(files in tree()) {
            let tmp = tempfile::tempdir().unwrap();
            let mut drive = blank(&tmp.path().join("c"), 32 << 20);
            let v = Volume::format(&mut drive, &options()).unwrap();
            let mut w = v.into_writer(WriterOptions::default()).unwrap();
            for (p, d) in &files {
                w.write_file(p, &mut &d[..], &FileOptions::default(), &Silent, &AtomicBool::new(false)).unwrap();
            }
            w.finish().unwrap();
            drop(drive);
            // Reopen the cartridge from disk, as another process would.
            let mut drive = VirtualDrive::open_cartridge(&tmp.path().join("c")).unwrap();
            let mut v = Volume::open(&mut drive).unwrap();
            prop_assert!(v.is_consistent());
            prop_assert_eq!(v.index().root.file_count(), files.len());
            for (p, d) in &files {
                prop_assert_eq!(&read(&mut v, p), d);
            }
        }

        #[test]
        fn crash_at_a_random_point_then_recovery_on_the_virtual_drive(
            files in tree(),
            syncs in prop::collection::vec(any::<bool>(), 10),
            crash in 0u64..60,
            salvage in any::<bool>(),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("c");
            let mut drive = blank(&dir, 32 << 20);
            Volume::format(&mut drive, &options()).unwrap();
            let mut committed = Files::new();
            let mut attempted = Files::new();
            {
                let mut crashing = CrashAfter { inner: &mut drive, writes: crash };
                let v = Volume::open(&mut crashing).unwrap();
                let mut w = v.into_writer(WriterOptions { sync_every_bytes: None, sync_interval: None }).unwrap();
                let mut failed = false;
                for ((p, d), sync) in files.iter().zip(&syncs) {
                    attempted.insert(p.clone(), d.clone());
                    if w.write_file(p, &mut &d[..], &FileOptions::default(), &Silent, &AtomicBool::new(false)).is_err() {
                        failed = true;
                        break;
                    }
                    if *sync {
                        if w.sync().is_err() { failed = true; break; }
                        committed = attempted.clone();
                    }
                }
                if !failed && w.finish().is_ok() {
                    committed = attempted.clone();
                }
            }
            // The process died: a new one opens the cartridge from disk.
            drop(drive);
            let mut drive = VirtualDrive::open_cartridge(&dir).unwrap();
            let mode = if salvage { Recovery::Salvage } else { Recovery::RollBack };
            ltfs::recover(&mut drive, mode).unwrap();
            prop_assert!(ltfs::check(&mut drive).unwrap().is_consistent());
            let mut v = Volume::open(&mut drive).unwrap();
            let paths: Vec<String> = v.index().root.walk_files().into_iter().map(|(p, _)| p).collect();
            for p in committed.keys() {
                prop_assert!(paths.contains(p), "committed {} lost", p);
            }
            for p in &paths {
                let got = read(&mut v, p);
                if p.starts_with("_ltfs_lostandfound/") {
                    prop_assert!(common::is_salvaged_run(&files, &got), "{} is not session data", p);
                } else {
                    prop_assert_eq!(Some(&got), attempted.get(p));
                }
            }
            // Writable again.
            let v = Volume::open(&mut drive).unwrap();
            let mut w = v.into_writer(WriterOptions::default()).unwrap();
            w.write_file("after", &mut &b"ok"[..], &FileOptions::default(), &Silent, &AtomicBool::new(false)).unwrap();
            w.finish().unwrap();
        }
    }
}

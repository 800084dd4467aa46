//! Query a catalog: record a small backup (two versions of a file, a duplicate, a pack on a
//! tape), then locate a path, search, plan a restore, check and snapshot it.
//!
//! Run: `cargo run -p examples --example catalog_query [CATALOG.db]` (default: a temporary
//! catalog). With an existing catalog, it only queries it.

use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use catalog::{
    Catalog, Digest, FileQuery, HashAlgo, NewLocation, NewPack, NewTape, PackFormat, PackMember,
    Part, Position, RestoreQuery, ScannedFile, Silent, Timestamp, VersionSelector,
};

fn record_sample(cat: &mut Catalog) -> anyhow::Result<()> {
    let day = |d: i64| Timestamp::from_unix_seconds(1_700_000_000 + d * 86_400);
    cat.write(|tx| -> anyhow::Result<()> {
        let src = tx.add_source("nas", "ssh://nas/srv/media", day(0))?;
        let tape = tx.add_tape(
            &NewTape {
                barcode: "EX0001L8".into(),
                ltfs_uuid: None,
                generation: Some("LTO-8".into()),
                capacity: Some(12_000_000_000_000),
                pool: "default".into(),
            },
            day(0),
        )?;
        // Day 0: report.txt v1 and photo.jpg; day 1: report.txt changed, photo copied.
        let files = [
            (0, "docs/report.txt", 1200, 1u8),
            (0, "photos/photo.jpg", 50_000, 2),
            (1, "docs/report.txt", 1300, 3),
            (1, "photos/copy-of-photo.jpg", 50_000, 2),
        ];
        let mut members = Vec::new();
        let mut offset = 0;
        for (d, path, size, content) in files {
            let seen = tx.record_scan(
                src,
                &ScannedFile {
                    path: path.into(),
                    size,
                    mtime: day(d),
                    mode: 0o644,
                    hash: None,
                },
                day(d),
            )?;
            let hash = Digest::new(HashAlgo::Blake3, [content; 32])?;
            tx.record_fetched(seen.version, &hash, size)?;
            // Pack each content once (the copy shares the photo's content).
            if tx
                .read()
                .versions_to_pack(100)?
                .iter()
                .any(|v| v.id == seen.version)
            {
                members.push(PackMember {
                    version: seen.version,
                    offset,
                    length: size,
                });
                offset += size;
            }
        }
        let pack = tx.record_pack(
            &NewPack {
                format: PackFormat::Cryptpack,
                key_id: "example-key".into(),
                plain_size: offset,
                plain_hash: Digest::new(HashAlgo::Blake3, [10; 32])?,
                cipher_size: offset + 128,
                cipher_hash: Digest::new(HashAlgo::Blake3, [11; 32])?,
                members,
            },
            day(1),
        )?;
        tx.record_location(
            &NewLocation {
                pack: pack.id,
                volume: tape,
                part: Part::whole(offset + 128),
                position: Position::Tape {
                    partition: 1,
                    start_block: 5,
                },
                job: None,
            },
            day(1),
        )?;
        Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = match std::env::args_os().nth(1) {
        Some(p) => p.into(),
        None => dir.path().join("example.db"),
    };
    let fresh = !path.exists();
    let mut cat = Catalog::open(&path).with_context(|| format!("open {}", path.display()))?;
    if fresh {
        record_sample(&mut cat)?;
    }
    let r = cat.read();

    println!("== files (latest versions)");
    for e in r.search(&FileQuery::default())? {
        let v = &e.version;
        let vols: Vec<_> = e.copies.iter().map(|c| c.volume_label.as_str()).collect();
        println!(
            "{:<28} v{} {:>7} bytes  pack {}  on {:?}",
            v.path,
            v.seq,
            v.size.unwrap_or(0),
            e.pack.as_ref().map_or("-", |p| p.name.as_str()),
            vols
        );
    }

    if let Some(src) = r.sources()?.first() {
        println!("\n== docs/report.txt, version 1 and latest");
        for sel in [VersionSelector::Number(1), VersionSelector::Latest] {
            if let Some(e) = r.locate(src.id, "docs/report.txt", sel)? {
                println!(
                    "{sel:?}: {} bytes at offset {:?} of the pack",
                    e.version.size.unwrap_or(0),
                    e.pack_offset
                );
            }
        }
    }

    println!("\n== restore plan for photos/*");
    let plan = r.plan_restore(&RestoreQuery {
        pattern: Some("photos/*".into()),
        ..Default::default()
    })?;
    for run in &plan.runs {
        println!("volume {} ({})", run.label, run.state);
        for read in &run.reads {
            println!("  read pack {} at {:?}", read.pack_name, read.position);
            for f in &read.files {
                println!("    {} (offset {}, {:?} bytes)", f.path, f.offset, f.length);
            }
        }
    }
    for m in &plan.missing {
        println!("cannot restore {}: {:?}", m.path, m.reason);
    }

    let report = cat.check()?;
    println!(
        "\n== check: {}",
        if report.is_ok() {
            "ok".to_owned()
        } else {
            format!("{:?}", report.problems)
        }
    );
    let snap = dir.path().join("snapshot.db");
    let info = cat.snapshot(&snap, &Silent, &AtomicBool::new(false))?;
    println!("== snapshot: {} bytes in one file", info.bytes);
    Ok(())
}

//! `cargo xtask bench catalog`: the catalog at scale. Inserts N files (each scanned,
//! fetched, packed and written to a tape: versions, contents, packs and locations), looks
//! up one path, and plans a restore of 100k files, against the absolute targets
//! (there is no peer tool for a catalog): insert 1M < 10 s, lookup < 1 ms, plan < 1 s.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use catalog::{
    Catalog, Digest, HashAlgo, NewLocation, NewPack, NewTape, PackFormat, PackMember, Part,
    Position, RestoreQuery, ScannedFile, Timestamp, VersionSelector,
};

/// Options of `cargo xtask bench catalog`.
#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    /// Number of files to insert.
    #[arg(long, visible_alias = "size", default_value_t = 1_000_000)]
    files: u64,
    /// Files per pack (1: every file its own pack and location).
    #[arg(long, default_value_t = 1)]
    files_per_pack: u64,
    /// Files per transaction while inserting.
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Scratch directory (default: a fresh one under the system temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const RELEASE_GUARD: &str = "TAPEBACKUP_XTASK_RELEASE";
/// Files per directory: the restore pattern selects whole directories.
const PER_DIR: u64 = 1000;
/// Files per tape (≈ 1.5 TB of 1.5 MB files).
const PER_TAPE: u64 = 100_000;

fn path_of(i: u64) -> String {
    format!("dir{:04}/file{i:07}.dat", i / PER_DIR)
}

fn digest(tag: u8, i: u64) -> anyhow::Result<Digest> {
    let mut b = [tag; 32];
    b[..8].copy_from_slice(&i.to_be_bytes());
    Ok(Digest::new(HashAlgo::Blake3, b.to_vec())?)
}

/// Runs the benchmark (re-running itself as a release build first when built for debug).
pub fn run(args: CatalogArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) && std::env::var_os(RELEASE_GUARD).is_none() {
        eprintln!("(re-running as a release build)");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(crate::root())
            .env(RELEASE_GUARD, "1")
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "xtask",
                "--",
                "bench",
                "catalog",
            ])
            .args(["--files", &args.files.to_string()])
            .args(["--files-per-pack", &args.files_per_pack.to_string()])
            .args(["--batch", &args.batch.to_string()]);
        if let Some(d) = &args.dir {
            cmd.arg("--dir").arg(d);
        }
        return crate::run_cmd(&mut cmd);
    }
    let (dir, _guard) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let db = dir.join("bench-catalog.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let n = args.files.max(1);
    let per_pack = args.files_per_pack.max(1);
    let now = Timestamp::now();
    let mut cat = Catalog::open(&db)?;

    // 1. Insert.
    let started = Instant::now();
    let src = cat.write(|tx| tx.add_source("bench", "/bench", now))?;
    let mut tapes = Vec::new();
    let mut i = 0;
    while i < n {
        let end = (i + args.batch.max(1)).min(n);
        cat.write(|tx| -> anyhow::Result<()> {
            let mut members = Vec::new();
            let mut offset = 0;
            for k in i..end {
                if k % PER_TAPE == 0 {
                    tapes.push(tx.add_tape(
                        &NewTape {
                            barcode: format!("B{:05}L8", k / PER_TAPE),
                            ltfs_uuid: None,
                            generation: Some("LTO-8".into()),
                            capacity: Some(12_000_000_000_000),
                            pool: "default".into(),
                        },
                        now,
                    )?);
                }
                let size = 1_000 + k % 1_000_000;
                let seen = tx.record_scan(
                    src,
                    &ScannedFile {
                        path: path_of(k),
                        size,
                        mtime: Timestamp::from_unix_seconds(1_600_000_000 + k as i64),
                        mode: 0o644,
                        hash: None,
                    },
                    now,
                )?;
                tx.record_fetched(seen.version, &digest(1, k)?, size)?;
                members.push(PackMember {
                    version: seen.version,
                    offset,
                    length: size,
                });
                offset += size;
                if members.len() as u64 == per_pack || k + 1 == end {
                    let pack = tx.record_pack(
                        &NewPack {
                            format: PackFormat::Cryptpack,
                            key_id: "bench".into(),
                            plain_size: offset,
                            plain_hash: digest(2, k)?,
                            cipher_size: offset + 64,
                            cipher_hash: digest(3, k)?,
                            members: std::mem::take(&mut members),
                        },
                        now,
                    )?;
                    let tape = *tapes.last().context("no tape")?;
                    tx.record_location(
                        &NewLocation {
                            pack: pack.id,
                            volume: tape,
                            part: Part::whole(offset + 64),
                            position: Position::Tape {
                                partition: 1,
                                start_block: k % PER_TAPE * 3,
                            },
                            job: None,
                        },
                        now,
                    )?;
                    offset = 0;
                }
            }
            Ok(())
        })?;
        i = end;
    }
    let insert = started.elapsed();

    // 2. Look up one path (cold first lookup, then the median of 1000 random ones).
    let target = path_of(n / 2);
    let t0 = Instant::now();
    let found = cat.read().locate(src, &target, VersionSelector::Latest)?;
    let first_lookup = t0.elapsed();
    anyhow::ensure!(
        found.as_ref().is_some_and(|e| e.copies.len() == 1),
        "lookup of {target} found {found:?}"
    );
    let mut samples = Vec::with_capacity(1000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = path_of(x % n);
        let t = Instant::now();
        let e = cat.read().locate(src, &p, VersionSelector::Latest)?;
        samples.push(t.elapsed());
        anyhow::ensure!(e.is_some(), "{p} not found");
    }
    samples.sort();
    let lookup = samples[samples.len() / 2];

    // 3. Plan a restore of 100k files (the first 100 directories).
    let dirs = (100_000 / PER_DIR).min(n.div_ceil(PER_DIR));
    let pattern = if dirs >= 100 {
        "dir00[0-9][0-9]/*".to_owned()
    } else {
        format!("dir{:04}/*", 0)
    };
    let t0 = Instant::now();
    let plan = cat.read().plan_restore(&RestoreQuery {
        pattern: Some(pattern.clone()),
        ..Default::default()
    })?;
    let planning = t0.elapsed();
    let planned = plan.file_count();
    anyhow::ensure!(
        plan.missing.is_empty(),
        "{} files missing",
        plan.missing.len()
    );

    // 4. Size on disk (after a checkpoint: one file).
    drop(cat);
    let cat = Catalog::open(&db)?;
    drop(cat);
    let mut size = 0;
    for suffix in ["", "-wal"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        size += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "catalog bench: {n} files, {per_pack} file(s) per pack, {} per transaction",
        args.batch
    );
    println!(
        "{:<38} {:>14} {:>12} {:>7}",
        "measure", "measured", "target", "ratio"
    );
    let row = |name: &str, got: f64, target: f64, unit: &str| {
        println!(
            "{name:<38} {:>11.3} {unit:<2} {:>9} {unit:<2} {:>6.2}x",
            got,
            target,
            got / target
        );
    };
    row(
        &format!("insert {n} files (s)"),
        insert.as_secs_f64(),
        10.0 * n as f64 / 1e6,
        "s",
    );
    println!(
        "{:<38} {:>11.0} /s",
        "  files inserted per second",
        n as f64 / insert.as_secs_f64()
    );
    row(
        "look up one path, median of 1000 (ms)",
        ms(lookup),
        1.0,
        "ms",
    );
    row("look up one path, first (ms)", ms(first_lookup), 1.0, "ms");
    row(
        &format!("plan restore of {planned} files (s)"),
        planning.as_secs_f64(),
        1.0,
        "s",
    );
    println!(
        "  plan: {} volume run(s), {} reads, pattern {pattern:?}",
        plan.runs.len(),
        plan.runs.iter().map(|r| r.reads.len()).sum::<usize>()
    );
    println!(
        "{:<38} {:>11.1} MiB ({:.0} bytes per file)",
        "database size",
        size as f64 / (1 << 20) as f64,
        size as f64 / n as f64
    );
    println!(
        "(ratio = measured / target; below 1.00x meets the target; the insert target scales with --files)"
    );
    Ok(())
}

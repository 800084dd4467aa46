//! `cargo xtask bench catalog`: the catalog at scale. Inserts N files the way a first
//! backup records them, stage by stage, committing every `--batch` files: the listing
//! (`record_scans`), the fetched hashes (`record_fetches`), packs (`record_packs`), their
//! locations on tapes of 100k files (`record_locations`); `--per-item` uses the single calls
//! instead. Then looks up one path and plans a restore of 100k files, against the issue's
//! absolute targets (there is no peer tool for a catalog): insert 1M < 10 s, lookup < 1 ms,
//! plan < 1 s. Prints wall and CPU time (on a busy machine wall time includes waiting for
//! a core) and the size of the database.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use catalog::{
    Catalog, Digest, Fetched, HashAlgo, NewLocation, NewPack, NewTape, PackFormat, PackId,
    PackInfo, PackMember, Part, Position, RestoreQuery, ScanOutcome, ScannedFile, Timestamp,
    VersionId, VersionSelector, VolumeId,
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
    /// Files per transaction while inserting (each stage commits every BATCH files).
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Record item by item (`record_scan`, `record_fetched`, `record_pack`,
    /// `record_location`) instead of with the batch calls (`record_scans`, ...).
    #[arg(long)]
    per_item: bool,
    /// Scratch directory (default: a fresh one under the system temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Files per directory: the restore pattern selects whole directories.
const PER_DIR: u64 = 1000;
/// Files per tape (≈ 1.5 TB of 1.5 MB files).
const PER_TAPE: u64 = 100_000;

fn path_of(i: u64) -> String {
    format!("dir{:04}/file{i:07}.dat", i / PER_DIR)
}

fn size_of(i: u64) -> u64 {
    1_000 + i % 1_000_000
}

/// A content hash as random as a real one (the content index sees inserts all over its key
/// space, as it does with BLAKE3 digests), but reproducible: SplitMix64 of (tag, i).
fn digest(tag: u8, i: u64) -> anyhow::Result<Digest> {
    let mut x = (u64::from(tag) << 56) ^ i;
    let mut b = [0u8; 32];
    for chunk in b.chunks_exact_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    Ok(Digest::new(HashAlgo::Blake3, b.to_vec())?)
}

/// CPU time (user + system) of this process so far: on a busy machine wall time also
/// counts waiting for a core, CPU time does not.
fn cpu_time() -> anyhow::Result<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    Ok(d(u.user_time()) + d(u.system_time()))
}

/// Bytes this process has caused to be written to storage so far (`/proc/self/io`;
/// 0 where that is not available).
fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The load average as `/proc/loadavg` shows it (1, 5 and 15 minutes).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// One insert stage: wall time, CPU time and bytes written.
struct Stage {
    name: &'static str,
    wall: Duration,
    cpu: Duration,
    written: u64,
}

/// The start of a [`Stage`].
struct StageStart {
    wall: Instant,
    cpu: Duration,
    written: u64,
}

impl Stage {
    fn start() -> anyhow::Result<StageStart> {
        Ok(StageStart {
            wall: Instant::now(),
            cpu: cpu_time()?,
            written: bytes_written(),
        })
    }
}

impl StageStart {
    fn end(self, name: &'static str) -> anyhow::Result<Stage> {
        Ok(Stage {
            name,
            wall: self.wall.elapsed(),
            cpu: cpu_time()?.saturating_sub(self.cpu),
            written: bytes_written().saturating_sub(self.written),
        })
    }
}

/// Runs the benchmark (re-running itself as a release build first when built for debug).
pub fn run(args: CatalogArgs) -> anyhow::Result<()> {
    if super::rerun_as_release()? {
        return Ok(());
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
    let load_before = load_average();
    let n = args.files.max(1);
    let per_pack = args.files_per_pack.max(1);
    let now = Timestamp::now();
    let mut cat = Catalog::open(&db)?;

    // 1. Insert, stage by stage, as a first backup of N files goes through the workflow:
    //    `get` records the listing (scan) and then the fetched contents, `pack` records
    //    packs, `write` records locations. Each stage commits every `--batch` files.
    let batch = args.batch.max(1);
    let chunks: Vec<(u64, u64)> = (0..n)
        .step_by(usize::try_from(batch)?)
        .map(|i| (i, (i + batch).min(n)))
        .collect();
    let mut stage_times = Vec::new();
    let mut transactions = 0u64;
    let started = Instant::now();
    let cpu_started = cpu_time()?;
    let src = cat.write(|tx| tx.add_source("bench", "/bench", now))?;
    let mut versions: Vec<VersionId> = Vec::with_capacity(usize::try_from(n)?);

    // Scan.
    let t = Stage::start()?;
    for &(i, end) in &chunks {
        let files: Vec<ScannedFile> = (i..end)
            .map(|k| ScannedFile {
                path: path_of(k),
                size: size_of(k),
                mtime: Timestamp::from_unix_seconds(1_600_000_000 + k as i64),
                mode: 0o644,
                hash: None,
            })
            .collect();
        let outcomes = cat.write(|tx| -> catalog::Result<Vec<ScanOutcome>> {
            if args.per_item {
                files.iter().map(|f| tx.record_scan(src, f, now)).collect()
            } else {
                tx.record_scans(src, &files, now)
            }
        })?;
        transactions += 1;
        versions.extend(outcomes.iter().map(|o| o.version));
    }
    stage_times.push(t.end("scan (get: record the listing)")?);

    // Fetched contents.
    let t = Stage::start()?;
    for &(i, end) in &chunks {
        let fetched = (i..end)
            .map(|k| {
                Ok(Fetched {
                    version: versions[usize::try_from(k)?],
                    hash: digest(1, k)?,
                    size: size_of(k),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        cat.write(|tx| -> catalog::Result<()> {
            if args.per_item {
                for f in &fetched {
                    tx.record_fetched(f.version, &f.hash, f.size)?;
                }
            } else {
                tx.record_fetches(&fetched)?;
            }
            Ok(())
        })?;
        transactions += 1;
    }
    stage_times.push(t.end("fetched (get: record hashes)")?);

    // Packs: `per_pack` consecutive files per pack.
    let t = Stage::start()?;
    let mut packs: Vec<(u64, PackId, u64)> = Vec::new(); // (first file, pack, cipher size)
    for &(i, end) in &chunks {
        let mut new_packs = Vec::new();
        let mut firsts = Vec::new();
        let mut k = i;
        while k < end {
            let last = (k + per_pack).min(end);
            let mut offset = 0;
            let members = (k..last)
                .map(|j| {
                    let m = PackMember {
                        version: versions[usize::try_from(j)?],
                        offset,
                        length: size_of(j),
                    };
                    offset += size_of(j);
                    Ok(m)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            new_packs.push(NewPack {
                format: PackFormat::Cryptpack,
                key_id: "bench".into(),
                plain_size: offset,
                plain_hash: digest(2, k)?,
                cipher_size: offset + 64,
                cipher_hash: digest(3, k)?,
                members,
            });
            firsts.push(k);
            k = last;
        }
        let infos = cat.write(|tx| -> catalog::Result<Vec<PackInfo>> {
            if args.per_item {
                new_packs.iter().map(|p| tx.record_pack(p, now)).collect()
            } else {
                tx.record_packs(&new_packs, now)
            }
        })?;
        transactions += 1;
        for ((first, info), p) in firsts.into_iter().zip(infos).zip(&new_packs) {
            packs.push((first, info.id, p.cipher_size));
        }
    }
    stage_times.push(t.end("packs (pack: record packs)")?);

    // Locations: packs written in order, a new tape every PER_TAPE files.
    let t = Stage::start()?;
    let mut tape: Option<(u64, VolumeId)> = None;
    for group in
        packs.chunk_by(|a, b| a.0 / PER_TAPE == b.0 / PER_TAPE && a.0 / batch == b.0 / batch)
    {
        let tape_no = group[0].0 / PER_TAPE;
        cat.write(|tx| -> catalog::Result<()> {
            let vol = match tape {
                Some((no, vol)) if no == tape_no => vol,
                _ => {
                    let vol = tx.add_tape(
                        &NewTape {
                            barcode: format!("B{tape_no:05}L8"),
                            ltfs_uuid: None,
                            generation: Some("LTO-8".into()),
                            capacity: Some(12_000_000_000_000),
                            pool: "default".into(),
                        },
                        now,
                    )?;
                    tape = Some((tape_no, vol));
                    vol
                }
            };
            let locs: Vec<NewLocation> = group
                .iter()
                .map(|&(first, pack, cipher)| NewLocation {
                    pack,
                    volume: vol,
                    part: Part::whole(cipher),
                    position: Position::Tape {
                        partition: 1,
                        start_block: first % PER_TAPE * 3,
                    },
                    job: None,
                })
                .collect();
            if args.per_item {
                for l in &locs {
                    tx.record_location(l, now)?;
                }
            } else {
                tx.record_locations(&locs, now)?;
            }
            Ok(())
        })?;
        transactions += 1;
    }
    stage_times.push(t.end("locations (write: record locations)")?);
    let insert = started.elapsed();
    let insert_cpu = cpu_time()?.saturating_sub(cpu_started);

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
        "catalog bench: {n} files, {per_pack} file(s) per pack; every stage commits each {batch} \
         files ({transactions} transactions in all); {} calls",
        if args.per_item { "per-item" } else { "batch" }
    );
    println!(
        "load average (1, 5, 15 min) before: {load_before}; after: {}",
        load_average()
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
        "{:<38} {:>11.3} s  (wall time spent waiting for a core or the disk: {:.3} s)",
        "  CPU time of the insert",
        insert_cpu.as_secs_f64(),
        (insert.saturating_sub(insert_cpu)).as_secs_f64()
    );
    for st in &stage_times {
        println!(
            "  {:<36} {:>11.3} s  (CPU {:.3} s, {:.0} MiB written)",
            st.name,
            st.wall.as_secs_f64(),
            st.cpu.as_secs_f64(),
            st.written as f64 / (1 << 20) as f64
        );
    }
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

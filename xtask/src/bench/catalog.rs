//! `cargo xtask bench catalog`: the catalog at scale. Inserts N files the way a first
//! backup records them, stage by stage, committing every `--batch` files: the listing
//! (`record_scans`), the fetched hashes (`record_fetches`), packs (`record_packs`), their
//! locations on tapes of 100k files (`record_locations`); `--per-item` uses the single calls
//! instead. Then looks up one path and plans a restore of 100k files, against the issue's
//! absolute targets (there is no peer tool for a catalog): insert 1M < 10 s, lookup < 1 ms,
//! plan < 1 s. Prints wall and CPU time (on a busy machine wall time includes waiting for
//! a core) and the size of the database.
//!
//! **File sizes.** File `i` (in path order) has a size drawn from a fixed pseudo-random
//! sequence: every 50th file is large, 2–8 MiB (uniform), every other one is small,
//! 1 000 bytes to 1 MB (uniform, mean ≈ 0.5 MB). That exercises both packing paths of the
//! workflow; real trees usually have many more tiny files, which bundle into fuller packs
//! (so this is the less favourable case for the catalog: more packs per file).
//!
//! **Packs.** By default files are grouped into packs by the workflow's rule
//! (`crates/cli/src/workflow/pack.rs`, `pack_groups` and `pack_many`): consecutive files
//! form a group of at most [`PACK_GROUP_FILES`] files or [`PACK_GROUP_BYTES`] bytes; in a
//! group, every content below [`BUNDLE_BELOW`] goes into one bundle pack (members at
//! offsets), every larger one into a pack of its own; a group's packs are recorded in one
//! transaction. `--files-per-pack N` overrides the rule with N consecutive files per pack
//! whatever their size (`--files-per-pack 1`: one pack and one location per file, the
//! worst case, which the workflow never produces for small files). The run prints which
//! grouping ran and how many packs and locations it made.

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
    /// Files per pack, whatever their size (1: every file its own pack and location, the
    /// worst case). Default: the workflow's grouping rule (small files bundled).
    #[arg(long)]
    files_per_pack: Option<u64>,
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

/// Contents smaller than this are bundled with others into one pack; larger ones get a
/// pack each. Same value as `BUNDLE_BELOW` in crates/cli/src/workflow/pack.rs (xtask does
/// not depend on the cli crate).
const BUNDLE_BELOW: u64 = 1 << 20;
/// Most files in one pack group: `PACK_GROUP_FILES` of crates/cli/src/workflow/pack.rs.
const PACK_GROUP_FILES: usize = 512;
/// Most plaintext bytes in one pack group: `PACK_GROUP_BYTES` of
/// crates/cli/src/workflow/pack.rs.
const PACK_GROUP_BYTES: u64 = 32 << 20;

/// Every `LARGE_EVERY`th file is large (2–8 MiB), the others small (1 000 B – 1 MB).
const LARGE_EVERY: u64 = 50;

/// SplitMix64: a reproducible pseudo-random 64-bit value for `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The size of file `i` (see the module documentation).
fn size_of(i: u64) -> u64 {
    let r = mix(i ^ 0x5151_0000_0000_0000);
    if i % LARGE_EVERY == LARGE_EVERY / 2 {
        (2 << 20) + r % (6 << 20)
    } else {
        1_000 + r % 1_000_000
    }
}

/// One pack to record: its files (indexes, in order) and the group it belongs to (a
/// group's packs are recorded in one transaction, as the workflow does).
struct PlannedPack {
    files: Vec<u64>,
    group: usize,
}

/// Packs for files `0..n`: `per_pack` consecutive files each, or else the workflow's rule
/// (see the module documentation). A group's packs are listed large ones first, then the
/// bundle, as `pack_many` seals them.
fn plan_packs(n: u64, per_pack: Option<u64>) -> Vec<PlannedPack> {
    if let Some(per) = per_pack {
        let per = per.max(1);
        return (0..n)
            .step_by(usize::try_from(per).unwrap_or(usize::MAX))
            .enumerate()
            .map(|(group, i)| PlannedPack {
                files: (i..(i + per).min(n)).collect(),
                group,
            })
            .collect();
    }
    let mut out = Vec::new();
    let mut flush = |files: std::ops::Range<u64>, group: usize| {
        let (small, large): (Vec<u64>, Vec<u64>) = files.partition(|&i| size_of(i) < BUNDLE_BELOW);
        for i in large {
            out.push(PlannedPack {
                files: vec![i],
                group,
            });
        }
        if !small.is_empty() {
            out.push(PlannedPack {
                files: small,
                group,
            });
        }
    };
    let (mut group, mut start, mut bytes) = (0, 0, 0u64);
    for i in 0..n {
        let size = size_of(i);
        let len = usize::try_from(i - start).unwrap_or(usize::MAX);
        if i > start && (len >= PACK_GROUP_FILES || bytes.saturating_add(size) > PACK_GROUP_BYTES) {
            flush(start..i, group);
            group += 1;
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if n > start {
        flush(start..n, group);
    }
    out
}

/// A content hash as random as a real one (the content index sees inserts all over its key
/// space, as it does with BLAKE3 digests), but reproducible: SplitMix64 of (tag, i).
fn digest(tag: u8, i: u64) -> anyhow::Result<Digest> {
    let mut x = (u64::from(tag) << 56) ^ i;
    let mut b = [0u8; 32];
    for chunk in b.chunks_exact_mut(8) {
        chunk.copy_from_slice(&mix(x).to_be_bytes());
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
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

    // Packs, grouped as planned; a transaction holds whole groups, about `--batch` files.
    let t = Stage::start()?;
    let planned = plan_packs(n, args.files_per_pack);
    // (files in the packs before this one, pack, cipher size): tapes fill in pack order.
    let mut packs: Vec<(u64, PackId, u64)> = Vec::new();
    let mut files_before = 0u64;
    let mut bundles = 0u64;
    let mut txn_packs: Vec<&PlannedPack> = Vec::new();
    let mut txn_files = 0u64;
    for (k, p) in planned.iter().enumerate() {
        txn_files += p.files.len() as u64;
        bundles += u64::from(p.files.len() > 1);
        txn_packs.push(p);
        let group_ends = planned.get(k + 1).is_none_or(|next| next.group != p.group);
        if !(group_ends && (txn_files >= batch || k + 1 == planned.len())) {
            continue;
        }
        let new_packs = txn_packs
            .iter()
            .map(|p| {
                let mut offset = 0;
                let members = p
                    .files
                    .iter()
                    .map(|&j| {
                        let m = PackMember {
                            version: versions[usize::try_from(j)?],
                            offset,
                            length: size_of(j),
                        };
                        offset += size_of(j);
                        Ok(m)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(NewPack {
                    format: PackFormat::Cryptpack,
                    key_id: "bench".into(),
                    plain_size: offset,
                    plain_hash: digest(2, p.files[0])?,
                    cipher_size: offset + 64,
                    cipher_hash: digest(3, p.files[0])?,
                    members,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let infos = cat.write(|tx| -> catalog::Result<Vec<PackInfo>> {
            if args.per_item {
                new_packs.iter().map(|p| tx.record_pack(p, now)).collect()
            } else {
                tx.record_packs(&new_packs, now)
            }
        })?;
        transactions += 1;
        for (info, p) in infos.into_iter().zip(&new_packs) {
            packs.push((files_before, info.id, p.cipher_size));
            files_before += p.members.len() as u64;
        }
        txn_packs.clear();
        txn_files = 0;
    }
    let groups = planned.last().map_or(0, |p| p.group + 1);
    stage_times.push(t.end("packs (pack: record packs)")?);

    // Locations: packs written in order, a new tape every PER_TAPE files, one transaction
    // per tape and --batch files.
    let t = Stage::start()?;
    let mut tape: Option<(u64, VolumeId)> = None;
    let mut locations = 0usize;
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
            locations += locs.len();
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
    let grouping = match args.files_per_pack {
        Some(per) => format!("forced --files-per-pack {}", per.max(1)),
        None => format!(
            "workflow rule (bundle below {} KiB, groups of <= {PACK_GROUP_FILES} files / {} MiB)",
            BUNDLE_BELOW >> 10,
            PACK_GROUP_BYTES >> 20
        ),
    };
    let content_bytes: u64 = (0..n).map(size_of).sum();
    println!(
        "catalog bench: {n} files ({:.1} GiB of content, {} of them >= 1 MiB); every stage \
         commits each {batch} files ({transactions} transactions in all); {} calls",
        content_bytes as f64 / f64::from(1u32 << 30),
        (0..n).filter(|&i| size_of(i) >= BUNDLE_BELOW).count(),
        if args.per_item { "per-item" } else { "batch" }
    );
    println!(
        "grouping: {grouping}: {n} files in {} packs ({bundles} with several files) from {groups} \
         groups, {locations} locations",
        packs.len(),
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

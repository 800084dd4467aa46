//! `cargo xtask bench e2e`: the whole backup path against `cp -a`.
//!
//! Ours: `tapebackup init` (a virtual library in the scratch directory, so on the same
//! disk), then `tapebackup run` as a child process: get (the local source is read in
//! place and hashed, BLAKE3), pack (AES-256-GCM, small files bundled) and write (LTFS
//! onto a virtual cartridge, catalog snapshot) at once; `run` seals each pack straight
//! onto the tape, so no pack file is written. The same again as `get`, `pack`, `write`
//! one after the other in a second workspace (pack files on disk in between), to show
//! what pipelining gains. Every step is durable before it records anything. Peer: `cp -a`
//! of the same tree to the same disk, then `sync` (so both end with the bytes on disk;
//! `cp -a` alone is printed as well).
//!
//! Two trees of the same total size: one of mixed files (many small 4–64 KiB, some medium
//! 1–8 MiB, a few large 64–256 MiB) and one single large file. The peak RSS of the
//! `tapebackup run` child is printed for both, to show that memory does not grow with file
//! size. Peak RSS is the child's `VmHWM` from `/proc/<pid>/status`, sampled every 5 ms until
//! it exits (a high-water mark, so only a rise in its last few milliseconds could be
//! missed). Content is deterministic (xorshift, incompressible). Asserts nothing about time.
//!
//! Then `tapebackup restore` of everything `run` wrote (read from the virtual cartridge,
//! decrypted, every content hash checked, files durable before they are marked restored)
//! into a fresh directory, plus `sync`, against the same `cp -a` + `sync`; the restored
//! tree is compared with the source byte for byte (not timed).
//!
//! With `--runs N` every row shows its best round (and its slowest), and the ratio of the
//! best rounds; since `cp`'s own time varies several-fold between rounds on a shared
//! machine, each round's `run` / (`cp -a` + `sync`) ratio is printed too (the two ran back
//! to back, under the same load), with their median.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::parse_size;
use anyhow::{Context, bail};

/// Options of `cargo xtask bench e2e`.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    /// Total size of the mixed tree (e.g. 1GiB, 256MiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
    /// Size of the single-file tree (default: the same as --size; 0 skips it).
    #[arg(long, value_parser = parse_size)]
    large: Option<u64>,
    /// Scratch directory (default: a fresh one under the system temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Parallel copy batches of the source (`parallel` of its `[[source]]`; init's default
    /// is 2).
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// Measure this `tapebackup` binary instead of building the release one (to compare
    /// two builds under the same load, one run after the other).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Rounds: each round runs `tapebackup run`, the sequential steps and `cp -a`, one
    /// after the other; every row reports its best round (for a busy machine, where one
    /// round's luck decides a single measurement), with the slowest beside it.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
}

/// Deterministic incompressible bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A value in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let b = self.next().to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}

fn write_file(path: &Path, len: u64, rng: &mut XorShift, buf: &mut [u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().context("parent")?)?;
    let mut f = std::fs::File::create(path)?;
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// The mixed tree: about 20% of the bytes in small files (4–64 KiB), 30% in medium ones
/// (1–8 MiB), the rest in large ones (64–256 MiB, cut to fit). Returns (files, bytes).
fn make_mixed(src: &Path, total: u64) -> anyhow::Result<(u64, u64)> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut buf = vec![0u8; 1 << 20];
    let (mut files, mut bytes) = (0u64, 0u64);
    let shares = [
        ("small", total / 5, 4u64 << 10, 64u64 << 10),
        ("medium", total * 3 / 10, 1 << 20, 8 << 20),
        ("large", total, 64 << 20, 256 << 20),
    ];
    for (kind, budget, lo, hi) in shares {
        let budget = budget.min(total - bytes);
        let mut used = 0u64;
        while used < budget {
            let len = rng.range(lo, hi).min(budget - used);
            let rel = format!("{kind}/d{:02}/f{files:06}.bin", files % 32);
            write_file(&src.join(rel), len, &mut rng, &mut buf)?;
            used += len;
            files += 1;
        }
        bytes += used;
    }
    Ok((files, bytes))
}

/// Runs `cmd`, returning (wall seconds, peak RSS in bytes from `/proc/<pid>/status`).
fn timed_with_rss(cmd: &mut Command) -> anyhow::Result<(f64, u64)> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let status_path = format!("/proc/{}/status", child.id());
    // Drain the pipes on threads so a chatty child cannot block.
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let secs = start.elapsed().as_secs_f64();
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    if !status.success() {
        bail!("{cmd:?} failed ({status}):\n{stdout}{stderr}");
    }
    Ok((secs, peak))
}

fn timed(cmd: &mut Command) -> anyhow::Result<f64> {
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(start.elapsed().as_secs_f64())
}

fn sync() -> anyhow::Result<f64> {
    timed(&mut Command::new("sync"))
}

/// Builds the release `tapebackup` binary and returns its path.
fn build_tapebackup(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    crate::run_cmd(Command::new(cargo).current_dir(root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "tapebackup",
        "--bin",
        "tapebackup",
    ]))?;
    Ok(crate::target_dir().join("release").join("tapebackup"))
}

/// One tree through every path.
#[derive(Clone)]
struct Outcome {
    files: u64,
    bytes: u64,
    /// `tapebackup run` (pipelined): seconds (with the final sync), peak RSS.
    run: (f64, u64),
    /// `tapebackup get`, `pack`, `write` one after the other (what `run` was before it was
    /// pipelined): seconds, peak RSS of the largest of the three.
    seq: (f64, u64),
    /// `tapebackup restore` of everything `run` wrote, with the final sync: seconds.
    restore: f64,
    cp: f64,
    cp_sync: f64,
}

/// A fresh workspace for `src` in `ws`, one cartridge large enough for everything.
fn init(bin: &Path, ws: &Path, src: &Path, bytes: u64, parallel: usize) -> anyhow::Result<()> {
    let capacity = bytes + bytes / 8 + (256 << 20);
    let out = Command::new(bin)
        .arg("init")
        .arg(ws)
        .arg("--source")
        .arg(format!("bench={}", src.display()))
        .args(["--slots", "2", "--drives", "1", "--capacity"])
        .arg(capacity.to_string())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "tapebackup init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = ws.join("tapebackup.toml");
    let text = std::fs::read_to_string(&cfg)?;
    anyhow::ensure!(text.contains("parallel = 2"), "unexpected config:\n{text}");
    std::fs::write(
        &cfg,
        text.replace("parallel = 2", &format!("parallel = {parallel}")),
    )?;
    Ok(())
}

fn tb(bin: &Path, ws: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .current_dir(ws)
        .env_remove("TAPEBACKUP_CONFIG")
        .env_remove("TAPEBACKUP_CATALOG");
    c
}

/// Checks that everything landed: no pack waits, every file's content (all unique) in a
/// pack (small files share packs).
fn check_written(bin: &Path, ws: &Path, files: u64) -> anyhow::Result<()> {
    let status = tb(bin, ws, &["--json", "status"]).output()?;
    let j: serde_json::Value = serde_json::from_slice(&status.stdout)
        .with_context(|| format!("status: {}", String::from_utf8_lossy(&status.stderr)))?;
    anyhow::ensure!(
        j["packs_unwritten"] == 0 && j["contents"] == files && j["to_pack"] == 0,
        "not everything was written: {j}"
    );
    Ok(())
}

/// [`measure_once`] `runs` times: each row its best (fastest) round, and the slowest.
/// Every round's `run` and `cp -a + sync` seconds, in order (each pair measured back to
/// back, so under the same load).
type Rounds = Vec<(f64, f64)>;

fn measure(
    bin: &Path,
    dir: &Path,
    name: &str,
    tree: (u64, u64),
    parallel: usize,
    runs: u32,
) -> anyhow::Result<(Outcome, Outcome, Rounds)> {
    let mut best = measure_once(bin, dir, name, tree, parallel)?;
    let mut worst = best.clone();
    let mut rounds = vec![(best.run.0, best.cp_sync)];
    for round in 1..runs {
        eprintln!("{name}: round {}", round + 1);
        let o = measure_once(bin, dir, name, tree, parallel)?;
        rounds.push((o.run.0, o.cp_sync));
        let pick = |a: (f64, u64), b: (f64, u64), faster: bool| {
            if (b.0 < a.0) == faster { b } else { a }
        };
        best.run = pick(best.run, o.run, true);
        best.seq = pick(best.seq, o.seq, true);
        worst.run = pick(worst.run, o.run, false);
        worst.seq = pick(worst.seq, o.seq, false);
        best.restore = best.restore.min(o.restore);
        worst.restore = worst.restore.max(o.restore);
        best.cp = best.cp.min(o.cp);
        best.cp_sync = best.cp_sync.min(o.cp_sync);
        worst.cp = worst.cp.max(o.cp);
        worst.cp_sync = worst.cp_sync.max(o.cp_sync);
    }
    Ok((best, worst, rounds))
}

/// The median of the rounds' own ratios (cp -a + sync) / run.
fn median_paired_ratio(rounds: &[(f64, f64)]) -> f64 {
    let mut r: Vec<f64> = rounds.iter().map(|(run, cp)| cp / run).collect();
    r.sort_by(f64::total_cmp);
    match r.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => r[n / 2],
        n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
    }
}

fn measure_once(
    bin: &Path,
    dir: &Path,
    name: &str,
    (files, bytes): (u64, u64),
    parallel: usize,
) -> anyhow::Result<Outcome> {
    let src = dir.join(format!("{name}-src"));
    let copy = dir.join(format!("{name}-copy"));

    let ws = dir.join(format!("{name}-run"));
    init(bin, &ws, &src, bytes, parallel)?;
    sync()?;
    eprintln!("{name}: tapebackup run ...");
    let (secs, rss) = timed_with_rss(&mut tb(bin, &ws, &["-q", "run"]))?;
    let run = (secs + sync()?, rss);
    check_written(bin, &ws, files)?;
    eprintln!("{name}: tapebackup restore ...");
    let restored = dir.join(format!("{name}-restored"));
    let restore = timed(tb(bin, &ws, &["-q", "restore", "--to"]).arg(&restored))? + sync()?;
    crate::demo::compare_trees(&src, &restored.join("bench"))?;
    std::fs::remove_dir_all(&restored)?;
    std::fs::remove_dir_all(&ws)?;

    let ws = dir.join(format!("{name}-seq"));
    init(bin, &ws, &src, bytes, parallel)?;
    sync()?;
    eprintln!("{name}: tapebackup get; pack; write ...");
    let mut seq = (0.0, 0u64);
    for step in ["get", "pack", "write"] {
        let (secs, rss) = timed_with_rss(&mut tb(bin, &ws, &["-q", step]))?;
        seq = (seq.0 + secs, seq.1.max(rss));
    }
    seq.0 += sync()?;
    check_written(bin, &ws, files)?;
    std::fs::remove_dir_all(&ws)?;

    eprintln!("{name}: cp -a ...");
    let cp = timed(Command::new("cp").arg("-a").arg(&src).arg(&copy))?;
    let cp_sync = cp + sync()?;
    std::fs::remove_dir_all(&copy)?;
    Ok(Outcome {
        files,
        bytes,
        run,
        seq,
        restore,
        cp,
        cp_sync,
    })
}

fn mib(n: u64) -> f64 {
    n as f64 / (1u64 << 20) as f64
}

fn print(name: &str, (o, worst, rounds): &(Outcome, Outcome, Rounds), runs: u32) {
    let mb = o.bytes as f64 / 1e6;
    println!("{name}: {} files, {:.0} MB", o.files, mb);
    let row = |what: &str, secs: f64, slowest: f64, rss: Option<u64>| {
        let rss = rss.map_or(String::new(), |r| format!("  peak RSS {:6.1} MiB", mib(r)));
        let spread = if runs > 1 {
            format!("  (slowest {slowest:.2} s)")
        } else {
            String::new()
        };
        println!(
            "  {what:<44} {secs:7.2} s {:7.1} MB/s{rss}{spread}",
            mb / secs
        );
    };
    row(
        "tapebackup run (pipelined, durable)",
        o.run.0,
        worst.run.0,
        Some(o.run.1),
    );
    row(
        "tapebackup get; pack; write (sequential)",
        o.seq.0,
        worst.seq.0,
        Some(o.seq.1),
    );
    row(
        "tapebackup restore (durable, hashes checked)",
        o.restore,
        worst.restore,
        None,
    );
    row("cp -a + sync", o.cp_sync, worst.cp_sync, None);
    row("cp -a (page cache only, not durable)", o.cp, worst.cp, None);
    if runs > 1 {
        println!("  (best of {runs} interleaved rounds; ratios compare the best rounds)");
    }
    println!(
        "  ratio run / (cp -a + sync): {:.2}x   sequential / (cp -a + sync): {:.2}x   \
         run / cp -a: {:.2}x",
        o.cp_sync / o.run.0,
        o.cp_sync / o.seq.0,
        o.cp / o.run.0
    );
    println!(
        "  ratio restore / (cp -a + sync): {:.2}x",
        o.cp_sync / o.restore
    );
    if runs > 1 {
        // cp's own time varies several-fold between rounds on a shared machine, so the
        // best rounds of each side may come from different moments; each round's `run`
        // and `cp` ran back to back, under the same load.
        let each: Vec<String> = rounds
            .iter()
            .map(|(run, cp)| format!("{:.2}x ({run:.2} s / {cp:.2} s)", cp / run))
            .collect();
        println!(
            "  per round, run / (cp -a + sync): {}; median {:.2}x",
            each.join(", "),
            median_paired_ratio(rounds)
        );
    }
}

/// Runs the benchmark (re-running itself as a release build first when built for debug).
pub fn run(args: E2eArgs) -> anyhow::Result<()> {
    let root = crate::root();
    if super::rerun_as_release()? {
        return Ok(());
    }
    let bin = match &args.bin {
        // Absolute: the children run in their workspaces.
        Some(bin) => {
            std::fs::canonicalize(bin).with_context(|| format!("--bin {}", bin.display()))?
        }
        None => build_tapebackup(&root)?,
    };
    let scratch;
    let dir = match &args.dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                bail!(
                    "{} is not empty: give an empty or new directory",
                    d.display()
                );
            }
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            scratch = tempfile::Builder::new()
                .prefix("tapebackup-bench-e2e-")
                .tempdir()?;
            scratch.path().to_path_buf()
        }
    };
    let large = args.large.unwrap_or(args.size);

    eprintln!("writing {} bytes of mixed files", args.size);
    let (files, bytes) = make_mixed(&dir.join("mixed-src"), args.size)?;
    let mixed = measure(
        &bin,
        &dir,
        "mixed",
        (files, bytes),
        args.parallel,
        args.runs,
    )?;
    let single = if large > 0 {
        eprintln!("writing one file of {large} bytes");
        let mut buf = vec![0u8; 1 << 20];
        write_file(
            &dir.join("single-src/one.bin"),
            large,
            &mut XorShift(0xD1B5_4A32_D192_ED03),
            &mut buf,
        )?;
        Some(measure(
            &bin,
            &dir,
            "single",
            (1, large),
            args.parallel,
            args.runs,
        )?)
    } else {
        None
    };

    println!(
        "e2e bench (virtual library on the same disk as the source and the cp copy; \
         source parallel = {})",
        args.parallel
    );
    print(
        "mixed tree (4-64 KiB, 1-8 MiB, 64-256 MiB files)",
        &mixed,
        args.runs,
    );
    if let Some(s) = &single {
        print("one large file", s, args.runs);
        println!(
            "peak RSS of tapebackup run: mixed tree {:.1} MiB (largest file <= 256 MiB), \
             one {:.0} MiB file {:.1} MiB",
            mib(mixed.0.run.1),
            mib(s.0.bytes),
            mib(s.0.run.1)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median_paired_ratio;

    #[test]
    fn the_median_of_paired_ratios_is_each_rounds_own() {
        // (run, cp): ratios 0.5, 2.0, 1.0 -> median 1.0; the best run (1 s) paired with
        // the best cp (1 s) would have said 1.0 as well, by luck of different rounds.
        assert_eq!(
            median_paired_ratio(&[(2.0, 1.0), (1.0, 2.0), (3.0, 3.0)]),
            1.0
        );
        assert_eq!(median_paired_ratio(&[(1.0, 1.0), (1.0, 2.0)]), 1.5);
        assert!(median_paired_ratio(&[]).is_nan());
    }
}

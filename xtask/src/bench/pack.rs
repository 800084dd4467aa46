//! `cargo xtask bench pack`: the same file encrypted by tapebackup (library and CLI), by
//! `openssl enc -aes-256-cbc -pbkdf2 -iter 100000` (the seed tool's way; also followed by
//! an fsync of its output, the CLI's durability) and by `gpg --symmetric` with its defaults
//! (the B2 seed's way), next to `cp` and `dd` of the same file (what any tool that reads and
//! writes it can reach here), with the ceiling this machine puts on the ratios (the CPU
//! cost of the work every pack needs, from primitives measured in the same run, spread
//! over all cores); then in memory: cryptpack's
//! seal alone and its full pass (seal + both BLAKE3 hashes) against raw ring, per core
//! (bytes per CPU-second of the whole process, so the figures hold on a busy machine) and
//! in wall time, with the ceiling the measured primitives allow. Prints MB/s and ratios;
//! asserts nothing.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::parse_size;
use anyhow::{Context, bail};
use cryptpack::{EncryptOptions, Encryptor, Key, Secret, Silent};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// Options of `cargo xtask bench pack`.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// Size of the test file (e.g. 1GiB, 256MiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
    /// Size of the in-memory buffer for the seal comparison (default: min(size, 512MiB)).
    #[arg(long, value_parser = parse_size)]
    mem_size: Option<u64>,
    /// Scratch directory (default: a fresh one under the system temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Skip gpg (slow: ~15 s per GiB).
    #[arg(long)]
    no_gpg: bool,
    /// Rounds of the file-to-file comparison (every tool once per round, one after the
    /// other); each tool's best round is shown. More than 1 on a busy machine.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Skip the in-memory part (file to file only).
    #[arg(long)]
    no_memory: bool,
}

/// Runs the benchmark (re-running itself as a release build first when built for debug).
pub fn run(args: PackArgs) -> anyhow::Result<()> {
    let root = crate::root();
    if super::rerun_as_release()? {
        return Ok(());
    }
    // The CLI row needs the tapebackup binary; the rest of the benchmark does not.
    let built = crate::run_cmd(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "tapebackup",
    ]));
    let cli = crate::target_dir().join("release/tapebackup");
    let cli = match built {
        Ok(()) if cli.exists() => Some(cli),
        Ok(()) => bail!("{} not found after the build", cli.display()),
        Err(e) => {
            eprintln!("NOTE: building the tapebackup CLI failed ({e:#}); its row is left out");
            None
        }
    };

    let (dir, remove) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("tapebackup-bench-pack-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = files_and_memory(&args, &dir, cli.as_deref());
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// Fills `buf` with incompressible bytes (xorshift; gpg's zlib gains nothing on them).
fn fill(buf: &mut [u8], seed: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let b = seed.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// CPU time of this process so far (all threads, live and finished), in seconds.
fn process_cpu() -> anyhow::Result<f64> {
    use nix::time::{ClockId, clock_gettime};
    let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)?;
    Ok(t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// CPU time (user + system) of all waited-for children so far, in seconds.
fn children_cpu() -> anyhow::Result<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 * 1e-6;
    Ok(secs(u.user_time()) + secs(u.system_time()))
}

/// Wall and CPU seconds of one run.
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

/// Runs a command to completion: its wall time and the CPU time it used.
fn timed(name: &str, mut cmd: Command) -> anyhow::Result<Timing> {
    let cpu0 = children_cpu()?;
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {name}"))?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(Timing {
        wall,
        cpu: children_cpu()? - cpu0,
    })
}

/// Times `f` in this process: wall time and this process's CPU time.
fn timed_here(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Timing> {
    let cpu0 = process_cpu()?;
    let t = Instant::now();
    f()?;
    let wall = t.elapsed().as_secs_f64();
    Ok(Timing {
        wall,
        cpu: process_cpu()? - cpu0,
    })
}

/// One timing of every tool of the file-to-file comparison.
#[derive(Debug, Clone, Copy)]
struct Round {
    cp: Timing,
    dd: Timing,
    lib: Timing,
    fsync: Timing,
    lib_stream: Timing,
    cli: Option<Timing>,
    openssl: Timing,
    openssl_sync: Timing,
    gpg: Option<Timing>,
}

impl Round {
    /// Each tool's best (lowest wall time) of the two.
    fn best(self, o: Round) -> Round {
        let b = |x: Timing, y: Timing| if y.wall < x.wall { y } else { x };
        let bo = |x: Option<Timing>, y: Option<Timing>| match (x, y) {
            (Some(x), Some(y)) => Some(b(x, y)),
            (x, y) => x.or(y),
        };
        Round {
            cp: b(self.cp, o.cp),
            dd: b(self.dd, o.dd),
            lib: b(self.lib, o.lib),
            fsync: b(self.fsync, o.fsync),
            lib_stream: b(self.lib_stream, o.lib_stream),
            cli: bo(self.cli, o.cli),
            openssl: b(self.openssl, o.openssl),
            openssl_sync: b(self.openssl_sync, o.openssl_sync),
            gpg: bo(self.gpg, o.gpg),
        }
    }
}

/// Paths one round works with.
struct Files<'a> {
    dir: &'a Path,
    input: &'a Path,
    key_path: &'a Path,
    pass_path: &'a Path,
}

/// Runs every tool once on the same input, one after the other.
fn round(
    f: &Files<'_>,
    key: &Key,
    size: u64,
    cli: Option<&Path>,
    with_gpg: bool,
) -> anyhow::Result<Round> {
    let (dir, input, key_path, pass_path) = (f.dir, f.input, f.key_path, f.pass_path);

    // What any tool that reads this file and writes a new one can reach here.
    let out = dir.join("out.cp");
    let mut c = Command::new("cp");
    c.arg("--reflink=never").arg(input).arg(&out);
    let cp = timed("cp", c)?;
    std::fs::remove_file(&out)?;
    let out = dir.join("out.dd");
    let mut c = Command::new("dd");
    c.arg(format!("if={}", input.display()))
        .arg(format!("of={}", out.display()))
        .args(["bs=4M", "status=none"]);
    let dd = timed("dd", c)?;
    std::fs::remove_file(&out)?;

    // The library, file to file (what `tapebackup encrypt FILE -o FILE` and the
    // workflow's pack step call), then as a stream through BufReader/BufWriter.
    let out = dir.join("out.lib");
    let mut summary = None;
    let mut out_file = None;
    let lib = timed_here(|| {
        let f = File::create(&out)?;
        summary = Some(cryptpack::encrypt_file(
            &File::open(input)?,
            &f,
            Secret::Key(key),
            &EncryptOptions::default(),
            &Silent,
            &AtomicBool::new(false),
        )?);
        out_file = Some(f);
        Ok(())
    })?;
    // What the CLI adds first: the fsync of the pack (the disk's time, not ours).
    let fsync = timed_here(|| {
        out_file.take().context("no output file")?.sync_all()?;
        Ok(())
    })?;
    let file_summary = summary.context("no summary")?;
    anyhow::ensure!(
        file_summary.plaintext_len == size
            && std::fs::metadata(&out)?.len() == file_summary.ciphertext_len,
        "library encrypted a wrong size"
    );
    std::fs::remove_file(&out)?;
    let lib_stream = timed_here(|| {
        summary = Some(cryptpack::encrypt_stream(
            BufReader::with_capacity(1 << 20, File::open(input)?),
            BufWriter::with_capacity(1 << 20, File::create(&out)?),
            Secret::Key(key),
            &EncryptOptions::default(),
            &Silent,
            &AtomicBool::new(false),
        )?);
        Ok(())
    })?;
    anyhow::ensure!(
        summary.is_some_and(
            |s| s.plaintext_len == size && s.plaintext_hash == file_summary.plaintext_hash
        ),
        "library encrypted a wrong size"
    );
    std::fs::remove_file(&out)?;

    let mut cli_time = None;
    if let Some(cli) = cli {
        let out = dir.join("out.cli");
        let mut c = Command::new(cli);
        c.arg("encrypt")
            .arg(input)
            .arg("-o")
            .arg(&out)
            .arg("--key")
            .arg(key_path)
            .arg("-q");
        let t = timed("tapebackup encrypt", c)?;
        cli_time = Some(t);
        std::fs::remove_file(&out)?;
    }

    let out = dir.join("out.openssl");
    let mut c = Command::new("openssl");
    c.args(["enc", "-aes-256-cbc", "-pbkdf2", "-iter", "100000", "-pass"])
        .arg(format!("file:{}", pass_path.display()))
        .arg("-in")
        .arg(input)
        .arg("-out")
        .arg(&out);
    let openssl = timed("openssl enc", c)?;
    std::fs::remove_file(&out)?;
    // The same, then its output fsynced (`sync FILE`): the CLI's durability.
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(r#"openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -pass "file:$1" -in "$2" -out "$3" && sync "$3""#)
        .arg("sh")
        .arg(pass_path)
        .arg(input)
        .arg(&out);
    let openssl_sync = timed("openssl enc; sync", c)?;
    std::fs::remove_file(&out)?;

    let mut gpg = None;
    if with_gpg {
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
        }
        let out = dir.join("out.gpg");
        let mut c = Command::new("gpg");
        c.arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase-file",
            ])
            .arg(pass_path)
            .arg("--symmetric")
            .arg("-o")
            .arg(&out)
            .arg(input);
        let t = timed("gpg --symmetric", c)?;
        gpg = Some(t);
        std::fs::remove_file(&out)?;
    }

    Ok(Round {
        cp,
        dd,
        lib,
        fsync,
        lib_stream,
        cli: cli_time,
        openssl,
        openssl_sync,
        gpg,
    })
}

fn files_and_memory(args: &PackArgs, dir: &Path, cli: Option<&Path>) -> anyhow::Result<()> {
    let size = args.size;
    let input = dir.join("input.bin");
    {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&input)?);
        let mut buf = vec![0u8; 1 << 20];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            fill(&mut buf[..n], &mut seed);
            w.write_all(&buf[..n])?;
            left -= n as u64;
        }
        w.flush()?;
    }
    let key_path = dir.join("bench.key");
    let key = Key::generate()?;
    if !key_path.exists() {
        key.write_file(&key_path)?;
    }
    let key = Key::read_file(&key_path)?;
    let pass_path = dir.join("pass");
    std::fs::write(&pass_path, "bench passphrase\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pass_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "bench pack: {} MiB file, {threads} cores, page cache warm, outputs to {}",
        size >> 20,
        dir.display()
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average at start: {} (a busy machine lowers wall figures; per-CPU-second ones less)",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    // Warm the page cache with one read.
    std::io::copy(&mut File::open(&input)?, &mut std::io::sink())?;

    let files = Files {
        dir,
        input: &input,
        key_path: &key_path,
        pass_path: &pass_path,
    };
    let mut best: Option<Round> = None;
    for _ in 0..args.runs.max(1) {
        let r = round(&files, &key, size, cli, !args.no_gpg)?;
        best = Some(best.map_or(r, |b| b.best(r)));
    }
    let Round {
        cp,
        dd,
        lib,
        fsync,
        lib_stream,
        cli: cli_time,
        openssl,
        openssl_sync,
        gpg,
    } = best.context("no round ran")?;
    let mut rows: Vec<(String, Timing)> = vec![
        ("cp (in-kernel copy: page-cache ceiling)".into(), cp),
        (
            "dd bs=4M (read + write via user space, 1 thread)".into(),
            dd,
        ),
        ("tapebackup library (encrypt_file)".into(), lib),
        ("  then fsync of that pack (the disk)".into(), fsync),
        (
            "tapebackup library (encrypt_stream, BufReader/Writer)".into(),
            lib_stream,
        ),
    ];
    if let Some(t) = cli_time {
        rows.push(("tapebackup encrypt (CLI, incl. fsync + rename)".into(), t));
    }
    rows.push((
        "openssl enc -aes-256-cbc -pbkdf2 -iter 100000".into(),
        openssl,
    ));
    rows.push((
        "openssl enc ... ; sync FILE (as durable as the CLI)".into(),
        openssl_sync,
    ));
    if let Some(t) = gpg {
        rows.push(("gpg --symmetric (defaults)".into(), t));
    }

    println!(
        "\nencrypt {} MiB file -> file (best of {} round(s)):",
        size >> 20,
        args.runs.max(1)
    );
    println!(
        "  {:<50} {:>9} {:>9} {:>9}",
        "tool", "MB/s", "seconds", "CPU s"
    );
    for (name, t) in &rows {
        println!(
            "  {name:<50} {:>9.0} {:>9.2} {:>9.2}",
            mbps(size, t.wall),
            t.wall,
            t.cpu
        );
    }
    println!("\nratios (speed vs peer, wall time):");
    println!(
        "  library vs openssl  {:>7.1}x   (target >= 5x; encrypt_stream {:.1}x)",
        openssl.wall / lib.wall,
        openssl.wall / lib_stream.wall
    );
    if let Some(c) = cli_time {
        println!("  CLI     vs openssl  {:>7.1}x", openssl.wall / c.wall);
        println!(
            "  CLI     vs openssl; sync {:>4.1}x   (both fsync their output)",
            openssl_sync.wall / c.wall
        );
        println!(
            "  CLI {:.2} s = library {:.2} s + {:.2} s more (fsync, process start, key file, rename); an fsync of the library's pack took {:.2} s (the disk)",
            c.wall,
            lib.wall,
            c.wall - lib.wall,
            fsync.wall
        );
    }
    if let Some(g) = gpg {
        println!(
            "  library vs gpg      {:>7.1}x   (target >= 50x)",
            g.wall / lib.wall
        );
        if let Some(c) = cli_time {
            println!("  CLI     vs gpg      {:>7.1}x", g.wall / c.wall);
        }
    }
    // How far apart the tools are in work done, whatever the machine's load: with C
    // cores and a single-threaded peer, the wall ratio can at best be C times this.
    println!(
        "CPU work (CPU-seconds, peer / library): openssl {:.1}x{}; a {threads}-core machine allows at most {threads}x these",
        openssl.cpu / lib.cpu,
        gpg.map(|g| format!(", gpg {:.1}x", g.cpu / lib.cpu))
            .unwrap_or_default()
    );
    println!("ceilings (tools that only read and write the file, vs the peers):");
    println!(
        "  dd vs openssl {:>6.1}x   cp vs openssl {:>6.1}x   library / dd time {:>5.2}",
        openssl.wall / dd.wall,
        openssl.wall / cp.wall,
        lib.wall / dd.wall
    );
    if let Some(g) = gpg {
        println!(
            "  dd vs gpg     {:>6.1}x   cp vs gpg     {:>6.1}x",
            g.wall / dd.wall,
            g.wall / cp.wall
        );
    }
    ceiling(dir, &input, size, threads, lib, openssl, gpg)?;
    std::fs::remove_file(&input)?;

    if args.no_memory {
        return Ok(());
    }
    memory(args.mem_size.unwrap_or(size.min(512 << 20)), threads)
}

/// The best ratios this machine allows: every pack costs at least the CPU time of sealing
/// its bytes, hashing them twice (plaintext and pack BLAKE3), copying them from the page
/// cache into memory and back into a new file. Measured here, in this run, one primitive
/// at a time on `size` bytes (seal and hash on an in-memory buffer of up to 256 MiB,
/// scaled), and spread over all cores: the shortest wall time any implementation of the
/// pack can have on this machine, and the ratios to the peers it would give.
fn ceiling(
    dir: &Path,
    input: &Path,
    size: u64,
    cores: usize,
    lib: Timing,
    openssl: Timing,
    gpg: Option<Timing>,
) -> anyhow::Result<()> {
    let mut chunk = vec![0u8; 4 << 20];
    let mut seed = 7u64;
    fill(&mut chunk, &mut seed);
    let read = best_of(2, || {
        let mut f = File::open(input)?;
        while f.read(&mut chunk)? > 0 {}
        Ok(())
    })?;
    let out = dir.join("out.write");
    fill(&mut chunk, &mut seed);
    let write = best_of(2, || {
        let mut f = File::create(&out)?;
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        drop(f);
        std::fs::remove_file(&out)?;
        Ok(())
    })?;
    let len = size.clamp(1, 256 << 20);
    let mut buf = vec![0u8; len as usize];
    fill(&mut buf, &mut seed);
    let seal = best_of(3, || raw_ring(&mut buf, 1))?;
    let hash = best_of(3, || {
        blake3_alone(&buf);
        Ok(())
    })?;
    let scale = size as f64 / len as f64;
    let gib = size as f64 / (1u64 << 30) as f64;
    let parts = [
        ("seal (raw ring)", seal.cpu * scale),
        ("plaintext BLAKE3", hash.cpu * scale),
        ("pack BLAKE3", hash.cpu * scale),
        ("read copy (page cache -> memory)", read.cpu),
        ("write copy (memory -> new file)", write.cpu),
    ];
    let floor_cpu: f64 = parts.iter().map(|(_, c)| c).sum();
    let floor_wall = floor_cpu / cores as f64;
    println!("\nceiling: the CPU work every pack needs, measured now (CPU-seconds per GiB):");
    for (name, c) in &parts {
        println!("  {name:<36} {:>6.3}", c / gib);
    }
    println!(
        "  {:<36} {:>6.3}   / {cores} cores = {:.3} s per GiB at best (library now: {:.3} CPU-s, {:.3} s)",
        "total",
        floor_cpu / gib,
        floor_wall / gib,
        lib.cpu / gib,
        lib.wall / gib
    );
    let vs_openssl = openssl.wall / floor_wall;
    match gpg {
        Some(g) => {
            let vs_gpg = g.wall / floor_wall;
            println!(
                "ceiling: at most {vs_gpg:.1}x gpg, {vs_openssl:.1}x openssl on this machine (the library's wall time is {:.0}% of the way there)",
                100.0 * floor_wall / lib.wall
            );
            for (target, peer, best) in [(50.0, "gpg", vs_gpg), (5.0, "openssl", vs_openssl)] {
                if best < target {
                    println!(
                        "  NOTE: the {target:.0}x {peer} target is ABOVE this ceiling: no implementation reaches it here"
                    );
                }
            }
        }
        None => {
            println!(
                "ceiling: at most {vs_openssl:.1}x openssl on this machine (gpg skipped; the library's wall time is {:.0}% of the way there)",
                100.0 * floor_wall / lib.wall
            );
            if vs_openssl < 5.0 {
                println!(
                    "  NOTE: the 5x openssl target is ABOVE this ceiling: no implementation reaches it here"
                );
            }
        }
    }
    Ok(())
}

/// Raw ring AES-256-GCM over `buf` in 1 MiB pieces, split over `threads` threads.
fn raw_ring(buf: &mut [u8], threads: usize) -> anyhow::Result<()> {
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| anyhow::anyhow!("ring key"))?,
    );
    let per = buf.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (ti, part) in buf.chunks_mut(per).enumerate() {
            let key = &key;
            s.spawn(move || {
                for (i, seg) in part.chunks_mut(1 << 20).enumerate() {
                    let mut n = [0u8; 12];
                    n[..4].copy_from_slice(&(ti as u32).to_be_bytes());
                    n[4..12].copy_from_slice(&(i as u64).to_be_bytes());
                    let tag = key.seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(n),
                        Aad::from(&[0u8; 32]),
                        seg,
                    );
                    std::hint::black_box(tag.is_ok());
                }
            });
        }
    });
    Ok(())
}

/// Our Encryptor (seal + both hashes) into a sink, writing `buf` in 1 MiB writes.
fn full_pass(buf: &[u8], threads: usize, key: &Key) -> anyhow::Result<()> {
    let opts = EncryptOptions {
        threads,
        ..EncryptOptions::default()
    };
    let mut enc = Encryptor::new(std::io::sink(), Secret::Key(key), &opts)?;
    for piece in buf.chunks(1 << 20) {
        enc.write_all(piece)?;
    }
    std::hint::black_box(enc.finish()?);
    Ok(())
}

/// The same Encryptor pipeline with the hashes left out: what "seal throughput" means.
fn seal_only(buf: &[u8], threads: usize) -> anyhow::Result<()> {
    let opts = EncryptOptions {
        threads,
        ..EncryptOptions::default()
    };
    std::hint::black_box(cryptpack::bench_seal_only(buf, &opts)?);
    Ok(())
}

fn blake3_alone(buf: &[u8]) {
    let mut h = blake3::Hasher::new();
    for piece in buf.chunks(1 << 20) {
        h.update(piece);
    }
    std::hint::black_box(h.finalize());
}

/// `buf` copied in 1 MiB pieces into a reused 4 MiB buffer: the one copy a `Write`
/// adapter must make (ring seals in place only).
fn memcpy(buf: &[u8], scratch: &mut [u8]) {
    for (i, piece) in buf.chunks(1 << 20).enumerate() {
        let at = (i % 4) << 20;
        scratch[at..at + piece.len()].copy_from_slice(piece);
    }
    std::hint::black_box(scratch);
}

/// Best (lowest) wall and best CPU time over `n` runs.
fn best_of(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Timing> {
    let mut best = Timing {
        wall: f64::INFINITY,
        cpu: f64::INFINITY,
    };
    for _ in 0..n {
        let t = timed_here(&mut f)?;
        best.wall = best.wall.min(t.wall);
        best.cpu = best.cpu.min(t.cpu);
    }
    Ok(best)
}

fn memory(len: u64, threads: usize) -> anyhow::Result<()> {
    let key = Key::generate()?;
    let mut buf = vec![0u8; len as usize];
    let mut seed = 42u64;
    fill(&mut buf, &mut seed);
    let mut scratch = vec![0u8; 4 << 20];
    println!(
        "\nin memory, {} MiB, best of 3; per core = MB per CPU-second of the whole process:",
        len >> 20
    );
    let ring1 = best_of(3, || raw_ring(&mut buf, 1))?;
    let ringn = best_of(3, || raw_ring(&mut buf, threads))?;
    let copy = best_of(3, || {
        memcpy(&buf, &mut scratch);
        Ok(())
    })?;
    let b3 = best_of(3, || {
        blake3_alone(&buf);
        Ok(())
    })?;
    let seal1 = best_of(3, || seal_only(&buf, 1))?;
    let sealn = best_of(3, || seal_only(&buf, threads))?;
    let full1 = best_of(3, || full_pass(&buf, 1, &key))?;
    let fulln = best_of(3, || full_pass(&buf, threads, &key))?;
    let rows = [
        (
            "raw ring AES-256-GCM seal in place, 1 core".to_owned(),
            ring1,
        ),
        (format!("raw ring, {threads} threads"), ringn),
        ("memcpy into a 4 MiB buffer, 1 core".to_owned(), copy),
        ("BLAKE3, 1 core".to_owned(), b3),
        (
            "cryptpack seal only (no hashes), 1 thread".to_owned(),
            seal1,
        ),
        (
            format!("cryptpack seal only (no hashes), {threads} workers"),
            sealn,
        ),
        (
            "cryptpack full pass (seal + 2 BLAKE3), 1 thread".to_owned(),
            full1,
        ),
        (
            format!("cryptpack full pass, {threads} workers (both hashes on them)"),
            fulln,
        ),
    ];
    println!("  {:<56} {:>9} {:>9}", "", "wall MB/s", "per core");
    for (name, t) in &rows {
        println!(
            "  {name:<56} {:>9.0} {:>9.0}",
            mbps(len, t.wall),
            mbps(len, t.cpu)
        );
    }
    // Per core: CPU-seconds per byte. Raw ring per core from its 1-thread run.
    let per = |t: Timing| ring1.cpu / t.cpu;
    println!("\nratios vs raw ring per core (CPU time):");
    println!(
        "  seal only, 1 thread          {:>5.2}x   (target >= 0.5x)",
        per(seal1)
    );
    println!(
        "  seal only, {threads} workers         {:>5.2}x",
        per(sealn)
    );
    println!("  full pass, 1 thread          {:>5.2}x", per(full1));
    println!(
        "  full pass, {threads} workers         {:>5.2}x",
        per(fulln)
    );
    // The most a full pass can reach per core, from the primitives measured above: every
    // byte sealed once and hashed twice (plaintext and pack), plus the one copy.
    let ceiling = ring1.cpu / (ring1.cpu + 2.0 * b3.cpu);
    let ceiling_copy = ring1.cpu / (ring1.cpu + 2.0 * b3.cpu + copy.cpu);
    println!(
        "  ceiling for the full pass per core: seal + 2 BLAKE3 {ceiling:.2}x; with the copy {ceiling_copy:.2}x"
    );
    println!("scaling (wall time, {threads} vs 1):");
    println!(
        "  raw ring {:>5.2}x   seal only {:>5.2}x   full pass {:>5.2}x",
        ring1.wall / ringn.wall,
        seal1.wall / sealn.wall,
        full1.wall / fulln.wall
    );
    Ok(())
}

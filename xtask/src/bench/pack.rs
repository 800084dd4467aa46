//! `cargo xtask bench pack`: the same file encrypted by tapebackup (library and CLI), by
//! `openssl enc -aes-256-cbc -pbkdf2 -iter 100000` (the seed tool's way) and by
//! `gpg --symmetric` with its defaults (the B2 seed's way); then in-memory sealing against
//! raw ring, on one core and on all cores. Prints MB/s and ratios; asserts nothing.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

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
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("unknown unit in {s:?} (use KiB, MiB, GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| "size too large".to_owned())
}

const RELEASE_GUARD: &str = "TAPEBACKUP_XTASK_RELEASE";

/// Runs the benchmark (re-running itself as a release build first when built for debug).
pub fn run(args: PackArgs) -> anyhow::Result<()> {
    let root = crate::root();
    if cfg!(debug_assertions) && std::env::var_os(RELEASE_GUARD).is_none() {
        eprintln!("(re-running as a release build)");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root)
            .env(RELEASE_GUARD, "1")
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "xtask",
                "--",
                "bench",
                "pack",
            ])
            .args(["--size", &args.size.to_string()]);
        if let Some(m) = args.mem_size {
            cmd.args(["--mem-size", &m.to_string()]);
        }
        if let Some(d) = &args.dir {
            cmd.arg("--dir").arg(d);
        }
        if args.no_gpg {
            cmd.arg("--no-gpg");
        }
        return crate::run_cmd(&mut cmd);
    }
    crate::run_cmd(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "tapebackup",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cli = target.join("release/tapebackup");
    if !cli.exists() {
        bail!("{} not found after the build", cli.display());
    }

    let (dir, remove) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("tapebackup-bench-pack-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = files_and_memory(&args, &dir, &cli);
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

fn timed(name: &str, mut cmd: Command) -> anyhow::Result<f64> {
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {name}"))?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(secs)
}

fn files_and_memory(args: &PackArgs, dir: &Path, cli: &Path) -> anyhow::Result<()> {
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

    // Warm the page cache with one read.
    std::io::copy(&mut File::open(&input)?, &mut std::io::sink())?;

    let mut rows: Vec<(String, f64)> = Vec::new();
    let out = dir.join("out.lib");
    let t = Instant::now();
    let summary = cryptpack::encrypt_stream(
        BufReader::with_capacity(1 << 20, File::open(&input)?),
        BufWriter::with_capacity(1 << 20, File::create(&out)?),
        Secret::Key(&key),
        &EncryptOptions::default(),
        &Silent,
        &AtomicBool::new(false),
    )?;
    rows.push((
        "tapebackup library (encrypt_stream)".into(),
        t.elapsed().as_secs_f64(),
    ));
    anyhow::ensure!(
        summary.plaintext_len == size,
        "library encrypted a wrong size"
    );
    std::fs::remove_file(&out)?;

    let out = dir.join("out.cli");
    let mut c = Command::new(cli);
    c.arg("encrypt")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--key")
        .arg(&key_path)
        .arg("-q");
    rows.push((
        "tapebackup encrypt (CLI, incl. fsync + rename)".into(),
        timed("tapebackup encrypt", c)?,
    ));
    std::fs::remove_file(&out)?;

    let out = dir.join("out.openssl");
    let mut c = Command::new("openssl");
    c.args(["enc", "-aes-256-cbc", "-pbkdf2", "-iter", "100000", "-pass"])
        .arg(format!("file:{}", pass_path.display()))
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&out);
    let openssl = timed("openssl enc", c)?;
    rows.push((
        "openssl enc -aes-256-cbc -pbkdf2 -iter 100000".into(),
        openssl,
    ));
    std::fs::remove_file(&out)?;

    let mut gpg = None;
    if !args.no_gpg {
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
            .arg(&pass_path)
            .arg("--symmetric")
            .arg("-o")
            .arg(&out)
            .arg(&input);
        let secs = timed("gpg --symmetric", c)?;
        gpg = Some(secs);
        rows.push(("gpg --symmetric (defaults)".into(), secs));
        std::fs::remove_file(&out)?;
    }

    println!("\nencrypt {} MiB file -> file:", size >> 20);
    println!("  {:<50} {:>9} {:>9}", "tool", "MB/s", "seconds");
    for (name, secs) in &rows {
        println!("  {name:<50} {:>9.0} {:>9.2}", mbps(size, *secs), secs);
    }
    let lib = rows[0].1;
    let cli_secs = rows[1].1;
    println!("\nratios (speed vs peer):");
    println!(
        "  library vs openssl  {:>7.1}x   (target >= 5x)",
        openssl / lib
    );
    println!("  CLI     vs openssl  {:>7.1}x", openssl / cli_secs);
    if let Some(g) = gpg {
        println!("  library vs gpg      {:>7.1}x   (target >= 50x)", g / lib);
        println!("  CLI     vs gpg      {:>7.1}x", g / cli_secs);
    }
    std::fs::remove_file(&input)?;

    memory(args.mem_size.unwrap_or(size.min(512 << 20)), threads, &key)
}

/// Raw ring AES-256-GCM over `buf` in 1 MiB pieces, split over `threads` threads.
fn raw_ring(buf: &mut [u8], threads: usize) -> anyhow::Result<f64> {
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| anyhow::anyhow!("ring key"))?,
    );
    let per = buf.len().div_ceil(threads);
    let t = Instant::now();
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
    Ok(t.elapsed().as_secs_f64())
}

/// Our Encryptor into a sink, writing `buf` in 1 MiB writes.
fn ours(buf: &[u8], threads: usize, key: &Key) -> anyhow::Result<f64> {
    let opts = EncryptOptions {
        threads,
        ..EncryptOptions::default()
    };
    let t = Instant::now();
    let mut enc = Encryptor::new(std::io::sink(), Secret::Key(key), &opts)?;
    for piece in buf.chunks(1 << 20) {
        enc.write_all(piece)?;
    }
    let s = enc.finish()?;
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(s);
    Ok(secs)
}

fn blake3_alone(buf: &[u8]) -> f64 {
    let t = Instant::now();
    let mut h = blake3::Hasher::new();
    for piece in buf.chunks(1 << 20) {
        h.update(piece);
    }
    std::hint::black_box(h.finalize());
    t.elapsed().as_secs_f64()
}

fn best_of(n: usize, mut f: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..n {
        best = best.min(f()?);
    }
    Ok(best)
}

fn memory(len: u64, threads: usize, key: &Key) -> anyhow::Result<()> {
    let mut buf = vec![0u8; len as usize];
    let mut seed = 42u64;
    fill(&mut buf, &mut seed);
    println!("\nin memory, {} MiB, best of 3 (MB/s):", len >> 20);
    let ring1 = best_of(3, || raw_ring(&mut buf, 1))?;
    let ours1 = best_of(3, || ours(&buf, 1, key))?;
    let ringn = best_of(3, || raw_ring(&mut buf, threads))?;
    let oursn = best_of(3, || ours(&buf, threads, key))?;
    let b3 = best_of(3, || Ok(blake3_alone(&buf)))?;
    println!(
        "  {:<58} {:>9.0}",
        "raw ring AES-256-GCM seal, 1 core",
        mbps(len, ring1)
    );
    println!(
        "  {:<58} {:>9.0}",
        "cryptpack Encryptor, 1 thread (seal + 2 BLAKE3 hashes)",
        mbps(len, ours1)
    );
    println!(
        "  {:<58} {:>9.0}",
        format!("raw ring, {threads} cores"),
        mbps(len, ringn)
    );
    println!(
        "  {:<58} {:>9.0}",
        format!("cryptpack Encryptor, {threads} threads"),
        mbps(len, oursn)
    );
    println!(
        "  {:<58} {:>9.0}",
        "BLAKE3 alone, 1 core (for reference)",
        mbps(len, b3)
    );
    println!("\nratios:");
    println!(
        "  cryptpack / raw ring, 1 core    {:>5.2}x   (target >= 0.5x)",
        ring1 / ours1
    );
    println!(
        "  cryptpack / raw ring, {threads} cores   {:>5.2}x",
        ringn / oursn
    );
    // The ceiling when every byte is sealed once and hashed twice on one core.
    let ceiling = ring1 / (ring1 + 2.0 * b3);
    println!("  ceiling for seal + 2 hashes on one core (from the figures above): {ceiling:.2}x");
    Ok(())
}

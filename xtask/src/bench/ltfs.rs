//! `cargo xtask bench ltfs`: files of mixed sizes written through the `ltfs` crate to a
//! virtual cartridge (the reference file-backend layout: one file per record, fsynced at
//! filemarks), against `cp -r` of the same files to the same disk followed by `sync`.
//! Prints MB/s and the ratio; asserts nothing.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::parse_size;
use anyhow::Context;

/// Options of `cargo xtask bench ltfs`.
#[derive(Debug, clap::Args)]
pub struct LtfsArgs {
    /// Total size of the test files (e.g. 2GiB, 256MiB).
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    size: u64,
    /// Scratch directory (default: a fresh one under the system temp dir, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The file sizes cycled through: small files, a few records, and large ones.
const SIZES: [u64; 8] = [
    1_000,
    16 << 10,
    200 << 10,
    (512 << 10) + 1,
    3 << 20,
    16 << 20,
    64 << 20,
    256 << 20,
];

/// Writes the test files; returns their paths relative to `src` and the total.
fn make_files(src: &Path, total: u64) -> anyhow::Result<(Vec<(String, u64)>, u64)> {
    let mut files = Vec::new();
    let mut written = 0u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut i = 0usize;
    while written < total {
        let len = SIZES[i % SIZES.len()].min(total - written);
        let rel = format!("d{}/f{i:05}.bin", i % 7);
        let path = src.join(&rel);
        std::fs::create_dir_all(path.parent().context("parent")?)?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut left = len;
        while left > 0 {
            for chunk in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = x.to_le_bytes();
                chunk.copy_from_slice(&b[..chunk.len()]);
            }
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.flush()?;
        files.push((rel, len));
        written += len;
        i += 1;
    }
    Ok((files, written))
}

/// Runs the benchmark (re-running itself as a release build first when built for debug).
pub fn run(args: LtfsArgs) -> anyhow::Result<()> {
    if super::rerun_as_release()? {
        return Ok(());
    }
    let scratch;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            scratch = tempfile::tempdir()?;
            scratch.path().to_path_buf()
        }
    };
    let src = dir.join("src");
    let cart = dir.join("cartridge");
    let copy = dir.join("copy");
    for d in [&src, &cart, &copy] {
        if d.exists() {
            std::fs::remove_dir_all(d)?;
        }
    }
    eprintln!(
        "writing {} bytes of test files to {}",
        args.size,
        src.display()
    );
    let (files, total) = make_files(&src, args.size)?;
    run_cmd_quiet(&mut Command::new("sync"))?;

    // Ours: format a virtual cartridge, write every file, final indexes.
    let mut drive = tape_scsi::VirtualDrive::create_cartridge(
        &cart,
        &tape_scsi::CartridgeOptions {
            capacity: total * 2 + (1 << 30),
            reserve: None,
        },
    )?;
    let volume = ltfs::Volume::format(&mut drive, &ltfs::FormatOptions::new("BENCH1"))?;
    let start = Instant::now();
    let mut writer = volume.into_writer(ltfs::WriterOptions::default())?;
    let cancel = AtomicBool::new(false);
    for (rel, _) in &files {
        let f = std::fs::File::open(src.join(rel))?;
        let mut r = BufReader::with_capacity(1 << 20, f);
        writer.write_file(
            rel,
            &mut r,
            &ltfs::FileOptions::default(),
            &ltfs::Silent,
            &cancel,
        )?;
    }
    writer.finish()?;
    drop(drive);
    run_cmd_quiet(&mut Command::new("sync"))?;
    let ours = start.elapsed().as_secs_f64();

    // Peer: cp -r of the same files to the same disk, then sync (the virtual cartridge's
    // records are durable too).
    let start = Instant::now();
    run_cmd_quiet(Command::new("cp").arg("-r").arg(&src).arg(&copy))?;
    run_cmd_quiet(&mut Command::new("sync"))?;
    let cp = start.elapsed().as_secs_f64();

    // Read back one file through ltfs to show it landed.
    let mut drive = tape_scsi::VirtualDrive::open_cartridge(&cart)?;
    let volume = ltfs::Volume::open(&mut drive)?;
    anyhow::ensure!(
        volume.is_consistent(),
        "volume not consistent after the run"
    );
    anyhow::ensure!(
        volume.index().root.file_count() == files.len(),
        "file count differs"
    );

    let mb = total as f64 / 1e6;
    println!(
        "ltfs bench: {} files, {:.0} MB (sizes 1 kB .. 256 MiB), block size 512 KiB",
        files.len(),
        mb
    );
    println!(
        "  tapebackup ltfs -> virtual cartridge: {:8.2} s  {:8.1} MB/s",
        ours,
        mb / ours
    );
    println!(
        "  cp -r + sync    -> same disk:         {:8.2} s  {:8.1} MB/s",
        cp,
        mb / cp
    );
    println!(
        "  ratio ltfs/cp (throughput): {:.2}",
        (mb / ours) / (mb / cp)
    );
    Ok(())
}

fn run_cmd_quiet(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(())
}

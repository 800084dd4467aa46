//! `cargo xtask demo`: the main job, end to end, in a scratch directory, on a virtual tape
//! library: `init`, a sample source of mixed files, `run` (get, pack, write), `verify`,
//! `restore` into another directory, and a byte-for-byte comparison.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// Builds the `tapebackup` binary and returns its path.
pub fn build_binary() -> anyhow::Result<PathBuf> {
    let root = crate::root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "tapebackup",
            "--bin",
            "tapebackup",
        ])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building tapebackup failed");
    }
    Ok(crate::target_dir().join("debug").join("tapebackup"))
}

fn tb(bin: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("TAPEBACKUP_CONFIG")
        .env_remove("TAPEBACKUP_CATALOG")
        .output()
        .with_context(|| format!("running tapebackup {}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "tapebackup {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Deterministic pseudo-random bytes (BLAKE3 in XOF mode) for sample files.
fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Writes a sample source tree of mixed files; returns (files, bytes).
pub fn sample_source(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("README.txt", b"tapebackup demo source\n".to_vec()),
        ("empty", Vec::new()),
        (
            "docs/notes with spaces.md",
            "# Notes\n\nsome text\n".repeat(200).into_bytes(),
        ),
        (
            "docs/utf8-\u{e9}t\u{e9}.txt",
            "\u{e9}t\u{e9}\n".repeat(10).into_bytes(),
        ),
        ("photos/2024/a.jpg", noise("a.jpg", 700_000)),
        ("photos/2024/b.jpg", noise("b.jpg", 1_300_000)),
        ("photos/2024/copy-of-a.jpg", noise("a.jpg", 700_000)),
        ("video/clip.mp4", noise("clip", 6 << 20)),
        (
            "db/dump.sql",
            "INSERT INTO t VALUES (1, 'x');\n"
                .repeat(40_000)
                .into_bytes(),
        ),
    ];
    let mut bytes = 0;
    for (p, data) in &files {
        let path = dir.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, data)?;
        bytes += data.len() as u64;
    }
    Ok((files.len() as u64, bytes))
}

/// Compares two trees byte for byte; returns the number of files compared.
pub fn compare_trees(a: &Path, b: &Path) -> anyhow::Result<u64> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                walk(root, &p, out)?;
            } else {
                out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
            }
        }
        Ok(())
    }
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    walk(a, a, &mut fa)?;
    walk(b, b, &mut fb)?;
    fa.sort();
    fb.sort();
    if fa != fb {
        bail!("file lists differ:\n  source: {fa:?}\n  restored: {fb:?}");
    }
    for f in &fa {
        if std::fs::read(a.join(f))? != std::fs::read(b.join(f))? {
            bail!("{} differs after restore", f.display());
        }
    }
    Ok(fa.len() as u64)
}

/// Runs the demo.
pub fn run(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let bin = build_binary()?;
    let (_keep, dir) = match dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(&d)?.next().is_some() {
                bail!(
                    "{} is not empty: give an empty or new directory",
                    d.display()
                );
            }
            std::fs::create_dir_all(&d)?;
            (None, d)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("tapebackup-demo-")
                .tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let source = dir.join("source");
    let (files, bytes) = sample_source(&source)?;
    let ws = dir.join("backup");
    println!("demo in {}", dir.display());
    println!(
        "sample source: {files} files, {bytes} bytes in {}",
        source.display()
    );
    let src_arg = format!("sample={}", source.display());
    let ws_s = ws.display().to_string();
    print!(
        "{}",
        tb(
            &bin,
            &dir,
            &["init", &ws_s, "--source", &src_arg, "--capacity", "64MiB"]
        )?
    );
    print!("{}", tb(&bin, &ws, &["-q", "run"])?);
    // A second run after a change: only the changed file is fetched, packed, written.
    std::fs::write(
        source.join("README.txt"),
        b"tapebackup demo source, edited\n",
    )?;
    print!("{}", tb(&bin, &ws, &["-q", "run"])?);
    print!("{}", tb(&bin, &ws, &["-q", "verify"])?);
    print!("{}", tb(&bin, &ws, &["-q", "verify", "--no-key"])?);
    let restored = dir.join("restored");
    let r_s = restored.display().to_string();
    print!("{}", tb(&bin, &ws, &["-q", "restore", "--to", &r_s])?);
    let n = compare_trees(&source, &restored.join("sample"))?;
    print!("{}", tb(&bin, &ws, &["status"])?);
    print!("{}", tb(&bin, &ws, &["tapes"])?);
    println!(
        "OK: {n} files restored from the virtual tapes, identical byte for byte to the source"
    );
    if dir.exists() && _keep.is_none() {
        println!("(workspace kept in {})", dir.display());
    }
    Ok(())
}

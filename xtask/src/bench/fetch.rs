//! `cargo xtask bench fetch`: our fetch (one `find` over ssh, rsync with `--files-from`,
//! parallel batches) against a plain `rsync -a` of the same tree over the same sshd, and
//! against the seed's way (`ssh find`, then one rsync per file). All three pull the same
//! tree (many small files and a few large ones) from a real sshd on 127.0.0.1.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::parse_size;
use anyhow::{Context, bail};
use fetch::{Fetcher, NoProgress, Plan, Source, SshSource, SshTarget};

#[path = "../../../crates/fetch/tests/support/sshd.rs"]
mod sshd;

/// Options of the fetch benchmark.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Total size of the large files (e.g. 256MiB, 64M).
    #[arg(long, default_value = "256MiB")]
    size: String,
    /// Number of small files (1 to 32 KiB each).
    #[arg(long, default_value_t = 1000)]
    small: usize,
    /// Number of large files (the total size is split between them).
    #[arg(long, default_value_t = 4)]
    large: usize,
    /// Parallel batches for our fetch.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
}

/// Incompressible bytes from a xorshift generator.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn make_tree(root: &Path, args: &FetchArgs, large_total: u64) -> anyhow::Result<(usize, u64)> {
    let mut files = 0;
    let mut bytes = 0u64;
    for i in 0..args.small {
        let dir = root.join(format!("small/d{:02}", i % 50));
        fs::create_dir_all(&dir)?;
        let len = 1024 + (i * 7919) % (31 * 1024);
        fs::write(dir.join(format!("file {i}.txt")), noise(i as u64, len))?;
        files += 1;
        bytes += len as u64;
    }
    let large = args.large.max(1);
    let each = usize::try_from(large_total / large as u64)?;
    fs::create_dir_all(root.join("large"))?;
    for i in 0..large {
        fs::write(
            root.join(format!("large/big-{i}.bin")),
            noise(1_000_000 + i as u64, each),
        )?;
        files += 1;
        bytes += each as u64;
    }
    Ok((files, bytes))
}

fn tree_stats(root: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

fn ssh_e(config: &Path) -> String {
    format!("ssh -F '{}' -o BatchMode=yes", config.display())
}

fn ours(s: &sshd::TestSshd, remote: &Path, staging: &Path, parallel: usize) -> anyhow::Result<()> {
    let source = SshSource::new(
        SshTarget::new(sshd::HOST_ALIAS).config_file(&s.config),
        remote.as_os_str(),
    );
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let report = Fetcher::new(&source, staging).parallel(parallel).fetch(
        &Plan::all(&listing.entries),
        &NoProgress,
        &cancel,
    );
    if let Some(e) = report.stopped {
        bail!("our fetch stopped: {e}");
    }
    if !report.is_complete() {
        bail!("our fetch left files behind");
    }
    Ok(())
}

fn plain_rsync(s: &sshd::TestSshd, remote: &Path, staging: &Path) -> anyhow::Result<()> {
    let mut src = std::ffi::OsString::from(format!("{}:", sshd::HOST_ALIAS));
    src.push(remote.as_os_str());
    src.push("/");
    let status = Command::new("rsync")
        .arg("-a")
        .arg("-e")
        .arg(ssh_e(&s.config))
        .arg(src)
        .arg(staging)
        .status()?;
    if !status.success() {
        bail!("rsync -a failed: {status}");
    }
    Ok(())
}

/// The seed: `ssh host find <root> -type f`, one path per line, then one rsync per file.
fn seed_way(s: &sshd::TestSshd, remote: &Path, staging: &Path) -> anyhow::Result<()> {
    let out = Command::new("ssh")
        .args([
            OsStr::new("-F"),
            s.config.as_os_str(),
            OsStr::new(sshd::HOST_ALIAS),
        ])
        .arg(format!("find '{}' -type f", remote.display()))
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!("ssh find failed");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let rel = Path::new(line).strip_prefix(remote)?;
        let dest = staging.join(rel);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p)?;
        }
        let status = Command::new("rsync")
            .arg("-a")
            .arg("-e")
            .arg(ssh_e(&s.config))
            .arg(format!("{}:{line}", sshd::HOST_ALIAS))
            .arg(&dest)
            .status()?;
        if !status.success() {
            bail!("rsync of {line} failed: {status}");
        }
    }
    Ok(())
}

fn timed(
    name: &str,
    expected: (usize, u64),
    staging: &Path,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    f().with_context(|| name.to_string())?;
    let d = t.elapsed();
    let got = tree_stats(staging);
    if got != expected {
        bail!("{name}: staged {got:?} (files, bytes), expected {expected:?}");
    }
    Ok(d)
}

/// Runs the benchmark.
pub fn run(args: FetchArgs) -> anyhow::Result<()> {
    let large_total = parse_size(&args.size).map_err(anyhow::Error::msg)?;
    let s = sshd::TestSshd::start()
        .context("starting sshd (install openssh-server: .ci/install-deps)")?;
    let remote = s.scratch("remote")?;
    let expected = make_tree(&remote, &args, large_total)?;
    println!(
        "fetch bench: {} files ({} small, {} large), {:.1} MiB, over ssh to 127.0.0.1:{}",
        expected.0,
        args.small,
        args.large.max(1),
        expected.1 as f64 / (1 << 20) as f64,
        s.port
    );
    let staging = |name: &str| -> anyhow::Result<PathBuf> { Ok(s.scratch(name)?) };

    let runs: Vec<(String, Duration)> = vec![
        (
            format!(
                "ours (find + rsync --files-from, <= {} batches)",
                args.parallel
            ),
            {
                let st = staging("ours")?;
                timed("ours", expected, &st, || {
                    ours(&s, &remote, &st, args.parallel)
                })?
            },
        ),
        ("ours (1 batch)".to_string(), {
            let st = staging("ours1")?;
            timed("ours (1 batch)", expected, &st, || {
                ours(&s, &remote, &st, 1)
            })?
        }),
        ("rsync -a (peer)".to_string(), {
            let st = staging("rsync")?;
            timed("rsync -a", expected, &st, || plain_rsync(&s, &remote, &st))?
        }),
        ("seed: ssh find + one rsync per file".to_string(), {
            let st = staging("seed")?;
            timed("seed", expected, &st, || seed_way(&s, &remote, &st))?
        }),
    ];
    println!(
        "{:<48} {:>9} {:>10} {:>10}",
        "method", "seconds", "MB/s", "files/s"
    );
    for (name, d) in &runs {
        let secs = d.as_secs_f64();
        println!(
            "{name:<48} {secs:>9.2} {:>10.1} {:>10.0}",
            expected.1 as f64 / 1e6 / secs,
            expected.0 as f64 / secs
        );
    }
    let t = |i: usize| runs[i].1.as_secs_f64();
    println!(
        "ratios (time of the other / time of ours, >1 means ours is faster):\n  \
         rsync -a / ours = {:.2}\n  rsync -a / ours (1 batch) = {:.2}\n  seed / ours = {:.2}",
        t(2) / t(0),
        t(2) / t(1),
        t(3) / t(0)
    );
    // Incremental: nothing changed, so a second run of ours transfers nothing.
    let st = s.scratch("ours")?;
    let t0 = Instant::now();
    let source = SshSource::new(
        SshTarget::new(sshd::HOST_ALIAS).config_file(&s.config),
        remote.as_os_str(),
    );
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let mut known = fetch::KnownSet::new();
    for e in &listing.entries {
        known.insert(
            e.path.clone(),
            fetch::KnownFile {
                size: e.size,
                mtime: e.mtime,
                hash: None,
            },
        );
    }
    let plan = fetch::plan(&listing.entries, &known);
    let report = Fetcher::new(&source, &st).fetch(&plan, &NoProgress, &cancel);
    println!(
        "incremental re-run (ours, nothing changed): {} files to fetch, {:.2} s (list + plan)",
        plan.files.len(),
        t0.elapsed().as_secs_f64()
    );
    if report.stopped.is_some() {
        bail!("incremental run stopped: {:?}", report.stopped);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB").ok(), Some(256 << 20));
        assert_eq!(parse_size("64M").ok(), Some(64 << 20));
        assert_eq!(parse_size("1000").ok(), Some(1000));
        assert!(parse_size("x").is_err());
    }
}

//! `cargo xtask vm-smoke`: our SCSI code against a real Linux tape stack.
//!
//! This machine's kernel has no SCSI, so the test boots a stock Debian kernel under QEMU
//! (TCG) whose root file system is the host's own `/`, shared read-only over virtio-9p with a
//! tmpfs overlay. Inside, tgt emulates a tape library (STK L700 changer, two HP Ultrium-6
//! drives, 8 slots, 2 import/export slots, 5 barcoded cartridges) on the guest's loopback,
//! and open-iscsi logs in to it, so the real `st`, `sg` and `ch` drivers answer. The guest
//! test program is this very binary (`xtask vm-smoke-guest`): it checks the rig with mtx/mt,
//! then runs the host-built `tapebackup` against the devices and cross-checks each answer.
//!
//! Host side, in order (each step timed): packages (`.ci/install-deps` when something is
//! missing), kernel folder and initramfs (cached in `--cache-dir`), `cargo build` of
//! `tapebackup`, boot with a time limit, read the report from the writable result share,
//! exit non-zero on any failed check, a missing report or a time-out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

mod checks;
mod cli;
pub mod guest;
mod mtx;
mod ours;
mod prepare;
mod probe;
mod qemu;
mod report;
mod workflow;

/// Options of `cargo xtask vm-smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cache for the kernel folder and initramfs [default: $TAPEBACKUP_VM_CACHE, else
    /// /var/cache/tapebackup-vm, else target/vm].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Debian kernel release to boot (e.g. 6.1.0-56-amd64) [default: a cached one, else the
    /// one linux-image-amd64 points at].
    #[arg(long)]
    pub kernel: Option<String>,
    /// Kill the VM after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Time limit for each command inside the guest, in seconds.
    #[arg(long, default_value_t = 90)]
    pub command_timeout: u64,
    /// Only the rig checks (sysfs, mtx, mt): do not build or run tapebackup.
    #[arg(long)]
    pub rig_only: bool,
    /// Folder for job files, console log and report [default: CACHE/run].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not echo the guest console.
    #[arg(long)]
    pub quiet: bool,
}

/// What the host asks the guest to do (job.json in the result share).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The host-built `tapebackup` binary, when its checks are to run.
    pub tapebackup: Option<PathBuf>,
    /// Time limit for each command in the guest.
    pub command_timeout_secs: u64,
}

/// Entry point of the guest program (`xtask vm-smoke-guest`).
pub fn guest_main(args: guest::GuestArgs) -> anyhow::Result<()> {
    guest::main(args)
}

/// Single-quotes a value for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Builds the `tapebackup` binary and returns its path.
fn build_tapebackup(root: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new("cargo")
        .current_dir(root)
        .args([
            "build",
            "--package",
            "tapebackup",
            "--bin",
            "tapebackup",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo build of tapebackup failed");
    }
    let mut exe = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && v["target"]["name"] == "tapebackup"
            && let Some(p) = v["executable"].as_str()
        {
            exe = Some(PathBuf::from(p));
        }
    }
    exe.context("cargo build reported no tapebackup executable")
}

fn step<T>(
    timings: &mut Vec<(String, f64)>,
    name: &str,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    eprintln!("vm-smoke: {name} ...");
    let start = Instant::now();
    let t = f().with_context(|| format!("vm-smoke step '{name}'"))?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!("vm-smoke: {name}: {secs:.1}s");
    timings.push((name.to_string(), secs));
    Ok(t)
}

/// Runs `cargo xtask vm-smoke`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let total = Instant::now();
    let root = crate::root();
    let cache = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| prepare::default_cache_dir(&root));
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let mut timings = Vec::new();

    step(&mut timings, "packages", || prepare::ensure_packages(&root))?;
    let kernel = step(&mut timings, "kernel", || {
        prepare::ensure_kernel(&cache, args.kernel.as_deref())
    })?;
    let initramfs = step(&mut timings, "initramfs", || {
        prepare::ensure_initramfs(&cache, &kernel)
    })?;
    let tapebackup = if args.rig_only {
        None
    } else {
        Some(step(&mut timings, "build tapebackup", || {
            build_tapebackup(&root)
        })?)
    };

    let out = args.out.clone().unwrap_or_else(|| cache.join("run"));
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    fs::create_dir_all(&out)?;
    let out = fs::canonicalize(&out)?;
    let guest_exe = std::env::current_exe().context("locating the xtask binary")?;
    let stage2 = root.join("xtask/vm/stage2.sh");
    let job_env = format!(
        "TB_STAGE2={}\nTB_MODULES={}\nTB_GUEST={}\n",
        sh_quote(&stage2.to_string_lossy()),
        sh_quote(&kernel.modules_root().to_string_lossy()),
        sh_quote(&guest_exe.to_string_lossy()),
    );
    fs::write(out.join("job.env"), job_env)?;
    let job = Job {
        tapebackup,
        command_timeout_secs: args.command_timeout,
    };
    fs::write(out.join("job.json"), serde_json::to_vec_pretty(&job)?)?;

    let vmlinuz = kernel.vmlinuz();
    let boot = qemu::Boot {
        vmlinuz: &vmlinuz,
        initramfs: &initramfs,
        out_dir: &out,
        console_log: out.join("console.log"),
        timeout: Duration::from_secs(args.timeout),
        memory_mb: 1536,
        cpus: 2,
        echo: !args.quiet,
    };
    eprintln!(
        "vm-smoke: booting {} (time limit {}s, console log {})",
        kernel.version,
        args.timeout,
        boot.console_log.display()
    );
    let ended = qemu::boot(&boot)?;
    eprintln!("vm-smoke: qemu exited with {:?}", ended.code);
    timings.push(("vm (boot to power-off)".into(), ended.elapsed.as_secs_f64()));
    if let Some(t) = ended.userspace_at {
        timings.push(("boot to guest program".into(), t));
    }

    let report: Option<report::Report> = fs::read(out.join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(r) = &report {
        println!("{}", r.render());
    }
    timings.push(("total".into(), total.elapsed().as_secs_f64()));
    println!("host timings:");
    for (name, secs) in &timings {
        println!("  {name:<24} {secs:>7.1}s");
    }
    if let Some(r) = &report {
        for (name, secs) in &r.timings {
            println!("  guest: {name:<17} {secs:>7.1}s");
        }
    }
    println!("results in {}", out.display());

    let healthy = !ended.timed_out && report.as_ref().is_some_and(|r| r.passed());
    if !healthy && args.quiet {
        let console = fs::read_to_string(out.join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = console.lines().collect();
        eprintln!("--- last lines of the guest console ---");
        for line in &lines[lines.len().saturating_sub(60)..] {
            eprintln!("guest| {line}");
        }
    }
    if ended.timed_out {
        bail!(
            "the VM did not power off within {}s (console log: {})",
            args.timeout,
            out.join("console.log").display()
        );
    }
    let Some(report) = report else {
        bail!(
            "the guest wrote no report (console log: {})",
            out.join("console.log").display()
        );
    };
    let guest_exit = fs::read_to_string(out.join("guest-exit")).unwrap_or_default();
    if guest_exit.trim() != "0" {
        bail!("the guest program exited with {:?}", guest_exit.trim());
    }
    if !report.passed() {
        bail!(
            "vm-smoke: {} check(s) failed{}",
            report.count(report::Outcome::Fail),
            report
                .aborted
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        );
    }
    // Unsupported = the device lacks the feature and our code said so cleanly: a pass.
    println!(
        "vm-smoke: {} of the passes are features tgt lacks, reported as unsupported",
        report.count(report::Outcome::Unsupported)
    );
    // Device bug = tgt answered wrongly in a way the check recognised precisely, and the
    // check's control measurement of our code passed: listed, not a failure of ours.
    println!(
        "vm-smoke: {} of the passes found a known tgt bug, diagnosed (see DEVICE-BUG lines)",
        report.count(report::Outcome::DeviceDefect)
    );
    println!(
        "vm-smoke: {} passed, 0 failed",
        report.count(report::Outcome::Pass)
            + report.count(report::Outcome::Unsupported)
            + report.count(report::Outcome::DeviceDefect)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quote_survives_quotes_and_spaces() {
        assert_eq!(sh_quote("/a b/c"), "'/a b/c'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }
}

//! `cargo xtask`: the workspace's chores, in Rust (matklad's cargo-xtask pattern).
//!
//! - `cargo xtask test`: install what the tests need (idempotent), then run every test.
//! - `cargo xtask demo`: the main job on the built-in virtual library.
//! - `cargo xtask bench <what>`: our code against its peers, side by side, with ratios.
//! - `cargo xtask man [--out DIR]`: the man pages (default `target/man`).
//! - `cargo xtask hw-smoke`: check a real (or virtual) library and drive, pass/fail report.
//! - `cargo xtask vm-smoke`: our SCSI code against a real Linux tape stack in a QEMU guest.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod hw_smoke;
mod man;
mod vm_smoke;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "tapebackup workspace chores")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install test prerequisites (.ci/install-deps) and run all tests.
    Test {
        /// Do not run .ci/install-deps first.
        #[arg(long)]
        no_deps: bool,
    },
    /// Run the main job on the built-in virtual tape library, in a scratch directory.
    Demo {
        /// Keep the scratch directory here instead of a temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Man pages from the CLI's clap definitions: tapebackup.1 and one per subcommand.
    Man(man::Args),
    /// Benchmarks: our code and its peer side by side in one run, printing ratios.
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
    /// Boot a Debian kernel under QEMU with a tgt tape library and test tapebackup against
    /// the real st/sg/ch drivers.
    VmSmoke(vm_smoke::Args),
    /// Check a real tape library (or a virtual one) end to end: read-only unless a scratch
    /// cartridge is named.
    HwSmoke(hw_smoke::Args),
    /// The guest half of vm-smoke (runs inside the VM).
    #[command(hide = true)]
    VmSmokeGuest(vm_smoke::guest::GuestArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.task {
        Task::Test { no_deps } => test(no_deps),
        Task::Demo { dir } => demo::run(dir),
        Task::Bench { which } => bench::run(which),
        Task::Man(args) => man::run(args),
        Task::HwSmoke(args) => hw_smoke::run(args),
        Task::VmSmoke(args) => vm_smoke::run(args),
        Task::VmSmokeGuest(args) => vm_smoke::guest_main(args),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory for this workspace: `CARGO_TARGET_DIR` (relative to the
/// workspace root when relative), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    let root = root();
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_relative() => root.join(t),
        Some(t) => t,
        None => root.join("target"),
    }
}

/// Runs a command to completion, failing on a non-zero exit.
pub fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn test(no_deps: bool) -> anyhow::Result<()> {
    let root = root();
    if !no_deps {
        run_cmd(Command::new("bash").arg(root.join(".ci/install-deps")))?;
    }
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "test",
        "--workspace",
        "--locked",
        "--all-targets",
        "--no-fail-fast",
    ]))?;
    run_cmd(Command::new("cargo").current_dir(&root).args([
        "test",
        "--workspace",
        "--locked",
        "--doc",
    ]))?;
    Ok(())
}

//! Benchmarks. Each runs our code and the peer tool in one run and prints ratios; none
//! asserts on time (these machines are noisy: compare, don't quote absolutes).

use clap::Subcommand;

mod backuppc;
mod catalog;
mod e2e;
mod fetch;
mod ltfs;
mod pack;

/// Parses a benchmark size: `256MiB`, `2GiB`, `64M`, `1000` (K/M/G are binary, as in the
/// rest of tapebackup).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s.trim())
        .map_err(|e| format!("not a size: {s:?} ({e})"))
}

/// Set while a benchmark re-runs itself as a release build.
const RELEASE_GUARD: &str = "TAPEBACKUP_XTASK_RELEASE";

/// In a debug build of xtask, runs the same command line again in a release build
/// (timings of debug code mean nothing) and returns `true`: the caller is done. Returns
/// `false` in a release build, or in the re-run itself.
pub(crate) fn rerun_as_release() -> anyhow::Result<bool> {
    if !cfg!(debug_assertions) || std::env::var_os(RELEASE_GUARD).is_some() {
        return Ok(false);
    }
    eprintln!("(re-running as a release build)");
    crate::run_cmd(
        std::process::Command::new("cargo")
            .current_dir(crate::root())
            .env(RELEASE_GUARD, "1")
            .args([
                "run",
                "--release",
                "--locked",
                "--quiet",
                "-p",
                "xtask",
                "--",
            ])
            .args(std::env::args_os().skip(1)),
    )?;
    Ok(true)
}

/// Which benchmark to run.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// backuppc: our BackupPC archive of a tar stream to a local S3 server vs split + gpg + upload.
    Backuppc(backuppc::BackuppcArgs),
    /// catalog: insert 1M files with packs and locations, look up a path, plan a 100k restore.
    Catalog(catalog::CatalogArgs),
    /// e2e: init + `tapebackup run` (get, pack, write to a virtual tape) vs cp -a; peak RSS.
    E2e(e2e::E2eArgs),
    /// fetch: our find + rsync --files-from vs rsync -a vs the seed's rsync per file, over a real sshd.
    Fetch(fetch::FetchArgs),
    /// ltfs: files of mixed sizes written to a virtual LTFS cartridge vs cp -r + sync.
    Ltfs(ltfs::LtfsArgs),
    /// pack: cryptpack (library and CLI) vs openssl enc and gpg --symmetric; in-memory vs raw ring.
    Pack(pack::PackArgs),
}

/// Runs one benchmark.
pub fn run(which: Bench) -> anyhow::Result<()> {
    match which {
        Bench::Backuppc(args) => backuppc::run(args),
        Bench::Catalog(args) => catalog::run(args),
        Bench::E2e(args) => e2e::run(args),
        Bench::Fetch(args) => fetch::run(args),
        Bench::Ltfs(args) => ltfs::run(args),
        Bench::Pack(args) => pack::run(args),
    }
}

//! Benchmarks. Each runs our code and the peer tool in one run and prints ratios; none
//! asserts on time (these machines are noisy: compare, don't quote absolutes).

use clap::Subcommand;

mod backuppc;
mod fetch;
mod ltfs;

/// Which benchmark to run.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// backuppc: our BackupPC archive of a tar stream to a local S3 server vs split + gpg + upload.
    Backuppc(backuppc::BackuppcArgs),
    /// fetch: our find + rsync --files-from vs rsync -a vs the seed's rsync per file, over a real sshd.
    Fetch(fetch::FetchArgs),
    /// ltfs: files of mixed sizes written to a virtual LTFS cartridge vs cp -r + sync.
    Ltfs(ltfs::LtfsArgs),
}

/// Runs one benchmark.
pub fn run(which: Bench) -> anyhow::Result<()> {
    match which {
        Bench::Backuppc(args) => backuppc::run(args),
        Bench::Fetch(args) => fetch::run(args),
        Bench::Ltfs(args) => ltfs::run(args),
    }
}

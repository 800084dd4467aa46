//! Benchmarks. Each runs our code and the peer tool in one run and prints ratios; none
//! asserts on time (these machines are noisy: compare, don't quote absolutes).

use clap::Subcommand;

/// Which benchmark to run.
#[derive(Debug, Subcommand)]
pub enum Bench {}

/// Runs one benchmark.
pub fn run(which: Bench) -> anyhow::Result<()> {
    match which {}
}

//! `cargo xtask demo`: the main job, end to end, in a scratch directory.

use std::path::PathBuf;

/// Runs the demo (grows with the workflow: for now the pieces that exist).
pub fn run(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let _ = dir;
    anyhow::bail!("the demo is assembled as the crates land")
}

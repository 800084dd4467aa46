//! `tapebackup manpage --out DIR` (hidden; `cargo xtask man` runs it): man pages from the
//! same clap definitions as `--help` and the completions: `tapebackup.1` and one page per
//! subcommand (`tapebackup-catalog-recover.1`, ...).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory};

use crate::output::Context;

/// Arguments of `tapebackup manpage`.
#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Writes the man pages and prints the files written, one per line.
pub fn run(args: &ManpageArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    clap_mangen::generate_to(crate::Cli::command(), &args.out)
        .with_context(|| format!("writing man pages into {}", args.out.display()))?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&args.out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "1")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("tapebackup"))
        })
        .collect();
    pages.sort();
    if ctx.json {
        writeln!(out, "{}", serde_json::json!({ "pages": pages }))?;
    } else {
        for p in &pages {
            writeln!(out, "{}", p.display())?;
        }
    }
    Ok(())
}

//! `cargo xtask man [--out DIR]`: the man pages, generated from the CLI's clap definitions
//! by the binary itself (`tapebackup manpage --out DIR`, a hidden subcommand), so they
//! always match `--help`. Default output: `target/man`.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run_cmd};

/// Arguments of `cargo xtask man`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the pages (default: target/man in the workspace).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Builds the binary and writes the pages.
pub fn run(args: Args) -> anyhow::Result<()> {
    let root = root();
    let out = match args.out {
        Some(p) => std::path::absolute(p)?,
        None => root.join("target/man"),
    };
    run_cmd(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .args([
                "run",
                "--quiet",
                "-p",
                "tapebackup",
                "--",
                "manpage",
                "--out",
            ])
            .arg(&out),
    )?;
    eprintln!(
        "man pages in {} (read one with `man -l {}/tapebackup.1`)",
        out.display(),
        out.display()
    );
    Ok(())
}

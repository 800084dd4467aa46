//! `tapebackup completions SHELL`: shell completion script from the clap definitions.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::output::Context;

/// Arguments of `tapebackup completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Prints the completion script for `shell` on stdout.
pub fn run(args: &CompletionsArgs, _ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "tapebackup", out);
    Ok(())
}

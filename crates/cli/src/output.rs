//! Output context shared by all commands: JSON or tables, progress bars or not.

use std::io::IsTerminal;

/// What every command needs to know about how to talk to the user.
#[derive(Debug, Clone)]
pub struct Context {
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    /// `-q`: errors only.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
    /// Show progress bars: stderr is a terminal and not `-q`.
    pub progress: bool,
    /// `--config`.
    pub config: Option<std::path::PathBuf>,
}

impl Context {
    /// Builds the context from parsed arguments.
    pub fn new(cli: &crate::Cli) -> Context {
        Context {
            json: cli.json,
            quiet: cli.quiet,
            verbose: cli.verbose,
            progress: !cli.quiet && std::io::stderr().is_terminal(),
            config: cli.config.clone(),
        }
    }
}

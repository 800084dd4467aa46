//! One module per command group. To add one: a module here, a variant in
//! `crate::Command`, an arm in [`run`], and its error type in [`exit_code_of`].

use crate::Command;
use crate::output::Context;

/// Runs a parsed command.
pub fn run(command: Command, ctx: &Context) -> anyhow::Result<()> {
    let _ = ctx;
    match command {}
}

/// The exit code for one typed error from a library crate, if it is one.
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let _ = e;
    None
}

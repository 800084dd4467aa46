//! One module per command group. To add one: a module here, a variant in
//! `crate::Command`, an arm in [`run`], and its error type in [`exit_code_of`].

use crate::Command;
use crate::output::Context;

pub mod backup;
pub mod backuppc;
pub mod catalog;
pub mod completions;
pub mod crypt;
pub mod devices;
pub mod drive;
pub mod init;
pub mod key;
pub mod library;
pub mod ltfs;
pub mod manpage;
pub mod progress;
pub mod restore;
pub mod status;
pub mod verify;
pub mod vtl;

/// Runs a parsed command.
pub fn run(command: Command, ctx: &Context) -> anyhow::Result<()> {
    let _ = ctx;
    let mut stdout = std::io::stdout();
    match command {
        Command::Key(args) => key::run(&args, ctx, &mut stdout),
        Command::Encrypt(args) => crypt::encrypt(&args, ctx, &mut stdout),
        Command::Decrypt(args) => crypt::decrypt(&args, ctx, &mut stdout),
        Command::Inspect(args) => crypt::inspect(&args, ctx, &mut stdout),
        Command::Vtl(args) => vtl::run(&args, ctx, &mut stdout),
        Command::Devices(args) => devices::run(&args, ctx, &mut stdout),
        Command::Library(args) => library::run(&args, ctx, &mut stdout),
        Command::Drive(args) => drive::run(&args, ctx, &mut stdout),
        Command::Catalog(mut args) => {
            progress::default_catalog(&mut args.path.catalog, ctx);
            catalog::run(&args, ctx, &mut stdout)
        }
        Command::Files(mut args) => {
            progress::default_catalog(&mut args.path.catalog, ctx);
            catalog::files(&args, ctx, &mut stdout)
        }
        Command::Tapes(mut args) => {
            progress::default_catalog(&mut args.path.catalog, ctx);
            catalog::tapes(&args, ctx, &mut stdout)
        }
        Command::Init(args) => init::run(&args, ctx, &mut stdout),
        Command::Completions(args) => completions::run(&args, ctx, &mut stdout),
        Command::Manpage(args) => manpage::run(&args, ctx, &mut stdout),
        Command::Get(args) => backup::get(&args, ctx, &mut stdout),
        Command::Pack(args) => backup::pack(&args, ctx, &mut stdout),
        Command::Write(args) => backup::write(&args, ctx, &mut stdout),
        Command::Run(args) => backup::run(&args, ctx, &mut stdout),
        Command::Verify(args) => verify::run(&args, ctx, &mut stdout),
        Command::Restore(args) => restore::run(&args, ctx, &mut stdout),
        Command::Status(args) => status::status(&args, ctx, &mut stdout),
        Command::Jobs(args) => status::jobs(&args, ctx, &mut stdout),
        Command::Ltfs(args) => ltfs::run(&args, ctx, &mut stdout),
        Command::Backuppc(args) => backuppc::run(&args, ctx, &mut stdout),
    }
}

/// The exit code for one typed error from a library crate, if it is one.
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(code) = backup::tape_fault_code(e) {
        return Some(code);
    }
    if let Some(code) = backuppc::exit_code_of(e) {
        return Some(code);
    }
    if e.downcast_ref::<tapebackup::workflow::tape::MissingCartridge>()
        .is_some()
    {
        return Some(6); // tape device or library error (see exit.rs)
    }
    if e.downcast_ref::<tapebackup::workflow::tape::LtfsUnsupported>()
        .is_some()
    {
        return Some(6); // tape device or library error
    }
    if let Some(code) = raw_exit_code(e) {
        return Some(code);
    }
    if e.downcast_ref::<tapebackup::workflow::restore::UnsafePath>()
        .is_some()
    {
        return Some(crate::exit::USAGE);
    }
    if let Some(l) = e.downcast_ref::<tapebackup::workflow::legacy::LegacyError>() {
        use tapebackup::workflow::legacy::LegacyError;
        return Some(match l {
            LegacyError::HashMismatch { .. } => 4, // authentication / corrupt data
            LegacyError::NotOnTape { .. } | LegacyError::Ambiguous { .. } => 6,
            LegacyError::NoPassphrase => crate::exit::USAGE,
        });
    }
    if let Some(code) = catalog::exit_code_of(e) {
        return Some(code);
    }
    if let Some(code) = crypt::exit_code_of(e) {
        return Some(code);
    }
    if let Some(code) = vtl::exit_code_of(e) {
        return Some(code);
    }
    if let Some(code) = ltfs::exit_code_of(e) {
        return Some(code);
    }
    if let Some(code) = library::exit_code_of(e) {
        return Some(code);
    }
    if let Some(fe) = e.downcast_ref::<fetch::Error>() {
        return Some(match fe {
            fetch::Error::Io { .. } => crate::exit::IO,
            _ => 7, // remote source (SSH / rsync / SFTP), see exit.rs
        });
    }
    None
}

/// Exit code of a raw-format error (also inside an I/O error from a tape file reader):
/// drive failures 6, damaged or unexpected tape contents 10 (on-tape format error).
fn raw_exit_code(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    use tapebackup::workflow::raw::RawError;
    let r = e.downcast_ref::<RawError>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<RawError>())
    })?;
    Some(match r {
        RawError::Drive { .. } => 6,
        RawError::Source(_) => crate::exit::IO,
        RawError::Cancelled => crate::exit::OTHER,
        _ => 10,
    })
}

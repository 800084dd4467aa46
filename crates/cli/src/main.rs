//! `tapebackup`: the command-line frontend. Thin by design: it parses arguments, builds the
//! library objects and calls them. Orchestration that other programs could reuse lives in
//! the library crates (or in `workflow`, once it lands).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod exit;
mod output;

/// Encrypted archives to SCSI tape libraries and S3-compatible object storage.
#[derive(Debug, Parser)]
#[command(name = "tapebackup", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "TAPEBACKUP_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Machine-readable JSON output instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Less output: no progress bars, only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More output (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each lives in its own module under `cmd/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace: config, key, catalog and (by default) a virtual tape library.
    Init(cmd::init::InitArgs),
    /// Fetch new and changed files of the configured sources into staging.
    Get(cmd::backup::GetArgs),
    /// Encrypt staged files into packs (plaintext removed once each pack is durable).
    Pack(cmd::backup::NoArgs),
    /// Write packs to tapes from the library (LTFS), with a catalog snapshot per tape.
    /// With `--to s3://bucket/prefix`: to an object store instead.
    Write(cmd::backup::WriteArgs),
    /// get, pack and write, one after the other.
    Run(cmd::backup::NoArgs),
    /// Read packs back from tape: ciphertext hashes, or decrypt and authenticate.
    Verify(cmd::verify::VerifyArgs),
    /// Restore files from tape into a directory, checking every content hash.
    #[command(disable_version_flag = true)]
    Restore(cmd::restore::RestoreArgs),
    /// What the catalog holds and what is waiting to be fetched, packed or written.
    Status(cmd::status::StatusArgs),
    /// The latest jobs (get, pack, write, verify, restore) and their outcome.
    Jobs(cmd::status::JobsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::CompletionsArgs),
    /// Write man pages (tapebackup.1 and one per subcommand) into a directory; `cargo
    /// xtask man` runs it.
    #[command(hide = true)]
    Manpage(cmd::manpage::ManpageArgs),
    /// Key files: create, show, rotate (rewrap packs).
    Key(cmd::key::KeyArgs),
    /// Encrypt a file or stdin into a cryptpack pack.
    Encrypt(cmd::crypt::EncryptArgs),
    /// Decrypt a pack; output appears only once authenticated.
    Decrypt(cmd::crypt::DecryptArgs),
    /// Show a pack's header and sizes (and its hash) without the key.
    Inspect(cmd::crypt::InspectArgs),
    /// Virtual tape libraries: create, import cartridges, inject faults.
    Vtl(cmd::vtl::VtlArgs),
    /// SCSI changers and tape drives on this machine (like `lsscsi -g`).
    Devices(cmd::devices::DevicesArgs),
    /// A tape library's changer: status, inventory, load, unload, move.
    Library(cmd::library::LibraryArgs),
    /// One tape drive: status, rewind, eject, TapeAlert flags, MAM.
    Drive(cmd::drive::DriveArgs),
    /// The catalog: check, snapshot, merge a snapshot, import the seed tool's database.
    Catalog(cmd::catalog::CatalogArgs),
    /// Files in the catalog: versions, packs and the volumes holding them.
    Files(cmd::catalog::FilesArgs),
    /// Tapes and object-store volumes in the catalog.
    Tapes(cmd::catalog::TapesArgs),
    /// LTFS volumes on a drive: format, ls, get, put, check (native, no FUSE).
    Ltfs(cmd::ltfs::LtfsArgs),
    /// BackupPC archive host on object storage: archive (ArchiveClientCmd), list, prune,
    /// restore-script.
    Backuppc(cmd::backuppc::BackuppcArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let ctx = output::Context::new(&cli);
    let result = cmd::run(cli.command, &ctx);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if exit::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            // One line: the error and its chain of causes, joined by ": ".
            // Causes may carry multi-line text (a server's XML answer): keep it one line,
            // the last one a log such as BackupPC's keeps.
            let line = format!("{e:#}").replace(['\n', '\r'], " ");
            let _ = writeln!(stderr, "tapebackup: error: {line}");
            ExitCode::from(exit::code_for(&e))
        }
    }
}

//! `tapebackup key`: create key files, show their ids, rotate the key of packs (rewrap).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use cryptpack::{KdfParams, Key, KeyFile, Secret};
use serde_json::json;

use super::crypt::{PassphraseSource, load_key, read_passphrase};
use crate::output::Context;

/// Arguments of `tapebackup key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// The `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a new random 256-bit key file (mode 0600; never overwrites).
    New {
        /// The key file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Protect the key file with a passphrase (Argon2id).
        #[arg(long)]
        passphrase: bool,
        #[command(flatten)]
        pass: PassphraseSource,
    },
    /// Show the id of the key in a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
    /// Rotate the key-encryption key of packs: rewrite their headers in place, without
    /// touching (or decrypting) the data.
    Rewrap {
        /// Pack files to rewrap.
        #[arg(required = true)]
        packs: Vec<PathBuf>,
        /// The current key file (else the current passphrase is used).
        #[arg(long, value_name = "FILE")]
        old_key: Option<PathBuf>,
        /// File holding the current passphrase (else $TAPEBACKUP_PASSPHRASE_FILE, else a
        /// prompt).
        #[arg(
            long,
            value_name = "FILE",
            env = "TAPEBACKUP_PASSPHRASE_FILE",
            hide_env_values = true
        )]
        old_passphrase_file: Option<PathBuf>,
        /// The new key file.
        #[arg(long, value_name = "FILE", required_unless_present = "new_passphrase")]
        new_key: Option<PathBuf>,
        /// Seal under a new passphrase instead.
        #[arg(long, conflicts_with = "new_key")]
        new_passphrase: bool,
        /// File holding the new passphrase (else $TAPEBACKUP_NEW_PASSPHRASE_FILE, else a
        /// prompt).
        #[arg(
            long,
            value_name = "FILE",
            env = "TAPEBACKUP_NEW_PASSPHRASE_FILE",
            hide_env_values = true
        )]
        new_passphrase_file: Option<PathBuf>,
    },
}

/// Runs `tapebackup key ...`.
pub fn run(args: &KeyArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        KeyCommand::New {
            out: path,
            passphrase,
            pass,
        } => {
            let key = Key::generate()?;
            if *passphrase {
                let p =
                    read_passphrase(pass.passphrase_file.as_deref(), "key file passphrase", true)?;
                key.write_protected_file(path, &p, KdfParams::default())?;
            } else {
                key.write_file(path)?;
            }
            if ctx.json {
                writeln!(
                    out,
                    "{}",
                    json!({"key_id": key.id().to_string(), "file": path, "protected": passphrase})
                )?;
            } else {
                writeln!(out, "{}", key.id())?;
            }
            if !ctx.quiet && !ctx.json {
                eprintln!(
                    "wrote key file {} (mode 0600); keep a copy apart from the tapes",
                    path.display()
                );
            }
            Ok(())
        }
        KeyCommand::Show { file } => {
            let kf = KeyFile::read(file)
                .with_context(|| format!("reading key file {}", file.display()))?;
            let protected = matches!(kf, KeyFile::Protected(_));
            if ctx.json {
                writeln!(
                    out,
                    "{}",
                    json!({"key_id": kf.id().to_string(), "protected": protected})
                )?;
            } else {
                writeln!(
                    out,
                    "{}{}",
                    kf.id(),
                    if protected {
                        " (passphrase-protected)"
                    } else {
                        ""
                    }
                )?;
            }
            Ok(())
        }
        KeyCommand::Rewrap {
            packs,
            old_key,
            old_passphrase_file,
            new_key,
            new_passphrase: _,
            new_passphrase_file,
        } => {
            let old_src = PassphraseSource {
                passphrase_file: old_passphrase_file.clone(),
            };
            let (old_k, old_p);
            let old = match old_key {
                Some(path) => {
                    old_k = load_key(path, &old_src)?;
                    Secret::Key(&old_k)
                }
                None => {
                    old_p = read_passphrase(
                        old_passphrase_file.as_deref(),
                        "current passphrase",
                        false,
                    )?;
                    Secret::Passphrase(&old_p)
                }
            };
            let (new_k, new_p);
            let new = match new_key {
                Some(path) => {
                    new_k = load_key(
                        path,
                        &PassphraseSource {
                            passphrase_file: new_passphrase_file.clone(),
                        },
                    )?;
                    Secret::Key(&new_k)
                }
                None => {
                    new_p =
                        read_passphrase(new_passphrase_file.as_deref(), "new passphrase", true)?;
                    Secret::Passphrase(&new_p)
                }
            };
            for pack in packs {
                let id = cryptpack::rewrap_file(pack, old, new, KdfParams::default())
                    .with_context(|| format!("rewrapping {}", pack.display()))?;
                if ctx.json {
                    writeln!(out, "{}", json!({"pack": pack, "key_id": id.to_string()}))?;
                } else {
                    writeln!(out, "{}\t{}", pack.display(), id)?;
                }
            }
            Ok(())
        }
    }
}

//! `tapebackup encrypt`, `decrypt` and `inspect`: cryptpack packs from the command line,
//! plus the helpers the `key` commands share (secrets, progress, exit codes).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, bail};
use clap::Args;
use cryptpack::{
    DecryptOptions, EncryptOptions, HEADER_LEN, Kdf, Key, KeyFile, Passphrase, Progress, Secret,
    Silent, Summary,
};
use serde_json::json;

use crate::output::Context;

/// Exit code for authentication failures (wrong key or passphrase, tampered or corrupt
/// data), as listed in `exit.rs`.
const EXIT_AUTH: u8 = 4;
/// Exit code for local I/O failures, as listed in `exit.rs`.
const EXIT_IO: u8 = 3;
/// Exit code for other failures.
const EXIT_OTHER: u8 = 1;

/// The exit code for a cryptpack error (also one carried inside an `io::Error`).
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let ours = e.downcast_ref::<cryptpack::Error>().or_else(|| {
        e.downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<cryptpack::Error>())
    })?;
    Some(if ours.is_authentication_failure() {
        EXIT_AUTH
    } else if matches!(
        ours,
        cryptpack::Error::Io(_) | cryptpack::Error::File { .. }
    ) {
        EXIT_IO
    } else {
        EXIT_OTHER
    })
}

/// Where a passphrase comes from: a file (flag or environment), else a prompt on a terminal.
#[derive(Debug, Clone, Args)]
pub struct PassphraseSource {
    /// Read the passphrase from the first line of this file (mode 0600). Without it, and
    /// without $TAPEBACKUP_PASSPHRASE_FILE, the passphrase is prompted for on the terminal.
    #[arg(
        long,
        value_name = "FILE",
        env = "TAPEBACKUP_PASSPHRASE_FILE",
        hide_env_values = true
    )]
    pub passphrase_file: Option<PathBuf>,
}

/// Reads a passphrase from `file`, or prompts for it (twice when `confirm`) when stdin is a
/// terminal. Never from argv.
pub fn read_passphrase(
    file: Option<&Path>,
    what: &str,
    confirm: bool,
) -> anyhow::Result<Passphrase> {
    if let Some(path) = file {
        return Passphrase::read_file(path)
            .with_context(|| format!("reading the {what} from {}", path.display()));
    }
    if !io::stdin().is_terminal() {
        bail!(
            "a {what} is needed but stdin is not a terminal to prompt on: \
             use --passphrase-file FILE or set TAPEBACKUP_PASSPHRASE_FILE"
        );
    }
    let first =
        rpassword::prompt_password(format!("{what}: ")).context("reading the passphrase")?;
    let pass = Passphrase::new(first)?;
    if confirm {
        let again = rpassword::prompt_password(format!("{what} (again): "))
            .context("reading the passphrase")?;
        let again = Passphrase::new(again)?;
        if pass != again {
            bail!("the passphrases differ");
        }
    }
    Ok(pass)
}

/// Loads a key file, unlocking a passphrase-protected one.
pub fn load_key(path: &Path, pass: &PassphraseSource) -> anyhow::Result<Key> {
    let file =
        KeyFile::read(path).with_context(|| format!("reading key file {}", path.display()))?;
    match file {
        KeyFile::Plain(k) => Ok(k),
        KeyFile::Protected(p) => {
            let pass = read_passphrase(
                pass.passphrase_file.as_deref(),
                "key file passphrase",
                false,
            )?;
            Ok(p.unlock(&pass)?)
        }
    }
}

/// Parses sizes like `1048576`, `64KiB`, `1M`, `1MiB`, `2G` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("unknown size unit in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// A progress bar on stderr (only built when stderr is a terminal and not `-q`).
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

fn progress_for(ctx: &Context, total: Option<u64>, what: &str) -> Box<dyn Progress> {
    if !ctx.progress {
        return Box::new(Silent);
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{msg} {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    Box::new(Bar(bar))
}

fn open_input(input: Option<&Path>) -> anyhow::Result<(Box<dyn Read>, Option<u64>)> {
    match input {
        Some(p) if p != Path::new("-") => {
            let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
        }
        _ => Ok((Box::new(io::stdin().lock()), None)),
    }
}

fn check_output(out: Option<&Path>, force: bool) -> anyhow::Result<()> {
    match out {
        Some(p) if p != Path::new("-") => {
            if p.exists() && !force {
                bail!("{} exists (use --force to replace it)", p.display());
            }
        }
        _ => {
            if io::stdout().is_terminal() {
                bail!("refusing to write binary data to a terminal: use -o FILE or a pipe");
            }
        }
    }
    Ok(())
}

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "plaintext_bytes": s.plaintext_len,
        "pack_bytes": s.ciphertext_len,
        "segments": s.segments,
        "plaintext_blake3": s.plaintext_hash.to_hex(),
        "pack_blake3": s.ciphertext_hash.to_hex(),
        "key_id": s.key_id.to_string(),
    })
}

/// Prints a summary: on `out` when the data went to a file, else (the data went to stdout)
/// on stderr with `-v`.
fn report(
    ctx: &Context,
    to_file: bool,
    out: &mut dyn Write,
    verb: &str,
    s: &Summary,
) -> anyhow::Result<()> {
    let text = if ctx.json {
        summary_json(s).to_string()
    } else {
        format!(
            "{verb} {} bytes -> pack {} bytes, {} segments, key {}\nplaintext blake3 {}\npack      blake3 {}",
            s.plaintext_len,
            s.ciphertext_len,
            s.segments,
            s.key_id,
            s.plaintext_hash,
            s.ciphertext_hash
        )
    };
    if to_file {
        writeln!(out, "{text}")?;
    } else if ctx.verbose > 0 {
        eprintln!("{text}");
    }
    Ok(())
}

/// Arguments of `tapebackup encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Plaintext to encrypt (default or `-`: stdin).
    pub input: Option<PathBuf>,
    /// Where to write the pack (default or `-`: stdout). Written to a temporary file in the
    /// same directory and renamed when complete.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Seal under the key in this key file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "passphrase",
        required_unless_present = "passphrase"
    )]
    pub key: Option<PathBuf>,
    /// Seal under a passphrase (Argon2id).
    #[arg(long)]
    pub passphrase: bool,
    #[command(flatten)]
    pub pass: PassphraseSource,
    /// Plaintext bytes per segment.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub segment_size: u64,
    /// Sealing threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `tapebackup encrypt`.
pub fn encrypt(args: &EncryptArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    check_output(args.output.as_deref(), args.force)?;
    let segment_size = u32::try_from(args.segment_size)
        .ok()
        .filter(|s| (1..=cryptpack::MAX_SEGMENT_SIZE).contains(s))
        .context("--segment-size must be between 1 byte and 64MiB")?;
    let mut opts = EncryptOptions {
        segment_size,
        ..EncryptOptions::default()
    };
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    let key;
    let pass;
    let secret = match &args.key {
        Some(path) => {
            key = load_key(path, &args.pass)?;
            Secret::Key(&key)
        }
        None => {
            pass = read_passphrase(args.pass.passphrase_file.as_deref(), "passphrase", true)?;
            Secret::Passphrase(&pass)
        }
    };
    // A file is read directly (cryptpack reads several segments per readv; no BufReader).
    let input_file = match args.input.as_deref().filter(|p| *p != Path::new("-")) {
        Some(p) => Some(File::open(p).with_context(|| format!("opening {}", p.display()))?),
        None => None,
    };
    let len = input_file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| m.len());
    let progress = progress_for(ctx, len, "encrypt");
    let cancel = AtomicBool::new(false);
    let input = || -> Box<dyn Read> {
        match &input_file {
            Some(f) => Box::new(f),
            None => Box::new(io::stdin().lock()),
        }
    };
    let summary = match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        Some(dest) => {
            let dir = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = tempfile::Builder::new()
                .prefix(".tapebackup-")
                .suffix(".partial")
                .tempfile_in(dir)
                .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
            // Sealed batches go out in one write each (~4 MiB): no BufWriter.
            let summary = match &input_file {
                Some(f) => {
                    cryptpack::encrypt_file(f, tmp.as_file(), secret, &opts, &*progress, &cancel)?
                }
                None => cryptpack::encrypt_stream(
                    input(),
                    tmp.as_file(),
                    secret,
                    &opts,
                    &*progress,
                    &cancel,
                )?,
            };
            tmp.as_file().sync_all()?;
            tmp.persist(dest)
                .map_err(|e| e.error)
                .with_context(|| format!("renaming the pack to {}", dest.display()))?;
            summary
        }
        None => {
            let stdout = io::stdout().lock();
            let w = BufWriter::with_capacity(1 << 20, stdout);
            cryptpack::encrypt_stream(input(), w, secret, &opts, &*progress, &cancel)?
        }
    };
    report(ctx, args.output.is_some(), out, "encrypted", &summary)
}

/// Arguments of `tapebackup decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Pack to decrypt (default or `-`: stdin).
    pub input: Option<PathBuf>,
    /// Where to write the plaintext (default or `-`: stdout). A file only appears once the
    /// whole pack authenticated. On stdout, data arrives segment by segment as each
    /// authenticates: trust it only when the exit status is 0.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Key file (else the passphrase is used, when the pack was sealed with one).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub pass: PassphraseSource,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// The input is a seed-tool file from `openssl enc -aes-256-cbc -pbkdf2` (needs the
    /// passphrase). Such files are NOT authenticated: only the final padding is checked.
    #[arg(long, conflicts_with = "key")]
    pub legacy_openssl: bool,
    /// PBKDF2 iterations of a legacy openssl file.
    #[arg(long, default_value_t = cryptpack::OPENSSL_SEED_ITERATIONS, requires = "legacy_openssl")]
    pub pbkdf2_iter: u32,
}

/// Runs `tapebackup decrypt`.
pub fn decrypt(args: &DecryptArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    check_output(args.output.as_deref(), args.force)?;
    if args.legacy_openssl {
        return decrypt_legacy(args, ctx, out);
    }
    let (mut input, len) = open_input(args.input.as_deref())?;
    // Read the header first: it says whether a key file or a passphrase is needed.
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut input)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    let header = cryptpack::Header::decode(&head)?;
    let key;
    let pass;
    let secret = match (&args.key, header.kdf()) {
        (Some(path), _) => {
            key = load_key(path, &args.pass)?;
            Secret::Key(&key)
        }
        (None, Kdf::Argon2id { .. }) => {
            pass = read_passphrase(args.pass.passphrase_file.as_deref(), "passphrase", false)?;
            Secret::Passphrase(&pass)
        }
        (None, Kdf::KeyFile) => bail!(
            "this pack is sealed under key {}: pass --key FILE",
            header.key_id()
        ),
    };
    let reader = io::Cursor::new(head).chain(input);
    let mut opts = DecryptOptions::default();
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    let progress = progress_for(ctx, len, "decrypt");
    let cancel = AtomicBool::new(false);
    let summary = match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        Some(dest) => cryptpack::decrypt_to_path(reader, dest, secret, &opts, &*progress, &cancel)?,
        None => {
            let w = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            cryptpack::decrypt_stream(reader, w, secret, &opts, &*progress, &cancel)?
        }
    };
    report(ctx, args.output.is_some(), out, "decrypted", &summary)
}

/// Copies `r` to `w` with progress; returns the length and BLAKE3 of what was copied.
fn copy_hashed(
    r: &mut dyn Read,
    w: &mut dyn Write,
    progress: &dyn Progress,
) -> anyhow::Result<(u64, String)> {
    struct Tee<'a> {
        w: &'a mut dyn Write,
        h: blake3::Hasher,
        n: u64,
        progress: &'a dyn Progress,
    }
    impl Write for Tee<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.w.write(buf)?;
            self.h.update(&buf[..n]);
            self.n += n as u64;
            self.progress.advance(n as u64);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.w.flush()
        }
    }
    let mut tee = Tee {
        w,
        h: blake3::Hasher::new(),
        n: 0,
        progress,
    };
    io::copy(r, &mut tee).map_err(cryptpack::Error::from_io)?;
    tee.flush()?;
    Ok((tee.n, tee.h.finalize().to_hex().to_string()))
}

/// `decrypt --legacy-openssl`: the seed tool's files.
fn decrypt_legacy(args: &DecryptArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let (input, len) = open_input(args.input.as_deref())?;
    let pass = read_passphrase(args.pass.passphrase_file.as_deref(), "passphrase", false)?;
    let mut dec = cryptpack::OpensslDecryptor::new(input, &pass, args.pbkdf2_iter)?;
    let progress = progress_for(ctx, len, "decrypt");
    let (n, hash) = match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        Some(dest) => {
            let dir = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = tempfile::Builder::new()
                .prefix(".tapebackup-")
                .suffix(".partial")
                .tempfile_in(dir)
                .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
            let mut w = BufWriter::with_capacity(1 << 20, tmp);
            let r = copy_hashed(&mut dec, &mut w, &*progress)?;
            let tmp = w.into_inner().map_err(|e| e.into_error())?;
            tmp.as_file().sync_all()?;
            tmp.persist(dest)
                .map_err(|e| e.error)
                .with_context(|| format!("renaming to {}", dest.display()))?;
            r
        }
        None => {
            let mut w = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            copy_hashed(&mut dec, &mut w, &*progress)?
        }
    };
    let text = if ctx.json {
        json!({"plaintext_bytes": n, "plaintext_blake3": hash, "authenticated": false}).to_string()
    } else {
        format!("decrypted {n} bytes (legacy openssl, unauthenticated)\nplaintext blake3 {hash}")
    };
    if args.output.is_some() {
        writeln!(out, "{text}")?;
    } else if ctx.verbose > 0 {
        eprintln!("{text}");
    }
    Ok(())
}

/// Arguments of `tapebackup inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The pack file.
    pub pack: PathBuf,
    /// Also compute the BLAKE3 of the whole pack (what encrypt reported as the pack hash;
    /// needs no key).
    #[arg(long)]
    pub hash: bool,
}

/// Runs `tapebackup inspect`: header and sizes of a pack, without the key.
pub fn inspect(args: &InspectArgs, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<()> {
    let f = File::open(&args.pack).with_context(|| format!("opening {}", args.pack.display()))?;
    let info = cryptpack::inspect(BufReader::new(&f))?;
    let hash = if args.hash {
        let progress = progress_for(ctx, Some(info.layout.pack_len), "hash");
        let (_, h) = cryptpack::ciphertext_hash(
            BufReader::with_capacity(1 << 20, File::open(&args.pack)?),
            &*progress,
            &AtomicBool::new(false),
        )?;
        Some(h.to_hex())
    } else {
        None
    };
    let h = &info.header;
    let (kdf, params) = match h.kdf() {
        Kdf::KeyFile => ("key-file", None),
        Kdf::Argon2id { params, .. } => ("argon2id", Some(params)),
    };
    if ctx.json {
        let mut v = json!({
            "format_version": h.version(),
            "key_id": h.key_id().to_string(),
            "kdf": kdf,
            "segment_size": h.segment_size(),
            "segments": info.layout.segments,
            "plaintext_bytes": info.layout.plaintext_len,
            "pack_bytes": info.layout.pack_len,
        });
        if let Some(p) = params {
            v["argon2id"] =
                json!({"m_cost_kib": p.m_cost_kib, "t_cost": p.t_cost, "p_cost": p.p_cost});
        }
        if let Some(hash) = &hash {
            v["pack_blake3"] = json!(hash);
        }
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "format version  {}", h.version())?;
        writeln!(out, "key id          {}", h.key_id())?;
        match params {
            None => writeln!(out, "kdf             key file")?,
            Some(p) => writeln!(
                out,
                "kdf             argon2id m={}KiB t={} p={}",
                p.m_cost_kib, p.t_cost, p.p_cost
            )?,
        }
        writeln!(out, "segment size    {}", h.segment_size())?;
        writeln!(out, "segments        {}", info.layout.segments)?;
        writeln!(out, "plaintext bytes {}", info.layout.plaintext_len)?;
        writeln!(out, "pack bytes      {}", info.layout.pack_len)?;
        if let Some(hash) = hash {
            writeln!(out, "pack blake3     {hash}")?;
        }
    }
    Ok(())
}

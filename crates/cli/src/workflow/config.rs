//! The configuration file (`tapebackup.toml`): TOML, every key optional with a default,
//! relative paths resolved against the directory holding the file. Secrets are never in
//! the file: it names a key file, and a passphrase-protected key file is unlocked with
//! `TAPEBACKUP_PASSPHRASE_FILE` or a prompt. Documented in `docs/CONFIG.md`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// Name of the config file `init` writes and commands look for in the current directory.
pub const CONFIG_FILE: &str = "tapebackup.toml";

/// Environment variable naming a file holding the key file's passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "TAPEBACKUP_PASSPHRASE_FILE";

/// A byte size in the config: an integer, or a string like `"2GiB"` or `"500M"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SizeRepr", into = "SizeRepr")]
pub struct Size(pub u64);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Int(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for Size {
    type Error = String;
    fn try_from(r: SizeRepr) -> Result<Size, String> {
        match r {
            SizeRepr::Int(n) => Ok(Size(n)),
            SizeRepr::Text(s) => parse_size::parse_size(&s)
                .map(Size)
                .map_err(|e| format!("bad size {s:?}: {e}")),
        }
    }
}

impl From<Size> for SizeRepr {
    fn from(s: Size) -> SizeRepr {
        SizeRepr::Text(format_size(s.0))
    }
}

/// Formats a byte count the way the config accepts it (`64MiB`, `1500B`).
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["TiB", "GiB", "MiB", "KiB", "B"];
    for (i, unit) in UNITS.iter().enumerate() {
        let scale = 1u64 << (10 * (4 - i));
        if n >= scale && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    format!("{n}B")
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The catalog database.
    #[serde(default = "default_catalog")]
    pub catalog: PathBuf,
    /// Where fetched plaintext waits to be packed.
    #[serde(default = "default_staging")]
    pub staging: PathBuf,
    /// Where packs wait to be written to tape.
    #[serde(default = "default_packs")]
    pub packs: PathBuf,
    /// The key.
    #[serde(default)]
    pub key: KeyConfig,
    /// The tape library.
    #[serde(default)]
    pub library: LibraryConfig,
    /// Which tapes to use and how to write them.
    #[serde(default)]
    pub tapes: TapesConfig,
    /// How `run` pipelines get, pack and write.
    #[serde(default)]
    pub run: RunConfig,
    /// Sources to back up.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// `[store]`: the object store for `write --to s3://…` and the BackupPC archive host
    /// (docs/backuppc.md); unset keys come from the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<super::object::StoreConfig>,
    /// `[backuppc]`: the BackupPC archive host's settings (read by `tapebackup backuppc`),
    /// so one file can configure both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backuppc: Option<super::object::BackuppcConfig>,
}

fn default_catalog() -> PathBuf {
    "catalog.db".into()
}
fn default_staging() -> PathBuf {
    "staging".into()
}
fn default_packs() -> PathBuf {
    "packs".into()
}

/// `[key]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key file (plain, mode 0600, or passphrase-protected).
    #[serde(default = "default_key_file")]
    pub file: PathBuf,
}

fn default_key_file() -> PathBuf {
    "key.tbk".into()
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            file: default_key_file(),
        }
    }
}

/// `[library]`: a virtual library directory or a SCSI library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LibraryConfig {
    /// A virtual library (files on disk, same SCSI code paths).
    Virtual {
        /// Its directory.
        #[serde(default = "default_vtl")]
        dir: PathBuf,
    },
    /// A SCSI tape library on this machine.
    Scsi {
        /// Changer sg node (e.g. `/dev/sg3`); unset: by serial, or the only changer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changer: Option<PathBuf>,
        /// Changer serial number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changer_serial: Option<String>,
        /// Drives in changer order: st nodes (`/dev/nst0`) or `serial:XYZ`. Empty: matched
        /// by the serials the changer reports.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        drives: Vec<String>,
    },
}

fn default_vtl() -> PathBuf {
    "vtl".into()
}

impl Default for LibraryConfig {
    fn default() -> Self {
        LibraryConfig::Virtual { dir: default_vtl() }
    }
}

/// `[tapes]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapesConfig {
    /// Pool new tapes join and writes fill.
    #[serde(default = "default_pool")]
    pub pool: String,
    /// Barcode glob patterns allowed (empty: all).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Barcode glob patterns never used. `CLN*` (cleaning cartridges) is always denied.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Drive (changer order, 0-based) to write and read with.
    #[serde(default)]
    pub drive: u16,
    /// Drives to write with at once (one tape each); empty: just `drive`.
    #[serde(default)]
    pub drives: Vec<u16>,
    /// On-tape format of newly written tapes: `auto` (LTFS, or raw when the drive cannot
    /// partition), `ltfs` or `raw`. A tape already written keeps its format.
    #[serde(default)]
    pub format: TapeFormat,
    /// Record size of raw-format tapes (4 KiB to 16 MiB).
    #[serde(default = "default_block_size")]
    pub block_size: Size,
    /// Read buffer between pack files and the drive.
    #[serde(default = "default_buffer")]
    pub buffer: Size,
    /// Complete copies wanted of each pack in this pool.
    #[serde(default = "default_copies")]
    pub copies: u32,
}

/// `tapes.format`: how blank tapes are formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TapeFormat {
    /// LTFS when the drive can make two partitions, else raw.
    #[default]
    Auto,
    /// Always LTFS (a drive that cannot partition is refused).
    Ltfs,
    /// Always the raw tape-file format (docs/RAW-FORMAT.md).
    Raw,
}

fn default_pool() -> String {
    "default".into()
}
fn default_block_size() -> Size {
    Size(256 << 10)
}
fn default_buffer() -> Size {
    Size(64 << 20)
}
fn default_copies() -> u32 {
    1
}

impl Default for TapesConfig {
    fn default() -> Self {
        TapesConfig {
            pool: default_pool(),
            allow: Vec::new(),
            deny: Vec::new(),
            drive: 0,
            drives: Vec::new(),
            format: TapeFormat::Auto,
            block_size: default_block_size(),
            buffer: default_buffer(),
            copies: default_copies(),
        }
    }
}

/// `[run]`: the pipelined `run` (get, pack and write at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Most plaintext waiting in staging to be packed: `get` pauses above it (a single file
    /// larger than this is still fetched, alone).
    #[serde(default = "default_staging_limit")]
    pub staging_limit: Size,
}

fn default_staging_limit() -> Size {
    Size(1 << 30)
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            staging_limit: default_staging_limit(),
        }
    }
}

/// `[[source]]`: a directory to back up, local or on a remote host over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique short name (the top directory of restored files).
    pub name: String,
    /// The directory (on the remote host when `host` is set).
    pub path: PathBuf,
    /// Remote host (`host`, `user@host` or an alias from the ssh config). Unset: local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// SSH port (default: the ssh config's, else 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key file (default: the ssh config's and the agent's keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    /// An ssh config file passed as `ssh -F` (default: ~/.ssh/config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_config: Option<PathBuf>,
    /// A known_hosts file (default: the ssh config's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// How remote files come over: `rsync` (default: rsync over ssh) or `sftp` (for hosts
    /// without rsync or a shell).
    #[serde(default)]
    pub transfer: Transfer,
    /// Parallel transfer batches for a remote source (parallel readers for a local one).
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    /// Local sources: read files where they lie (`get` hashes them, `pack` reads them
    /// again and packs them only if they still have that hash) instead of copying them
    /// into staging first. `false`: copy them (a snapshot later changes cannot touch, at
    /// the cost of writing every byte once more). Remote sources are always staged.
    #[serde(default = "default_read_in_place")]
    pub read_in_place: bool,
    /// Paths `get` leaves out: glob patterns over the path under `path`, as in
    /// `.gitignore` ([`super::exclude`], docs/CONFIG.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

fn default_parallel() -> usize {
    2
}

fn default_read_in_place() -> bool {
    true
}

impl SourceConfig {
    /// The local directory whose files are read in place, when this source is one.
    pub fn in_place_root(&self) -> Option<&Path> {
        (self.host.is_none() && self.read_in_place).then_some(self.path.as_path())
    }
}

/// How files of a remote source are transferred.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    /// rsync over the system ssh.
    #[default]
    Rsync,
    /// Native SFTP (libssh2).
    Sftp,
}

/// A loaded configuration with every path made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The parsed file, paths resolved.
    pub file: ConfigFile,
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut file: ConfigFile =
            toml::from_str(&text).with_context(|| format!("config {}", path.display()))?;
        let path = std::path::absolute(path)?;
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut file.catalog);
        abs(&mut file.staging);
        abs(&mut file.packs);
        abs(&mut file.key.file);
        if let LibraryConfig::Virtual { dir } = &mut file.library {
            abs(dir);
        }
        let mut names = std::collections::HashSet::new();
        for s in &mut file.sources {
            if s.host.is_none() {
                abs(&mut s.path);
            } else if s.path.is_relative() {
                bail!(
                    "config {}: source {:?}: a remote path must be absolute",
                    path.display(),
                    s.name
                );
            }
            for p in [&mut s.identity_file, &mut s.ssh_config, &mut s.known_hosts]
                .into_iter()
                .flatten()
            {
                abs(p);
            }
            if s.name.is_empty() || s.name.contains('/') || s.name == "." || s.name == ".." {
                bail!("config {}: bad source name {:?}", path.display(), s.name);
            }
            super::exclude::Exclude::new(&s.exclude)
                .with_context(|| format!("config {}: source {:?}", path.display(), s.name))?;
            if !names.insert(s.name.clone()) {
                bail!(
                    "config {}: source {:?} is listed twice",
                    path.display(),
                    s.name
                );
            }
        }
        for p in file.tapes.allow.iter().chain(&file.tapes.deny) {
            glob::Pattern::new(p)
                .with_context(|| format!("config {}: barcode pattern {p:?}", path.display()))?;
        }
        Ok(Config { path, file })
    }

    /// The config to use: `explicit` (from `--config` / `TAPEBACKUP_CONFIG`), or else
    /// `tapebackup.toml` in the current directory.
    pub fn find(explicit: Option<&Path>) -> anyhow::Result<Config> {
        match explicit {
            Some(p) => Config::load(p),
            None => {
                let p = Path::new(CONFIG_FILE);
                if !p.exists() {
                    bail!(
                        "no {CONFIG_FILE} here: run `tapebackup init`, or pass --config FILE \
                         (or set TAPEBACKUP_CONFIG)"
                    );
                }
                Config::load(p)
            }
        }
    }

    /// The library spec for `tape_scsi`.
    pub fn library_spec(&self) -> tape_scsi::LibrarySpec {
        match &self.file.library {
            LibraryConfig::Virtual { dir } => tape_scsi::LibrarySpec::Virtual { dir: dir.clone() },
            LibraryConfig::Scsi {
                changer,
                changer_serial,
                drives,
            } => tape_scsi::LibrarySpec::Real(tape_scsi::RealLibrarySpec {
                changer: changer.clone(),
                changer_serial: changer_serial.clone(),
                drives: drives
                    .iter()
                    .map(|d| match d.strip_prefix("serial:") {
                        Some(s) => tape_scsi::DriveSpec::Serial(s.to_owned()),
                        None => tape_scsi::DriveSpec::Node(d.into()),
                    })
                    .collect(),
            }),
        }
    }

    /// True when `barcode` may be written: not a cleaning cartridge, matches `allow` (if
    /// any), matches no `deny`.
    pub fn barcode_allowed(&self, barcode: &str) -> bool {
        if barcode.to_ascii_uppercase().starts_with("CLN") {
            return false;
        }
        let m = |p: &String| glob::Pattern::new(p).is_ok_and(|g| g.matches(barcode));
        let t = &self.file.tapes;
        (t.allow.is_empty() || t.allow.iter().any(m)) && !t.deny.iter().any(m)
    }
}

/// The unlocked key.
pub struct Unlocked {
    /// The key-encryption key.
    pub key: cryptpack::Key,
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unlocked({})", self.key.id())
    }
}

/// Reads the key file named by the config; a protected one is unlocked with the
/// passphrase from `TAPEBACKUP_PASSPHRASE_FILE`, or a prompt on a terminal.
pub fn unlock_key(config: &Config) -> anyhow::Result<Unlocked> {
    let path = &config.file.key.file;
    match cryptpack::KeyFile::read(path).with_context(|| format!("key {}", path.display()))? {
        cryptpack::KeyFile::Plain(key) => Ok(Unlocked { key }),
        cryptpack::KeyFile::Protected(p) => {
            let pass = read_passphrase(&format!("passphrase for {}: ", path.display()))?;
            Ok(Unlocked {
                key: p.unlock(&pass)?,
            })
        }
    }
}

/// A passphrase from `TAPEBACKUP_PASSPHRASE_FILE`, or typed at a prompt on a terminal.
pub fn read_passphrase(prompt: &str) -> anyhow::Result<cryptpack::Passphrase> {
    if let Some(f) = std::env::var_os(PASSPHRASE_FILE_ENV) {
        return Ok(cryptpack::Passphrase::read_file(Path::new(&f))?);
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        bail!("a passphrase is needed: set {PASSPHRASE_FILE_ENV} to a file holding it");
    }
    let text = rpassword::prompt_password(prompt)?;
    Ok(cryptpack::Passphrase::new(text)?)
}

/// What `init` creates.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Protect the key file with a passphrase (asked, or from `TAPEBACKUP_PASSPHRASE_FILE`).
    pub passphrase: bool,
    /// Create a virtual library (else a `[library] kind = "scsi"` section is written).
    pub virtual_library: bool,
    /// Virtual library shape.
    pub vtl: tape_scsi::LibraryOptions,
    /// What the virtual drives can do (switch partitioning off to get raw-format tapes).
    pub vtl_capabilities: tape_scsi::DriveCapabilities,
    /// Sources to put in the config.
    pub sources: Vec<SourceConfig>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            passphrase: false,
            virtual_library: true,
            vtl: tape_scsi::LibraryOptions {
                slots: 8,
                drives: 2,
                ie: 1,
                capacity: 256 << 20,
                ..tape_scsi::LibraryOptions::default()
            },
            vtl_capabilities: tape_scsi::DriveCapabilities::default(),
            sources: Vec::new(),
        }
    }
}

/// Creates a workspace in `dir`: config, key (0600), catalog, and (by default) a virtual
/// library. Refuses to overwrite an existing config or key.
pub fn init(dir: &Path, options: &InitOptions) -> anyhow::Result<Config> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        bail!(
            "{} already exists: not overwriting it",
            config_path.display()
        );
    }
    let file = ConfigFile {
        catalog: default_catalog(),
        staging: default_staging(),
        packs: default_packs(),
        key: KeyConfig::default(),
        library: if options.virtual_library {
            LibraryConfig::default()
        } else {
            LibraryConfig::Scsi {
                changer: None,
                changer_serial: None,
                drives: Vec::new(),
            }
        },
        tapes: TapesConfig::default(),
        run: RunConfig::default(),
        sources: options.sources.clone(),
        store: None,
        backuppc: None,
    };
    let key_path = dir.join(&file.key.file);
    if key_path.exists() {
        bail!(
            "{} already exists: not overwriting a key",
            key_path.display()
        );
    }
    let key = cryptpack::Key::generate()?;
    if options.passphrase {
        let pass = read_passphrase("new passphrase for the key file: ")?;
        key.write_protected_file(&key_path, &pass, cryptpack::KdfParams::default())?;
    } else {
        key.write_file(&key_path)?;
    }
    let text = format!(
        "# tapebackup configuration (every key and its default: docs/CONFIG.md).\n\
         # Relative paths are relative to this file. Secrets are never stored here.\n{}",
        toml::to_string_pretty(&file)?
    );
    let tmp = dir.join(format!(".{CONFIG_FILE}.partial"));
    std::fs::write(&tmp, text)?;
    let config = Config::load(&tmp)?;
    catalog::Catalog::open(&config.file.catalog)?;
    for d in [&config.file.staging, &config.file.packs] {
        std::fs::create_dir_all(d)?;
    }
    if let LibraryConfig::Virtual { dir: vdir } = &config.file.library
        && !vdir.join("library.json").exists()
    {
        let lib = tape_scsi::VirtualLibrary::create(vdir, &options.vtl)?;
        if !options.vtl_capabilities.is_default() {
            lib.set_capabilities(options.vtl_capabilities)?;
        }
    }
    std::fs::rename(&tmp, &config_path)?;
    Config::load(&config_path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        let f: TapesConfig = toml::from_str("buffer = \"2GiB\"").unwrap();
        assert_eq!(f.buffer, Size(2 << 30));
        let f: TapesConfig = toml::from_str("buffer = 1000").unwrap();
        assert_eq!(f.buffer, Size(1000));
        assert!(toml::from_str::<TapesConfig>("buffer = \"lots\"").is_err());
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1500), "1500B");
    }

    #[test]
    fn defaults_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[[source]]\nname = \"a\"\npath = \"data\"\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.file.catalog, dir.path().join("catalog.db"));
        assert_eq!(c.file.sources[0].path, dir.path().join("data"));
        assert_eq!(c.file.tapes.pool, "default");
        assert!(matches!(c.file.library, LibraryConfig::Virtual { .. }));
        std::fs::write(&p, "bogus = 1\n").unwrap();
        assert!(Config::load(&p).is_err());
        std::fs::write(&p, "[[source]]\nname = \"../x\"\npath = \"d\"\n").unwrap();
        assert!(Config::load(&p).is_err());
    }

    #[test]
    fn barcode_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[tapes]\nallow = [\"VT*\"]\ndeny = [\"VT000002L5\"]\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert!(c.barcode_allowed("VT000001L5"));
        assert!(!c.barcode_allowed("VT000002L5"));
        assert!(!c.barcode_allowed("AB000001L5"));
        assert!(!c.barcode_allowed("CLN001L1"));
    }
}

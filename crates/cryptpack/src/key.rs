//! Keys: key-encryption keys (KEK) from key files or passphrases, key ids, the key wrap, and
//! the key-file format (described in FORMAT.md, "Key files").

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result, SecretKind};
use crate::format::{MAX_M_COST_KIB, MAX_P_COST, MAX_T_COST};

/// The BLAKE3 `derive_key` context for key ids.
const KEY_ID_CONTEXT: &str = "tapebackup cryptpack v1 key id";
/// First line of every key file.
const KEY_FILE_MAGIC: &str = "tapebackup-cryptpack-key v1";

/// A 16-byte key id: the first 16 bytes of BLAKE3 `derive_key("tapebackup cryptpack v1 key
/// id", KEK)`. Shown as 32 lowercase hex digits. It names a KEK without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// The id of a 256-bit KEK.
    pub fn of(kek: &[u8; 32]) -> KeyId {
        let d = blake3::derive_key(KEY_ID_CONTEXT, kek);
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::Random)?;
    Ok(b)
}

/// Argon2id cost parameters (stored in the header of passphrase packs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106's second recommendation, with one lane because
    /// this implementation runs lanes serially): ~0.1-0.3 s on a current core.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Checks the bounds of FORMAT.md ("Limits").
    pub(crate) fn check(&self) -> std::result::Result<(), &'static str> {
        if self.p_cost == 0 || self.p_cost > MAX_P_COST {
            return Err("p_cost is outside 1..=64");
        }
        if self.t_cost == 0 || self.t_cost > MAX_T_COST {
            return Err("t_cost is outside 1..=64");
        }
        if self.m_cost_kib < 8 * self.p_cost || self.m_cost_kib > MAX_M_COST_KIB {
            return Err("m_cost is outside 8*p_cost..=4194304 KiB");
        }
        Ok(())
    }

    /// Derives a 256-bit KEK from a passphrase.
    pub(crate) fn derive(&self, pass: &Passphrase, salt: &[u8; 16]) -> Result<Zeroizing<[u8; 32]>> {
        self.check().map_err(Error::InvalidOption)?;
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| Error::Kdf(e.to_string()))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(pass.0.as_bytes(), salt, out.as_mut())
            .map_err(|e| Error::Kdf(e.to_string()))?;
        Ok(out)
    }
}

/// A 256-bit key-encryption key with its id. The secret is zeroed when dropped and never
/// printed by `Debug`.
#[derive(Clone)]
pub struct Key {
    secret: Zeroizing<[u8; 32]>,
    id: KeyId,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A new random key from the system RNG.
    pub fn generate() -> Result<Key> {
        let mut b = random_bytes::<32>()?;
        let k = Key::from_bytes(&b);
        b.zeroize();
        Ok(k)
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Key {
        Key {
            secret: Zeroizing::new(*bytes),
            id: KeyId::of(bytes),
        }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Reads a key file that is not passphrase-protected. Refuses files that group or others
    /// can access. A protected file gives [`Error::KeyFileNeedsPassphrase`]; use
    /// [`KeyFile::read`] to handle both kinds.
    pub fn read_file(path: &Path) -> Result<Key> {
        match KeyFile::read(path)? {
            KeyFile::Plain(k) => Ok(k),
            KeyFile::Protected(_) => Err(Error::KeyFileNeedsPassphrase {
                path: path.to_path_buf(),
            }),
        }
    }

    /// Writes this key to a new key file (mode 0600; fails if the file exists).
    pub fn write_file(&self, path: &Path) -> Result<()> {
        let text = format!(
            "{KEY_FILE_MAGIC}\nid: {}\nkek: {}\n",
            self.id,
            hex(self.secret.as_ref())
        );
        let text = Zeroizing::new(text);
        write_secret_file(path, text.as_bytes())
    }

    /// Writes this key to a new key file protected by a passphrase (Argon2id with `params`,
    /// then AES-256-GCM; mode 0600; fails if the file exists).
    pub fn write_protected_file(
        &self,
        path: &Path,
        pass: &Passphrase,
        params: KdfParams,
    ) -> Result<()> {
        let salt = random_bytes::<16>()?;
        let nonce = random_bytes::<12>()?;
        let wrapping = params.derive(pass, &salt)?;
        let aad = protected_aad(self.id, &params, &salt);
        let wrapped = wrap(&wrapping, &nonce, &aad, &self.secret)?;
        let text = format!(
            "{KEY_FILE_MAGIC}\nid: {}\nargon2id: m={} t={} p={}\nsalt: {}\nnonce: {}\nwrapped-kek: {}\n",
            self.id,
            params.m_cost_kib,
            params.t_cost,
            params.p_cost,
            hex(&salt),
            hex(&nonce),
            hex(&wrapped)
        );
        write_secret_file(path, text.as_bytes())
    }
}

fn protected_aad(id: KeyId, params: &KdfParams, salt: &[u8; 16]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(KEY_FILE_MAGIC.as_bytes());
    aad.extend_from_slice(&id.0);
    aad.extend_from_slice(&params.m_cost_kib.to_le_bytes());
    aad.extend_from_slice(&params.t_cost.to_le_bytes());
    aad.extend_from_slice(&params.p_cost.to_le_bytes());
    aad.extend_from_slice(salt);
    aad
}

/// Creates `path` with mode 0600 (failing if it exists) and writes `bytes`, synced.
fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_err = |source| Error::File {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(file_err)?;
    f.write_all(bytes).map_err(file_err)?;
    f.sync_all().map_err(file_err)?;
    Ok(())
}

/// Reads a secret file, refusing regular files that group or others can access.
pub(crate) fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let file_err = |source| Error::File {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(file_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if meta.is_file() && mode & 0o077 != 0 {
            return Err(Error::InsecurePermissions {
                path: path.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(Zeroizing::new(std::fs::read(path).map_err(file_err)?))
}

/// A key file as read from disk: a plain key, or one protected by a passphrase.
#[derive(Debug)]
pub enum KeyFile {
    /// The KEK in clear (the file's permissions protect it).
    Plain(Key),
    /// The KEK wrapped under a passphrase.
    Protected(ProtectedKey),
}

/// A passphrase-protected key, not yet unlocked.
#[derive(Debug, Clone)]
pub struct ProtectedKey {
    path: PathBuf,
    id: KeyId,
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
    wrapped: [u8; 48],
}

impl ProtectedKey {
    /// The id of the key inside.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Unlocks the key. A wrong passphrase gives [`Error::WrongPassphrase`].
    pub fn unlock(&self, pass: &Passphrase) -> Result<Key> {
        let wrapping = self.params.derive(pass, &self.salt)?;
        let aad = protected_aad(self.id, &self.params, &self.salt);
        let kek =
            unwrap(&wrapping, &self.nonce, &aad, &self.wrapped).ok_or(Error::WrongPassphrase)?;
        let key = Key::from_bytes(&kek);
        if key.id != self.id {
            return Err(Error::InvalidKeyFile {
                path: self.path.clone(),
                problem: "the key inside does not match the id line",
            });
        }
        Ok(key)
    }
}

impl KeyFile {
    /// Reads and checks a key file (format in FORMAT.md). Refuses files that group or others
    /// can access.
    pub fn read(path: &Path) -> Result<KeyFile> {
        let bytes = read_secret_file(path)?;
        let bad = |problem| Error::InvalidKeyFile {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("is not UTF-8 text"))?;
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        if lines.next() != Some(KEY_FILE_MAGIC) {
            return Err(bad("does not start with \"tapebackup-cryptpack-key v1\""));
        }
        let mut fields: Vec<(&str, &str)> = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(':')
                .ok_or(bad("has a line without \"name: value\""))?;
            fields.push((k.trim(), v.trim()));
        }
        let get = |name: &'static str| {
            fields
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .ok_or(bad(name))
        };
        let fixed = |name: &'static str, problem| -> Result<Vec<u8>> {
            unhex(get(name).map_err(|_| bad(problem))?).ok_or(bad(problem))
        };
        let id_bytes = fixed("id", "has no valid id line")?;
        let id = KeyId(
            id_bytes
                .try_into()
                .map_err(|_| bad("id must be 32 hex digits"))?,
        );
        if fields.iter().any(|(k, _)| *k == "kek") {
            let kek = Zeroizing::new(fixed("kek", "kek must be 64 hex digits")?);
            let kek: &[u8; 32] = kek
                .as_slice()
                .try_into()
                .map_err(|_| bad("kek must be 64 hex digits"))?;
            let key = Key::from_bytes(kek);
            if key.id != id {
                return Err(bad("the id line does not match the key (corrupt file?)"));
            }
            return Ok(KeyFile::Plain(key));
        }
        let params_text =
            get("argon2id").map_err(|_| bad("has neither a kek nor an argon2id line"))?;
        let mut params = KdfParams {
            m_cost_kib: 0,
            t_cost: 0,
            p_cost: 0,
        };
        for part in params_text.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or(bad("argon2id line is not m=.. t=.. p=.."))?;
            let v: u32 = v
                .parse()
                .map_err(|_| bad("argon2id value is not a number"))?;
            match k {
                "m" => params.m_cost_kib = v,
                "t" => params.t_cost = v,
                "p" => params.p_cost = v,
                _ => return Err(bad("argon2id line has an unknown name")),
            }
        }
        params.check().map_err(bad)?;
        let salt = fixed("salt", "salt must be 32 hex digits")?
            .try_into()
            .map_err(|_| bad("salt must be 32 hex digits"))?;
        let nonce = fixed("nonce", "nonce must be 24 hex digits")?
            .try_into()
            .map_err(|_| bad("nonce must be 24 hex digits"))?;
        let wrapped = fixed("wrapped-kek", "wrapped-kek must be 96 hex digits")?
            .try_into()
            .map_err(|_| bad("wrapped-kek must be 96 hex digits"))?;
        Ok(KeyFile::Protected(ProtectedKey {
            path: path.to_path_buf(),
            id,
            params,
            salt,
            nonce,
            wrapped,
        }))
    }

    /// The id of the key in the file.
    pub fn id(&self) -> KeyId {
        match self {
            KeyFile::Plain(k) => k.id,
            KeyFile::Protected(p) => p.id,
        }
    }
}

/// A passphrase. Zeroed when dropped, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(Zeroizing<String>);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl Passphrase {
    /// Wraps a passphrase. Empty passphrases are refused.
    pub fn new(text: String) -> Result<Passphrase> {
        let text = Zeroizing::new(text);
        if text.is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        Ok(Passphrase(text))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Reads a passphrase from a file: its first line, without the line ending. Refuses
    /// regular files that group or others can access.
    pub fn read_file(path: &Path) -> Result<Passphrase> {
        let bytes = read_secret_file(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::InvalidKeyFile {
            path: path.to_path_buf(),
            problem: "passphrase file is not UTF-8 text",
        })?;
        let line = text.lines().next().unwrap_or("");
        Passphrase::new(line.to_owned())
    }
}

/// The secret that unlocks (or seals) a pack.
#[derive(Debug, Clone, Copy)]
pub enum Secret<'a> {
    /// A key from a key file.
    Key(&'a Key),
    /// A passphrase (Argon2id).
    Passphrase(&'a Passphrase),
}

impl Secret<'_> {
    pub(crate) fn kind(&self) -> SecretKind {
        match self {
            Secret::Key(_) => SecretKind::KeyFile,
            Secret::Passphrase(_) => SecretKind::Passphrase,
        }
    }
}

/// Seals a 32-byte key under `kek` with AES-256-GCM: 32 bytes ciphertext || 16 bytes tag.
pub(crate) fn wrap(
    kek: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    key: &[u8; 32],
) -> Result<[u8; 48]> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek).map_err(|_| Error::Random)?);
    let mut out = [0u8; 48];
    out[..32].copy_from_slice(key);
    let tag = k
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut out[..32],
        )
        .map_err(|_| Error::Random)?;
    out[32..].copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a wrapped key; `None` when authentication fails.
pub(crate) fn unwrap(
    kek: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    wrapped: &[u8; 48],
) -> Option<Zeroizing<[u8; 32]>> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek).ok()?);
    let mut buf = Zeroizing::new(*wrapped);
    let plain = k
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            buf.as_mut(),
        )
        .ok()?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(plain);
    Some(out)
}

//! How we call the system `ssh`: arguments, quoting, and mapping its failures to typed
//! errors.
//!
//! We run the user's own `ssh` so that `~/.ssh/config`, the agent and known_hosts apply as
//! they do on the command line. No secret is ever put on argv: keys stay in files or the
//! agent, and `BatchMode=yes` makes ssh fail instead of prompting.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Where and how to connect. Everything left `None` comes from the user's ssh config
/// (or `config_file`), exactly as `ssh <host>` would resolve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Host name or ssh config alias.
    pub host: String,
    /// Login user (`-l`).
    pub user: Option<String>,
    /// Port (`-p`).
    pub port: Option<u16>,
    /// Private key file (`-i`); it must not need a passphrase unless the agent holds it.
    pub identity_file: Option<PathBuf>,
    /// An ssh config file to use instead of `~/.ssh/config` (`-F`).
    pub config_file: Option<PathBuf>,
    /// A known_hosts file (`-o UserKnownHostsFile=`).
    pub known_hosts_file: Option<PathBuf>,
    /// TCP connect timeout (`-o ConnectTimeout=`).
    pub connect_timeout: Duration,
}

impl SshTarget {
    /// A target with everything else from the ssh config, and a 15 s connect timeout.
    pub fn new(host: impl Into<String>) -> Self {
        SshTarget {
            host: host.into(),
            user: None,
            port: None,
            identity_file: None,
            config_file: None,
            known_hosts_file: None,
            connect_timeout: Duration::from_secs(15),
        }
    }

    /// Sets the config file (`-F`).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Sets the user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the identity file.
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_file = Some(path.into());
        self
    }

    /// Sets the known_hosts file.
    pub fn known_hosts_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.known_hosts_file = Some(path.into());
        self
    }

    /// `user@host` or `host`, for messages and URLs.
    pub fn display(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// The ssh options (everything between `ssh` and the host).
    pub(crate) fn options(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        if let Some(f) = &self.config_file {
            a.push("-F".into());
            a.push(f.clone().into_os_string());
        }
        a.push("-o".into());
        a.push("BatchMode=yes".into());
        a.push("-o".into());
        a.push(format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)).into());
        if let Some(p) = self.port {
            a.push("-p".into());
            a.push(p.to_string().into());
        }
        if let Some(u) = &self.user {
            a.push("-l".into());
            a.push(u.into());
        }
        if let Some(i) = &self.identity_file {
            a.push("-i".into());
            a.push(i.clone().into_os_string());
        }
        if let Some(k) = &self.known_hosts_file {
            let mut o = OsString::from("UserKnownHostsFile=");
            o.push(k);
            a.push("-o".into());
            a.push(o);
        }
        a
    }

    /// A `Command` for `ssh <options> <extra> -- <host> <remote command>`.
    pub(crate) fn command(&self, extra: &[OsString], remote: &OsStr) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.options())
            .args(extra)
            .arg("--")
            .arg(&self.host)
            .arg(remote)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        c
    }

    /// The ssh command line for rsync's `-e`, each word quoted for rsync's own splitter.
    pub(crate) fn rsh_for_rsync(&self, extra: &[OsString]) -> OsString {
        let mut words = vec![OsString::from("ssh")];
        words.extend(self.options());
        words.extend(extra.iter().cloned());
        let mut out = Vec::new();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(&sh_quote(w.as_bytes()));
        }
        OsString::from_vec(out)
    }

    /// Runs `ssh -G` to see the options ssh would use for this target.
    pub(crate) fn resolve(&self) -> Result<ResolvedSsh, Error> {
        let out = Command::new("ssh")
            .args(self.options())
            .arg("-G")
            .arg("--")
            .arg(&self.host)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                program: "ssh",
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Ssh {
                host: self.host.clone(),
                detail: trimmed(&out.stderr),
            });
        }
        Ok(ResolvedSsh::parse(&out.stdout))
    }
}

/// A shared ssh connection (OpenSSH `ControlMaster`): one handshake for the listing and
/// every rsync batch. Stopped on drop.
#[derive(Debug)]
pub(crate) struct Master {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Master {
    /// Starts `ssh -N` as a control master and waits until its socket is up.
    pub(crate) fn start(target: &SshTarget) -> Result<Master, Error> {
        static N: AtomicU32 = AtomicU32::new(0);
        // Unix socket paths are short (108 bytes): keep it under /tmp.
        let dir = std::env::temp_dir().join(format!(
            "tb-ssh-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .map_err(|e| Error::io("create", &dir, e))?;
        let socket = dir.join("cm");
        let mut path_opt = OsString::from("ControlPath=");
        path_opt.push(&socket);
        let mut child = Command::new("ssh")
            .args(target.options())
            .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-N"])
            .arg("-o")
            .arg(&path_opt)
            .arg("--")
            .arg(&target.host)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: "ssh",
                source,
            })?;
        let deadline = Instant::now() + target.connect_timeout + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = Vec::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_end(&mut stderr);
                }
                let _ = std::fs::remove_dir_all(&dir);
                return Err(
                    classify_ssh_stderr(&target.host, &stderr).unwrap_or_else(|| Error::Ssh {
                        host: target.host.clone(),
                        detail: format!(
                            "control connection exited ({status}): {}",
                            trimmed(&stderr)
                        ),
                    }),
                );
            }
            if socket.exists() {
                return Ok(Master { child, dir, socket });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(Error::Unreachable {
                    host: target.host.clone(),
                    detail: "no ssh connection within the connect timeout".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True while the master process runs.
    pub(crate) fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Options that make an ssh use this connection.
    pub(crate) fn client_options(&self) -> Vec<OsString> {
        let mut path_opt = OsString::from("ControlPath=");
        path_opt.push(&self.socket);
        vec![
            "-o".into(),
            path_opt,
            "-o".into(),
            "ControlMaster=no".into(),
        ]
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `ssh -G` says it would use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResolvedSsh {
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub known_hosts_files: Vec<PathBuf>,
    pub strict_host_key_checking: String,
    pub connect_timeout: Option<u64>,
    pub proxy: Option<String>,
}

impl ResolvedSsh {
    pub(crate) fn parse(out: &[u8]) -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let expand = |s: &str| -> PathBuf {
            match (s.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ => PathBuf::from(s),
            }
        };
        let mut r = ResolvedSsh {
            port: 22,
            ..ResolvedSsh::default()
        };
        for line in String::from_utf8_lossy(out).lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            match k {
                "hostname" => r.hostname = v.to_string(),
                "port" => r.port = v.parse().unwrap_or(22),
                "user" => r.user = v.to_string(),
                "identityfile" => r.identity_files.push(expand(v)),
                "userknownhostsfile" => {
                    r.known_hosts_files
                        .extend(v.split_whitespace().map(&expand));
                }
                "stricthostkeychecking" => r.strict_host_key_checking = v.to_string(),
                "connecttimeout" => r.connect_timeout = v.parse().ok(),
                "proxycommand" | "proxyjump" if v != "none" => r.proxy = Some(k.to_string()),
                _ => {}
            }
        }
        r
    }
}

/// Single-quotes bytes for a POSIX shell (and for rsync's `-e` splitter): `'a'\''b'`.
pub(crate) fn sh_quote(s: &[u8]) -> Vec<u8> {
    let plain = !s.is_empty()
        && s.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(c));
    if plain {
        return s.to_vec();
    }
    let mut out = vec![b'\''];
    for &c in s {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    out
}

pub(crate) fn trimmed(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let s = s.trim();
    // Keep messages readable: the last 2000 characters hold the cause.
    let skip = s.chars().count().saturating_sub(2000);
    s.chars().skip(skip).collect()
}

/// Maps ssh's complaint on stderr to a typed error, if it is one we recognize. ssh has no
/// other channel for the cause; messages are stable across OpenSSH releases and we run it
/// with `LC_ALL=C`.
pub(crate) fn classify_ssh_stderr(host: &str, stderr: &[u8]) -> Option<Error> {
    let text = String::from_utf8_lossy(stderr);
    let detail = trimmed(stderr);
    let host = host.to_string();
    let has = |needle: &str| text.contains(needle);
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("POSSIBLE DNS SPOOFING") {
        return Some(Error::HostKeyMismatch { host, detail });
    }
    if has("Host key verification failed") || has("host key is known for") {
        return Some(Error::HostKeyUnknown { host, detail });
    }
    if has("Permission denied (") || has("Too many authentication failures") {
        return Some(Error::AuthFailed { host, detail });
    }
    if has("Could not resolve hostname")
        || has("Connection refused")
        || has("No route to host")
        || has("Network is unreachable")
        || has("Connection timed out")
        || has("Operation timed out")
        || has("kex_exchange_identification")
        || has("Connection reset by peer")
    {
        return Some(Error::Unreachable { host, detail });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote(b"abc/d.e"), b"abc/d.e");
        assert_eq!(sh_quote(b""), b"''");
        assert_eq!(sh_quote(b"a b"), b"'a b'");
        assert_eq!(sh_quote(b"it's"), b"'it'\\''s'");
        assert_eq!(sh_quote(b"$(x)\n"), b"'$(x)\n'");
    }

    #[test]
    fn classifies_ssh_messages() {
        let check = |msg: &str, want: &str| {
            let e = classify_ssh_stderr("h", msg.as_bytes());
            let got = match e {
                Some(Error::HostKeyMismatch { .. }) => "mismatch",
                Some(Error::HostKeyUnknown { .. }) => "unknown",
                Some(Error::AuthFailed { .. }) => "auth",
                Some(Error::Unreachable { .. }) => "unreachable",
                _ => "none",
            };
            assert_eq!(got, want, "{msg}");
        };
        check(
            "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.",
            "mismatch",
        );
        check(
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.",
            "unknown",
        );
        check("root@127.0.0.1: Permission denied (publickey).", "auth");
        check(
            "ssh: connect to host 127.0.0.1 port 1: Connection refused",
            "unreachable",
        );
        check(
            "ssh: Could not resolve hostname nowhere.invalid: Name or service not known",
            "unreachable",
        );
        check("something else", "none");
    }

    #[test]
    fn parses_ssh_g() {
        let r = ResolvedSsh::parse(
            b"user root\nhostname 127.0.0.1\nport 2222\nidentityfile /k/id\nidentityfile /k/id2\n\
              userknownhostsfile /k/kh /k/kh2\nstricthostkeychecking true\nproxycommand none\n",
        );
        assert_eq!(r.hostname, "127.0.0.1");
        assert_eq!(r.port, 2222);
        assert_eq!(r.user, "root");
        assert_eq!(r.identity_files.len(), 2);
        assert_eq!(
            r.known_hosts_files,
            vec![PathBuf::from("/k/kh"), PathBuf::from("/k/kh2")]
        );
        assert_eq!(r.proxy, None);
    }
}

//! The SFTP source: native SFTP through libssh2 (the `ssh2` crate), for hosts without
//! rsync or without a shell (`ForceCommand internal-sftp`).
//!
//! Why `ssh2`: it is synchronous (this crate has no async runtime; only `cloud` is async,
//! which rules out `russh`), maintained, and builds here against the system OpenSSL. To
//! honour the user's ssh config anyway, the connection parameters (host name, port, user,
//! identity files, known_hosts files, strict checking) come from `ssh -G`, i.e. from
//! the same resolution `ssh` does. ProxyJump/ProxyCommand are not supported on this path
//! and give [`Error::SftpUnsupported`].

use std::io::{Seek, SeekFrom};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ssh2::{CheckResult, KnownHostFileKind, Session, Sftp};

use crate::entry::{Entry, Mtime, is_safe_relative_path};
use crate::error::Error;
use crate::land::{LandError, land_stream};
use crate::source::{Listing, Prune, Sink, Source, Transfer, TransferStats};
use crate::ssh::SshTarget;

/// A remote directory over native SFTP. Lists by walking the tree with SFTP `READDIR`
/// (mtimes in whole seconds), transfers with SFTP reads, resuming partial files.
#[derive(Debug, Clone)]
pub struct SftpSource {
    target: SshTarget,
    root: PathBuf,
    io_timeout: Duration,
    prune: Option<Prune>,
}

impl SftpSource {
    /// A source for `root` on `target`.
    pub fn new(target: SshTarget, root: impl Into<PathBuf>) -> Self {
        SftpSource {
            target,
            root: root.into(),
            io_timeout: Duration::from_secs(300),
            prune: None,
        }
    }

    /// The same source, listing without what `prune` leaves out (a directory it leaves
    /// out is not read).
    pub fn pruned(mut self, prune: Prune) -> Self {
        self.prune = Some(prune);
        self
    }

    /// Give up on a read that takes longer than this (default 300 s).
    pub fn io_timeout(mut self, t: Duration) -> Self {
        self.io_timeout = t;
        self
    }

    fn host(&self) -> String {
        self.target.host.clone()
    }

    fn sftp_err(&self, op: &'static str, path: Option<&Path>, e: ssh2::Error) -> Error {
        Error::Sftp {
            host: self.host(),
            op,
            path: path.map(Path::to_path_buf),
            detail: e.message().to_string(),
        }
    }

    /// Connects, checks the host key, authenticates and opens the SFTP channel.
    fn connect(&self) -> Result<(Session, Sftp), Error> {
        let r = self.target.resolve()?;
        if let Some(option) = r.proxy.clone() {
            return Err(Error::SftpUnsupported {
                host: self.host(),
                option,
            });
        }
        let unreachable = |detail: String| Error::Unreachable {
            host: self.host(),
            detail,
        };
        let timeout = Duration::from_secs(
            r.connect_timeout
                .unwrap_or(self.target.connect_timeout.as_secs())
                .max(1),
        );
        let addrs: Vec<_> = (r.hostname.as_str(), r.port)
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("resolve {}: {e}", r.hostname)))?
            .collect();
        let mut last = String::from("no address");
        let mut tcp = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("connect to {a}: {e}"),
            }
        }
        let tcp = tcp.ok_or_else(|| unreachable(last))?;
        let mut sess = Session::new().map_err(|e| self.sftp_err("session", None, e))?;
        sess.set_tcp_stream(tcp);
        sess.set_timeout(u32::try_from(self.io_timeout.as_millis()).unwrap_or(u32::MAX));
        sess.handshake().map_err(|e| Error::Ssh {
            host: self.host(),
            detail: format!("handshake: {}", e.message()),
        })?;

        // Host key, against the known_hosts files ssh itself would read.
        let (key, _) = sess.host_key().ok_or_else(|| Error::Ssh {
            host: self.host(),
            detail: "server sent no host key".into(),
        })?;
        let mut kh = sess
            .known_hosts()
            .map_err(|e| self.sftp_err("known_hosts", None, e))?;
        for f in &r.known_hosts_files {
            if f.exists() {
                // Lines libssh2 cannot parse are skipped; ssh would warn about them too.
                let _ = kh.read_file(f, KnownHostFileKind::OpenSSH);
            }
        }
        let files = r
            .known_hosts_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match kh.check_port(&r.hostname, r.port, key) {
            CheckResult::Match => {}
            CheckResult::Mismatch => {
                return Err(Error::HostKeyMismatch {
                    host: self.host(),
                    detail: format!("the key for {}:{} in {files} differs", r.hostname, r.port),
                });
            }
            CheckResult::NotFound | CheckResult::Failure => {
                let strict = r.strict_host_key_checking.as_str();
                if !matches!(strict, "false" | "no" | "off") {
                    return Err(Error::HostKeyUnknown {
                        host: self.host(),
                        detail: format!("no key for {}:{} in {files}", r.hostname, r.port),
                    });
                }
            }
        }

        // Authentication: the agent first (if there is one), then the identity files.
        if std::env::var_os("SSH_AUTH_SOCK").is_some() {
            let _ = sess.userauth_agent(&r.user);
        }
        let mut tried = Vec::new();
        for id in &r.identity_files {
            if sess.authenticated() {
                break;
            }
            if id.exists() {
                tried.push(id.display().to_string());
                let _ = sess.userauth_pubkey_file(&r.user, None, id, None);
            }
        }
        if !sess.authenticated() {
            return Err(Error::AuthFailed {
                host: self.host(),
                detail: format!(
                    "no key accepted for user {} (agent: {}, identity files tried: {})",
                    r.user,
                    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                        "yes"
                    } else {
                        "none"
                    },
                    if tried.is_empty() {
                        "none".into()
                    } else {
                        tried.join(", ")
                    }
                ),
            });
        }
        let sftp = sess.sftp().map_err(|e| self.sftp_err("start", None, e))?;
        Ok((sess, sftp))
    }
}

impl Source for SftpSource {
    fn describe(&self) -> String {
        format!(
            "sftp://{}/{}",
            self.target.display(),
            self.root.display().to_string().trim_start_matches('/')
        )
    }

    fn list(&self, cancel: &AtomicBool) -> Result<Listing, Error> {
        let (_sess, sftp) = self.connect()?;
        let mut listing = Listing::default();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let items = match sftp.readdir(&dir) {
                Ok(items) => items,
                Err(e) if dir == self.root => return Err(self.sftp_err("readdir", Some(&dir), e)),
                Err(e) => {
                    listing
                        .warnings
                        .push(format!("{}: {}", dir.display(), e.message()));
                    continue;
                }
            };
            for (path, stat) in items {
                if stat.is_dir() {
                    let left_out = match (&self.prune, path.strip_prefix(&self.root)) {
                        (Some(p), Ok(rel)) => p.leaves_out(rel.as_os_str().as_bytes(), true),
                        _ => false,
                    };
                    if !left_out {
                        dirs.push(path);
                    }
                    continue;
                }
                if !stat.is_file() {
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let rel = rel.as_os_str().as_bytes().to_vec();
                if !is_safe_relative_path(&rel) {
                    listing.warnings.push(format!(
                        "skipped unsafe name {:?}",
                        String::from_utf8_lossy(&rel)
                    ));
                    continue;
                }
                let mtime = stat
                    .mtime
                    .map(|s| Mtime::new(i64::try_from(s).unwrap_or(i64::MAX), 0))
                    .unwrap_or_default();
                listing.entries.push(Entry {
                    path: rel,
                    size: stat.size.unwrap_or(0),
                    mtime,
                    mode: stat.perm.unwrap_or(0) & 0o7777,
                    hash: None,
                });
            }
        }
        Ok(listing)
    }

    fn transfer(&self, job: &Transfer<'_>, sink: &dyn Sink) -> Result<TransferStats, Error> {
        if job.entries.is_empty() {
            return Ok(TransferStats::default());
        }
        let (_sess, sftp) = self.connect()?;
        let mut read = 0u64;
        for (i, entry) in job.entries.iter().enumerate() {
            let remote = self.root.join(entry.path_os());
            let result = land_stream(
                entry,
                job.staging,
                |offset| {
                    let mut f = sftp
                        .open(&remote)
                        .map_err(|e| self.sftp_err("open", Some(&remote), e))?;
                    f.seek(SeekFrom::Start(offset))
                        .map_err(|e| Error::io("seek remote", &remote, e))?;
                    Ok(f)
                },
                job.rate,
                job.cancel,
                |n| {
                    read += n;
                    sink.bytes(n)
                },
            );
            match result {
                Ok(hash) => sink.landed(i, Some(hash)),
                Err(LandError::Source(e)) => {
                    // One unreadable file is that file's problem; a dead session is the
                    // batch's (and is retried).
                    if let Err(dead) = sftp.stat(&self.root) {
                        return Err(self.sftp_err("stat", Some(&self.root), dead));
                    }
                    sink.failed(i, e);
                }
                Err(LandError::Staging(e)) => return Err(e),
                Err(LandError::Cancelled) => return Err(Error::Cancelled),
            }
        }
        Ok(TransferStats {
            wire_bytes: Some(read),
        })
    }
}

//! A real OpenSSH server for tests and benchmarks: `/usr/sbin/sshd -D -f <generated
//! config>` on 127.0.0.1 on a free port, with a throwaway host key and user key, an ssh
//! client config (`-F`) that names it `tb-test`, and known_hosts files (right and wrong).
//! Dropping it stops the server and removes its directory.
//!
//! Standard library only, so `xtask` can include this file with `#[path]`.

#![allow(dead_code)]

use std::fs;
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The host alias the generated client config defines.
pub const HOST_ALIAS: &str = "tb-test";

/// A running sshd and the files a client needs to reach it.
#[derive(Debug)]
pub struct TestSshd {
    /// Scratch directory holding keys, configs and logs (removed on drop).
    pub dir: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The login user (the current user).
    pub user: String,
    /// The authorized private key.
    pub user_key: PathBuf,
    /// A private key the server does not accept.
    pub wrong_key: PathBuf,
    /// known_hosts with the server's real key.
    pub known_hosts: PathBuf,
    /// known_hosts with a different key for the same host and port.
    pub wrong_known_hosts: PathBuf,
    /// An empty known_hosts.
    pub empty_known_hosts: PathBuf,
    /// Client config (`ssh -F`) defining [`HOST_ALIAS`] with the right key and known_hosts.
    pub config: PathBuf,
    child: Child,
}

fn keygen(path: &Path) -> io::Result<()> {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "tapebackup-test",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("ssh-keygen failed: {status}")));
    }
    Ok(())
}

fn public_key(path: &Path) -> io::Result<String> {
    let mut p = path.as_os_str().to_os_string();
    p.push(".pub");
    let text = fs::read_to_string(PathBuf::from(p))?;
    // "ssh-ed25519 AAAA... comment" -> type and key only.
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(t), Some(k)) => Ok(format!("{t} {k}")),
        _ => Err(io::Error::other("bad public key file")),
    }
}

fn current_user() -> io::Result<String> {
    let out = Command::new("id").arg("-un").output()?;
    if !out.status.success() {
        return Err(io::Error::other("id -un failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> io::Result<u16> {
    free_port()
}

fn scratch_dir(tag: &str) -> io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "tb-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl TestSshd {
    /// Generates keys and configs and starts sshd; waits until it answers.
    pub fn start() -> io::Result<TestSshd> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "/usr/sbin/sshd not found (install openssh-server: .ci/install-deps)",
            ));
        }
        let dir = scratch_dir("sshd")?;
        let host_key = dir.join("host_key");
        let other_host_key = dir.join("other_host_key");
        let user_key = dir.join("user_key");
        let wrong_key = dir.join("wrong_key");
        for k in [&host_key, &other_host_key, &user_key, &wrong_key] {
            keygen(k)?;
        }
        let authorized = dir.join("authorized_keys");
        fs::write(&authorized, format!("{}\n", public_key(&user_key)?))?;
        fs::set_permissions(&authorized, fs::Permissions::from_mode(0o600))?;
        let user = current_user()?;
        // sshd running as root insists on its privilege separation directory.
        let privsep = Path::new("/run/sshd");
        if !privsep.exists() {
            let _ = fs::create_dir_all(privsep);
            let _ = fs::set_permissions(privsep, fs::Permissions::from_mode(0o755));
        }

        let port = free_port()?;
        let cfg = dir.join("sshd_config");
        fs::write(
            &cfg,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
                 AuthorizedKeysFile {ak}\nAllowUsers {user}\nPermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 MaxStartups 100:30:200\nMaxSessions 100\nLogLevel ERROR\n\
                 Subsystem sftp internal-sftp\n",
                hk = host_key.display(),
                pid = dir.join("sshd.pid").display(),
                ak = authorized.display(),
            ),
        )?;
        let log = fs::File::create(dir.join("sshd.log"))?;
        let mut child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
                let _ = fs::remove_dir_all(&dir);
                return Err(io::Error::other(format!(
                    "sshd exited at start ({status}): {log}"
                )));
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 8];
                if s.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0") {
                    break;
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = fs::remove_dir_all(&dir);
                return Err(io::Error::other("sshd did not answer within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        let known_hosts = dir.join("known_hosts");
        fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {}\n", public_key(&host_key)?),
        )?;
        let wrong_known_hosts = dir.join("wrong_known_hosts");
        fs::write(
            &wrong_known_hosts,
            format!("[127.0.0.1]:{port} {}\n", public_key(&other_host_key)?),
        )?;
        let empty_known_hosts = dir.join("empty_known_hosts");
        fs::write(&empty_known_hosts, "")?;
        let mut me = TestSshd {
            config: PathBuf::new(),
            dir,
            port,
            user,
            user_key,
            wrong_key,
            known_hosts,
            wrong_known_hosts,
            empty_known_hosts,
            child,
        };
        me.config = me.client_config("config", &me.user_key.clone(), &me.known_hosts.clone())?;
        Ok(me)
    }

    /// Writes a client config defining [`HOST_ALIAS`] with this key and known_hosts.
    pub fn client_config(&self, name: &str, key: &Path, known_hosts: &Path) -> io::Result<PathBuf> {
        let path = self.dir.join(name);
        fs::write(
            &path,
            format!(
                "Host {HOST_ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n\
                 \x20 IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n\
                 \x20 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n\
                 \x20 BatchMode yes\n  ControlMaster no\n  ControlPath none\n",
                port = self.port,
                user = self.user,
                key = key.display(),
                kh = known_hosts.display(),
            ),
        )?;
        Ok(path)
    }

    /// Kills every connection the server is serving (its direct children, by pid) while
    /// the server itself keeps listening: a network drop, as seen by the client.
    pub fn kill_sessions(&self) -> io::Result<usize> {
        let me = self.child.id().to_string();
        let mut killed = 0;
        for entry in fs::read_dir("/proc")?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ..." — comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(me.as_str()) {
                let status = Command::new("kill").args(["-KILL", pid]).status()?;
                if status.success() {
                    killed += 1;
                }
            }
        }
        Ok(killed)
    }

    /// A fresh scratch directory (for a "remote" tree or staging), removed with the server.
    pub fn scratch(&self, name: &str) -> io::Result<PathBuf> {
        let d = self.dir.join(name);
        fs::create_dir_all(&d)?;
        Ok(d)
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Starts sshd, or decides what a test does without one: under `CI=true` the test fails
/// (a server that cannot run is a broken CI machine, not a reason to skip); elsewhere it
/// prints `SKIP` and the test returns.
pub fn sshd_or_skip(test: &str) -> Option<TestSshd> {
    match TestSshd::start() {
        Ok(s) => Some(s),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: sshd could not start under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("SKIP {test}: sshd could not start: {e}");
            None
        }
    }
}

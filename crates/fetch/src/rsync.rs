//! The SSH source: one `find` over ssh to list, rsync over ssh to transfer.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::child;
use crate::error::Error;
use crate::listing::{ListingFormat, parse_listing};
use crate::source::{Listing, PARTIAL_DIR, Sink, Source, Transfer, TransferStats};
use crate::ssh::{Master, SshTarget, classify_ssh_stderr, sh_quote, trimmed};

/// Exit status of the listing script when `cd` to the root fails.
const EXIT_NO_ROOT: i32 = 97;
/// Exit status of the listing script when `b3sum` is missing on the remote.
const EXIT_NO_B3SUM: i32 = 98;
/// Marks our `--out-format` lines in rsync's output.
const NAME_MARK: &[u8] = b">>TB ";

/// A remote directory reached with the system `ssh`: listed by one GNU `find` in one
/// session, transferred by rsync over ssh (`--files-from -0 --protect-args --partial-dir`).
///
/// The remote needs a POSIX login shell, GNU find and rsync (3.1 or later); with
/// [`SshSource::with_remote_hash`], also `b3sum`.
#[derive(Debug)]
pub struct SshSource {
    target: SshTarget,
    root: OsString,
    remote_hash: bool,
    io_timeout: Duration,
    multiplex: bool,
    master: Mutex<Option<Master>>,
}

impl Clone for SshSource {
    /// A copy with the same settings and its own connection.
    fn clone(&self) -> Self {
        SshSource {
            target: self.target.clone(),
            root: self.root.clone(),
            remote_hash: self.remote_hash,
            io_timeout: self.io_timeout,
            multiplex: self.multiplex,
            master: Mutex::new(None),
        }
    }
}

impl SshSource {
    /// A source for `root` (raw bytes allowed) on `target`.
    pub fn new(target: SshTarget, root: impl Into<OsString>) -> Self {
        SshSource {
            target,
            root: root.into(),
            remote_hash: false,
            io_timeout: Duration::from_secs(300),
            multiplex: true,
            master: Mutex::new(None),
        }
    }

    /// Opens a new ssh connection for the listing and for every rsync batch instead of
    /// sharing one (by default one `ControlMaster` connection, private to this source, is
    /// shared: one handshake instead of one per batch).
    pub fn without_multiplexing(mut self) -> Self {
        self.multiplex = false;
        self
    }

    /// The ssh options that route through the shared connection, starting it if needed.
    fn connection_options(&self) -> Result<Vec<OsString>, Error> {
        if !self.multiplex {
            return Ok(Vec::new());
        }
        let mut guard = match self.master.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(m) = guard.as_mut()
            && m.is_alive()
        {
            return Ok(m.client_options());
        }
        *guard = None;
        let m = Master::start(&self.target)?;
        let opts = m.client_options();
        *guard = Some(m);
        Ok(opts)
    }

    /// Also hash every file on the remote with `b3sum` while listing; the fetcher then
    /// checks each landed file against it. Costs one `b3sum` process per file remotely.
    pub fn with_remote_hash(mut self) -> Self {
        self.remote_hash = true;
        self
    }

    /// rsync's `--timeout`: give up when no data moves for this long (default 300 s).
    pub fn io_timeout(mut self, t: Duration) -> Self {
        self.io_timeout = t;
        self
    }

    /// The ssh target.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The shell script the listing runs remotely (see [`crate::parse_listing`]).
    fn listing_script(&self) -> OsString {
        let mut s = b"cd -- ".to_vec();
        s.extend_from_slice(&sh_quote(self.root.as_bytes()));
        s.extend_from_slice(format!(" || exit {EXIT_NO_ROOT}; ").as_bytes());
        if self.remote_hash {
            s.extend_from_slice(
                format!("command -v b3sum >/dev/null 2>&1 || exit {EXIT_NO_B3SUM}; ").as_bytes(),
            );
        }
        s.extend_from_slice(b"LC_ALL=C exec find . -type f -printf '%s\\0%T@\\0%m\\0%P\\0'");
        if self.remote_hash {
            // find flushes its own output before each -exec, so the hash follows its record.
            s.extend_from_slice(b" \\( -exec b3sum --no-names {} \\; -o -true \\) -printf '\\0'");
        }
        OsString::from_vec(s)
    }

    fn ssh_error(&self, status: Option<i32>, stderr: &[u8]) -> Error {
        classify_ssh_stderr(&self.target.host, stderr).unwrap_or_else(|| {
            if status == Some(255) {
                Error::Ssh {
                    host: self.target.host.clone(),
                    detail: trimmed(stderr),
                }
            } else {
                Error::Rsync {
                    host: self.target.host.clone(),
                    status,
                    stderr: trimmed(stderr),
                }
            }
        })
    }
}

impl Source for SshSource {
    fn describe(&self) -> String {
        format!(
            "ssh://{}/{}",
            self.target.display(),
            String::from_utf8_lossy(self.root.as_bytes()).trim_start_matches('/')
        )
    }

    fn list(&self, cancel: &AtomicBool) -> Result<Listing, Error> {
        let extra = self.connection_options()?;
        let mut cmd = self.target.command(&extra, &self.listing_script());
        let mut stdout = Vec::new();
        let out = child::run(&mut cmd, "ssh", None, cancel, |chunk| {
            stdout.extend_from_slice(chunk)
        })?;
        let host = self.target.host.clone();
        let code = out.status.code();
        let remote = |command| Error::RemoteCommand {
            host: host.clone(),
            command,
            status: code,
            stderr: trimmed(&out.stderr),
        };
        let mut warnings = Vec::new();
        match code {
            Some(0) => {}
            Some(EXIT_NO_ROOT) => return Err(remote("cd")),
            Some(EXIT_NO_B3SUM) => return Err(remote("b3sum")),
            // find exits 1 when some directory could not be read: keep what it listed.
            Some(1) if !out.stderr.is_empty() => {
                warnings = String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
            Some(255) | None => return Err(self.ssh_error(Some(255), &out.stderr)),
            Some(_) => return Err(remote("find")),
        }
        let format = if self.remote_hash {
            ListingFormat::FindWithHash
        } else {
            ListingFormat::Find
        };
        let entries = parse_listing(&stdout, format).map_err(|source| Error::Listing {
            host: host.clone(),
            source,
        })?;
        Ok(Listing { entries, warnings })
    }

    fn transfer(&self, job: &Transfer<'_>, sink: &dyn Sink) -> Result<TransferStats, Error> {
        if job.entries.is_empty() {
            return Ok(TransferStats::default());
        }
        let mut files_from = Vec::new();
        let mut index: HashMap<&[u8], usize> = HashMap::new();
        for (i, e) in job.entries.iter().enumerate() {
            files_from.extend_from_slice(&e.path);
            files_from.push(0);
            index.insert(&e.path, i);
        }
        let mut remote = OsString::from(&self.target.host);
        remote.push(":");
        remote.push(&self.root);
        if !self.root.as_bytes().ends_with(b"/") {
            remote.push("/");
        }
        let mut local = job.staging.as_os_str().to_os_string();
        local.push("/");
        let extra = self.connection_options()?;
        let mut cmd = Command::new("rsync");
        cmd.env("LC_ALL", "C")
            .arg("--from0")
            .arg("--files-from=-")
            .arg("--protect-args")
            .arg("--times")
            .arg("--partial")
            .arg(format!("--partial-dir={PARTIAL_DIR}"))
            // %b makes rsync log each file after its data arrived, not before.
            .arg("--out-format=>>TB %b %n")
            .arg("--info=progress2")
            // Unbuffered: through a pipe rsync's stdio would hold progress for seconds.
            .arg("--outbuf=N")
            .arg("--stats")
            .arg(format!("--timeout={}", self.io_timeout.as_secs().max(1)))
            .arg("-e")
            .arg(self.target.rsh_for_rsync(&extra));
        if let Some(rate) = job.rate {
            let per_process = rate.bytes_per_sec() / job.parallel.max(1) as u64;
            cmd.arg(format!("--bwlimit={}", (per_process / 1024).max(1)));
        }
        cmd.arg("--").arg(remote).arg(local);

        let mut parser = OutputParser::new(&index, sink);
        let out = child::run(&mut cmd, "rsync", Some(files_from), job.cancel, |chunk| {
            parser.feed(chunk)
        })?;
        parser.finish();
        let wire_bytes = parser.wire_bytes;
        match out.status.code() {
            Some(0) => Ok(TransferStats { wire_bytes }),
            // 23: some files could not be transferred; 24: some vanished. The fetcher
            // checks the staged copy of each file rsync did not log (it may have been up to
            // date already) before it believes this.
            Some(23 | 24) => {
                let detail = trimmed(&out.stderr);
                for (i, seen) in parser.announced.iter().enumerate() {
                    if !seen {
                        sink.failed(
                            i,
                            Error::NotTransferred {
                                path: job.entries[i].display_path(),
                                detail: detail.clone(),
                            },
                        );
                    }
                }
                Ok(TransferStats { wire_bytes })
            }
            code => Err(self.ssh_error(code, &out.stderr)),
        }
    }
}

/// Follows rsync's stdout: our `>>TB <bytes> <name>` lines, `--info=progress2` lines and
/// the `--stats` block. Lines end in `\n` or `\r`; names are escaped by rsync (`\#ooo` for
/// control and non-ASCII bytes and for a backslash that would read as an escape), so a
/// name never holds a line break.
struct OutputParser<'a> {
    index: &'a HashMap<&'a [u8], usize>,
    sink: &'a dyn Sink,
    line: Vec<u8>,
    pending: Option<usize>,
    announced: Vec<bool>,
    progress_bytes: u64,
    wire_bytes: Option<u64>,
}

impl<'a> OutputParser<'a> {
    fn new(index: &'a HashMap<&'a [u8], usize>, sink: &'a dyn Sink) -> Self {
        OutputParser {
            index,
            sink,
            line: Vec::new(),
            pending: None,
            announced: vec![false; index.len()],
            progress_bytes: 0,
            wire_bytes: None,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' || b == b'\r' {
                let line = std::mem::take(&mut self.line);
                self.handle(&line);
            } else {
                self.line.push(b);
            }
        }
    }

    fn handle(&mut self, line: &[u8]) {
        if let Some(rest) = line.strip_prefix(NAME_MARK) {
            let name = match rest.iter().position(|&b| b == b' ') {
                Some(i) => &rest[i + 1..],
                None => return,
            };
            let name = unescape_rsync(name);
            if let Some(&i) = self.index.get(&name[..]) {
                if let Some(seen) = self.announced.get_mut(i) {
                    *seen = true;
                }
                // rsync logs a file after its data arrived but renames it into place just
                // after: the previous file is surely final once the next one is logged.
                if let Some(prev) = self.pending.replace(i) {
                    self.sink.landed(prev, None);
                }
            }
            return;
        }
        let text = String::from_utf8_lossy(line);
        if let Some(v) = text.trim().strip_prefix("Total bytes received:") {
            self.wire_bytes = parse_grouped(v.trim());
            return;
        }
        // progress2: "  1,234,567  12%  1.23MB/s  0:00:10 (xfr#3, to-chk=5/10)"
        let mut words = text.split_whitespace();
        if let (Some(first), Some(second)) = (words.next(), words.next())
            && second.ends_with('%')
            && let Some(n) = parse_grouped(first)
        {
            if n > self.progress_bytes {
                self.sink.bytes(n - self.progress_bytes);
            }
            self.progress_bytes = n;
        }
    }

    /// The process ended: the last logged file is final if rsync got that far.
    fn finish(&mut self) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.handle(&line);
        }
        if let Some(prev) = self.pending.take() {
            self.sink.landed(prev, None);
        }
    }
}

/// `1,234,567` → 1234567.
fn parse_grouped(s: &str) -> Option<u64> {
    let digits: String = s.chars().filter(|&c| c != ',').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Undoes rsync's output escaping: `\#ooo` (three octal digits) is one byte.
pub(crate) fn unescape_rsync(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && s.get(i + 1) == Some(&b'#')
            && let Some(oct) = s.get(i + 2..i + 5)
            && oct.iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = oct
                .iter()
                .fold(0u32, |acc, &d| (acc << 3) | u32::from(d - b'0'));
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 5;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn unescapes_rsync_names() {
        assert_eq!(unescape_rsync(b"new\\#012line"), b"new\nline");
        assert_eq!(unescape_rsync(b"back\\#134#123x"), b"back\\#123x");
        assert_eq!(unescape_rsync(b"\\#377\\#376"), b"\xff\xfe");
        assert_eq!(unescape_rsync(b"a\\#12"), b"a\\#12");
        assert_eq!(unescape_rsync(b"plain \\ x"), b"plain \\ x");
    }

    #[derive(Default)]
    struct Rec(Mutex<(Vec<usize>, u64)>);
    impl Sink for Rec {
        fn bytes(&self, n: u64) {
            self.0.lock().unwrap().1 += n;
        }
        fn landed(&self, i: usize, _: Option<crate::ContentHash>) {
            self.0.lock().unwrap().0.push(i);
        }
        fn failed(&self, _: usize, _: Error) {}
    }

    #[test]
    fn follows_rsync_output() {
        let names: Vec<&[u8]> = vec![b"a", b"new\nline", b"d/it's"];
        let index: HashMap<&[u8], usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let rec = Rec::default();
        let mut p = OutputParser::new(&index, &rec);
        p.feed(b">>TB 1 new\\#012line\n\r          1  16%    0.00kB/s    0:00:00 (xfr#1)");
        p.feed(b"\r        3,000  50%  1kB/s 0:00:00\n>>TB 4096 d/\n>>TB 1 d/it's\n");
        assert_eq!(rec.0.lock().unwrap().0, vec![1]);
        p.feed(b"\nTotal bytes received: 1,234\n");
        p.finish();
        assert_eq!(rec.0.lock().unwrap().0, vec![1, 2]);
        assert_eq!(rec.0.lock().unwrap().1, 3000);
        assert_eq!(p.wire_bytes, Some(1234));
    }
}

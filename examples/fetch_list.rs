//! Lists a source and, given a staging directory, fetches everything into it with
//! progress on stderr. The `fetch` crate used on its own.
//!
//! ```text
//! cargo run -p examples --example fetch_list -- SOURCE [STAGING]
//!   SOURCE: /local/dir | [user@]host:/remote/dir (ssh + rsync) | sftp://[user@]host/remote/dir
//! ```
//!
//! Remote sources use your ssh config, agent and known_hosts (ssh runs with BatchMode=yes).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use fetch::{
    FetchOptions, Fetcher, KnownSet, LocalSource, Progress, SftpSource, Snapshot, Source,
    SshSource, SshTarget, plan,
};

fn parse_source(spec: &str) -> Box<dyn Source> {
    let target = |host: &str| match host.split_once('@') {
        Some((user, host)) => SshTarget::new(host).user(user),
        None => SshTarget::new(host),
    };
    if let Some(rest) = spec.strip_prefix("sftp://") {
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        return Box::new(SftpSource::new(target(host), format!("/{path}")));
    }
    match spec.split_once(':') {
        Some((host, path)) if !spec.starts_with('/') && !spec.starts_with('.') => {
            Box::new(SshSource::new(target(host), path))
        }
        _ => Box::new(LocalSource::new(spec)),
    }
}

/// Prints a progress line at most every half second.
struct Lines(Mutex<Instant>);

impl Progress for Lines {
    fn update(&self, s: &Snapshot) {
        let Ok(mut last) = self.0.lock() else { return };
        if last.elapsed().as_millis() < 500 && s.files_done < s.files_total {
            return;
        }
        *last = Instant::now();
        let eta = s
            .eta
            .map(|d| format!("{}s", d.as_secs()))
            .unwrap_or_else(|| "?".into());
        eprintln!(
            "{}/{} files, {}/{} bytes, {:.1} MB/s, ETA {eta}",
            s.files_done,
            s.files_total,
            s.bytes_done,
            s.bytes_total,
            s.bytes_per_sec / 1e6
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(spec) = args.next() else {
        eprintln!("usage: fetch_list SOURCE [STAGING]");
        std::process::exit(2);
    };
    let staging = args.next();
    let source = parse_source(&spec);
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    for w in &listing.warnings {
        eprintln!("warning: {w}");
    }
    let mut out = std::io::stdout().lock();
    for e in &listing.entries {
        // Names may hold any byte; escape them for the terminal.
        writeln!(
            out,
            "{:>12} {} {:o} {}",
            e.size,
            e.mtime,
            e.mode,
            e.display_path().escape_debug()
        )?;
    }
    let plan = plan(&listing.entries, &KnownSet::new());
    eprintln!(
        "{}: {} files, {} bytes",
        source.describe(),
        plan.files.len(),
        plan.bytes()
    );
    let Some(staging) = staging else {
        return Ok(());
    };
    let report = Fetcher::new(&*source, staging)
        .options(FetchOptions::default())
        .fetch(&plan, &Lines(Mutex::new(Instant::now())), &cancel);
    for (f, l) in report.landed() {
        writeln!(out, "{} {}", l.hash, f.entry.display_path().escape_debug())?;
    }
    for (f, e) in report.failed() {
        eprintln!("failed: {}: {e}", f.entry.display_path().escape_debug());
    }
    match report.stopped {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

//! Integration tests against a real OpenSSH server on 127.0.0.1 (see `support/sshd.rs`):
//! rsync over ssh and native SFTP, nasty names, change detection, resume after a kill,
//! typed connection errors, the staging limit.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fetch::{
    ContentHash, Error, FetchReport, Fetcher, KnownFile, KnownSet, LocalSource, NoProgress, Plan,
    Progress, RetryPolicy, SftpSource, Snapshot, Source, SshSource, SshTarget, StagingLimit, plan,
};
use support::sshd::{HOST_ALIAS, TestSshd, closed_port, sshd_or_skip};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Names that broke the seed: spaces, quotes, newlines, leading dashes, shell syntax,
/// rsync's own escape syntax, non-UTF-8.
fn nasty_names() -> Vec<Vec<u8>> {
    [
        &b"plain.txt"[..],
        b"sp ace",
        b"  leading and trailing  ",
        b"quote's \"double\"",
        b"new\nline",
        b"carriage\rreturn",
        b"tab\there",
        b"-dash",
        b"--long-option-like",
        b"$(touch PWNED)",
        b"`touch PWNED2`; rm -rf x",
        b"*glob?[ab]",
        b"back\\slash \\#012 not a newline",
        b"\xff\xfe not utf-8 \x80",
        b"caf\xc3\xa9",
        b"dir with space/-nested/new\nline dir/file",
        b"dir with space/.hidden",
    ]
    .iter()
    .map(|n| n.to_vec())
    .collect()
}

fn write_tree(root: &Path, names: &[Vec<u8>]) -> std::io::Result<()> {
    for (i, name) in names.iter().enumerate() {
        let path = root.join(std::ffi::OsStr::from_bytes(name));
        if let Some(p) = path.parent() {
            fs::create_dir_all(p)?;
        }
        fs::write(&path, content(i))?;
    }
    Ok(())
}

fn content(i: usize) -> Vec<u8> {
    (0..(i * 977 + 3)).map(|j| (j * 31 + i) as u8).collect()
}

fn rsync_source(s: &TestSshd, root: &Path) -> SshSource {
    SshSource::new(
        SshTarget::new(HOST_ALIAS).config_file(&s.config),
        root.as_os_str(),
    )
}

fn sftp_source(s: &TestSshd, root: &Path) -> SftpSource {
    SftpSource::new(SshTarget::new(HOST_ALIAS).config_file(&s.config), root)
}

fn no_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 1,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    }
}

/// Asserts every planned file landed with the right bytes and hash.
fn check_landed(report: &FetchReport, remote_root: &Path, expected_files: usize) -> TestResult {
    assert!(report.stopped.is_none(), "stopped: {:?}", report.stopped);
    let failed: Vec<String> = report.failed().map(|(_, e)| e.to_string()).collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert_eq!(report.landed().count(), expected_files);
    for (file, landed) in report.landed() {
        let want = fs::read(remote_root.join(file.entry.path_os()))?;
        let got = fs::read(&landed.staged_path)?;
        assert_eq!(got, want, "{}", file.entry.display_path());
        assert_eq!(landed.hash, ContentHash::of(&want));
        assert_eq!(landed.size, file.entry.size);
        assert_eq!(landed.mtime, file.entry.mtime);
        assert!(!landed.changed_since_listing);
    }
    Ok(())
}

fn by_path(entries: &[fetch::Entry]) -> BTreeMap<Vec<u8>, (u64, fetch::Mtime, u32)> {
    entries
        .iter()
        .map(|e| (e.path.clone(), (e.size, e.mtime, e.mode)))
        .collect()
}

#[test]
fn rsync_lists_and_fetches_nasty_names() -> TestResult {
    let Some(s) = sshd_or_skip("rsync_lists_and_fetches_nasty_names") else {
        return Ok(());
    };
    let remote = s.scratch("remote")?;
    let names = nasty_names();
    write_tree(&remote, &names)?;
    let cancel = AtomicBool::new(false);

    let source = rsync_source(&s, &remote);
    let listing = source.list(&cancel)?;
    assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
    // The remote listing equals a local walk of the same tree, byte for byte, with
    // nanosecond mtimes and modes.
    let local = LocalSource::new(&remote).list(&cancel)?;
    assert_eq!(by_path(&listing.entries), by_path(&local.entries));
    assert_eq!(listing.entries.len(), names.len());

    let staging = s.scratch("staging")?;
    let report = Fetcher::new(&source, &staging)
        .parallel(3)
        .min_batch_bytes(0)
        .retry(no_retry())
        .fetch(&Plan::all(&listing.entries), &NoProgress, &cancel);
    check_landed(&report, &remote, names.len())?;
    assert!(report.wire_bytes.is_some_and(|b| b > 0));
    // Nothing in any name was run by a shell.
    for pwned in ["PWNED", "PWNED2"] {
        assert!(!remote.join(pwned).exists() && !staging.join(pwned).exists());
        assert!(!Path::new("/root").join(pwned).exists());
    }
    Ok(())
}

#[test]
fn sftp_lists_and_fetches_nasty_names() -> TestResult {
    let Some(s) = sshd_or_skip("sftp_lists_and_fetches_nasty_names") else {
        return Ok(());
    };
    let remote = s.scratch("remote")?;
    let names = nasty_names();
    write_tree(&remote, &names)?;
    let cancel = AtomicBool::new(false);

    let source = sftp_source(&s, &remote);
    let listing = source.list(&cancel)?;
    let local = LocalSource::new(&remote).list(&cancel)?;
    // SFTP v3 carries whole seconds only.
    let secs =
        |m: BTreeMap<Vec<u8>, (u64, fetch::Mtime, u32)>| -> BTreeMap<Vec<u8>, (u64, i64, u32)> {
            m.into_iter()
                .map(|(k, (s, t, mo))| (k, (s, t.secs, mo)))
                .collect()
        };
    assert_eq!(
        secs(by_path(&listing.entries)),
        secs(by_path(&local.entries))
    );

    let staging = s.scratch("staging")?;
    let report = Fetcher::new(&source, &staging)
        .parallel(2)
        .min_batch_bytes(0)
        .retry(no_retry())
        .fetch(&Plan::all(&listing.entries), &NoProgress, &cancel);
    check_landed(&report, &remote, names.len())?;
    Ok(())
}

#[test]
fn remote_hash_is_checked() -> TestResult {
    let Some(s) = sshd_or_skip("remote_hash_is_checked") else {
        return Ok(());
    };
    let remote = s.scratch("remote")?;
    write_tree(&remote, &nasty_names())?;
    let cancel = AtomicBool::new(false);
    let source = rsync_source(&s, &remote).with_remote_hash();
    let listing = source.list(&cancel)?;
    for e in &listing.entries {
        let want = ContentHash::of(&fs::read(remote.join(e.path_os()))?);
        assert_eq!(e.hash, Some(want), "{}", e.display_path());
    }
    let staging = s.scratch("staging")?;
    let report =
        Fetcher::new(&source, &staging).fetch(&Plan::all(&listing.entries), &NoProgress, &cancel);
    check_landed(&report, &remote, listing.entries.len())?;
    assert!(report.landed().all(|(_, l)| l.remote_hash_verified));

    // A file that changes between listing and transfer (same size, same mtime) is caught.
    let victim = listing
        .entries
        .iter()
        .find(|e| e.size > 10)
        .ok_or("no file")?
        .clone();
    let path = remote.join(victim.path_os());
    let mut bytes = fs::read(&path)?;
    bytes[0] ^= 0xff;
    fs::write(&path, &bytes)?;
    fs::File::options()
        .write(true)
        .open(&path)?
        .set_modified(victim.mtime.to_system_time())?;
    let staging2 = s.scratch("staging2")?;
    let report = Fetcher::new(&source, &staging2).fetch(
        &Plan::all(std::slice::from_ref(&victim)),
        &NoProgress,
        &cancel,
    );
    let (_, err) = report.failed().next().ok_or("expected a failure")?;
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    Ok(())
}

#[test]
fn changed_file_becomes_a_new_version() -> TestResult {
    let Some(s) = sshd_or_skip("changed_file_becomes_a_new_version") else {
        return Ok(());
    };
    let remote = s.scratch("remote")?;
    write_tree(&remote, &nasty_names())?;
    let cancel = AtomicBool::new(false);
    for (round, source) in [
        Box::new(rsync_source(&s, &remote)) as Box<dyn Source>,
        Box::new(sftp_source(&s, &remote)),
    ]
    .into_iter()
    .enumerate()
    {
        let listing = source.list(&cancel)?;
        let staging = s.scratch(&format!("staging-{}", source.describe().len()))?;
        let first = Fetcher::new(&*source, &staging).fetch(
            &Plan::all(&listing.entries),
            &NoProgress,
            &cancel,
        );
        check_landed(&first, &remote, listing.entries.len())?;
        // The caller records what landed...
        let mut known = KnownSet::new();
        for (f, l) in first.landed() {
            known.insert(
                f.entry.path.clone(),
                KnownFile {
                    size: l.size,
                    mtime: l.mtime,
                    hash: Some(l.hash),
                },
            );
        }
        // ...nothing changed: nothing to fetch.
        let again = plan(&source.list(&cancel)?.entries, &known);
        assert!(again.files.is_empty(), "{:?}", again.files);

        // Change one file (content and mtime); add one.
        let changed = b"new\nline".as_slice();
        let path = remote.join(std::ffi::OsStr::from_bytes(changed));
        // Each round's version differs in size and mtime from the last round's (which the
        // next source knows as the current one): a fast machine runs both rounds within
        // one second, and size + mtime (seconds) is all a listing compares.
        fs::write(
            &path,
            format!("a new version, round {round}").repeat(round + 1),
        )?;
        fs::File::options().write(true).open(&path)?.set_modified(
            std::time::SystemTime::now() + Duration::from_secs(7 + 60 * round as u64),
        )?;
        fs::write(remote.join("added"), b"added")?;
        let p = plan(&source.list(&cancel)?.entries, &known);
        let mut got: Vec<(Vec<u8>, bool)> = p
            .files
            .iter()
            .map(|f| (f.entry.path.clone(), matches!(f.change, fetch::Change::New)))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![(b"added".to_vec(), true), (changed.to_vec(), false)]
        );
        let second = Fetcher::new(&*source, &staging).fetch(&p, &NoProgress, &cancel);
        check_landed(&second, &remote, 2)?;
        // Put the tree back for the next source.
        fs::remove_file(remote.join("added"))?;
    }
    Ok(())
}

/// Cancels the run once `after` bytes went by.
struct CancelAfter<'a> {
    after: u64,
    cancel: &'a AtomicBool,
}

impl Progress for CancelAfter<'_> {
    fn update(&self, s: &Snapshot) {
        if s.bytes_done >= self.after {
            self.cancel.store(true, Ordering::Relaxed);
        }
    }
}

fn big_file(root: &Path, size: usize) -> std::io::Result<PathBuf> {
    // Incompressible, so no transport can cheat.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let p = root.join("big file");
    fs::write(&p, data)?;
    Ok(p)
}

fn resume_case(s: &TestSshd, source: &dyn Source, remote: &Path, tag: &str) -> TestResult {
    const SIZE: usize = 32 << 20;
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let the_plan = Plan::all(&listing.entries);
    let staging = s.scratch(tag)?;

    // First run: slowed down to 4 MiB/s and killed after 4 MiB arrived (rsync reports
    // progress once a second, so a few more MiB arrive before the kill).
    let killer = CancelAfter {
        after: 4 << 20,
        cancel: &cancel,
    };
    let first = Fetcher::new(source, &staging)
        .bandwidth_limit(4 << 20)
        .retry(no_retry())
        .fetch(&the_plan, &killer, &cancel);
    assert!(
        matches!(first.stopped, Some(Error::Cancelled)),
        "{:?}",
        first.stopped
    );
    assert_eq!(first.landed().count(), 0);
    let partial = staging.join(fetch::PARTIAL_DIR).join("big file");
    let partial_len = fs::metadata(&partial)?.len();
    assert!(
        partial_len > 0 && partial_len < SIZE as u64,
        "partial file: {partial_len} bytes"
    );

    // Second run resumes: it receives less than the file, about the part that was missing.
    let cancel = AtomicBool::new(false);
    let second = Fetcher::new(source, &staging).fetch(&the_plan, &NoProgress, &cancel);
    check_landed(&second, remote, 1)?;
    let wire = second.wire_bytes.ok_or("no wire byte count")?;
    let missing = SIZE as u64 - partial_len;
    eprintln!("{tag}: partial {partial_len}, missing {missing}, received {wire}");
    assert!(wire < SIZE as u64, "received {wire} of {SIZE}");
    assert!(
        wire < missing + (SIZE as u64 - missing) / 2,
        "received {wire}, only {missing} were missing"
    );
    assert!(!partial.exists());
    Ok(())
}

#[test]
fn killed_transfer_resumes_without_resending() -> TestResult {
    let Some(s) = sshd_or_skip("killed_transfer_resumes_without_resending") else {
        return Ok(());
    };
    let remote = s.scratch("remote")?;
    big_file(&remote, 32 << 20)?;
    resume_case(&s, &rsync_source(&s, &remote), &remote, "staging-rsync")?;
    resume_case(&s, &sftp_source(&s, &remote), &remote, "staging-sftp")?;
    Ok(())
}

/// Drops the connection (server side) once, after `after` bytes arrived.
struct DropConnection<'a> {
    after: u64,
    sshd: &'a TestSshd,
    done: AtomicBool,
    retries: std::sync::atomic::AtomicU32,
}

impl Progress for DropConnection<'_> {
    fn update(&self, s: &Snapshot) {
        if s.bytes_done >= self.after && !self.done.swap(true, Ordering::SeqCst) {
            let killed = self.sshd.kill_sessions().unwrap_or(0);
            assert!(killed > 0, "no ssh session to kill");
        }
    }
    fn retrying(&self, _: u32, _: Duration, _: &Error) {
        self.retries.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropped_connection_is_retried_and_resumes() -> TestResult {
    let Some(s) = sshd_or_skip("dropped_connection_is_retried_and_resumes") else {
        return Ok(());
    };
    const SIZE: u64 = 32 << 20;
    let remote = s.scratch("remote")?;
    big_file(&remote, SIZE as usize)?;
    for (tag, source) in [
        (
            "rsync",
            Box::new(rsync_source(&s, &remote)) as Box<dyn Source>,
        ),
        ("sftp", Box::new(sftp_source(&s, &remote))),
    ] {
        let cancel = AtomicBool::new(false);
        let listing = source.list(&cancel)?;
        let staging = s.scratch(&format!("staging-drop-{tag}"))?;
        let dropper = DropConnection {
            after: 4 << 20,
            sshd: &s,
            done: AtomicBool::new(false),
            retries: Default::default(),
        };
        let report = Fetcher::new(&*source, &staging)
            .bandwidth_limit(4 << 20)
            .retry(RetryPolicy {
                attempts: 3,
                initial_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(1),
            })
            .fetch(&Plan::all(&listing.entries), &dropper, &cancel);
        assert!(
            dropper.done.load(Ordering::SeqCst),
            "{tag}: connection never dropped"
        );
        assert!(
            dropper.retries.load(Ordering::SeqCst) >= 1,
            "{tag}: no retry"
        );
        check_landed(&report, &remote, 1)?;
        // Only the successful attempt counts: it resumed, so it received less than the file.
        let wire = report.wire_bytes.ok_or("no wire byte count")?;
        eprintln!("{tag}: after the drop, received {wire} of {SIZE}");
        assert!(
            wire < SIZE,
            "{tag}: received {wire} of {SIZE} after the drop"
        );
    }
    Ok(())
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::Unreachable { .. } => "unreachable",
        Error::AuthFailed { .. } => "auth",
        Error::HostKeyMismatch { .. } => "mismatch",
        Error::HostKeyUnknown { .. } => "unknown",
        _ => "other",
    }
}

#[test]
fn connection_failures_are_distinct_errors() -> TestResult {
    let Some(s) = sshd_or_skip("connection_failures_are_distinct_errors") else {
        return Ok(());
    };
    let remote = s.scratch("remote")?;
    fs::write(remote.join("f"), b"x")?;
    let cancel = AtomicBool::new(false);
    let target = |config: PathBuf| SshTarget::new(HOST_ALIAS).config_file(config);
    let unreachable = s.dir.join("unreachable");
    fs::write(
        &unreachable,
        format!(
            "Host {HOST_ALIAS}\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
            closed_port()?,
            s.user_key.display(),
            s.known_hosts.display()
        ),
    )?;
    let cases = [
        (unreachable, "unreachable"),
        (
            s.client_config("wrong-key", &s.wrong_key, &s.known_hosts)?,
            "auth",
        ),
        (
            s.client_config("wrong-host-key", &s.user_key, &s.wrong_known_hosts)?,
            "mismatch",
        ),
        (
            s.client_config("unknown-host", &s.user_key, &s.empty_known_hosts)?,
            "unknown",
        ),
    ];
    let entry = LocalSource::new(&remote).list(&cancel)?.entries;
    for (config, want) in cases {
        let rsync = SshSource::new(target(config.clone()), remote.as_os_str());
        let sftp = SftpSource::new(target(config.clone()), &remote);
        // Listing, both ways.
        for source in [&rsync as &dyn Source, &sftp] {
            let e = source.list(&cancel).err().ok_or("listing should fail")?;
            assert_eq!(kind(&e), want, "{}: {e}", source.describe());
            assert!(!e.to_string().is_empty());
            // Transfer: the run stops with the same error, without retrying a lost cause.
            let staging = s.scratch("staging-err")?;
            let report = Fetcher::new(source, &staging)
                .parallel(2)
                .min_batch_bytes(0)
                .retry(RetryPolicy {
                    attempts: 2,
                    initial_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(50),
                })
                .fetch(&Plan::all(&entry), &NoProgress, &cancel);
            let stopped = report.stopped.as_ref().ok_or("transfer should stop")?;
            assert_eq!(kind(stopped), want, "{}: {stopped}", source.describe());
            assert_eq!(report.landed().count(), 0);
        }
    }
    Ok(())
}

#[test]
fn missing_remote_root_is_a_remote_command_error() -> TestResult {
    let Some(s) = sshd_or_skip("missing_remote_root_is_a_remote_command_error") else {
        return Ok(());
    };
    let cancel = AtomicBool::new(false);
    let e = rsync_source(&s, &s.dir.join("no such dir"))
        .list(&cancel)
        .err()
        .ok_or("should fail")?;
    assert!(
        matches!(e, Error::RemoteCommand { command: "cd", .. }),
        "{e}"
    );
    Ok(())
}

#[test]
fn staging_limit_stops_cleanly() -> TestResult {
    let Some(s) = sshd_or_skip("staging_limit_stops_cleanly") else {
        return Ok(());
    };
    let remote = s.scratch("remote")?;
    for i in 0..4 {
        fs::write(remote.join(format!("f{i}")), vec![i as u8; 1 << 20])?;
    }
    let cancel = AtomicBool::new(false);
    let source = rsync_source(&s, &remote);
    let mut entries = source.list(&cancel)?.entries;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let staging = s.scratch("staging")?;
    let limit = StagingLimit {
        max_bytes: Some((5 << 20) / 2),
        min_free_bytes: None,
    };
    let report = Fetcher::new(&source, &staging).staging_limit(limit).fetch(
        &Plan::all(&entries),
        &NoProgress,
        &cancel,
    );
    assert_eq!(report.landed().count(), 2);
    assert_eq!(report.not_attempted, 2);
    match &report.stopped {
        Some(Error::StagingFull {
            used,
            needed,
            limit,
            ..
        }) => {
            assert_eq!((*used, *needed, *limit), (2 << 20, 1 << 20, (5 << 20) / 2));
        }
        other => panic!("expected StagingFull, got {other:?}"),
    }
    // Nothing beyond the limit was written.
    let staged: u64 = walk_size(&staging);
    assert_eq!(staged, 2 << 20);

    // A free-space floor larger than the disk stops before the first file.
    let report = Fetcher::new(&source, s.scratch("staging2")?)
        .staging_limit(StagingLimit {
            max_bytes: None,
            min_free_bytes: Some(u64::MAX / 2),
        })
        .fetch(&Plan::all(&entries), &NoProgress, &cancel);
    assert!(matches!(
        report.stopped,
        Some(Error::StagingFull {
            kind: "min free bytes on disk",
            ..
        })
    ));
    assert_eq!(report.files.len(), 0);
    Ok(())
}

fn walk_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = e.metadata();
            match m {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

//! The fetcher on the local source, and with fault-injecting sources: retries, fatal
//! errors, cancellation, resume, progress, vanished and changing files.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use fetch::{
    ContentHash, Error, FetchReport, Fetcher, FileResult, Listing, LocalSource, NoProgress, Plan,
    Progress, RetryPolicy, Sink, Snapshot, Source, StagingLimit, Transfer, TransferStats,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn tree(files: &[(&str, usize)]) -> Result<tempfile::TempDir, std::io::Error> {
    let dir = tempfile::tempdir()?;
    for (i, (name, size)) in files.iter().enumerate() {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(
            p,
            (0..*size).map(|j| (j * 7 + i) as u8).collect::<Vec<u8>>(),
        )?;
    }
    Ok(dir)
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// A source that fails its first `fail_first` transfers with `make_error`, then behaves.
#[derive(Debug)]
struct Faulty {
    inner: LocalSource,
    fail_first: u32,
    calls: AtomicU32,
    fatal: bool,
}

impl Source for Faulty {
    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }
    fn list(&self, cancel: &AtomicBool) -> Result<Listing, Error> {
        self.inner.list(cancel)
    }
    fn transfer(&self, job: &Transfer<'_>, sink: &dyn Sink) -> Result<TransferStats, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            let (host, detail) = ("faulty".to_string(), "injected".to_string());
            return Err(if self.fatal {
                Error::AuthFailed { host, detail }
            } else {
                Error::Ssh { host, detail }
            });
        }
        self.inner.transfer(job, sink)
    }
}

#[derive(Default)]
struct Recorder {
    retries: AtomicU32,
    done: Mutex<Vec<Vec<u8>>>,
    last: Mutex<Snapshot>,
    started: Mutex<Option<(u64, u64)>>,
}

impl Progress for Recorder {
    fn start(&self, files: u64, bytes: u64) {
        *self.started.lock().expect("recorder lock") = Some((files, bytes));
    }
    fn update(&self, s: &Snapshot) {
        *self.last.lock().expect("recorder lock") = *s;
    }
    fn file_done(&self, r: &FileResult) {
        self.done
            .lock()
            .expect("recorder lock")
            .push(r.entry.path.clone());
    }
    fn retrying(&self, _: u32, _: Duration, _: &Error) {
        self.retries.fetch_add(1, Ordering::SeqCst);
    }
}

fn all_landed(report: &FetchReport, root: &Path, n: usize) -> TestResult {
    assert!(report.is_complete(), "{:?}", report.stopped);
    assert_eq!(report.landed().count(), n);
    for (f, l) in report.landed() {
        let want = fs::read(root.join(f.entry.path_os()))?;
        assert_eq!(fs::read(&l.staged_path)?, want);
        assert_eq!(l.hash, ContentHash::of(&want));
    }
    Ok(())
}

#[test]
fn retries_transient_failures_and_reports_progress() -> TestResult {
    let src = tree(&[("a", 10), ("b/c", 70_000), ("d", 0), ("e", 5)])?;
    let source = Faulty {
        inner: LocalSource::new(src.path()),
        fail_first: 2,
        calls: AtomicU32::new(0),
        fatal: false,
    };
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let staging = tempfile::tempdir()?;
    let rec = Recorder::default();
    let report = Fetcher::new(&source, staging.path())
        .parallel(1)
        .retry(quick_retry(3))
        .fetch(&Plan::all(&listing.entries), &rec, &cancel);
    all_landed(&report, src.path(), 4)?;
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    assert_eq!(rec.retries.load(Ordering::SeqCst), 2);
    assert_eq!(*rec.started.lock().unwrap(), Some((4, 70_015)));
    let last = *rec.last.lock().unwrap();
    assert_eq!((last.files_done, last.files_total), (4, 4));
    assert_eq!((last.bytes_done, last.bytes_total), (70_015, 70_015));
    assert_eq!(rec.done.lock().unwrap().len(), 4);
    Ok(())
}

#[test]
fn gives_up_after_the_last_attempt() -> TestResult {
    let src = tree(&[("a", 10)])?;
    let source = Faulty {
        inner: LocalSource::new(src.path()),
        fail_first: 10,
        calls: AtomicU32::new(0),
        fatal: false,
    };
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let staging = tempfile::tempdir()?;
    let report = Fetcher::new(&source, staging.path())
        .retry(quick_retry(3))
        .fetch(&Plan::all(&listing.entries), &NoProgress, &cancel);
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    assert!(matches!(report.stopped, Some(Error::Ssh { .. })));
    let (_, e) = report.failed().next().ok_or("a failed file")?;
    assert!(matches!(e, Error::NotTransferred { .. }));
    Ok(())
}

#[test]
fn fatal_errors_are_not_retried() -> TestResult {
    let src = tree(&[("a", 10), ("b", 10), ("c", 10)])?;
    let source = Faulty {
        inner: LocalSource::new(src.path()),
        fail_first: 100,
        calls: AtomicU32::new(0),
        fatal: true,
    };
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let staging = tempfile::tempdir()?;
    let report = Fetcher::new(&source, staging.path())
        .parallel(1)
        .retry(quick_retry(5))
        .fetch(&Plan::all(&listing.entries), &NoProgress, &cancel);
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    assert!(matches!(report.stopped, Some(Error::AuthFailed { .. })));
    assert_eq!(report.landed().count(), 0);
    Ok(())
}

#[test]
fn cancelled_before_start_does_nothing() -> TestResult {
    let src = tree(&[("a", 10)])?;
    let source = LocalSource::new(src.path());
    let cancel = AtomicBool::new(true);
    let listing = source.list(&AtomicBool::new(false))?;
    let staging = tempfile::tempdir()?;
    let report = Fetcher::new(&source, staging.path()).fetch(
        &Plan::all(&listing.entries),
        &NoProgress,
        &cancel,
    );
    assert!(matches!(report.stopped, Some(Error::Cancelled)));
    assert_eq!(report.landed().count(), 0);
    assert_eq!(report.not_attempted, 1);
    Ok(())
}

struct CancelAfter<'a>(u64, &'a AtomicBool);
impl Progress for CancelAfter<'_> {
    fn update(&self, s: &Snapshot) {
        if s.bytes_done >= self.0 {
            self.1.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn local_copy_resumes_from_partial() -> TestResult {
    const SIZE: usize = 4 << 20;
    let src = tree(&[("big", SIZE)])?;
    let source = LocalSource::new(src.path());
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let plan = Plan::all(&listing.entries);
    let staging = tempfile::tempdir()?;
    let first = Fetcher::new(&source, staging.path())
        .bandwidth_limit(8 << 20)
        .fetch(&plan, &CancelAfter(1 << 20, &cancel), &cancel);
    assert!(matches!(first.stopped, Some(Error::Cancelled)));
    let partial = staging.path().join(fetch::PARTIAL_DIR).join("big");
    let have = fs::metadata(&partial)?.len();
    assert!(have >= 1 << 20 && have < SIZE as u64, "{have}");

    let cancel = AtomicBool::new(false);
    let second = Fetcher::new(&source, staging.path()).fetch(&plan, &NoProgress, &cancel);
    all_landed(&second, src.path(), 1)?;
    assert_eq!(second.wire_bytes, Some(SIZE as u64 - have));

    // A partial file of another version (different mtime) is not trusted.
    let third_staging = tempfile::tempdir()?;
    let pdir = third_staging.path().join(fetch::PARTIAL_DIR);
    fs::create_dir_all(&pdir)?;
    fs::write(pdir.join("big"), vec![0xAAu8; 1000])?;
    let third = Fetcher::new(&source, third_staging.path()).fetch(&plan, &NoProgress, &cancel);
    all_landed(&third, src.path(), 1)?;
    assert_eq!(third.wire_bytes, Some(SIZE as u64));
    Ok(())
}

#[test]
fn vanished_and_changing_files() -> TestResult {
    let src = tree(&[("stays", 100), ("vanishes", 100), ("grows", 100)])?;
    let source = LocalSource::new(src.path());
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    fs::remove_file(src.path().join("vanishes"))?;
    fs::write(src.path().join("grows"), vec![1u8; 300])?;
    let staging = tempfile::tempdir()?;
    let report = Fetcher::new(&source, staging.path()).parallel(1).fetch(
        &Plan::all(&listing.entries),
        &NoProgress,
        &cancel,
    );
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    let mut landed: Vec<(String, bool)> = report
        .landed()
        .map(|(f, l)| (f.entry.display_path(), l.changed_since_listing))
        .collect();
    landed.sort();
    assert_eq!(
        landed,
        vec![("grows".to_string(), true), ("stays".to_string(), false)]
    );
    let failed: Vec<String> = report
        .failed()
        .map(|(f, _)| f.entry.display_path())
        .collect();
    assert_eq!(failed, vec!["vanishes".to_string()]);
    assert!(!report.is_complete());
    Ok(())
}

#[test]
fn staging_limit_counts_what_is_already_there() -> TestResult {
    let src = tree(&[("a", 1000), ("b", 1000)])?;
    let source = LocalSource::new(src.path());
    let cancel = AtomicBool::new(false);
    let listing = source.list(&cancel)?;
    let staging = tempfile::tempdir()?;
    fs::write(staging.path().join("left over"), vec![0u8; 1500])?;
    let report = Fetcher::new(&source, staging.path())
        .staging_limit(StagingLimit {
            max_bytes: Some(3000),
            min_free_bytes: None,
        })
        .fetch(&Plan::all(&listing.entries), &NoProgress, &cancel);
    assert_eq!(report.landed().count(), 1);
    assert_eq!(report.not_attempted, 1);
    let Some(Error::StagingFull {
        used,
        needed,
        limit,
        ..
    }) = report.stopped
    else {
        panic!("expected StagingFull, got {:?}", report.stopped);
    };
    assert_eq!((used, needed, limit), (2500, 1000, 3000));
    Ok(())
}

#[test]
fn a_pruned_listing_never_walks_what_it_leaves_out() -> TestResult {
    let src = tree(&[
        ("keep/a", 10),
        ("skip/b", 10),
        ("skip/deep/c", 10),
        ("x.tmp", 10),
        ("keep/y.tmp", 10),
    ])?;
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let source = LocalSource::new(src.path()).pruned(fetch::Prune::new(move |path, is_dir| {
        let p = String::from_utf8_lossy(path).into_owned();
        let out = (is_dir && p == "skip") || p.ends_with(".tmp");
        if let Ok(mut s) = record.lock() {
            s.push((p, is_dir));
        }
        out
    }));
    let listing = source.list(&AtomicBool::new(false))?;
    let mut listed: Vec<String> = listing.entries.iter().map(|e| e.display_path()).collect();
    listed.sort();
    assert_eq!(listed, vec!["keep/a".to_string()]);
    assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
    let seen = seen.lock().map_err(|_| "poisoned")?.clone();
    assert!(seen.contains(&("skip".to_string(), true)), "{seen:?}");
    assert!(
        !seen.iter().any(|(p, _)| p.starts_with("skip/")),
        "walked into a pruned directory: {seen:?}"
    );
    Ok(())
}

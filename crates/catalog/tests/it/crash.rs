//! Crash safety: a child process writing the catalog is killed with SIGKILL in the middle of
//! a transaction; the catalog must pass its checks and hold whole transactions only.
//!
//! The test re-executes its own binary as the child (selected by `CATALOG_CRASH_CHILD`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use catalog::{Catalog, Error, FileQuery};

use crate::support::{TestResult, file, h, pack, put, t, tape};

const CHILD_ENV: &str = "CATALOG_CRASH_CHILD";
const BATCH: u64 = 300;

/// The child's work: batches of BATCH files, each fully fetched, packed and written, one
/// transaction per batch. Prints "committed N" after each commit. With `pause`, it prints
/// "inside" halfway through batch 4 and then blocks forever inside the transaction.
fn child(path: &Path, pause: bool) -> catalog::Result<()> {
    let mut cat = Catalog::open(path)?;
    let (src, vol) = cat.write(|tx| {
        let src = tx.add_source("crash", "/", t(0))?;
        let vol = tx.add_tape(&tape("CRASH1"), t(0))?;
        Ok::<_, Error>((src, vol))
    })?;
    for batch in 0u64.. {
        cat.write(|tx| {
            for i in 0..BATCH {
                let n = batch * BATCH + i;
                let s = tx.record_scan(src, &file(&format!("b{batch}/f{i}"), 10, 1), t(1))?;
                tx.record_fetched(s.version, &h(n), 10)?;
                let p = pack(tx, &[s.version], n)?;
                put(tx, p, vol, n)?;
                if pause && batch == 4 && i == BATCH / 2 {
                    println!("inside");
                    loop {
                        std::thread::park();
                    }
                }
            }
            Ok::<_, Error>(())
        })?;
        println!("committed {}", batch + 1);
    }
    Ok(())
}

fn spawn(path: &Path, mode: &str) -> std::io::Result<std::process::Child> {
    Command::new(std::env::current_exe()?)
        .args([
            "crash::sigkill_mid_transaction_leaves_whole_transactions",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
}

/// Checks the killed child's catalog: sound, and holding exactly whole batches.
fn verify(path: &Path, at_least: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let cat = Catalog::open(path)?;
    let report = cat.check()?;
    assert!(report.is_ok(), "{:?}", report.problems);
    let s = cat.read().summary()?;
    assert_eq!(s.files % BATCH, 0, "a partial batch survived: {s:?}");
    assert_eq!(s.files, s.versions);
    assert_eq!(s.files, s.contents);
    assert_eq!(s.files, s.packs);
    assert_eq!(s.packs_unwritten, 0);
    let batches = s.files / BATCH;
    assert!(batches >= at_least, "{batches} < {at_least}");
    let used = cat.read().volume_summaries()?;
    assert_eq!(used[0].locations, s.files);
    assert_eq!(
        cat.read().search(&FileQuery::default())?.len() as u64,
        s.files
    );
    Ok(batches)
}

#[test]
fn sigkill_mid_transaction_leaves_whole_transactions() -> TestResult {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (mode, path) = spec.split_once(':').ok_or("bad child spec")?;
        child(Path::new(path), mode == "pause")?;
        return Ok(());
    }
    let dir = tempfile::tempdir()?;

    // 1. Deterministic: killed while blocked inside the fifth transaction.
    let db = dir.path().join("paused.db");
    let mut c = spawn(&db, "pause")?;
    let out = c.stdout.take().ok_or("no stdout")?;
    let mut committed = 0;
    for line in BufReader::new(out).lines() {
        let line = line?;
        if line == "inside" {
            c.kill()?; // SIGKILL
            break;
        }
        if let Some(n) = line.strip_prefix("committed ") {
            committed = n.parse()?;
        }
    }
    c.wait()?;
    assert_eq!(committed, 4);
    assert_eq!(verify(&db, 4)?, 4, "the open transaction must be absent");

    // 2. Killed at arbitrary points while committing continuously.
    for round in 0..3u64 {
        let db = dir.path().join(format!("free{round}.db"));
        let mut c = spawn(&db, "run")?;
        let out = c.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        let mut committed = 0;
        while committed < 2 + round {
            let line = lines.next().ok_or("child ended early")??;
            if let Some(n) = line.strip_prefix("committed ") {
                committed = n.parse()?;
            }
        }
        // Let it get somewhere into the next transaction, then kill.
        std::thread::sleep(std::time::Duration::from_millis(7 * round + 3));
        c.kill()?;
        c.wait()?;
        verify(&db, committed)?;
        // And the catalog is writable again.
        let mut cat = Catalog::open(&db)?;
        cat.write(|tx| tx.add_source("after", "/", t(9)))?;
    }
    Ok(())
}

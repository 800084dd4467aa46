//! The pipelined `run` against the virtual library, running the built binary: the staging
//! bound holds (sources copied into staging), a source read in place never touches
//! staging, files changed between get and pack are read again, and SIGKILL at seeded
//! random points loses nothing and duplicates nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{noise, ok, same_tree, tb};

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    ws: PathBuf,
    root: PathBuf,
}

/// A source of `small` files of 256 KiB, one 3 MiB file and a duplicate of a small one, in
/// a workspace whose `run.staging_limit` is `limit`; with `in_place` false the source is
/// copied into staging (`read_in_place = false`).
fn setup(small: usize, limit: &str, in_place: bool) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("many")).unwrap();
    for i in 0..small {
        std::fs::write(
            src.join(format!("many/f{i:03}.bin")),
            noise(&format!("f{i}"), 256 << 10),
        )
        .unwrap();
    }
    std::fs::write(src.join("big.bin"), noise("big", 3 << 20)).unwrap();
    std::fs::write(src.join("copy-of-f000.bin"), noise("f0", 256 << 10)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let ws = root.join("ws");
    let source = format!("s={}", src.display());
    ok(
        &root,
        &[
            "init",
            ws.to_str().unwrap(),
            "--source",
            &source,
            "--capacity",
            "64MiB",
        ],
    );
    let cfg = ws.join("tapebackup.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("[run]"),
        "init writes the [run] section:\n{text}"
    );
    let text = text.replace(
        "staging_limit = \"1GiB\"",
        &format!("staging_limit = \"{limit}\""),
    );
    assert!(text.contains(limit), "{text}");
    assert!(text.contains("read_in_place = true"), "{text}");
    let text = text.replace(
        "read_in_place = true",
        &format!("read_in_place = {in_place}"),
    );
    std::fs::write(&cfg, text).unwrap();
    Setup {
        _tmp: tmp,
        src,
        ws,
        root,
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(d) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn dir_bytes(d: &Path) -> u64 {
    walk(d)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Everything is in the catalog once, on tape, readable and restorable byte for byte.
fn check_complete(s: &Setup) {
    ok(&s.ws, &["catalog", "check"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["to_pack"], 0, "{status}");
    assert_eq!(status["packs_unwritten"], 0, "{status}");
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
    let to = s.root.join("restored");
    let _ = std::fs::remove_dir_all(&to);
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));
    // Nothing left behind in staging or as a pending pack.
    assert!(walk(&s.ws.join("staging/content")).is_empty());
    assert!(walk(&s.ws.join("packs")).iter().all(|p| {
        !p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".pending")
    }),);
}

/// `run --json` while another thread watches the staging and pack directories: the
/// report and the most bytes staging held at any moment seen. `run` seals packs straight
/// onto the (LTFS) tape, so the pack directory must never hold a pack file (the
/// encrypted catalog snapshot is made in a scratch directory inside it).
fn run_watching_staging(s: &Setup) -> (serde_json::Value, u64) {
    let staging = s.ws.join("staging");
    let packs = s.ws.join("packs");
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let pack_files = AtomicU64::new(0);
    let out = std::thread::scope(|sc| {
        sc.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(dir_bytes(&staging), Ordering::Relaxed);
                // Pack files and pending packs (not the catalog snapshot's scratch dir).
                let files = std::fs::read_dir(&packs).map_or(0, |rd| {
                    rd.filter_map(Result::ok)
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .count()
                });
                pack_files.fetch_max(files as u64, Ordering::Relaxed);
                std::thread::yield_now();
            }
        });
        let out = tb(&s.ws, &["--json", "run"]);
        done.store(true, Ordering::Relaxed);
        out
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        pack_files.load(Ordering::Relaxed),
        0,
        "a pack file was written to disk during run"
    );
    (r, peak.load(Ordering::Relaxed))
}

#[test]
fn staging_stays_under_its_limit_while_get_pack_and_write_overlap() {
    // 10 MiB to fetch through a 1 MiB staging limit: get can only finish if pack empties
    // staging while it runs. Staging is watched from outside: it never holds more than the
    // limit, except one file larger than the limit, alone (big.bin, 3 MiB).
    let s = setup(36, "1MiB", false);
    let (r, seen) = run_watching_staging(&s);
    assert_eq!(r["get"]["fetched"], 39, "{r}");
    // 36 small + big + empty; the copy shares f000's content. Small files are bundled
    // with whatever else was fetched by then, so how many packs depends on the timing.
    assert_eq!(r["pack"]["files"], 38, "{r}");
    let packs = r["pack"]["packs"].as_u64().unwrap();
    assert!((2..=38).contains(&packs), "{r}");
    assert_eq!(r["write"]["packs"], packs, "{r}");
    let limit = 1u64 << 20;
    let largest = 3u64 << 20;
    let reported = r["staged_peak"].as_u64().unwrap();
    assert!(reported <= largest.max(limit), "{r}");
    // On disk, the copy of f000 fetched after f000 was packed waits too (256 KiB): such
    // contents are only removed at the end of the run.
    assert!(
        seen <= largest.max(limit) + (256 << 10),
        "staging held {seen} bytes (limit {limit})"
    );
    check_complete(&s);

    // A second run finds nothing to do and touches no tape.
    let again = ok(&s.ws, &["run"]);
    assert!(
        again.contains("fetched 0 file(s)") && again.contains("wrote 0 pack(s)"),
        "{again}"
    );
}

#[test]
fn a_source_read_in_place_never_touches_staging() {
    // The same tree read in place: hashed by get, read again by pack; staging stays empty
    // for the whole run (watched from outside) and nothing of the source is removed.
    let s = setup(12, "1MiB", true);
    let (r, seen) = run_watching_staging(&s);
    assert_eq!(r["get"]["fetched"], 15, "{r}");
    assert_eq!(r["pack"]["files"], 14, "{r}");
    assert!(
        r["pack"]["packs"].as_u64().unwrap() < 14,
        "small files bundled: {r}"
    );
    assert_eq!(seen, 0, "staging was used");
    assert_eq!(walk(&s.src).len(), 15);
    check_complete(&s);
}

#[test]
fn files_changed_between_get_and_pack_are_read_again() {
    let s = setup(4, "1GiB", true);
    let out = ok(&s.ws, &["get"]);
    assert!(out.contains("fetched 7 file(s)"), "{out}");
    // After get hashed them: one file rewritten with other bytes of the same size (the
    // mtime may even stay within the same second), one grown, one removed. (Not f000:
    // copy-of-f000.bin has its content, which is then packed from the copy.)
    let f3 = s.src.join("many/f003.bin");
    std::fs::write(&f3, noise("f3 again", 256 << 10)).unwrap();
    std::fs::write(s.src.join("many/f001.bin"), noise("f1 longer", 300 << 10)).unwrap();
    std::fs::remove_file(s.src.join("many/f002.bin")).unwrap();
    let out = ok(&s.ws, &["pack"]);
    assert!(
        out.contains("many/f003.bin: content changed since get"),
        "{out}"
    );
    assert!(
        out.contains("many/f001.bin: size changed since get"),
        "{out}"
    );
    assert!(out.contains("many/f002.bin: vanished since get"), "{out}");
    ok(&s.ws, &["catalog", "check"]);
    // The next get reads the two changed files again and marks the removed one deleted
    // (catalog times are whole seconds: a file counts as unseen when it was last seen
    // before the second in which the scan started).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = ok(&s.ws, &["get"]);
    assert!(out.contains("fetched 2 file(s)"), "{out}");
    assert!(out.contains("1 deleted"), "{out}");
    let out = ok(&s.ws, &["pack"]);
    assert!(!out.contains("warning"), "{out}");
    ok(&s.ws, &["write"]);
    check_complete(&s);
}

#[test]
fn files_changed_after_get_are_left_out_of_streamed_packs() {
    // get hashes the tree; then files change; `run` fetches the changed ones as new
    // versions and streams every waiting content onto the tape, reading each file again:
    // the old versions no longer match and are left out of their packs (their fetch is
    // forgotten in the transaction that records the packs), the new ones go in.
    let s = setup(4, "1GiB", true);
    let out = ok(&s.ws, &["get"]);
    assert!(out.contains("fetched 7 file(s)"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(s.src.join("many/f003.bin"), noise("f3 again", 256 << 10)).unwrap();
    std::fs::write(s.src.join("many/f001.bin"), noise("f1 longer", 300 << 10)).unwrap();
    std::fs::remove_file(s.src.join("many/f002.bin")).unwrap();
    let (r, seen) = run_watching_staging(&s);
    assert_eq!(seen, 0, "staging was used");
    let changed: Vec<String> = r["pack"]["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    for (path, why) in [
        ("many/f003.bin", "content changed since get"),
        ("many/f001.bin", "size changed since get"),
        ("many/f002.bin", "vanished since get"),
    ] {
        assert!(
            changed.iter().any(|c| c == &format!("{path}: {why}")),
            "{path}: {changed:?}"
        );
    }
    ok(&s.ws, &["catalog", "check"]);
    // The new versions of f001 and f003 are on tape already; nothing is left to do.
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["to_pack"], 0, "{status}");
    check_complete(&s);
}

/// xorshift64*: the kill points, reproducible from the seed printed by the test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn pipelined_run_killed_at_random_points_loses_nothing() {
    let seed = std::env::var("TAPEBACKUP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_7A9E_u64);
    println!("kill seed {seed} (set TAPEBACKUP_KILL_SEED to repeat)");
    let mut rng = Rng(seed | 1);
    let s = setup(24, "2MiB", true);
    let mut finished = 0;
    for round in 0..8 {
        // Between a few ms (get) and the better part of a run (pack, write, snapshot).
        let delay = 10 + rng.below(900);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapebackup"))
            .args(["-q", "run"])
            .current_dir(&s.ws)
            .env_remove("TAPEBACKUP_CONFIG")
            .env_remove("TAPEBACKUP_CATALOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL; it may already have finished
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
        }
        println!("round {round}: killed after {delay} ms ({status})");
        // Between kills, the source changes: new files, and a changed one.
        std::fs::write(
            s.src.join(format!("many/new{round}.bin")),
            noise(&format!("new{round}"), 300 << 10),
        )
        .unwrap();
        // (A new size each time: a change within the same second shows by its size.)
        std::fs::write(
            s.src.join("many/f001.bin"),
            noise(&format!("f1 v{round}"), (200 << 10) + round * 1000),
        )
        .unwrap();
    }
    println!("{finished} of 8 runs finished before the kill");
    ok(&s.ws, &["run"]);
    check_complete(&s);
}

//! End-to-end workflow tests against the virtual library, running the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{noise, ok, tb, walk};

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    ws: PathBuf,
    root: PathBuf,
}

fn setup(capacity: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello tape\n").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("sub/big.bin"), noise("big", 6 << 20)).unwrap();
    std::fs::write(src.join("sub/deeper/dup.bin"), noise("big", 6 << 20)).unwrap();
    std::fs::write(src.join("sub/with space.txt"), b"spaces\n").unwrap();
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
            capacity,
        ],
    );
    Setup {
        _tmp: tmp,
        src,
        ws,
        root,
    }
}

fn same_tree(a: &Path, b: &Path) {
    let mut n = 0;
    for e in walk(a) {
        let rel = e.strip_prefix(a).unwrap();
        assert_eq!(
            std::fs::read(&e).unwrap(),
            std::fs::read(b.join(rel)).unwrap_or_default(),
            "{} differs",
            rel.display()
        );
        n += 1;
    }
    assert_eq!(n, walk(b).len(), "restored tree has extra files");
}

#[test]
fn init_run_verify_restore_round_trip() {
    let s = setup("64MiB");
    let key = s.ws.join("key.tbk");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // init refuses to overwrite.
    assert!(
        !tb(&s.root, &["init", s.ws.to_str().unwrap()])
            .status
            .success()
    );

    let dry = ok(&s.ws, &["get", "--dry-run"]);
    assert!(dry.contains("5 new"), "{dry}");
    let out = ok(&s.ws, &["run"]);
    assert!(out.contains("fetched 5 file(s)"), "{out}");
    assert!(out.contains("formatted"), "{out}");
    // Staged plaintext is gone once packed; duplicate content packed once.
    assert!(walk(&s.ws.join("staging/content")).is_empty());
    // Small files share one pack; each file of 1 MiB or more has its own. `run` seals
    // them straight onto the tape: no pack file is left (or ever written) on disk.
    assert!(out.contains("into 2 pack(s)"), "{out}");
    let packs: Vec<_> = walk(&s.ws.join("packs"));
    assert!(packs.is_empty(), "{packs:?}");

    // Nothing new: a second run changes nothing.
    let again = ok(&s.ws, &["run"]);
    assert!(
        again.contains("fetched 0 file(s)") && again.contains("wrote 0 pack(s)"),
        "{again}"
    );

    // A changed file becomes version 2 and goes to the appendable tape.
    std::fs::write(s.src.join("a.txt"), b"hello tape, again\n").unwrap();
    let third = ok(&s.ws, &["run"]);
    assert!(
        third.contains("1 changed") && third.contains("wrote 1 pack(s)"),
        "{third}"
    );
    assert!(!third.contains("formatted"), "{third}");

    let v = ok(&s.ws, &["verify"]);
    // Two packs from the first run (small files bundled), one from the third.
    assert!(v.contains("3 ok, 0 failed"), "{v}");
    let v = ok(&s.ws, &["verify", "--no-key", "--sample", "50%"]);
    assert!(v.contains("0 failed"), "{v}");

    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));

    // Version 1 of a.txt.
    let old = s.root.join("old");
    ok(
        &s.ws,
        &[
            "restore",
            "a.txt",
            "--version",
            "1",
            "--to",
            old.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(old.join("s/a.txt")).unwrap(), b"hello tape\n");

    let status = ok(&s.ws, &["--json", "status"]);
    let j: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(j["packs_unwritten"], 0);
    let jobs = ok(&s.ws, &["jobs"]);
    assert!(
        jobs.contains("restore") && jobs.contains("succeeded"),
        "{jobs}"
    );
    // The catalog commands default to the configured catalog.
    ok(&s.ws, &["catalog", "check"]);
    let tapes = ok(&s.ws, &["tapes"]);
    assert!(tapes.contains("VT"), "{tapes}");
}

#[test]
fn small_tapes_fill_and_span() {
    // 4 MiB cartridges: the 6 MiB pack fill tapes and span onto the next ones.
    let s = setup("4MiB");
    let out = ok(&s.ws, &["run"]);
    assert!(out.contains("is full"), "{out}");
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
}

#[test]
fn write_protected_tapes_are_skipped_then_used() {
    let s = setup("64MiB");
    ok(&s.ws, &["get"]);
    ok(&s.ws, &["pack"]);
    let lib = tape_scsi::VirtualLibrary::open(&s.ws.join("vtl")).unwrap();
    let barcodes: Vec<String> = lib.state().unwrap().cartridges.keys().cloned().collect();
    for b in &barcodes {
        lib.set_write_protect(b, true).unwrap();
    }
    let out = tb(&s.ws, &["write"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no usable tape"), "{err}");
    // Nothing recorded, packs still waiting; unprotect and the next run writes them.
    for b in &barcodes {
        lib.set_write_protect(b, false).unwrap();
    }
    let out = ok(&s.ws, &["write"]);
    assert!(out.contains("wrote 2 pack(s)"), "{out}");
}

#[test]
fn config_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tb(tmp.path(), &["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tapebackup init"));
    std::fs::write(tmp.path().join("tapebackup.toml"), "catalgo = \"x\"\n").unwrap();
    let out = tb(tmp.path(), &["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("catalgo"));
}

#[test]
fn completions_are_generated() {
    let tmp = tempfile::tempdir().unwrap();
    let bash = ok(tmp.path(), &["completions", "bash"]);
    assert!(
        bash.contains("restore") && bash.contains("--dry-run"),
        "{bash}"
    );
    assert!(
        !tb(tmp.path(), &["completions", "nosuchshell"])
            .status
            .success()
    );
}

#[test]
fn killed_runs_resume_without_loss_or_duplicates() {
    // SIGKILL `run` at several points (wherever they land: get, pack, write, snapshot),
    // then finish: nothing lost, nothing recorded twice, the tape reads back.
    let s = setup("64MiB");
    for i in 0..12u64 {
        std::fs::write(
            s.src.join(format!("sub/f{i}.bin")),
            noise(&format!("f{i}"), 1 << 20),
        )
        .unwrap();
    }
    for delay_ms in [30u64, 120, 250, 400, 700] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapebackup"))
            .args(["-q", "run"])
            .current_dir(&s.ws)
            .env_remove("TAPEBACKUP_CONFIG")
            .env_remove("TAPEBACKUP_CATALOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL; it may already have finished
        let _ = child.wait();
    }
    ok(&s.ws, &["run"]);
    ok(&s.ws, &["catalog", "check"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&s.ws, &["--json", "status"])).unwrap();
    assert_eq!(status["to_pack"], 0, "{status}");
    assert_eq!(status["packs_unwritten"], 0, "{status}");
    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains(" 0 failed"), "{v}");
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));
}

/// A source's `exclude` patterns keep files out of the backup; a file excluded after it
/// was backed up is marked deleted and its version stays restorable.
#[test]
fn excluded_files_are_left_out_and_a_later_exclusion_keeps_old_versions() {
    let s = setup("64MiB");
    std::fs::write(s.src.join("scratch.tmp"), b"temporary").unwrap();
    std::fs::create_dir_all(s.src.join("cache")).unwrap();
    std::fs::write(s.src.join("cache/blob"), b"cached").unwrap();
    std::fs::create_dir_all(s.src.join("sub/node_modules/pkg")).unwrap();
    std::fs::write(s.src.join("sub/node_modules/pkg/m.js"), b"js").unwrap();
    let cfg = s.ws.join("tapebackup.toml");
    let set_exclude = |patterns: &str| {
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("exclude = "))
            .map(|l| {
                if l.starts_with("read_in_place = ") {
                    format!("{l}\nexclude = {patterns}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&cfg, text).unwrap();
    };
    set_exclude(r#"["*.tmp", "/cache/", "node_modules/"]"#);

    let got: serde_json::Value = serde_json::from_str(&ok(&s.ws, &["--json", "get"])).unwrap();
    // Excluded directories of a local source are not walked: only the file counts.
    assert_eq!(got["excluded"], 1, "{got}");
    assert_eq!(got["listed"], 5, "{got}");
    let text = ok(&s.ws, &["run"]);
    assert!(!text.contains("error"), "{text}");
    let to = s.root.join("r1");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    let restored: Vec<PathBuf> = walk(&to.join("s"))
        .into_iter()
        .map(|p| p.strip_prefix(to.join("s")).unwrap().to_path_buf())
        .collect();
    assert_eq!(restored.len(), 5, "{restored:?}");
    for gone in ["scratch.tmp", "cache/blob", "sub/node_modules/pkg/m.js"] {
        assert!(
            !restored.contains(&PathBuf::from(gone)),
            "{gone} was backed up"
        );
    }

    // Excluded later: deleted from the backup set, its version still restores as of
    // before.
    let before = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    set_exclude(r#"["*.tmp", "/cache/", "node_modules/", "a.txt"]"#);
    // "Not seen since this scan started" compares whole seconds: start in a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = ok(&s.ws, &["get"]);
    assert!(out.contains("1 deleted"), "{out}");
    assert!(out.contains("(and 2 excluded)"), "{out}");
    let to = s.root.join("r2");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    assert!(!to.join("s/a.txt").exists());
    let to = s.root.join("r3");
    ok(
        &s.ws,
        &[
            "restore",
            "a.txt",
            "--at",
            before.trim(),
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(to.join("s/a.txt")).unwrap(), b"hello tape\n");

    // A bad pattern is a config error naming the source and the pattern.
    set_exclude(r#"["[z-a"]"#);
    let out = tb(&s.ws, &["get"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("source \"s\"") && err.contains("[z-a"),
        "{err}"
    );
}

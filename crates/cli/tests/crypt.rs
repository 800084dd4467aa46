//! `tapebackup key`, `encrypt`, `decrypt`, `inspect`: the built binary, end to end.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions may unwrap"
)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tapebackup"));
    c.env_remove("TAPEBACKUP_PASSPHRASE_FILE")
        .env_remove("TAPEBACKUP_NEW_PASSPHRASE_FILE")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

fn ok(o: &Output) -> String {
    check(o);
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Asserts success without looking at stdout (which may be binary).
fn check(o: &Output) {
    assert!(
        o.status.success(),
        "failed: {:?}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn secret_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn key_file_round_trip_files_and_pipes() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("k.key");
    let id = ok(&run(&["key", "new", "--out", s(&key)]));
    assert_eq!(id.trim().len(), 32);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(ok(&run(&["key", "show", s(&key)])).trim(), id.trim());
    // Never overwrites a key.
    assert_ne!(code(&run(&["key", "new", "--out", s(&key)])), 0);

    let plain = d.path().join("plain");
    let data = payload(3_000_000);
    std::fs::write(&plain, &data).unwrap();
    let pack = d.path().join("p.tbc");
    let out = ok(&run(&[
        "--json",
        "encrypt",
        s(&plain),
        "-o",
        s(&pack),
        "--key",
        s(&key),
        "--segment-size",
        "64KiB",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plaintext_bytes"], 3_000_000);
    assert_eq!(v["key_id"], id.trim());
    let back = d.path().join("back");
    let out2 = ok(&run(&[
        "--json",
        "decrypt",
        s(&pack),
        "-o",
        s(&back),
        "--key",
        s(&key),
    ]));
    let v2: serde_json::Value = serde_json::from_str(&out2).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), data);
    assert_eq!(v["plaintext_blake3"], v2["plaintext_blake3"]);
    assert_eq!(v["pack_blake3"], v2["pack_blake3"]);

    // Inspect without the key, with the pack hash.
    let info: serde_json::Value =
        serde_json::from_str(&ok(&run(&["--json", "inspect", s(&pack), "--hash"]))).unwrap();
    assert_eq!(info["key_id"], id.trim());
    assert_eq!(info["plaintext_bytes"], 3_000_000);
    assert_eq!(info["segment_size"], 65536);
    assert_eq!(info["pack_blake3"], v["pack_blake3"]);

    // stdin -> stdout both ways, no progress bar when piped.
    let enc = run_stdin(&["encrypt", "--key", s(&key)], &data);
    check(&enc);
    assert!(
        enc.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&enc.stderr)
    );
    let dec = run_stdin(&["decrypt", "--key", s(&key)], &enc.stdout);
    check(&dec);
    assert!(dec.stdout == data);
    assert!(dec.stderr.is_empty());

    // Existing outputs are not replaced without --force.
    assert_ne!(
        code(&run(&[
            "decrypt",
            s(&pack),
            "-o",
            s(&back),
            "--key",
            s(&key)
        ])),
        0
    );
    ok(&run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&back),
        "--key",
        s(&key),
        "--force",
    ]));
}

#[test]
fn authentication_failures_exit_4_and_leave_no_output() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("k");
    let other = d.path().join("o");
    ok(&run(&["key", "new", "--out", s(&key)]));
    ok(&run(&["key", "new", "--out", s(&other)]));
    let plain = d.path().join("plain");
    std::fs::write(&plain, payload(100_000)).unwrap();
    let pack = d.path().join("p");
    ok(&run(&[
        "encrypt",
        s(&plain),
        "-o",
        s(&pack),
        "--key",
        s(&key),
        "--segment-size",
        "4096",
    ]));
    let out = d.path().join("out");

    let wrong = run(&["decrypt", s(&pack), "-o", s(&out), "--key", s(&other)]);
    assert_eq!(code(&wrong), 4);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong key"));
    assert!(!out.exists());

    let mut bytes = std::fs::read(&pack).unwrap();
    let n = bytes.len();
    bytes[n - 5000] ^= 0x10;
    let bad = d.path().join("bad");
    std::fs::write(&bad, &bytes).unwrap();
    let r = run(&["decrypt", s(&bad), "-o", s(&out), "--key", s(&key)]);
    assert_eq!(code(&r), 4);
    assert!(String::from_utf8_lossy(&r.stderr).contains("segment"));
    assert!(!out.exists());
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        5,
        "a temporary file was left behind: {names:?}"
    );

    let truncated = d.path().join("trunc");
    std::fs::write(&truncated, &std::fs::read(&pack).unwrap()[..132 + 4112]).unwrap();
    let r = run(&["decrypt", s(&truncated), "-o", s(&out), "--key", s(&key)]);
    assert_eq!(code(&r), 4);
    assert!(String::from_utf8_lossy(&r.stderr).contains("truncated"));

    // To stdout: non-zero exit, never the corrupted segment's plaintext.
    let r = run_stdin(&["decrypt", "--key", s(&key)], &bytes);
    assert_eq!(code(&r), 4);
    assert!(r.stdout.len() < 100_000);

    // Not a pack: a clear error that is not an authentication failure.
    let r = run(&["decrypt", s(&plain), "-o", s(&out), "--key", s(&key)]);
    assert_eq!(code(&r), 1);
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a cryptpack file"));
}

#[test]
fn passphrases_come_from_files_never_argv() {
    let d = tempfile::tempdir().unwrap();
    let pf = d.path().join("pass");
    secret_file(&pf, "correct horse battery staple\n");
    let wrongf = d.path().join("wrong");
    secret_file(&wrongf, "incorrect\n");
    let plain = d.path().join("plain");
    std::fs::write(&plain, payload(5000)).unwrap();
    let pack = d.path().join("p");
    // No file and stdin not a terminal: a clear error.
    let r = run(&["encrypt", s(&plain), "-o", s(&pack), "--passphrase"]);
    assert_ne!(code(&r), 0);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("not a terminal"),
        "{r:?}"
    );
    assert!(!pack.exists());

    // From the environment variable.
    let r = bin()
        .args(["encrypt", s(&plain), "-o", s(&pack), "--passphrase"])
        .env("TAPEBACKUP_PASSPHRASE_FILE", &pf)
        .output()
        .unwrap();
    ok(&r);
    let info: serde_json::Value =
        serde_json::from_str(&ok(&run(&["--json", "inspect", s(&pack)]))).unwrap();
    assert_eq!(info["kdf"], "argon2id");
    // Decrypt picks the passphrase because the header asks for it.
    let out = d.path().join("out");
    let r = run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&out),
        "--passphrase-file",
        s(&wrongf),
    ]);
    assert_eq!(code(&r), 4);
    assert!(String::from_utf8_lossy(&r.stderr).contains("wrong passphrase"));
    ok(&run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&out),
        "--passphrase-file",
        s(&pf),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), payload(5000));

    // A passphrase file readable by others is refused.
    std::fs::set_permissions(&pf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&d.path().join("o2")),
        "--passphrase-file",
        s(&pf),
    ]);
    assert_ne!(code(&r), 0);
    assert!(String::from_utf8_lossy(&r.stderr).contains("chmod 600"));
}

#[test]
fn protected_key_files_and_rewrap() {
    let d = tempfile::tempdir().unwrap();
    let pf = d.path().join("pass");
    secret_file(&pf, "key file secret\n");
    let key = d.path().join("k");
    let id = ok(&run(&[
        "key",
        "new",
        "--out",
        s(&key),
        "--passphrase",
        "--passphrase-file",
        s(&pf),
    ]));
    assert!(ok(&run(&["key", "show", s(&key)])).contains("passphrase-protected"));
    let plain = d.path().join("plain");
    std::fs::write(&plain, payload(70_000)).unwrap();
    let pack = d.path().join("p");
    ok(&run(&[
        "encrypt",
        s(&plain),
        "-o",
        s(&pack),
        "--key",
        s(&key),
        "--passphrase-file",
        s(&pf),
    ]));
    // Without the passphrase the protected key cannot be used.
    let r = run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&d.path().join("x")),
        "--key",
        s(&key),
    ]);
    assert_ne!(code(&r), 0);

    // Rotate to a new plain key: only the header changes.
    let new = d.path().join("new");
    let new_id = ok(&run(&["key", "new", "--out", s(&new)]));
    let before = std::fs::read(&pack).unwrap();
    let out = ok(&run(&[
        "key",
        "rewrap",
        s(&pack),
        "--old-key",
        s(&key),
        "--old-passphrase-file",
        s(&pf),
        "--new-key",
        s(&new),
    ]));
    assert!(out.contains(new_id.trim()));
    assert_ne!(new_id, id);
    let after = std::fs::read(&pack).unwrap();
    assert_eq!(before[132..], after[132..]);
    let r = run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&d.path().join("y")),
        "--key",
        s(&key),
        "--passphrase-file",
        s(&pf),
    ]);
    assert_eq!(code(&r), 4);
    ok(&run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&d.path().join("z")),
        "--key",
        s(&new),
    ]));
    assert_eq!(std::fs::read(d.path().join("z")).unwrap(), payload(70_000));

    // A key file readable by the group is refused.
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o640)).unwrap();
    let r = run(&[
        "decrypt",
        s(&pack),
        "-o",
        s(&d.path().join("w")),
        "--key",
        s(&new),
    ]);
    assert_ne!(code(&r), 0);
    assert!(String::from_utf8_lossy(&r.stderr).contains("group or others"));
}

#[test]
fn legacy_openssl_files_from_the_seed_tool() {
    if !Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required in CI"
        );
        println!("SKIP: openssl not found");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let pf = d.path().join("pass");
    secret_file(&pf, "seed tool secret\n");
    let plain = d.path().join("plain");
    std::fs::write(&plain, payload(200_000)).unwrap();
    let enc = d.path().join("file.enc");
    let st = Command::new("openssl")
        .args(["enc", "-aes-256-cbc", "-pbkdf2", "-iter", "100000", "-pass"])
        .arg(format!("file:{}", pf.display()))
        .arg("-in")
        .arg(&plain)
        .arg("-out")
        .arg(&enc)
        .status()
        .unwrap();
    assert!(st.success());
    let out = d.path().join("out");
    let text = ok(&run(&[
        "--json",
        "decrypt",
        "--legacy-openssl",
        s(&enc),
        "-o",
        s(&out),
        "--passphrase-file",
        s(&pf),
    ]));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["authenticated"], false);
    assert_eq!(std::fs::read(&out).unwrap(), payload(200_000));
    // A cut file is refused and leaves no output.
    let cut = d.path().join("cut.enc");
    let bytes = std::fs::read(&enc).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let out2 = d.path().join("out2");
    let r = run(&[
        "decrypt",
        "--legacy-openssl",
        s(&cut),
        "-o",
        s(&out2),
        "--passphrase-file",
        s(&pf),
    ]);
    assert_eq!(code(&r), 4);
    assert!(!out2.exists());
}

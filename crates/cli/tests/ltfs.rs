//! `tapebackup ltfs format|ls|get|put|check` on a virtual library: the built binary, end
//! to end.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions may unwrap"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapebackup"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&all)).unwrap()
}

/// A virtual library with cartridge slot 1 loaded into drive 0.
fn library(tmp: &Path) -> String {
    let lib = tmp.join("lib");
    let lib_s = lib.to_str().unwrap().to_string();
    ok(&["vtl", "create", &lib_s, "--capacity", "64MiB"]);
    ok(&["library", "--vtl", &lib_s, "load", "1", "0"]);
    lib_s
}

fn shared() -> Option<PathBuf> {
    let dir = std::env::var_os("TAPEBACKUP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "../shared not found at {} (required in CI)",
        dir.display()
    );
    eprintln!("SKIP: ../shared not found");
    None
}

#[test]
fn format_put_ls_get_check() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path());
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello ltfs\n").unwrap();
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("sub/deeper/big.bin"), &big).unwrap();
    std::fs::write(src.join("sub/naïve.txt"), b"").unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();

    let f = json(&[
        "ltfs",
        "--vtl",
        &lib,
        "format",
        "--barcode",
        "VT0001L5",
        "--name",
        "vol1",
    ]);
    assert_eq!(f["volume"], "vol1");
    assert_eq!(f["block_size"], 524288);
    // A second format is refused without --force.
    let again = run(&["ltfs", "--vtl", &lib, "format", "--barcode", "VT0001L5"]);
    assert!(!again.status.success());

    let p = json(&[
        "ltfs",
        "--vtl",
        &lib,
        "put",
        src.to_str().unwrap(),
        "--to",
        "bk",
    ]);
    assert_eq!(p["generation"], 2);
    let files = p["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    let bigput = files
        .iter()
        .find(|f| f["path"] == "bk/src/sub/deeper/big.bin")
        .unwrap();
    assert_eq!(bigput["bytes"], 1_500_000);
    assert_eq!(bigput["partition"], 1);

    let l = json(&["ltfs", "--vtl", &lib, "ls"]);
    assert_eq!(l["consistent"], true);
    let listed: Vec<&str> = l["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "bk/src/hello.txt",
            "bk/src/link",
            "bk/src/sub/deeper/big.bin",
            "bk/src/sub/naïve.txt"
        ]
    );
    let entry = &l["files"][2];
    assert_eq!(entry["extents"][0]["start_block"], bigput["start_block"]);
    assert_eq!(entry["extents"][0]["byte_count"], 1_500_000);
    assert_eq!(l["files"][1]["symlink"], "hello.txt");

    let text = ok(&["ltfs", "--vtl", &lib, "ls", "bk/src/sub"]);
    assert!(text.contains("bk/src/sub/deeper/big.bin"), "{text}");

    let out = run(&[
        "ltfs",
        "--vtl",
        &lib,
        "get",
        "bk/src/sub/deeper/big.bin",
        "-",
    ]);
    assert!(out.status.success());
    assert_eq!(out.stdout, big);
    let dest = tmp.path().join("hello.copy");
    ok(&[
        "ltfs",
        "--vtl",
        &lib,
        "get",
        "bk/src/hello.txt",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello ltfs\n");

    let missing = run(&["ltfs", "--vtl", &lib, "get", "nope", "-"]);
    assert_eq!(missing.status.code(), Some(10));

    let c = json(&["ltfs", "--vtl", &lib, "check", "--generations"]);
    assert_eq!(c["consistent"], true);
    assert_eq!(c["generations"].as_array().unwrap().len(), 2);
}

#[test]
fn unclean_end_is_reported_and_salvaged() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path());
    ok(&["ltfs", "--vtl", &lib, "format", "--barcode", "VT0001L5"]);
    let src = tmp.path().join("f.bin");
    std::fs::write(&src, vec![42u8; 700_000]).unwrap();
    ok(&["ltfs", "--vtl", &lib, "put", src.to_str().unwrap()]);
    // Simulate a crash before the final indexes: cut the data partition after the data
    // (1_7_R and 1_8_R hold the file; 1_9_F starts the index construct) and drop the
    // index partition's new index, as if the session never closed.
    let cart = Path::new(&lib).join("cartridges/VT0001L5");
    for e in std::fs::read_dir(&cart).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let mut parts = name.split('_');
        if let (Some("1"), Some(block)) = (parts.next(), parts.next())
            && block.parse::<u64>().unwrap() >= 9
        {
            std::fs::remove_file(cart.join(&name)).unwrap();
        }
    }
    std::fs::write(cart.join("1_9_E"), b"").unwrap();

    let bad = run(&["--json", "ltfs", "--vtl", &lib, "check"]);
    assert!(!bad.status.success());
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["consistent"], false);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("unindexed records")),
        "{report}"
    );
    let fixed = json(&["ltfs", "--vtl", &lib, "check", "--recover", "salvage"]);
    assert_eq!(fixed["consistent"], true);
    assert_eq!(
        fixed["recovered"]["salvaged"][0],
        "_ltfs_lostandfound/block_1_7"
    );
    let out = run(&[
        "ltfs",
        "--vtl",
        &lib,
        "get",
        "_ltfs_lostandfound/block_1_7",
        "-",
    ]);
    assert_eq!(out.stdout, vec![42u8; 700_000]);
}

#[test]
fn reference_cartridge_lists_and_reads() {
    let Some(shared) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let lib_s = lib.to_str().unwrap();
    ok(&["vtl", "create", lib_s, "--slots", "2", "--cartridges", "1"]);
    let cart = shared.join("fixtures/ltfs/reference-tape0");
    // Slot 1 holds a blank; the reference goes into slot 2.
    ok(&[
        "vtl",
        "import-cartridge",
        lib_s,
        cart.to_str().unwrap(),
        "--barcode",
        "TST001L5",
        "--slot",
        "2",
    ]);
    ok(&["library", "--vtl", lib_s, "load", "2", "0"]);
    let l = json(&["ltfs", "--vtl", lib_s, "ls"]);
    assert_eq!(l["volume"], "testvol");
    assert_eq!(l["generation"], 2);
    let sizes: Vec<(String, u64)> = l["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(sizes.contains(&("dir1/big.bin".into(), 1_300_000)));
    assert!(sizes.contains(&("naïve.txt".into(), 5)));
    let hello = run(&["ltfs", "--vtl", lib_s, "get", "hello.txt", "-"]);
    assert_eq!(hello.stdout, b"hello ltfs\n");
}

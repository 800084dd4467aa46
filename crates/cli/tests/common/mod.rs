//! Helpers shared by the CLI integration tests: run the built binary in a directory, make
//! test data, compare trees. Each test binary uses some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `tapebackup ARGS` in `dir`, with no config or catalog from the environment.
pub fn tb(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapebackup"))
        .args(args)
        .current_dir(dir)
        .env_remove("TAPEBACKUP_CONFIG")
        .env_remove("TAPEBACKUP_CATALOG")
        .output()
        .expect("run tapebackup")
}

/// Runs `tapebackup ARGS` in `dir`, asserts success, returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tb(dir, args);
    assert!(
        out.status.success(),
        "tapebackup {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `len` deterministic pseudo-random bytes for `seed` (BLAKE3 XOF).
pub fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Every file below `d`, recursively (directories left out).
pub fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Asserts that every file of `a` is in `b` with the same bytes, and `b` has no others.
pub fn same_tree(a: &Path, b: &Path) {
    let files = walk(a);
    for e in &files {
        let rel = e.strip_prefix(a).unwrap();
        assert_eq!(
            std::fs::read(e).unwrap(),
            std::fs::read(b.join(rel)).unwrap_or_default(),
            "{} differs",
            rel.display()
        );
    }
    assert_eq!(files.len(), walk(b).len(), "restored tree has extra files");
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

//! Helpers shared by the CLI integration tests: run the built binary in a directory.

use std::path::Path;
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

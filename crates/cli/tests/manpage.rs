//! Man pages generated from the clap definitions (`tapebackup manpage --out DIR`, which
//! `cargo xtask man` runs): a page for the program that mentions every top-level
//! subcommand `--help` lists, and a page per subcommand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

mod common;

use common::ok;

/// The subcommands `tapebackup --help` lists (lines of its "Commands:" section).
fn listed_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|n| n != "help")
        .collect()
}

#[test]
fn man_pages_cover_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("man");
    let listed = ok(tmp.path(), &["manpage", "--out", out.to_str().unwrap()]);
    let help = ok(tmp.path(), &["--help"]);
    let subs = listed_subcommands(&help);
    assert!(subs.len() >= 20, "{subs:?}\n{help}");
    assert!(subs.iter().any(|s| s == "catalog"), "{subs:?}");
    // The hidden generator documents nothing about itself.
    assert!(!subs.iter().any(|s| s == "manpage"), "{subs:?}");

    // roff escapes '-' as '\-'.
    let read = |name: &str| -> String {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; written: {listed}"))
            .replace("\\-", "-")
    };
    let main = read("tapebackup.1");
    assert!(
        main.starts_with(".ie") || main.contains(".TH tapebackup"),
        "{main}"
    );
    assert!(main.contains("tapebackup"), "{main}");
    for s in &subs {
        assert!(
            main.contains(s.as_str()),
            "tapebackup.1 does not mention {s}"
        );
        let page = read(&format!("tapebackup-{s}.1"));
        assert!(page.contains(&format!("tapebackup-{s}")), "{s}: {page}");
    }
    // Nested subcommands get pages too, with their options.
    let recover = read("tapebackup-catalog-recover.1");
    assert!(
        recover.contains("--from-tape") && recover.contains("--merge"),
        "{recover}"
    );
    assert!(!out.join("tapebackup-manpage.1").exists());
    // Every page written is listed on stdout.
    let pages = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(listed.lines().count(), pages, "{listed}");
}

#[test]
fn help_parsing_finds_the_commands_section() {
    let help = "Usage: x\n\nCommands:\n  init     Create\n           more text\n  get      \
                Fetch\n  help     Print\n\nOptions:\n  -q\n";
    assert_eq!(listed_subcommands(help), ["init", "get"]);
}

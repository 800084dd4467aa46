//! The backup workflow end to end on the guest's tgt library: `tapebackup init` with a
//! config naming the real changer and drives, `run` of a small tree (tgt cannot partition,
//! so the tape gets the raw on-tape format), `verify`, `restore` to another folder and a
//! byte-exact compare; then a fresh catalog with `tapes.format = "ltfs"` must be refused
//! with a clear message. Cross-checks: mtx for the library, `dd` for the label record on
//! the written tape (docs/RAW-FORMAT.md: magic `TBKRAWv1`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::guest::{Guest, Ran};
use super::report::Outcome;

/// Exit code of tape device and library errors (crates/cli/src/exit.rs).
const EXIT_TAPE: i32 = 6;

/// Record size of the raw tapes written here: the default. The raw reader reads with a
/// buffer of twice the block size, so tgt's over-length read bug (it transfers buffer -
/// record bytes; see rig.tgt_overlength_read) cannot touch the data even in a pack's last,
/// short record; verify and restore check every byte against its BLAKE3.
const BLOCK_SIZE: &str = "256KiB";

/// Runs the workflow checks. The library starts in the initial inventory; every cartridge
/// the workflow loaded is put back (mtx) at the end.
pub fn run_all(g: &mut Guest) {
    let Ok(changer) = g.changer_sg() else {
        return;
    };
    let root = g.work.join("wf");
    let src = root.join("src");
    let restored = root.join("restored");
    if let Err(e) = make_tree(&src) {
        g.record(
            "workflow.raw_round_trip",
            Outcome::Fail,
            format!("cannot make the source tree: {e}"),
            String::new(),
            Instant::now(),
        );
        return;
    }
    round_trip(g, &root, &src, &restored, &changer);
    put_back(g, &changer);
    ltfs_refused(g, &root, &src, &changer);
    put_back(g, &changer);
}

/// A small tree: text, binary, an empty file, a name with spaces, nested folders.
fn make_tree(src: &Path) -> std::io::Result<()> {
    fs::create_dir_all(src.join("a/b/c"))?;
    fs::write(
        src.join("readme.txt"),
        b"tapebackup vm-smoke workflow\n".repeat(40),
    )?;
    fs::write(src.join("empty"), b"")?;
    fs::write(src.join("a/name with spaces.bin"), pseudo_random(1, 70_001))?;
    fs::write(src.join("a/b/c/deep.bin"), pseudo_random(2, 300_000))?;
    fs::write(src.join("a/b/same-as-deep.bin"), pseudo_random(2, 300_000))?;
    // Packs whose last record is between half and all of a 256 KiB block: the records
    // tgt's over-length read bug would damage if the raw reader's buffer were too small.
    fs::write(
        src.join("a/one-short-record.bin"),
        pseudo_random(3, 200_000),
    )?;
    fs::write(
        src.join("a/b/long-tail.bin"),
        pseudo_random(4, 262_144 + 180_000),
    )?;
    Ok(())
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes the config for the guest's library (changer, both drives) and the source.
fn write_config(dir: &Path, src: &Path, changer: &str, format: &str) -> std::io::Result<PathBuf> {
    let path = dir.join("tapebackup.toml");
    let text = format!(
        r#"catalog = "catalog.db"
staging = "staging"
packs = "packs"

[key]
file = "key.tbk"

[library]
kind = "scsi"
changer = "{changer}"
drives = ["/dev/nst0", "/dev/nst1"]

[tapes]
format = "{format}"
block_size = "{BLOCK_SIZE}"

[[source]]
name = "tree"
path = "{}"
"#,
        src.display()
    );
    fs::write(&path, text)?;
    Ok(path)
}

/// `tapebackup init DIR --scsi --source tree=SRC`, then our config over the one it wrote.
fn init(
    g: &mut Guest,
    dir: &Path,
    src: &Path,
    changer: &str,
    format: &str,
    evidence: &mut String,
) -> Result<String, String> {
    let d = dir.to_string_lossy().into_owned();
    let source = format!("tree={}", src.display());
    let r = g.tb(&["init", &d, "--scsi", "--source", &source]);
    evidence.push_str(&r.transcript());
    if !r.ok() {
        return Err(format!("`tapebackup init` failed ({:?})", r.code));
    }
    let cfg = write_config(dir, src, changer, format)
        .map_err(|e| format!("cannot write the config: {e}"))?;
    let text = fs::read_to_string(&cfg).unwrap_or_default();
    evidence.push_str(&format!("--- {} ---\n{text}", cfg.display()));
    Ok(cfg.to_string_lossy().into_owned())
}

fn step(g: &mut Guest, cfg: &str, args: &[&str], evidence: &mut String) -> Ran {
    let mut all = vec!["--config", cfg];
    all.extend_from_slice(args);
    let r = g.tb(&all);
    evidence.push_str(&r.transcript());
    r
}

fn round_trip(g: &mut Guest, root: &Path, src: &Path, restored: &Path, changer: &str) {
    let t = Instant::now();
    let mut evidence = String::new();
    let result = (|| -> Result<String, String> {
        let cfg = init(g, &root.join("tb"), src, changer, "auto", &mut evidence)?;
        let run = step(g, &cfg, &["run"], &mut evidence);
        if !run.ok() {
            return Err(format!("`tapebackup run` failed ({:?})", run.code));
        }
        let tapes = step(g, &cfg, &["--json", "tapes"], &mut evidence);
        if !tapes.ok() {
            return Err("`tapebackup --json tapes` failed".into());
        }
        let written = written_tapes(&tapes.stdout);
        let Some((barcode, uuid)) = written.first().cloned() else {
            return Err("`tapebackup tapes` lists no written tape".into());
        };
        if !uuid.starts_with("raw:") {
            return Err(format!(
                "the catalog records {barcode} as {uuid:?}, not as a raw-format tape (raw:<uuid>)"
            ));
        }
        // Independent view of what is on the tape: its first record, read with dd.
        let label = label_with_dd(g, changer, &barcode, &mut evidence)?;
        let verify = step(g, &cfg, &["verify"], &mut evidence);
        if !verify.ok() {
            return Err(format!("`tapebackup verify` failed ({:?})", verify.code));
        }
        let to = restored.to_string_lossy().into_owned();
        let restore = step(g, &cfg, &["restore", "*", "--to", &to], &mut evidence);
        if !restore.ok() {
            return Err(format!("`tapebackup restore` failed ({:?})", restore.code));
        }
        let diff = compare_trees(src, &restored.join("tree"));
        evidence.push_str(&format!(
            "(compare {} with {}: {})\n",
            src.display(),
            restored.join("tree").display(),
            if diff.is_empty() {
                "identical".to_string()
            } else {
                diff.join("; ")
            }
        ));
        if !diff.is_empty() {
            return Err(format!("restored tree differs: {}", diff.join("; ")));
        }
        Ok(format!(
            "init (changer {changer}, /dev/nst0 + /dev/nst1, tapes.format auto), run, verify, \
             restore: tree restored byte-exact; the catalog has {barcode} as {uuid}, and dd reads \
             its first record as a raw-format label ({label})"
        ))
    })();
    match result {
        Ok(detail) => g.record(
            "workflow.raw_round_trip",
            Outcome::Pass,
            detail,
            evidence,
            t,
        ),
        Err(why) => g.record("workflow.raw_round_trip", Outcome::Fail, why, evidence, t),
    }
}

/// Tapes with data, from `tapebackup --json tapes`: (barcode, the catalog's format field:
/// `raw:<uuid>` for a raw-format tape, the LTFS volume UUID otherwise).
fn written_tapes(json: &str) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    list.iter()
        .filter(|t| t["medium"]["kind"] == "tape")
        .filter(|t| {
            t["packs"].as_u64().unwrap_or(0) > 0 || t["bytes_used"].as_u64().unwrap_or(0) > 0
        })
        .filter_map(|t| {
            let barcode = t["medium"]["barcode"].as_str()?.to_owned();
            let uuid = t["medium"]["ltfs_uuid"].as_str().unwrap_or("").to_owned();
            Some((barcode, uuid))
        })
        .collect()
}

/// Loads `barcode` into drive 0 with mtx (unless it is there), reads the first record with
/// dd and checks the raw label magic, then leaves it for `put_back`.
fn label_with_dd(
    g: &mut Guest,
    changer: &str,
    barcode: &str,
    evidence: &mut String,
) -> Result<String, String> {
    put_back(g, changer);
    let (status, text) = g.mtx_status();
    evidence.push_str(&text);
    let status = status.map_err(|e| format!("mtx status: {e:#}"))?;
    let slot = status
        .slots
        .iter()
        .find(|s| s.barcode.as_deref() == Some(barcode))
        .map(|s| s.number)
        .ok_or_else(|| format!("mtx does not show {barcode} in a slot"))?;
    let slot = slot.to_string();
    let load = g.run("mtx", &["-f", changer, "load", &slot, "0"]);
    evidence.push_str(&load.transcript());
    if !load.ok() {
        return Err(format!("mtx load {slot} 0 failed"));
    }
    let rewind = g.run("mt", &["-f", "/dev/nst0", "rewind"]);
    evidence.push_str(&rewind.transcript());
    let out = g.work.join("wf/label.bin");
    let of = format!("of={}", out.display());
    let dd = g.run(
        "dd",
        &["if=/dev/nst0", &of, "bs=65584", "count=1", "status=none"],
    );
    evidence.push_str(&dd.transcript());
    let rewind = g.run("mt", &["-f", "/dev/nst0", "rewind"]);
    evidence.push_str(&rewind.transcript());
    let label = fs::read(&out).unwrap_or_default();
    evidence.push_str(&format!(
        "(first record: {} bytes, starts {:02x?})\n",
        label.len(),
        &label[..label.len().min(16)]
    ));
    if label.starts_with(b"TBKRAWv1") && label.get(10) == Some(&1) {
        Ok(format!("{} bytes, magic TBKRAWv1, kind 1", label.len()))
    } else {
        Err(format!(
            "the first record on {barcode} is not a raw-format label ({} bytes)",
            label.len()
        ))
    }
}

/// Files (relative path, bytes) under `dir`.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let (Ok(rel), Ok(bytes)) = (p.strip_prefix(dir), fs::read(&p)) {
                out.push((rel.to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

fn compare_trees(a: &Path, b: &Path) -> Vec<String> {
    let (ta, tb) = (tree(a), tree(b));
    let mut diff = Vec::new();
    for (p, bytes) in &ta {
        match tb.iter().find(|(q, _)| q == p) {
            None => diff.push(format!("{} missing", p.display())),
            Some((_, other)) if other != bytes => diff.push(format!("{} differs", p.display())),
            Some(_) => {}
        }
    }
    for (p, _) in &tb {
        if !ta.iter().any(|(q, _)| q == p) {
            diff.push(format!("{} extra", p.display()));
        }
    }
    if ta.is_empty() {
        diff.push("the source tree is empty".into());
    }
    diff
}

/// A fresh catalog with `tapes.format = "ltfs"`: the drive cannot partition, so `run` must
/// stop with exit 6 and say why, and write nothing.
fn ltfs_refused(g: &mut Guest, root: &Path, src: &Path, changer: &str) {
    let t = Instant::now();
    let mut evidence = String::new();
    let result = (|| -> Result<String, String> {
        let cfg = init(
            g,
            &root.join("tb-ltfs"),
            src,
            changer,
            "ltfs",
            &mut evidence,
        )?;
        let run = step(g, &cfg, &["run"], &mut evidence);
        let text = format!("{}{}", run.stdout, run.stderr);
        let lower = text.to_lowercase();
        if run.code != Some(EXIT_TAPE) {
            return Err(format!(
                "`tapebackup run` with tapes.format = \"ltfs\" exited {:?}, expected {EXIT_TAPE}",
                run.code
            ));
        }
        if !(lower.contains("cannot hold ltfs") && lower.contains("partition")) {
            return Err("the refusal does not say that LTFS needs partitions".into());
        }
        let tapes = step(g, &cfg, &["--json", "tapes"], &mut evidence);
        let written = written_tapes(&tapes.stdout);
        if !tapes.ok() || !written.is_empty() {
            return Err(format!(
                "after the refusal the catalog lists written tapes: {written:?}"
            ));
        }
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains("cannot hold LTFS"))
            .unwrap_or("")
            .trim()
            .to_string();
        Ok(format!("refused with exit 6: {line}"))
    })();
    match result {
        Ok(detail) => g.record("workflow.ltfs_refused", Outcome::Pass, detail, evidence, t),
        Err(why) => g.record("workflow.ltfs_refused", Outcome::Fail, why, evidence, t),
    }
}

/// Puts every cartridge in a drive back into the slot it came from (mtx unload).
fn put_back(g: &mut Guest, changer: &str) {
    let Ok(status) = g.mtx_status().0 else {
        return;
    };
    for d in status.drives.iter().filter(|d| d.full) {
        let slot = d.source_slot.map(|s| s.to_string());
        let drive = d.index.to_string();
        let mut args = vec!["-f", changer, "unload"];
        if let Some(s) = &slot {
            args.push(s);
        }
        args.push(&drive);
        let _ = g.run("mtx", &args);
    }
}

//! A real BackupPC (Debian's 4.4.0, installed by .ci/install-deps) with our binary as the
//! archive host's `ArchiveClientCmd`: a real full backup of a local directory, a real
//! archive run through `BackupPC_archive`, then the generated restore script run with sh,
//! and the restored tree compared with the source byte for byte.
//!
//! Needs root (BackupPC's tools run as user backuppc via runuser) and changes the machine's
//! BackupPC configuration (/etc/backuppc/{config.pl,hosts,localhost.pl,archive.pl}): it is
//! meant for CI machines. Skipped with a message outside CI when BackupPC or root is
//! missing; under CI=true it fails instead.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cloud::Store;
use cloud::seaweedfs::{SeaweedFs, weed_binary};

const BIN: &str = env!("CARGO_BIN_EXE_tapebackup");
const BPC_BIN: &str = "/usr/share/backuppc/bin";

fn skip_or_fail(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why} (CI=true: .ci/install-deps must provide it)"
    );
    eprintln!("SKIP: {why}");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn as_backuppc(args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "backuppc", "--"]).args(args);
    c
}

fn chown_backuppc(path: &Path) {
    run(Command::new("chown")
        .args(["-R", "backuppc:backuppc"])
        .arg(path));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Same names, bytes and symlink targets.
fn tree(root: &Path) -> Vec<(PathBuf, String)> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut names: Vec<_> = std::fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let r = rel.join(&name);
            let p = root.join(&r);
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push((
                    r,
                    format!("link {}", std::fs::read_link(&p).unwrap().display()),
                ));
            } else if m.is_dir() {
                out.push((r.clone(), "dir".into()));
                walk(root, &r, out);
            } else {
                let b = std::fs::read(&p).unwrap();
                out.push((r, format!("file {} {}", b.len(), cloud::Sha256::of(&b))));
            }
        }
    }
    let mut v = Vec::new();
    walk(root, Path::new(""), &mut v);
    v
}

#[test]
fn real_backuppc_archives_through_us_and_the_script_restores_it() {
    if !Path::new(BPC_BIN).join("BackupPC_archive").exists() {
        return skip_or_fail("BackupPC is not installed");
    }
    if run(Command::new("id").arg("-u")).trim() != "0" {
        return skip_or_fail("not root (BackupPC's tools must be run as user backuppc)");
    }
    if weed_binary().is_none() {
        return skip_or_fail("SeaweedFS `weed` not found");
    }
    let server = SeaweedFs::start().unwrap();
    server.store("bpc-real").unwrap();

    // Everything the backuppc user must read lives in one world-traversable directory.
    let work = tempfile::Builder::new()
        .prefix("tb-bpc-")
        .tempdir_in("/tmp")
        .unwrap();
    let w = work.path();
    std::fs::set_permissions(w, std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = w.join("src");
    std::fs::create_dir_all(src.join("dir with space/ünï")).unwrap();
    write(&src.join("dir with space/ünï/it's $&.txt"), "quoted\n");
    write(&src.join("empty"), "");
    // Incompressible, so that gzip's output makes several 1 MiB chunks.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let big: Vec<u8> = (0..2_500_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("big.bin", src.join("link")).unwrap();
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(&src));

    // Our binary, our config, key and S3 secret, readable by backuppc only.
    let bin = w.join("tapebackup");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = w.join("private");
    std::fs::create_dir(&private).unwrap();
    let key = private.join("archive.key");
    cryptpack::Key::generate()
        .unwrap()
        .write_file(&key)
        .unwrap();
    write(&private.join("s3.secret"), server.secret());
    std::fs::set_permissions(
        private.join("s3.secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let config = private.join("config.toml");
    write(
        &config,
        &format!(
            "[store]\nendpoint = \"{}\"\nregion = \"us-east-1\"\nbucket = \"bpc-real\"\naccess_key_id = \"{}\"\nsecret_access_key_file = \"{}\"\npart_size = \"5MiB\"\nretries = 2\nretry_timeout = 10\n\n[backuppc]\nkey_file = \"{}\"\nchunk_size = \"1MiB\"\n",
            server.endpoint(),
            server.access_key(),
            private.join("s3.secret").display(),
            key.display()
        ),
    );
    chown_backuppc(&private);

    // BackupPC configuration (backuppc.md): no smbclient/nmblookup/sendmail, a tar host, an
    // archive host whose ArchiveClientCmd is us (through env, to hand us TAPEBACKUP_CONFIG).
    let config_pl = std::fs::read_to_string("/etc/backuppc/config.pl").unwrap();
    if !config_pl.contains("# tapebackup-ci") {
        let mut c = config_pl;
        c.push_str("\n# tapebackup-ci\n$Conf{SmbClientPath} = '';\n$Conf{NmbLookupPath} = '';\n$Conf{SendmailPath} = '';\n");
        write(Path::new("/etc/backuppc/config.pl"), &c);
    }
    write(
        Path::new("/etc/backuppc/localhost.pl"),
        &format!(
            "$Conf{{XferMethod}} = 'tar';\n$Conf{{TarShareName}} = ['{}'];\n$Conf{{TarClientCmd}} = '/usr/bin/env LC_ALL=C $tarPath -c -v -f - -C $shareName --totals';\n$Conf{{TarFullArgs}} = '$fileList';\n$Conf{{TarIncrArgs}} = '--newer=$incrDate $fileList';\n$Conf{{PingCmd}} = '';\n$Conf{{BackupsDisable}} = 1;\n",
            src.display()
        ),
    );
    let hosts = std::fs::read_to_string("/etc/backuppc/hosts").unwrap();
    if !hosts.lines().any(|l| l.starts_with("archive ")) {
        write(
            Path::new("/etc/backuppc/hosts"),
            &format!("{hosts}archive 0 backuppc\n"),
        );
    }
    let dest = w.join("archive-dest");
    std::fs::create_dir(&dest).unwrap();
    chown_backuppc(&dest);
    write(
        Path::new("/etc/backuppc/archive.pl"),
        &format!(
            "$Conf{{XferMethod}} = 'archive';\n$Conf{{ArchiveDest}} = '{}';\n$Conf{{ArchiveComp}} = 'gzip';\n$Conf{{ArchiveClientCmd}} = '/usr/bin/env TAPEBACKUP_CONFIG={} {} backuppc archive $tarCreatePath $splitpath $parpath $host $backupnumber $compression $compext $splitsize $archiveloc $parfile *';\n",
            dest.display(),
            config.display(),
            bin.display()
        ),
    );
    run(Command::new("sh").args(["-c", "chown backuppc:www-data /etc/backuppc/*.pl"]));
    std::fs::create_dir_all("/var/lib/backuppc/pc/archive").unwrap();
    run(Command::new("chown").args(["backuppc:backuppc", "/var/lib/backuppc/pc/archive"]));
    std::fs::set_permissions(
        "/var/lib/backuppc/pc/archive",
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();

    // A real full backup through the daemon.
    run(Command::new("/etc/init.d/backuppc").arg("start"));
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("/etc/init.d/backuppc").arg("stop").output();
        }
    }
    let _stop = Stop;
    run(&mut as_backuppc(&[
        &format!("{BPC_BIN}/BackupPC_dump"),
        "-f",
        "localhost",
    ]));
    let backups = std::fs::read_to_string("/var/lib/backuppc/pc/localhost/backups").unwrap();
    let num: u64 = backups
        .lines()
        .last()
        .and_then(|l| l.split('\t').next())
        .and_then(|n| n.parse().ok())
        .unwrap();

    // A real archive: BackupPC_archive runs ArchiveClientCmd (us) with its 11 arguments.
    let req = format!("archiveReq.tapebackup.{}", std::process::id());
    let req_path = Path::new("/var/lib/backuppc/pc/archive").join(&req);
    write(
        &req_path,
        &format!(
            "%ArchiveReq = (\n  'archiveloc' => '{}',\n  'reqTime' => '{}',\n  'BackupList' => ['{num}'],\n  'host' => 'archive',\n  'parfile' => '0',\n  'archtype' => '0',\n  'compression' => '/bin/gzip',\n  'compext' => '.gz',\n  'HostList' => ['localhost'],\n  'user' => 'backuppc',\n  'splitsize' => '0000000'\n);\n",
            dest.display(),
            manifest_now()
        ),
    );
    chown_backuppc(&req_path);
    let out = as_backuppc(&[
        &format!("{BPC_BIN}/BackupPC_archive"),
        "backuppc",
        "archive",
        &req,
    ])
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let log = std::fs::read_to_string("/var/lib/backuppc/pc/archive/LOG")
        .or_else(|_| std::fs::read_to_string("/var/lib/backuppc/log/LOG"))
        .unwrap_or_default();
    assert!(
        out.status.success(),
        "BackupPC_archive failed: {}{}\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Several chunks landed, and nothing was staged in ArchiveDest.
    let mut c = server.config("bpc-real");
    c.prefix = "backuppc/localhost".into();
    let objects = cloud::S3Store::new(&c).unwrap().list("").unwrap();
    let chunks = objects.iter().filter(|o| o.key.contains("/chunk-")).count();
    assert!(chunks >= 3, "{objects:?}");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
    // The catalog next to the config (written as user backuppc) knows every chunk and the
    // job that archived them.
    let files = run(Command::new(BIN).args([
        "--json",
        "--config",
        config.to_str().unwrap(),
        "files",
        "localhost/*",
    ]));
    let rows: serde_json::Value = serde_json::from_str(&files).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(chunks), "{rows}");
    let jobs = run(Command::new(BIN).args(["--config", config.to_str().unwrap(), "jobs"]));
    assert!(
        jobs.contains("succeeded") && jobs.contains("backuppc localhost"),
        "{jobs}"
    );

    // The restore script, run with sh, into an empty directory.
    let script = run(Command::new(BIN).args([
        "backuppc",
        "restore-script",
        "--store",
        config.to_str().unwrap(),
        "--host",
        "localhost",
        "--expire",
        "600",
    ]));
    let script_path = w.join("restore.sh");
    write(&script_path, &script);
    let target = w.join("restored");
    let res = Command::new("sh")
        .arg(&script_path)
        .arg(&target)
        .env("TAPEBACKUP", BIN)
        .env("TAPEBACKUP_KEY_FILE", &key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "restore failed: {}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    // With share '*', BackupPC_tarCreate prefixes paths with the share path.
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(tree(&restored), tree(&src));
}

fn manifest_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

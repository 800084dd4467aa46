//! The guest test program: runs inside the VM as `xtask vm-smoke-guest` (the host-built
//! binary, seen through the 9p root). Builds the tgt library on the guest's loopback, logs
//! in with open-iscsi, then runs the checks and writes the report to the result share.
//!
//! Every command runs with a time limit and with its output going to files, never pipes:
//! a daemon that inherits a pipe would keep it open forever.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::Job;
use super::mtx;
use super::report::{Check, Outcome, Report};

/// iSCSI name of the guest's target.
pub const TARGET_IQN: &str = "iqn.2026-11.org.tapebackup:vm-smoke";
/// Portal tgtd listens on (the guest's own loopback).
const PORTAL: &str = "127.0.0.1:3260";
/// Barcodes of the cartridges, put in storage slots 1.. in this order.
pub const TAPES: &[&str] = &[
    "TAPE001L6",
    "TAPE002L6",
    "TAPE003L6",
    "TAPE004L6",
    "TAPE005L6",
];
/// Serial numbers (VPD page 80h) of drive 0, drive 1 and the changer.
pub const DRIVE_SERIALS: [&str; 2] = ["DRV00001", "DRV00002"];
/// Serial number of the changer.
pub const CHANGER_SERIAL: &str = "LIB00001";
/// Element addresses: transport, first storage slot, first I/E slot, first drive.
pub const ADDR_TRANSPORT: u32 = 100;
/// First storage element address (mtx slot 1).
pub const ADDR_SLOT0: u32 = 1000;
/// First import/export element address (mtx slot 9).
pub const ADDR_IE0: u32 = 10;
/// First data transfer element address (mtx drive 0).
pub const ADDR_DRIVE0: u32 = 500;
/// Storage slots, import/export slots.
pub const N_SLOTS: u32 = 8;
/// Import/export slots.
pub const N_IE: u32 = 2;
/// Capacity of each cartridge image, MB.
const TAPE_MB: u32 = 256;

/// Options of `xtask vm-smoke-guest`.
#[derive(Debug, clap::Args)]
pub struct GuestArgs {
    /// The result share (job.json in, report.json out).
    #[arg(long, required_unless_present = "probe")]
    pub out: Option<PathBuf>,
    /// Run one library-level probe instead (used by the guest program itself).
    #[command(flatten)]
    pub probe: super::probe::ProbeArgs,
}

/// One finished command.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The command line as typed.
    pub cmdline: String,
    /// Exit code (None when killed by a signal or on time-out).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Killed at the time limit.
    pub timed_out: bool,
}

impl Ran {
    /// Exit code 0 within the time limit.
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// `$ cmd`, its output and (when not 0) its exit status: for the evidence.
    pub fn transcript(&self) -> String {
        let mut s = format!("$ {}\n", self.cmdline);
        for part in [&self.stdout, &self.stderr] {
            if !part.is_empty() {
                s.push_str(part);
                if !part.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
        if self.timed_out {
            s.push_str("[killed: time limit]\n");
        } else if self.code != Some(0) {
            match self.code {
                Some(c) => s.push_str(&format!("[exit {c}]\n")),
                None => s.push_str("[killed by a signal]\n"),
            }
        }
        s
    }
}

/// A SCSI device as the kernel sees it (sysfs), independent of our code.
#[derive(Debug, Clone)]
pub struct KernelDevice {
    /// `sg3`.
    pub sg: String,
    /// `0:0:0:3`.
    pub hctl: String,
    /// Peripheral device type (1 tape, 8 changer).
    pub pdt: u8,
    /// INQUIRY vendor, trimmed.
    pub vendor: String,
    /// INQUIRY product, trimmed.
    pub model: String,
    /// VPD page 80h serial, trimmed (empty when the page is missing).
    pub serial: String,
    /// `nst0` for tape drives.
    pub nst: Option<String>,
    /// `sch0` for changers.
    pub sch: Option<String>,
}

/// The guest's state: the job, the report so far, the daemons it started.
pub struct Guest {
    /// The result share.
    pub out: PathBuf,
    /// Scratch folder on the guest's tmpfs.
    pub work: PathBuf,
    /// What the host asked for.
    pub job: Job,
    /// The report being built.
    pub report: Report,
    daemons: Vec<Child>,
    seq: u32,
}

impl Guest {
    /// Runs `prog args` with the job's per-command time limit.
    pub fn run(&mut self, prog: &str, args: &[&str]) -> Ran {
        let limit = Duration::from_secs(self.job.command_timeout_secs);
        self.run_for(prog, args, limit)
    }

    /// Runs `prog args`, killing it after `limit`. Output goes through files.
    pub fn run_for(&mut self, prog: &str, args: &[&str], limit: Duration) -> Ran {
        self.seq += 1;
        let cmdline = std::iter::once(prog)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let out_path = self.work.join(format!("cmd{}.out", self.seq));
        let err_path = self.work.join(format!("cmd{}.err", self.seq));
        let failed = |why: String| Ran {
            cmdline: cmdline.clone(),
            code: None,
            stdout: String::new(),
            stderr: why,
            timed_out: false,
        };
        let (Ok(o), Ok(e)) = (fs::File::create(&out_path), fs::File::create(&err_path)) else {
            return failed("cannot create output files".into());
        };
        let mut child = match Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return failed(format!("cannot start {prog}: {e}")),
        };
        let start = Instant::now();
        let mut timed_out = false;
        let code = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) => {}
                Err(_) => break None,
            }
            if start.elapsed() > limit {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let read = |p: &Path| {
            fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        Ran {
            cmdline,
            code,
            stdout: read(&out_path),
            stderr: read(&err_path),
            timed_out,
        }
    }

    /// Runs a command that must succeed (setup): its transcript is appended to `log`.
    fn must(&mut self, log: &mut String, prog: &str, args: &[&str]) -> anyhow::Result<Ran> {
        let r = self.run(prog, args);
        log.push_str(&r.transcript());
        if !r.ok() {
            bail!("`{}` failed", r.cmdline);
        }
        Ok(r)
    }

    /// Starts a daemon in the foreground of its own process, output to `<work>/<name>.log`.
    fn daemon(&mut self, name: &str, prog: &str, args: &[&str]) -> anyhow::Result<()> {
        let log = self.work.join(format!("{name}.log"));
        let f = fs::File::create(&log)?;
        let child = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting {prog}"))?;
        self.daemons.push(child);
        Ok(())
    }

    /// Records a check.
    pub fn record(
        &mut self,
        name: &str,
        outcome: Outcome,
        detail: String,
        evidence: String,
        since: Instant,
    ) {
        let seconds = since.elapsed().as_secs_f64();
        let tag = match outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Unsupported => "UNSUPPORTED",
            Outcome::DeviceDefect => "DEVICE-BUG",
            Outcome::Skipped => "SKIPPED",
        };
        println!(
            "vm-smoke-guest: {tag} {name} ({seconds:.2}s): {}",
            detail.lines().next().unwrap_or("")
        );
        self.report.checks.push(Check {
            name: name.into(),
            outcome,
            detail,
            evidence,
            seconds,
        });
    }

    fn time<T>(&mut self, phase: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let start = Instant::now();
        let t = f(self);
        self.report
            .timings
            .push((phase.to_string(), start.elapsed().as_secs_f64()));
        t
    }

    /// Builds the tgt library and logs in; returns the setup transcript.
    fn setup_library(&mut self, log: &mut String) -> anyhow::Result<()> {
        let media = self.work.join("media");
        let placeholders = self.work.join("drives");
        fs::create_dir_all(&media)?;
        fs::create_dir_all(&placeholders)?;
        fs::create_dir_all("/var/lib/iscsi")?;
        fs::create_dir_all("/run/lock/iscsi")?;
        for m in ["st", "sg", "ch", "iscsi_tcp"] {
            self.must(log, "modprobe", &[m])?;
        }
        let size = TAPE_MB.to_string();
        for tape in TAPES {
            let f = media.join(tape);
            let f = f.to_string_lossy().into_owned();
            self.must(
                log,
                "tgtimg",
                &[
                    "--op",
                    "new",
                    "--device-type",
                    "tape",
                    "--barcode",
                    tape,
                    "--size",
                    &size,
                    "--type",
                    "data",
                    "--file",
                    &f,
                ],
            )?;
        }
        let mut drive_files = Vec::new();
        for i in 0..DRIVE_SERIALS.len() {
            let f = placeholders.join(format!("empty{i}"));
            let f = f.to_string_lossy().into_owned();
            self.must(
                log,
                "tgtimg",
                &[
                    "--op",
                    "new",
                    "--device-type",
                    "tape",
                    "--barcode",
                    &format!("EMPTY{i}"),
                    "--size",
                    "1",
                    "--type",
                    "clean",
                    "--file",
                    &f,
                ],
            )?;
            drive_files.push(f);
        }
        let smc = self.work.join("smc");
        fs::write(&smc, vec![0u8; 1024])?;
        let smc = smc.to_string_lossy().into_owned();

        self.daemon(
            "tgtd",
            "tgtd",
            &["-f", "--iscsi", &format!("portal={PORTAL}")],
        )?;
        let start = Instant::now();
        loop {
            let r = self.run(
                "tgtadm",
                &["--lld", "iscsi", "--op", "show", "--mode", "target"],
            );
            if r.ok() {
                break;
            }
            if start.elapsed() > Duration::from_secs(15) {
                log.push_str(&r.transcript());
                bail!("tgtd did not answer tgtadm within 15 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let tgtadm = |g: &mut Self, log: &mut String, args: &[&str]| -> anyhow::Result<()> {
            let mut all = vec!["--lld", "iscsi"];
            all.extend_from_slice(args);
            g.must(log, "tgtadm", &all).map(|_| ())
        };
        tgtadm(
            self,
            log,
            &[
                "--op", "new", "--mode", "target", "--tid", "1", "-T", TARGET_IQN,
            ],
        )?;
        for (i, serial) in DRIVE_SERIALS.iter().enumerate() {
            let lun = (i + 1).to_string();
            tgtadm(
                self,
                log,
                &[
                    "--mode",
                    "logicalunit",
                    "--op",
                    "new",
                    "--tid",
                    "1",
                    "--lun",
                    &lun,
                    "-b",
                    &drive_files[i],
                    "--device-type=tape",
                ],
            )?;
            tgtadm(
                self,
                log,
                &[
                    "--mode",
                    "logicalunit",
                    "--op",
                    "update",
                    "--tid",
                    "1",
                    "--lun",
                    &lun,
                    "--params",
                    &format!(
                        "vendor_id=HP,product_id=Ultrium-6,product_rev=0001,scsi_sn={serial},removable=1"
                    ),
                ],
            )?;
            tgtadm(
                self,
                log,
                &[
                    "--mode",
                    "logicalunit",
                    "--op",
                    "update",
                    "--tid",
                    "1",
                    "--lun",
                    &lun,
                    "--params",
                    "online=0",
                ],
            )?;
        }
        let changer_lun = (DRIVE_SERIALS.len() + 1).to_string();
        let lu = |g: &mut Self, log: &mut String, params: &str| {
            tgtadm(
                g,
                log,
                &[
                    "--mode",
                    "logicalunit",
                    "--op",
                    "update",
                    "--tid",
                    "1",
                    "--lun",
                    &changer_lun,
                    "--params",
                    params,
                ],
            )
        };
        tgtadm(
            self,
            log,
            &[
                "--mode",
                "logicalunit",
                "--op",
                "new",
                "--tid",
                "1",
                "--lun",
                &changer_lun,
                "-b",
                &smc,
                "--device-type=changer",
            ],
        )?;
        lu(
            self,
            log,
            &format!(
                "vendor_id=STK,product_id=L700,product_rev=0001,scsi_sn={CHANGER_SERIAL},removable=1"
            ),
        )?;
        lu(self, log, &format!("media_home={}", media.display()))?;
        lu(
            self,
            log,
            &format!("element_type=1,start_address={ADDR_TRANSPORT},quantity=1"),
        )?;
        lu(
            self,
            log,
            &format!("element_type=2,start_address={ADDR_SLOT0},quantity={N_SLOTS}"),
        )?;
        lu(
            self,
            log,
            &format!("element_type=3,start_address={ADDR_IE0},quantity={N_IE}"),
        )?;
        lu(
            self,
            log,
            &format!(
                "element_type=4,start_address={ADDR_DRIVE0},quantity={}",
                DRIVE_SERIALS.len()
            ),
        )?;
        for i in 0..DRIVE_SERIALS.len() {
            lu(
                self,
                log,
                &format!(
                    "element_type=4,address={},tid=1,lun={}",
                    ADDR_DRIVE0 + i as u32,
                    i + 1
                ),
            )?;
        }
        for (i, tape) in TAPES.iter().enumerate() {
            lu(
                self,
                log,
                &format!(
                    "element_type=2,address={},barcode={tape},sides=1",
                    ADDR_SLOT0 + i as u32
                ),
            )?;
        }
        tgtadm(
            self,
            log,
            &[
                "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL",
            ],
        )?;

        self.daemon("iscsid", "iscsid", &["-f"])?;
        let start = Instant::now();
        loop {
            let r = self.run(
                "iscsiadm",
                &["-m", "discovery", "-t", "sendtargets", "-p", PORTAL],
            );
            if r.ok() {
                log.push_str(&r.transcript());
                break;
            }
            if start.elapsed() > Duration::from_secs(15) {
                log.push_str(&r.transcript());
                bail!("iSCSI discovery failed for 15 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.must(
            log,
            "iscsiadm",
            &["-m", "node", "-T", TARGET_IQN, "-p", PORTAL, "--login"],
        )?;
        let start = Instant::now();
        loop {
            let devs = kernel_devices();
            let changers = devs
                .iter()
                .filter(|d| d.pdt == 8 && d.sch.is_some())
                .count();
            let tapes = devs
                .iter()
                .filter(|d| d.pdt == 1 && d.nst.is_some())
                .count();
            let nodes_ok = devs
                .iter()
                .filter_map(|d| d.nst.as_ref().or(d.sch.as_ref()))
                .all(|n| Path::new("/dev").join(n).exists());
            if changers == 1 && tapes == DRIVE_SERIALS.len() && nodes_ok {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!(
                    "after login the kernel shows {changers} changer(s) and {tapes} tape drive(s), not 1 and 2"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Runs a library-level probe in a child process with a time limit. `Err` carries why
    /// the probe itself failed (hung, crashed, printed no result); the transcript goes with
    /// both.
    pub fn probe(
        &mut self,
        args: &[&str],
        limit: Duration,
    ) -> (Result<Vec<super::probe::ProbeCheck>, String>, String) {
        let exe = match std::env::current_exe() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => {
                return (
                    Err(format!("cannot locate the guest program: {e}")),
                    String::new(),
                );
            }
        };
        let mut all = vec!["vm-smoke-guest", "--probe"];
        all.extend_from_slice(args);
        let r = self.run_for(&exe, &all, limit);
        let transcript = r.transcript();
        if r.timed_out {
            return (
                Err(format!("hung: killed after {} s", limit.as_secs())),
                transcript,
            );
        }
        if r.code != Some(0) {
            return (
                Err(format!("exited with {:?} (panic or error)", r.code)),
                transcript,
            );
        }
        match r
            .stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
        {
            Some(checks) => (Ok(checks), transcript),
            None => (Err("printed no result".into()), transcript),
        }
    }

    /// The sg node of the tape drive whose st node is `nst` (`nst0`).
    pub fn drive_sg(&self, nst: &str) -> Option<String> {
        kernel_devices()
            .into_iter()
            .find(|d| d.nst.as_deref() == Some(nst))
            .map(|d| format!("/dev/{}", d.sg))
    }

    /// The changer's sg node, e.g. `/dev/sg3`.
    pub fn changer_sg(&self) -> anyhow::Result<String> {
        kernel_devices()
            .into_iter()
            .find(|d| d.pdt == 8)
            .map(|d| format!("/dev/{}", d.sg))
            .context("no changer in sysfs")
    }

    /// `mtx -f SG status`, parsed, plus its transcript.
    pub fn mtx_status(&mut self) -> (anyhow::Result<mtx::MtxStatus>, String) {
        let sg = match self.changer_sg() {
            Ok(s) => s,
            Err(e) => return (Err(e), String::new()),
        };
        let r = self.run("mtx", &["-f", &sg, "status"]);
        let parsed = if r.ok() {
            mtx::parse(&r.stdout)
        } else {
            Err(anyhow::anyhow!("`{}` failed", r.cmdline))
        };
        (parsed, r.transcript())
    }
}

/// Reads the SCSI devices from sysfs.
pub fn kernel_devices() -> Vec<KernelDevice> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/class/scsi_generic") else {
        return out;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let sg = e.file_name().to_string_lossy().into_owned();
        let dev = e.path().join("device");
        let read = |name: &str| {
            fs::read_to_string(dev.join(name))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let pdt = read("type").parse().unwrap_or(0xff);
        let hctl = fs::canonicalize(&dev)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let serial = fs::read(dev.join("vpd_pg80"))
            .ok()
            .and_then(|b| {
                let len = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
                let body = b.get(4..4 + len)?;
                Some(
                    String::from_utf8_lossy(body)
                        .trim_matches(|c: char| c == ' ' || c == '\0')
                        .to_string(),
                )
            })
            .unwrap_or_default();
        let first_in = |sub: &str, prefix: &str| {
            let mut names: Vec<String> = fs::read_dir(dev.join(sub))
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.strip_prefix(prefix)
                        .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
                })
                .collect();
            names.sort();
            names.into_iter().next()
        };
        out.push(KernelDevice {
            nst: first_in("scsi_tape", "nst"),
            sch: first_in("scsi_changer", "sch"),
            sg,
            hctl,
            pdt,
            vendor: read("vendor"),
            model: read("model"),
            serial,
        });
    }
    out.sort_by(|a, b| a.hctl.cmp(&b.hctl));
    out
}

/// Entry point of `xtask vm-smoke-guest`.
pub fn main(args: GuestArgs) -> anyhow::Result<()> {
    if let Some(probe) = args.probe.probe {
        return super::probe::main(&args.probe, probe);
    }
    let out = args.out.context("--out is required")?;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    println!(
        "{} (guest uptime {uptime:.2}s)",
        super::qemu::USERSPACE_MARKER
    );
    let job: Job = serde_json::from_slice(
        &fs::read(out.join("job.json")).context("reading job.json from the result share")?,
    )?;
    let work = PathBuf::from("/tmp/tb-vm");
    fs::create_dir_all(&work)?;
    let mut g = Guest {
        out,
        work,
        job,
        report: Report::default(),
        daemons: Vec::new(),
        seq: 0,
    };
    g.report.kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();

    g.report
        .timings
        .push(("kernel + 9p root (uptime)".into(), uptime));
    let started = Instant::now();
    let mut log = String::new();
    let setup = g.time("library setup", |g| g.setup_library(&mut log));
    match setup {
        Ok(()) => {
            let lsscsi = g.run("lsscsi", &["-g"]);
            log.push_str(&lsscsi.transcript());
            g.record(
                "setup.library",
                Outcome::Pass,
                format!(
                    "tgt library up: {} drives, {N_SLOTS} slots, {N_IE} I/E slots, {} cartridges",
                    DRIVE_SERIALS.len(),
                    TAPES.len()
                ),
                log,
                started,
            );
            g.time("checks", super::checks::run_all);
        }
        Err(e) => {
            let msg = format!("{e:#}");
            for name in ["tgtd", "iscsid"] {
                if let Ok(text) = fs::read_to_string(g.work.join(format!("{name}.log"))) {
                    log.push_str(&format!("--- {name}.log ---\n{text}"));
                }
            }
            g.record("setup.library", Outcome::Fail, msg.clone(), log, started);
            g.report.aborted = Some(format!("library setup failed: {msg}"));
        }
    }
    let _ = g.run_for(
        "iscsiadm",
        &["-m", "node", "--logoutall=all"],
        Duration::from_secs(10),
    );
    for d in &mut g.daemons {
        let _ = d.kill();
        let _ = d.wait();
    }
    let json = serde_json::to_vec_pretty(&g.report)?;
    fs::write(g.out.join("report.json"), json)?;
    fs::write(g.out.join("report.txt"), g.report.render())?;
    println!(
        "vm-smoke-guest: done: {} passed, {} failed, {} unsupported, {} device bugs",
        g.report.count(Outcome::Pass),
        g.report.count(Outcome::Fail),
        g.report.count(Outcome::Unsupported),
        g.report.count(Outcome::DeviceDefect)
    );
    Ok(())
}

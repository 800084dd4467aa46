//! Boots the guest under QEMU (TCG: this machine's /dev/kvm cannot run stock kernels) with
//! the host's `/` shared read-only and a writable result share, streams the serial console,
//! and kills the VM when it overruns its time limit.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// What to boot.
#[derive(Debug)]
pub struct Boot<'a> {
    /// Kernel image.
    pub vmlinuz: &'a Path,
    /// Initramfs (uncompressed newc cpio).
    pub initramfs: &'a Path,
    /// Host folder mounted writable in the guest at /tb-out.
    pub out_dir: &'a Path,
    /// Serial console log file.
    pub console_log: PathBuf,
    /// Kill the VM after this long.
    pub timeout: Duration,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// Guest CPUs.
    pub cpus: u32,
    /// Echo the console to stderr while it runs.
    pub echo: bool,
}

/// How the VM ended.
#[derive(Debug)]
pub struct Ended {
    /// It ran past its time limit and was killed.
    pub timed_out: bool,
    /// QEMU's exit code (None when killed).
    pub code: Option<i32>,
    /// Wall time from start to exit.
    pub elapsed: Duration,
    /// Seconds from start until the console showed the guest's stage 2 (user space on
    /// the 9p root), when it did.
    pub userspace_at: Option<f64>,
}

/// The marker line the guest program prints first, used to time the boot.
pub const USERSPACE_MARKER: &str = "vm-smoke-guest: started";

/// The QEMU command line.
fn command(b: &Boot<'_>) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"])
        .args(["-smp", &b.cpus.to_string(), "-m", &b.memory_mb.to_string()])
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-nic", "none", "-no-reboot", "-monitor", "none"])
        .args(["-serial", "stdio"])
        .arg("-kernel")
        .arg(b.vmlinuz)
        .arg("-initrd")
        .arg(b.initramfs)
        .args([
            "-append",
            "console=ttyS0 loglevel=4 panic=-1 sysrq_always_enabled=1 rdinit=/init",
        ])
        .args([
            "-virtfs",
            "local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap",
        ])
        .arg("-virtfs")
        .arg(format!(
            "local,path={},mount_tag=out,security_model=none,multidevs=remap",
            b.out_dir.display()
        ));
    cmd
}

/// Boots the VM and waits for it to power off (or kills it at the time limit).
pub fn boot(b: &Boot<'_>) -> anyhow::Result<Ended> {
    let mut cmd = command(b);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting qemu-system-x86_64")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let stderr = child.stderr.take().context("qemu stderr")?;
    let mut log = fs::File::create(&b.console_log)
        .with_context(|| format!("creating {}", b.console_log.display()))?;
    let echo = b.echo;
    let console = std::thread::spawn(move || {
        let mut userspace_at = None;
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\r', '\n']);
            if userspace_at.is_none() && line.contains(USERSPACE_MARKER) {
                userspace_at = Some(start.elapsed().as_secs_f64());
            }
            let _ = writeln!(log, "{line}");
            if echo {
                eprintln!("guest| {line}");
            }
        }
        userspace_at
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("qemu: {line}");
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > b.timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let userspace_at = console.join().unwrap_or(None);
    let _ = errors.join();
    Ok(Ended {
        timed_out,
        code: status.code(),
        elapsed,
        userspace_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_shares_root_read_only_and_has_no_network() {
        let out = PathBuf::from("/tmp/out dir");
        let b = Boot {
            vmlinuz: Path::new("/k/vmlinuz"),
            initramfs: Path::new("/k/initrd"),
            out_dir: &out,
            console_log: PathBuf::from("/tmp/c.log"),
            timeout: Duration::from_secs(1),
            memory_mb: 512,
            cpus: 2,
            echo: false,
        };
        let args: Vec<String> = command(&b)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("path=/,mount_tag=root,security_model=none,readonly=on"));
        assert!(joined.contains("path=/tmp/out dir,mount_tag=out"));
        assert!(joined.contains("-nic none"));
        assert!(joined.contains("tcg"));
        assert!(!joined.contains("kvm"));
    }
}

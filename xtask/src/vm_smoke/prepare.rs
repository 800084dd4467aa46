//! Host-side preparation, all cached between runs: the Debian packages (through
//! `.ci/install-deps`), a stock Debian kernel unpacked into a folder (`apt-get download` +
//! `dpkg -x` + `depmod`, nothing installed), and a busybox initramfs that mounts the host's
//! tree over 9p (see `xtask/vm/init.sh`).

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Programs the host and the guest need (the guest runs the host's binaries).
const TOOLS: &[&str] = &[
    "qemu-system-x86_64",
    "tgtd",
    "tgtadm",
    "tgtimg",
    "iscsid",
    "iscsiadm",
    "mtx",
    "mt",
    "lsscsi",
    "sg_raw",
    "depmod",
    "modprobe",
    "dpkg",
    "apt-get",
    "ip",
];

/// Modules the initramfs loads to reach the 9p root (with their dependencies).
const INITRAMFS_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/// The first stage of the guest, packed as `/init`.
const INIT_SH: &str = include_str!("../../vm/init.sh");

/// A Debian kernel unpacked into a folder.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Kernel release, e.g. `6.1.0-56-amd64`.
    pub version: String,
    /// The folder `dpkg -x` filled: `boot/vmlinuz-VERSION`, `lib/modules/VERSION`.
    pub dir: PathBuf,
}

impl Kernel {
    /// The bootable image.
    pub fn vmlinuz(&self) -> PathBuf {
        self.dir
            .join("boot")
            .join(format!("vmlinuz-{}", self.version))
    }

    /// The folder to bind-mount over the guest's `/lib/modules`.
    pub fn modules_root(&self) -> PathBuf {
        self.dir.join("lib/modules")
    }
}

/// Finds a program on PATH or in the sbin directories (root's tools live there).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn busybox_static_installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "busybox-static"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        && Path::new("/bin/busybox").is_file()
}

fn missing_tools() -> Vec<String> {
    let mut missing: Vec<String> = TOOLS
        .iter()
        .filter(|t| which(t).is_none())
        .map(|t| (*t).to_string())
        .collect();
    if !busybox_static_installed() {
        missing.push("busybox (static, package busybox-static)".into());
    }
    missing
}

/// Makes sure every package is installed, running `.ci/install-deps` when one is missing.
/// Returns true when it had to install something.
pub fn ensure_packages(root: &Path) -> anyhow::Result<bool> {
    let missing = missing_tools();
    if missing.is_empty() {
        return Ok(false);
    }
    eprintln!(
        "vm-smoke: missing {}; running .ci/install-deps",
        missing.join(", ")
    );
    crate::run_cmd(Command::new("bash").arg(root.join(".ci/install-deps")))?;
    let still = missing_tools();
    if !still.is_empty() {
        bail!(
            ".ci/install-deps ran but these are still missing: {}",
            still.join(", ")
        );
    }
    Ok(true)
}

/// The kernel release apt would install now (`linux-image-amd64`'s dependency).
fn current_kernel_release() -> anyhow::Result<String> {
    let query = || -> anyhow::Result<Option<String>> {
        let out = Command::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .output()
            .context("running apt-cache")?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.trim()
                .strip_prefix("Depends: linux-image-")
                .filter(|v| v.ends_with("-amd64"))
                .map(str::to_string)
        }))
    };
    if let Some(v) = query()? {
        return Ok(v);
    }
    crate::run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
    query()?.context("apt-cache knows no linux-image-amd64 dependency, even after apt-get update")
}

/// Returns a cached kernel folder, downloading and unpacking one when there is none.
/// `want` picks a release (`6.1.0-56-amd64`); otherwise any complete cached one is reused,
/// else the release `linux-image-amd64` points at is fetched.
pub fn ensure_kernel(cache: &Path, want: Option<&str>) -> anyhow::Result<Kernel> {
    let kernels = cache.join("kernel");
    fs::create_dir_all(&kernels).with_context(|| format!("creating {}", kernels.display()))?;
    let complete = |v: &str| kernels.join(v).join(".complete").is_file();
    let version = match want {
        Some(v) => v.to_string(),
        None => {
            let mut cached: Vec<String> = fs::read_dir(&kernels)?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|v| !v.ends_with(".tmp") && complete(v))
                .collect();
            cached.sort();
            match cached.pop() {
                Some(v) => v,
                None => current_kernel_release()?,
            }
        }
    };
    let dir = kernels.join(&version);
    let kernel = Kernel {
        version: version.clone(),
        dir: dir.clone(),
    };
    if complete(&version) {
        return Ok(kernel);
    }
    eprintln!("vm-smoke: fetching kernel linux-image-{version}");
    let dl = cache.join("download");
    fs::create_dir_all(&dl)?;
    let pkg = format!("linux-image-{version}");
    let download = || {
        Command::new("apt-get")
            .args(["download", "-qq", &pkg])
            .current_dir(&dl)
            .status()
    };
    if !download().context("running apt-get download")?.success() {
        crate::run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
        if !download()?.success() {
            bail!("apt-get download {pkg} failed");
        }
    }
    let deb = fs::read_dir(&dl)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
        })
        .with_context(|| format!("apt-get download left no {pkg}_*.deb in {}", dl.display()))?;
    let tmp = kernels.join(format!("{version}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    crate::run_cmd(Command::new("dpkg").arg("-x").arg(&deb).arg(&tmp))?;
    crate::run_cmd(Command::new("depmod").arg("-b").arg(&tmp).arg(&version))?;
    if !tmp
        .join("boot")
        .join(format!("vmlinuz-{version}"))
        .is_file()
    {
        bail!("{} holds no boot/vmlinuz-{version}", deb.display());
    }
    fs::write(tmp.join(".complete"), b"")?;
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::rename(&tmp, &dir)?;
    fs::remove_file(&deb)?;
    Ok(kernel)
}

/// Module files (in load order) needed for `names`, as `modprobe --show-depends` lists them.
fn module_files(kernel: &Kernel, names: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for name in names {
        let out = Command::new("modprobe")
            .arg("-d")
            .arg(&kernel.dir)
            .args(["-S", &kernel.version, "--show-depends", name])
            .output()
            .context("running modprobe --show-depends")?;
        if !out.status.success() {
            bail!(
                "modprobe --show-depends {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("insmod"), Some(path)) => {
                    let p = PathBuf::from(path);
                    if !files.contains(&p) {
                        files.push(p);
                    }
                }
                (Some("builtin"), _) => {}
                _ => bail!("unexpected modprobe line {line:?}"),
            }
        }
    }
    Ok(files)
}

/// One file of the initramfs.
struct Entry {
    name: String,
    mode: u32,
    data: Vec<u8>,
    rdev: Option<(u32, u32)>,
}

fn dir(name: &str) -> Entry {
    Entry {
        name: name.into(),
        mode: 0o040_755,
        data: Vec::new(),
        rdev: None,
    }
}

fn file(name: &str, mode: u32, data: Vec<u8>) -> Entry {
    Entry {
        name: name.into(),
        mode: 0o100_000 | mode,
        data,
        rdev: None,
    }
}

/// Builds (or reuses) the initramfs for this kernel: static busybox, `/init` (init.sh),
/// the 9p/virtio/overlay modules and their load order.
pub fn ensure_initramfs(cache: &Path, kernel: &Kernel) -> anyhow::Result<PathBuf> {
    let busybox = fs::read("/bin/busybox").context("reading /bin/busybox")?;
    let modules = module_files(kernel, INITRAMFS_MODULES)?;
    let mut h = DefaultHasher::new();
    INIT_SH.hash(&mut h);
    busybox.hash(&mut h);
    modules.hash(&mut h);
    kernel.version.hash(&mut h);
    let path = cache.join(format!(
        "initramfs-{}-{:016x}.cpio",
        kernel.version,
        h.finish()
    ));
    if path.is_file() {
        return Ok(path);
    }
    let mut entries = vec![
        dir("bin"),
        dir("dev"),
        dir("proc"),
        dir("sys"),
        dir("ro"),
        dir("rw"),
        dir("newroot"),
        dir("modules"),
        Entry {
            name: "dev/console".into(),
            mode: 0o020_600,
            data: Vec::new(),
            rdev: Some((5, 1)),
        },
        file("bin/busybox", 0o755, busybox),
        file("init", 0o755, INIT_SH.as_bytes().to_vec()),
    ];
    let mut order = String::new();
    for m in &modules {
        let base = m
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("odd module path {}", m.display()))?;
        let data = fs::read(m).with_context(|| format!("reading {}", m.display()))?;
        entries.push(file(&format!("modules/{base}"), 0o644, data));
        order.push_str(base);
        order.push('\n');
    }
    entries.push(file("modules/order", 0o644, order.into_bytes()));
    let inputs = entries.into_iter().map(|e| {
        let mut b = cpio::NewcBuilder::new(&e.name).mode(e.mode).nlink(1);
        if let Some((major, minor)) = e.rdev {
            b = b.rdev_major(major).rdev_minor(minor);
        }
        (b, Cursor::new(e.data))
    });
    let tmp = path.with_extension("tmp");
    let out = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    cpio::write_cpio(inputs, std::io::BufWriter::new(out))
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The cache directory: `$TAPEBACKUP_VM_CACHE`, else /var/cache/tapebackup-vm when it
/// can be created, else `<workspace>/target/vm`.
pub fn default_cache_dir(root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("TAPEBACKUP_VM_CACHE") {
        return PathBuf::from(dir);
    }
    let system = PathBuf::from("/var/cache/tapebackup-vm");
    if fs::create_dir_all(&system).is_ok() {
        return system;
    }
    root.join("target/vm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_script_hands_over_to_stage_two_and_powers_off_on_failure() {
        assert!(INIT_SH.starts_with("#!/bin/busybox sh"));
        assert!(INIT_SH.contains("switch_root /newroot"));
        assert!(INIT_SH.contains("echo o >/proc/sysrq-trigger"));
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("no-such-program-tapebackup").is_none());
    }
}

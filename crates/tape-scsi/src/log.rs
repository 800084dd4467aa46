//! LOG SENSE pages of tape drives: TapeAlert (2Eh, and the 12h response bitmap), volume
//! statistics (17h) and tape capacity (31h). Pure decoders over untrusted bytes.

use crate::error::DecodeError;
use crate::scsi::{ascii_field, be16};

/// Log page codes this crate decodes.
pub mod page {
    /// Supported log pages.
    pub const SUPPORTED: u8 = 0x00;
    /// TapeAlert response: a 64-bit flag map that reading does not clear (SSC-4).
    pub const TAPE_ALERT_RESPONSE: u8 = 0x12;
    /// Volume statistics (SSC-4).
    pub const VOLUME_STATISTICS: u8 = 0x17;
    /// TapeAlert: one parameter per flag; reading clears the flags.
    pub const TAPE_ALERT: u8 = 0x2E;
    /// Tape capacity (LTO vendor page): remaining and maximum capacity per partition, MiB.
    pub const TAPE_CAPACITY: u8 = 0x31;
}

/// One log parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogParameter {
    /// PARAMETER CODE.
    pub code: u16,
    /// Control byte (DU, TSD, ETC, TMC, FORMAT AND LINKING).
    pub control: u8,
    /// PARAMETER VALUE bytes.
    pub value: Vec<u8>,
}

impl LogParameter {
    /// The value as a big-endian unsigned integer (values longer than 8 bytes keep their
    /// last 8 bytes).
    pub fn as_u64(&self) -> u64 {
        let tail = &self.value[self.value.len().saturating_sub(8)..];
        tail.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    }
}

/// A decoded log page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// PAGE CODE.
    pub page: u8,
    /// SUBPAGE CODE.
    pub subpage: u8,
    /// The parameters in reply order.
    pub parameters: Vec<LogParameter>,
}

impl LogPage {
    /// The parameter with `code`, if present.
    pub fn parameter(&self, code: u16) -> Option<&LogParameter> {
        self.parameters.iter().find(|p| p.code == code)
    }
}

/// Decodes a log page: 4-byte header and parameters up to PAGE LENGTH or the end of the
/// reply, whichever comes first. A parameter cut by the end is an error.
pub fn decode_log_page(b: &[u8]) -> Result<LogPage, DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::truncated("log page header", 0, 4, b.len()));
    }
    let page = b[0] & 0x3F;
    let subpage = if b[0] & 0x40 != 0 { b[1] } else { 0 };
    let end = (4 + usize::from(be16(b, 2))).min(b.len());
    let mut parameters = Vec::new();
    let mut off = 4;
    while off < end {
        if off + 4 > end {
            return Err(DecodeError::truncated(
                "log parameter header",
                off,
                4,
                end - off,
            ));
        }
        let len = usize::from(b[off + 3]);
        let value = b
            .get(off + 4..off + 4 + len)
            .filter(|_| off + 4 + len <= end)
            .ok_or_else(|| DecodeError::truncated("log parameter", off, 4 + len, end - off))?;
        parameters.push(LogParameter {
            code: be16(b, off),
            control: b[off + 2],
            value: value.to_vec(),
        });
        off += 4 + len;
    }
    Ok(LogPage {
        page,
        subpage,
        parameters,
    })
}

/// Encodes a log page (the inverse of [`decode_log_page`]); emulators and tests use it.
pub fn encode_log_page(page: &LogPage) -> Vec<u8> {
    let mut out = vec![
        page.page & 0x3F | if page.subpage != 0 { 0x40 } else { 0 },
        page.subpage,
        0,
        0,
    ];
    for p in &page.parameters {
        let value = &p.value[..p.value.len().min(255)];
        out.extend_from_slice(&p.code.to_be_bytes());
        out.push(p.control);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    }
    let len = (out.len() - 4).min(usize::from(u16::MAX)) as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// A TapeAlert flag that is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapeAlert {
    /// Flag number, 1..=64.
    pub flag: u8,
    /// Its name (SSC-4 annex A).
    pub name: &'static str,
    /// Severity: "critical", "warning" or "information".
    pub severity: &'static str,
}

impl TapeAlert {
    /// The alert for a flag number.
    pub fn new(flag: u8) -> TapeAlert {
        let (name, severity) = tape_alert_info(flag);
        TapeAlert {
            flag,
            name,
            severity,
        }
    }
}

/// The set flags of a TapeAlert page (2Eh: parameter n = flag n, bit 0 of the value) or
/// of the TapeAlert response page (12h: parameter 0, a 64-bit map, flag 1 = most
/// significant bit).
pub fn decode_tape_alerts(b: &[u8]) -> Result<Vec<TapeAlert>, DecodeError> {
    let page = decode_log_page(b)?;
    let mut flags = Vec::new();
    match page.page {
        page::TAPE_ALERT => {
            for p in &page.parameters {
                if (1..=64).contains(&p.code) && p.value.first().is_some_and(|v| v & 0x01 != 0) {
                    flags.push(p.code as u8);
                }
            }
        }
        page::TAPE_ALERT_RESPONSE => {
            if let Some(p) = page.parameter(0) {
                for (i, byte) in p.value.iter().take(8).enumerate() {
                    for bit in 0..8 {
                        if byte & (0x80 >> bit) != 0 {
                            flags.push((i * 8 + bit + 1) as u8);
                        }
                    }
                }
            }
        }
        other => {
            return Err(DecodeError::bad_value(
                "TapeAlert page code",
                0,
                u64::from(other),
            ));
        }
    }
    flags.sort_unstable();
    flags.dedup();
    Ok(flags.into_iter().map(TapeAlert::new).collect())
}

fn tape_alert_info(flag: u8) -> (&'static str, &'static str) {
    const C: &str = "critical";
    const W: &str = "warning";
    const I: &str = "information";
    match flag {
        1 => ("read warning", W),
        2 => ("write warning", W),
        3 => ("hard error", W),
        4 => ("media", C),
        5 => ("read failure", C),
        6 => ("write failure", C),
        7 => ("media life", W),
        8 => ("not data grade", W),
        9 => ("write protect", C),
        10 => ("no removal", I),
        11 => ("cleaning media", I),
        12 => ("unsupported format", I),
        13 => ("recoverable mechanical cartridge failure", C),
        14 => ("unrecoverable mechanical cartridge failure", C),
        15 => ("memory chip in cartridge failure", W),
        16 => ("forced eject", C),
        17 => ("read only format", W),
        18 => ("tape directory corrupted on load", W),
        19 => ("nearing media life", I),
        20 => ("clean now", C),
        21 => ("clean periodic", W),
        22 => ("expired cleaning media", C),
        23 => ("invalid cleaning tape", C),
        24 => ("retension requested", W),
        25 => ("dual-port interface error", W),
        26 => ("cooling fan failure", W),
        27 => ("power supply failure", W),
        28 => ("power consumption", W),
        29 => ("drive maintenance", W),
        30 => ("hardware A", C),
        31 => ("hardware B", C),
        32 => ("interface", W),
        33 => ("eject media", C),
        34 => ("download fail", W),
        35 => ("drive humidity", W),
        36 => ("drive temperature", W),
        37 => ("drive voltage", W),
        38 => ("predictive failure", C),
        39 => ("diagnostics required", W),
        49 => ("diminished native capacity", W),
        50 => ("lost statistics", W),
        51 => ("tape directory invalid at unload", W),
        52 => ("tape system area write failure", C),
        53 => ("tape system area read failure", C),
        54 => ("no start of data", C),
        55 => ("loading failure", C),
        56 => ("unrecoverable unload failure", C),
        57 => ("automation interface failure", C),
        58 => ("firmware failure", W),
        59 => ("WORM medium integrity check failed", W),
        60 => ("WORM medium overwrite attempted", W),
        _ => ("reserved", I),
    }
}

/// Remaining and maximum capacity from the tape capacity page (31h), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TapeCapacity {
    /// Remaining capacity of partitions 0 and 1.
    pub remaining: [u64; 2],
    /// Maximum capacity of partitions 0 and 1.
    pub maximum: [u64; 2],
}

/// Unit of the tape capacity page's values.
pub const CAPACITY_UNIT: u64 = 1 << 20;

/// Decodes the tape capacity page (31h): parameters 1/2 remaining capacity of partition
/// 0/1, 3/4 maximum capacity, each in MiB.
pub fn decode_tape_capacity(b: &[u8]) -> Result<TapeCapacity, DecodeError> {
    let page = decode_log_page(b)?;
    if page.page != page::TAPE_CAPACITY {
        return Err(DecodeError::bad_value(
            "tape capacity page code",
            0,
            u64::from(page.page),
        ));
    }
    let get = |code| {
        page.parameter(code)
            .map_or(0, |p| p.as_u64().saturating_mul(CAPACITY_UNIT))
    };
    Ok(TapeCapacity {
        remaining: [get(1), get(2)],
        maximum: [get(3), get(4)],
    })
}

/// Named counters of the volume statistics page (17h, SSC-4 table 126); absent
/// parameters are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeStatistics {
    /// 0001h: thread count (times the cartridge was loaded).
    pub mounts: Option<u64>,
    /// 0002h: total data sets written.
    pub data_sets_written: Option<u64>,
    /// 0003h: total write retries.
    pub write_retries: Option<u64>,
    /// 0004h: total unrecovered write errors.
    pub write_errors: Option<u64>,
    /// 0007h: total data sets read.
    pub data_sets_read: Option<u64>,
    /// 0008h: total read retries.
    pub read_retries: Option<u64>,
    /// 0009h: total unrecovered read errors.
    pub read_errors: Option<u64>,
    /// 0010h: lifetime megabytes written.
    pub lifetime_mb_written: Option<u64>,
    /// 0011h: lifetime megabytes read.
    pub lifetime_mb_read: Option<u64>,
    /// 0016h: total native capacity, megabytes.
    pub native_capacity_mb: Option<u64>,
    /// 0017h: total used native capacity, megabytes.
    pub used_native_capacity_mb: Option<u64>,
    /// 0040h: volume serial number.
    pub volume_serial: Option<String>,
    /// 0042h: volume barcode as the cartridge memory records it.
    pub barcode: Option<String>,
    /// 0043h: volume manufacturer.
    pub manufacturer: Option<String>,
    /// Every parameter, for what is not named above.
    pub parameters: Vec<LogParameter>,
}

/// Decodes the volume statistics page (17h).
pub fn decode_volume_statistics(b: &[u8]) -> Result<VolumeStatistics, DecodeError> {
    let page = decode_log_page(b)?;
    if page.page != page::VOLUME_STATISTICS {
        return Err(DecodeError::bad_value(
            "volume statistics page code",
            0,
            u64::from(page.page),
        ));
    }
    let num = |code| page.parameter(code).map(LogParameter::as_u64);
    let text = |code| {
        page.parameter(code)
            .map(|p| ascii_field(&p.value))
            .filter(|s| !s.is_empty())
    };
    Ok(VolumeStatistics {
        mounts: num(0x0001),
        data_sets_written: num(0x0002),
        write_retries: num(0x0003),
        write_errors: num(0x0004),
        data_sets_read: num(0x0007),
        read_retries: num(0x0008),
        read_errors: num(0x0009),
        lifetime_mb_written: num(0x0010),
        lifetime_mb_read: num(0x0011),
        native_capacity_mb: num(0x0016),
        used_native_capacity_mb: num(0x0017),
        volume_serial: text(0x0040),
        barcode: text(0x0042),
        manufacturer: text(0x0043),
        parameters: page.parameters.clone(),
    })
}

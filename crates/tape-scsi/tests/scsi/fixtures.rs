//! Locating ../shared and replaying its captures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tape_scsi::{
    Completion, DataDirection, Error, ScsiTransport, Sense, SenseKey, encode_fixed_sense, status,
};

/// `$TAPEBACKUP_SHARED/fixtures/scsi` or `<workspace>/../shared/fixtures/scsi`. `None`
/// (after printing SKIP) when absent, a panic when absent under `CI=true`.
pub fn scsi_fixtures() -> Option<PathBuf> {
    let shared = std::env::var_os("TAPEBACKUP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("fixtures/scsi");
    if dir.join("MANIFEST.md").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("../shared not found at {} and CI=true", shared.display());
    }
    eprintln!("SKIP: ../shared not found");
    None
}

pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
}

pub fn check_condition(key: SenseKey, asc: u8, ascq: u8) -> Completion {
    let sense = Sense {
        response_code: 0x70,
        deferred: false,
        descriptor_format: false,
        key,
        asc,
        ascq,
        filemark: false,
        eom: false,
        ili: false,
        information: None,
        field_pointer: None,
    };
    Completion {
        status: status::CHECK_CONDITION,
        sense: encode_fixed_sense(&sense),
        transferred: 0,
    }
}

pub fn good(transferred: usize) -> Completion {
    Completion {
        status: status::GOOD,
        sense: Vec::new(),
        transferred,
    }
}

/// Answers changer commands with the captured replies of one library state
/// (`changer_res_<type>_<voltag|novoltag>[_dvcid]_<state>.bin`), as the library gave them
/// to whatever CDB asked: per-type replies hold all elements of the type.
#[derive(Debug)]
pub struct Replay {
    pub dir: PathBuf,
    pub state: String,
    pub moves: Vec<(u16, u16, u16)>,
    pub commands: Vec<Vec<u8>>,
    /// Sense file to answer MOVE MEDIUM with, instead of GOOD.
    pub move_sense: Option<String>,
}

impl Replay {
    pub fn new(dir: &Path, state: &str) -> Replay {
        Replay {
            dir: dir.to_path_buf(),
            state: state.into(),
            moves: Vec::new(),
            commands: Vec::new(),
            move_sense: None,
        }
    }

    fn reply(&self, name: &str, data: DataDirection<'_>) -> Completion {
        let bytes = read(&self.dir, name);
        match data {
            DataDirection::FromDevice(buf) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                good(n)
            }
            _ => good(0),
        }
    }
}

impl ScsiTransport for Replay {
    fn name(&self) -> String {
        "/dev/sg-replay".into()
    }

    fn execute(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
        _timeout: Duration,
    ) -> Result<Completion, Error> {
        self.commands.push(cdb.to_vec());
        match cdb[0] {
            0x00 => Ok(good(0)),
            0x12 if cdb[1] & 1 == 0 => Ok(self.reply("changer_inquiry_std.bin", data)),
            0x12 if cdb[2] == 0x80 => Ok(self.reply("changer_inquiry_vpd80.bin", data)),
            0x1A if cdb[2] & 0x3F == 0x1D => Ok(self.reply("changer_mode_sense6_p1d.bin", data)),
            0x5A if cdb[2] & 0x3F == 0x1D => Ok(self.reply("changer_mode_sense10_p1d.bin", data)),
            0xB8 => {
                let t = match cdb[1] & 0x0F {
                    1 => "transport",
                    2 => "storage",
                    3 => "ie",
                    4 => "drive",
                    _ => "all",
                };
                let tag = if cdb[1] & 0x10 != 0 {
                    "voltag"
                } else {
                    "novoltag"
                };
                let dvcid = if cdb[6] & 1 != 0 { "_dvcid" } else { "" };
                let name = format!("changer_res_{t}_{tag}{dvcid}_{}.bin", self.state);
                if self.dir.join(&name).is_file() {
                    Ok(self.reply(&name, data))
                } else {
                    Ok(check_condition(SenseKey::IllegalRequest, 0x24, 0))
                }
            }
            0xA5 => {
                let be = |i: usize| u16::from_be_bytes([cdb[i], cdb[i + 1]]);
                if let Some(sense) = &self.move_sense {
                    let sense = read(&self.dir, sense);
                    return Ok(Completion {
                        status: status::CHECK_CONDITION,
                        sense,
                        transferred: 0,
                    });
                }
                self.moves.push((be(2), be(4), be(6)));
                Ok(good(0))
            }
            _ => Ok(check_condition(SenseKey::IllegalRequest, 0x20, 0)),
        }
    }
}

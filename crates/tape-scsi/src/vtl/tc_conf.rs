//! `filedebug_tc_conf.xml`: the emulated cartridge's configuration in the reference LTFS
//! file backend (capacity, cartridge type, density, read-only tab).
//!
//! Byte format written by [`TcConf::to_xml`] (element order and names as the reference
//! implementation writes them; unknown elements are ignored on read, missing ones take the
//! defaults below):
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <filedebug_cartridge_config>
//!     <dummy_io>false</dummy_io>
//!     <emulate_readonly>false</emulate_readonly>
//!     <capacity_mb>3072</capacity_mb>
//!     <cart_type>L5</cart_type>
//!     <density_code>58</density_code>
//!     ...
//! </filedebug_cartridge_config>
//! ```
//!
//! `capacity_mb` counts MiB (1 048 576 bytes); `density_code` is hexadecimal without a
//! prefix (`58` = LTO-5, 0x58).

use serde::{Deserialize, Serialize};

/// The parsed contents of `filedebug_tc_conf.xml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "filedebug_cartridge_config", default)]
pub struct TcConf {
    /// No real I/O (reference backend option; kept as read).
    pub dummy_io: bool,
    /// The cartridge's write-protect tab.
    pub emulate_readonly: bool,
    /// Capacity in MiB.
    pub capacity_mb: u64,
    /// Cartridge type (`L5`, `L6`...).
    pub cart_type: String,
    /// Density code in hexadecimal digits.
    pub density_code: String,
    /// Reference backend timing emulation mode.
    pub delay_mode: String,
    /// Number of wraps (timing emulation).
    pub wraps: u64,
    /// Seconds from EOT to BOT (timing emulation).
    pub eot_to_bot_sec: u64,
    /// Direction change time (timing emulation).
    pub change_direction_us: u64,
    /// Track change time (timing emulation).
    pub change_track_us: u64,
    /// Threading time (timing emulation).
    pub threading_sec: u64,
}

impl Default for TcConf {
    fn default() -> Self {
        TcConf {
            dummy_io: false,
            emulate_readonly: false,
            capacity_mb: 3072,
            cart_type: "L5".to_owned(),
            density_code: "58".to_owned(),
            delay_mode: "None".to_owned(),
            wraps: 40,
            eot_to_bot_sec: 12,
            change_direction_us: 2_000_000,
            change_track_us: 10_000,
            threading_sec: 0,
        }
    }
}

/// One MiB, the unit of `capacity_mb`.
pub const MIB: u64 = 1 << 20;

impl TcConf {
    /// Parses the XML text. Errors are the XML or field problem as text.
    pub fn from_xml(text: &str) -> Result<TcConf, String> {
        quick_xml::de::from_str(text).map_err(|e| e.to_string())
    }

    /// Parses untrusted bytes (UTF-8 XML).
    pub fn from_bytes(bytes: &[u8]) -> Result<TcConf, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        TcConf::from_xml(text)
    }

    /// Renders the XML text, with declaration and 4-space indentation like the reference.
    pub fn to_xml(&self) -> Result<String, String> {
        let mut body = String::new();
        let mut ser = quick_xml::se::Serializer::new(&mut body);
        ser.indent(' ', 4);
        self.serialize(ser).map_err(|e| e.to_string())?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}\n"
        ))
    }

    /// The density code as a number (0 when it is not valid hexadecimal).
    pub fn density(&self) -> u8 {
        u8::from_str_radix(self.density_code.trim(), 16).unwrap_or(0)
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_mb.saturating_mul(MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<filedebug_cartridge_config>
    <dummy_io>false</dummy_io>
    <emulate_readonly>false</emulate_readonly>
    <capacity_mb>3072</capacity_mb>
    <cart_type>L5</cart_type>
    <density_code>58</density_code>
    <delay_mode>None</delay_mode>
    <wraps>40</wraps>
    <eot_to_bot_sec>12</eot_to_bot_sec>
    <change_direction_us>2000000</change_direction_us>
    <change_track_us>10000</change_track_us>
    <threading_sec>0</threading_sec>
</filedebug_cartridge_config>
"#;

    #[test]
    fn reference_round_trips_byte_exact() {
        let conf = TcConf::from_xml(REFERENCE).unwrap();
        assert_eq!(conf, TcConf::default());
        assert_eq!(conf.density(), 0x58);
        assert_eq!(conf.capacity_bytes(), 3072 * MIB);
        assert_eq!(conf.to_xml().unwrap(), REFERENCE);
    }

    #[test]
    fn missing_and_unknown_elements() {
        let conf = TcConf::from_xml(
            "<filedebug_cartridge_config><capacity_mb>5</capacity_mb><x>1</x><emulate_readonly>true</emulate_readonly></filedebug_cartridge_config>",
        )
        .unwrap();
        assert_eq!(conf.capacity_mb, 5);
        assert!(conf.emulate_readonly);
        assert_eq!(conf.cart_type, "L5");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(TcConf::from_xml("<filedebug_cartridge_config><capacity_mb>lots</capacity_mb></filedebug_cartridge_config>").is_err());
        assert!(TcConf::from_bytes(&[0xff, 0xfe]).is_err());
    }
}

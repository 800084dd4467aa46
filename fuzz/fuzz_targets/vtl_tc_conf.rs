//! Virtual cartridge `filedebug_tc_conf.xml` (reference LTFS file-backend configuration).
//! A parsed configuration must render and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(conf) = tape_scsi::TcConf::from_bytes(data) {
        if let Ok(xml) = conf.to_xml() {
            assert_eq!(tape_scsi::TcConf::from_xml(&xml).as_ref(), Ok(&conf));
        }
    }
});

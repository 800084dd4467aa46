//! Integration tests of the SCSI side of tape-scsi: parsers on real captures from tgt and
//! mhVTL (../shared/fixtures/scsi), the changer over scripted and replayed transports,
//! round trips of encoders and decoders, and discovery on a fake sysfs tree.

mod changer;
mod discovery;
mod fixtures;
mod log_mam;
mod roundtrip;
mod sense;
mod smc;

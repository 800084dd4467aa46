//! Arbitrary bytes to cryptpack's header parser, stream decoder and random-access reader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cryptpack::fuzz_decode(data);
});

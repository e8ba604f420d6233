#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| squall::fuzzing::protocol(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| notifyd_fuzz::extra_fields(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| notifyd_fuzz::merchant_request(data));

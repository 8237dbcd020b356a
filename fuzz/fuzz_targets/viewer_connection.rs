#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| eyeward_fuzz::viewer_connection(data));

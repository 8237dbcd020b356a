#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| eyeward_fuzz::onvif_reply(data));

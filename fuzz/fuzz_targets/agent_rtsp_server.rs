#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| eyeward_fuzz::agent_rtsp_server(data));

#![no_main]
//! The platform contract loader (parse, model, validate).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = flywheel_contract::load_str(std::path::Path::new("platform.yaml"), text);
});

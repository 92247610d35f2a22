#![no_main]
//! S3 backend files, both forms (hcl-edit).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = flywheel_overlay::load_backend(std::path::Path::new("x.s3.tfbackend"), text);
});

#![no_main]
//! organization.yaml: the overlay loader with its required-key problems.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = flywheel_overlay::load_organization(std::path::Path::new("organization.yaml"), text);
});

#![no_main]
//! The arc-runners tfvars loader (hcl-edit).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(vars) = flywheel_overlay::load_tfvars(std::path::Path::new("x.tfvars"), text) {
        let _ = vars.deployed_sets();
    }
});

#![no_main]
//! OpenTofu plan JSON: parse_plan (fails closed) and the guard.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(plan) = flywheel_tofu::parse_plan(text) {
        let _ = flywheel_tofu::guard(&plan, false);
        let _ = flywheel_tofu::guard(&plan, true);
        let _ = flywheel_tofu::counts(&plan);
    }
});

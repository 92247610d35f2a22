#![no_main]
//! MODULE.bazel: the depth pre-scan and the Starlark parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ =
        flywheel_overlay::find_core_pin(std::path::Path::new("MODULE.bazel"), text, "attic-iac");
});

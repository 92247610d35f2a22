//! Helpers the check tests share: the example contract's rules, one file
//! checked, findings in brief.

use std::path::Path;

use flywheel_check::{Rules, Violation, scan_text};

pub fn rules() -> Rules {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    Rules::from_platform(&flywheel_contract::load(&path).expect("example contract"))
}

pub fn check(file: &str, text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    scan_text(&rules(), file, text.as_bytes(), &mut out);
    out
}

pub fn brief(v: &[Violation]) -> Vec<(u32, u32, &'static str, String)> {
    v.iter()
        .map(|v| (v.line, v.column, v.rule, v.value.clone()))
        .collect()
}

#![no_main]
//! The YAML tree (parse_all, parse_single) and serde over it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(docs) = flywheel_yaml::parse_all(text) {
        for doc in &docs {
            // Any shape through serde: a map of anything, then the tree as a string-keyed value.
            let _ = flywheel_yaml::from_node::<std::collections::BTreeMap<String, Vec<String>>>(
                doc, "",
            );
            let _ = flywheel_yaml::from_node::<Option<Vec<Option<u64>>>>(doc, "");
        }
    }
    let _ = flywheel_yaml::parse_single(text);
});

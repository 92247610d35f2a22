//! The parsers never panic: any bytes, any header text, an error or a value.

use flywheel_gitlab::api::{link_next_page, next_page, parse_runner, parse_runners};
use proptest::prelude::*;

fn runner_json() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        proptest::option::of("[a-z0-9 -]{0,12}"),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        prop_oneof![
            Just("online"),
            Just("offline"),
            Just("stale"),
            Just("never_contacted"),
            Just("paused")
        ],
        proptest::collection::vec("gl-[a-z]{1,6}", 0..4),
    )
        .prop_map(|(id, desc, paused, active, online, status, tags)| {
            let mut v = serde_json::json!({
                "id": id,
                "description": desc,
                "ip_address": "",
                "is_shared": false,
                "runner_type": "instance_type",
                "name": null,
                "online": online,
                "status": status,
                "tag_list": tags,
            });
            if let Some(p) = paused {
                v["paused"] = p.into();
            }
            if let Some(a) = active {
                v["active"] = a.into();
            }
            v.to_string()
        })
}

proptest! {
    #[test]
    fn runner_parsers_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_runners(&bytes);
        let _ = parse_runner(&bytes);
    }

    #[test]
    fn well_formed_lists_parse_with_every_field(list in proptest::collection::vec(runner_json(), 0..8)) {
        let body = format!("[{}]", list.join(","));
        let runners = parse_runners(body.as_bytes()).expect("a list as GitLab sends it");
        prop_assert_eq!(runners.len(), list.len());
        for (r, text) in runners.iter().zip(&list) {
            let v: serde_json::Value = serde_json::from_str(text).expect("json");
            prop_assert_eq!(Some(r.id), v["id"].as_u64());
            let expected = v["paused"].as_bool()
                .or(v["active"].as_bool().map(|a| !a))
                .or((v["status"] == "paused").then_some(true));
            prop_assert_eq!(r.is_paused(), expected);
        }
    }

    #[test]
    fn truncated_lists_are_errors(list in proptest::collection::vec(runner_json(), 1..4), cut in 1usize..64) {
        let body = format!("[{}]", list.join(","));
        let end = body.len().saturating_sub(cut).max(1);
        if let Some(prefix) = body.get(..end) {
            prop_assert!(parse_runners(prefix.as_bytes()).is_err());
        }
    }

    #[test]
    fn page_headers_never_panic(current in any::<u32>(), x in proptest::option::of(".{0,24}"), link in proptest::option::of(".{0,200}")) {
        if let Ok(Some(n)) = next_page(current, x.as_deref(), link.as_deref()) {
            prop_assert!(n > current);
        }
        if let Some(l) = &link {
            let _ = link_next_page(l);
        }
    }

    #[test]
    fn link_headers_as_gitlab_builds_them(page in 1u32..10_000, last in 1u32..10_000, extra in prop_oneof![Just("id"), Just("scope"), Just("tag_list")]) {
        let base = format!("https://gitlab.example.com/api/v4/runners/all?{extra}=1&per_page=100");
        let mut parts = Vec::new();
        if page < last {
            parts.push(format!("<{base}&page={}>; rel=\"next\"", page + 1));
        }
        if page > 1 {
            parts.push(format!("<{base}&page={}>; rel=\"prev\"", page - 1));
        }
        parts.push(format!("<{base}&page=1>; rel=\"first\""));
        parts.push(format!("<{base}&page={last}>; rel=\"last\""));
        let header = parts.join(", ");
        let want = (page < last).then_some(page + 1);
        prop_assert_eq!(link_next_page(&header), Ok(want));
        prop_assert_eq!(next_page(page, None, Some(&header)), Ok(want));
    }
}

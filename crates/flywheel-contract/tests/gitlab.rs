//! The optional `gitlab:` section: read, validated with positions, and
//! invisible in the rendered document and the JSON when absent.

use std::path::{Path, PathBuf};

use flywheel_contract::{gitlab_url, load_str, render_markdown};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).expect("example platform.yaml")
}

fn with_gitlab(section: &str) -> String {
    format!("{}\n{section}", example_text().trim_end())
}

fn problems(text: &str) -> Vec<String> {
    match load_str(Path::new("platform.yaml"), text) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("line")
}

#[test]
fn a_gitlab_section_is_read_with_its_defaults() {
    let text = with_gitlab("gitlab:\n  url: https://gitlab.com\n");
    let p = load_str(Path::new("p.yaml"), &text).expect("valid");
    let g = p.gitlab.as_ref().expect("gitlab");
    assert_eq!(g.url.value, "https://gitlab.com");
    assert!(g.group.is_none());
    assert_eq!(g.poll_seconds(), 60);

    let text = with_gitlab(
        "gitlab:\n  url: https://git.example.org/gl\n  group: tinyland/infra\n  poll_seconds: 30\n",
    );
    let p = load_str(Path::new("p.yaml"), &text).expect("valid");
    let g = p.gitlab.as_ref().expect("gitlab");
    assert_eq!(
        g.group.as_ref().map(|g| g.value.as_str()),
        Some("tinyland/infra")
    );
    assert_eq!(g.poll_seconds(), 30);
}

#[test]
fn the_document_and_json_are_unchanged_by_an_absent_section_and_the_document_by_a_present_one() {
    let plain = load_str(Path::new("p.yaml"), &example_text()).expect("valid");
    assert!(plain.gitlab.is_none());
    assert!(
        !plain.to_json().contains("\"gitlab\":"),
        "no gitlab key when absent"
    );
    let text = with_gitlab("gitlab:\n  url: https://gitlab.com\n  poll_seconds: 120\n");
    let with = load_str(Path::new("p.yaml"), &text).expect("valid");
    assert_eq!(render_markdown(&plain), render_markdown(&with));
    let v: serde_json::Value = serde_json::from_str(&with.to_json()).expect("json");
    assert_eq!(v["gitlab"]["url"], "https://gitlab.com");
    assert_eq!(v["gitlab"]["poll_seconds"], 120);
}

#[test]
fn a_bad_gitlab_section_is_reported_at_its_line() {
    let text = with_gitlab(
        "gitlab:\n  url: http://gitlab.example.com\n  group: \"\"\n  poll_seconds: 5\n",
    );
    let p = problems(&text);
    let joined = p.join("\n");
    assert_eq!(p.len(), 3, "{joined}");
    let url_line = line_of(&text, "url: http://gitlab.example.com");
    assert!(
        joined.contains(&format!("platform.yaml:{url_line}:")) && joined.contains("`gitlab.url`"),
        "{joined}"
    );
    assert!(joined.contains("use https"), "{joined}");
    let group_line = line_of(&text, "group: \"\"");
    assert!(
        joined.contains(&format!("platform.yaml:{group_line}:"))
            && joined.contains("`gitlab.group`"),
        "{joined}"
    );
    let poll_line = line_of(&text, "poll_seconds: 5");
    assert!(
        joined.contains(&format!("platform.yaml:{poll_line}:"))
            && joined.contains("`gitlab.poll_seconds`: 5 s is outside 10 to 3600"),
        "{joined}"
    );
}

#[test]
fn a_gitlab_section_without_a_url_names_the_key() {
    let text = with_gitlab("gitlab:\n  poll_seconds: 60\n");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("`gitlab.url`: required key is missing"),
        "{}",
        p[0]
    );
}

#[test]
fn gitlab_urls_are_https_or_loopback_http() {
    for ok in [
        "https://gitlab.com",
        "https://gitlab.com/",
        "https://git.example.org:8443/gitlab",
        "http://127.0.0.1:8080",
        "http://localhost:3000",
        "http://[::1]:9000",
    ] {
        assert_eq!(gitlab_url(ok), Ok(()), "{ok}");
    }
    for bad in [
        "gitlab.com",
        "http://gitlab.com",
        "http://10.0.0.1",
        "ftp://gitlab.com",
        "https://",
        "https://user:pw@gitlab.com",
        "https://gitlab.com/?private_token=x",
        "https://gitlab.com/#x",
        "https://gitlab .com",
        "http://127.0.0.1.evil.example",
    ] {
        assert!(gitlab_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_prometheus_section_is_read_and_bad_urls_are_refused_at_their_line() {
    let text = with_gitlab("prometheus:\n  url: http://prometheus.monitoring:9090\n");
    let p = load_str(Path::new("p.yaml"), &text).expect("valid");
    let pr = p.prometheus.as_ref().expect("prometheus");
    assert_eq!(pr.url.value, "http://prometheus.monitoring:9090");
    assert!(pr.poll_seconds.is_none());
    assert_eq!(
        render_markdown(&p),
        render_markdown(&load_str(Path::new("p.yaml"), &example_text()).expect("valid"))
    );
    for (url, says) in [
        ("ftp://prometheus", "http:// or https://"),
        ("http://user:pw@prometheus:9090", "user information"),
        ("https://prometheus/?x=1", "query"),
        ("http:///api", "no host"),
    ] {
        let text = with_gitlab(&format!("prometheus:\n  url: {url}\n"));
        let found = problems(&text);
        let line = line_of(&text, url);
        assert!(
            found
                .iter()
                .any(|p| p.contains(says) && p.contains(&format!(":{line}:"))),
            "{url}: {found:?}"
        );
    }
    let text = with_gitlab("prometheus:\n  url: http://p:9090\n  poll_seconds: 5\n");
    assert!(
        problems(&text)
            .iter()
            .any(|p| p.contains("prometheus.poll_seconds") || p.contains("outside 10 to 3600")),
        "{:?}",
        problems(&text)
    );
}

//! The poller and the actions against a wiremock GitLab answering with
//! bodies and headers shaped like GitLab's REST API v4.

use std::time::Duration;

use flywheel_gitlab::{Change, Config, Error, GitlabRunners};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[path = "support/gitlab_api.rs"]
mod gitlab_api;
use gitlab_api::{detail, listed, page};

const TOKEN: &str = "glpat-test-Zq8vY2mN4kP7rT1w";

fn classes() -> Vec<String> {
    ["gl-nix", "gl-docker", "gl-dind"]
        .map(String::from)
        .to_vec()
}

fn config(url: &str, group: Option<&str>) -> Config {
    Config {
        url: url.to_string(),
        group: group.map(String::from),
        poll: Duration::from_secs(60),
        classes: classes(),
        token: SecretString::from(TOKEN.to_string()),
    }
}

async fn list_mock(gl: &MockServer, class: &str, p: u32, pages: u32, body: Value) {
    let base = format!(
        "{}/api/v4/runners/all?tag_list={class}&per_page=100",
        gl.uri()
    );
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/all"))
        .and(query_param("tag_list", class))
        .and(query_param("per_page", "100"))
        .and(query_param("page", p.to_string().as_str()))
        .and(header("PRIVATE-TOKEN", TOKEN))
        .respond_with(page(body, p, pages, Some(&base)))
        .mount(gl)
        .await;
}

#[tokio::test]
async fn polls_every_class_and_page_and_merges_by_id() {
    let gl = MockServer::start().await;
    list_mock(
        &gl,
        "gl-nix",
        1,
        2,
        json!([listed(11, "nix-a", false, Some(true))]),
    )
    .await;
    list_mock(
        &gl,
        "gl-nix",
        2,
        2,
        json!([listed(12, "nix-b", true, Some(false))]),
    )
    .await;
    list_mock(
        &gl,
        "gl-docker",
        1,
        1,
        json!([
            listed(5, "docker", false, None),
            listed(11, "nix-a", false, Some(true))
        ]),
    )
    .await;
    list_mock(&gl, "gl-dind", 1, 1, json!([])).await;

    let g = GitlabRunners::new(config(&gl.uri(), None)).expect("poller");
    let before = g.current();
    assert!(before.configured);
    assert_eq!(before.reachable, None, "unknown before the first poll");
    g.poll_once().await.expect("poll");
    let v = g.current();
    assert_eq!(v.reachable, Some(true));
    assert!(v.last_poll.is_some() && v.error.is_none() && v.stale_since.is_none());
    let rows: Vec<(u64, &str, Option<bool>)> = v
        .runners
        .iter()
        .map(|r| (r.id, r.class.as_str(), r.paused))
        .collect();
    assert_eq!(
        rows,
        [
            (11, "gl-nix", Some(false)),
            (12, "gl-nix", Some(true)),
            (5, "gl-docker", Some(false))
        ]
    );
    assert_eq!(v.runners[0].classes, ["gl-nix", "gl-docker"]);
    assert_eq!(v.runners[2].online, None);
    assert!(v.runners.iter().all(|r| r.compatibility));
    let json = serde_json::to_string(&v).expect("json");
    assert!(!json.contains(TOKEN));
}

#[tokio::test]
async fn a_group_is_polled_under_its_encoded_path() {
    let gl = MockServer::start().await;
    for class in classes() {
        Mock::given(method("GET"))
            .and(path("/api/v4/groups/tinyland%2Finfra/runners"))
            .and(query_param("tag_list", class.as_str()))
            .and(header("PRIVATE-TOKEN", TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .expect(1)
            .mount(&gl)
            .await;
    }
    let g = GitlabRunners::new(config(&gl.uri(), Some("tinyland/infra"))).expect("poller");
    g.poll_once().await.expect("poll");
    assert_eq!(g.current().group.as_deref(), Some("tinyland/infra"));
}

#[tokio::test]
async fn a_failed_poll_keeps_the_runners_and_says_why_without_the_token() {
    let gl = MockServer::start().await;
    for class in classes() {
        list_mock(
            &gl,
            &class,
            1,
            1,
            json!([listed(7, "x", false, Some(true))]),
        )
        .await;
    }
    let g = GitlabRunners::new(config(&gl.uri(), None)).expect("poller");
    g.poll_once().await.expect("first poll");
    let first = g.current().revision;
    g.poll_once().await.expect("same again");
    assert_eq!(
        g.current().revision,
        first,
        "an unchanged poll keeps the revision"
    );
    gl.reset().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(500).set_body_string(format!("boom, your token was {TOKEN}")),
        )
        .mount(&gl)
        .await;
    let e = g.poll_once().await.expect_err("fails");
    assert!(matches!(e, Error::Status { status: 500, .. }), "{e:?}");
    let v = g.current();
    assert_eq!(v.runners.len(), 1, "the last runners are kept");
    assert!(v.revision > first);
    assert!(v.stale_since.is_some());
    assert_eq!(v.reachable, Some(true), "GitLab answered");
    let why = v.error.expect("error");
    assert!(why.contains("500"), "{why}");
    assert!(!why.contains(TOKEN) && !format!("{e} {e:?}").contains(TOKEN));
    assert!(!format!("{g:?}").contains(TOKEN));
}

#[tokio::test]
async fn an_unreachable_gitlab_is_unreachable_not_ok() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let g = GitlabRunners::new(config(&uri, None)).expect("poller");
    assert!(g.poll_once().await.is_err());
    let v = g.current();
    assert_eq!(v.reachable, Some(false));
    assert!(v.error.is_some() && v.last_poll.is_none());
}

#[tokio::test]
async fn oversized_and_malformed_answers_are_errors() {
    let gl = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("tag_list", "gl-nix"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("x".repeat(flywheel_gitlab::MAX_BODY + 1)),
        )
        .mount(&gl)
        .await;
    let g = GitlabRunners::new(config(&gl.uri(), None)).expect("poller");
    let e = g.poll_once().await.expect_err("too large");
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");

    gl.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"message\":\"not a list\"}"))
        .mount(&gl)
        .await;
    let e = g.poll_once().await.expect_err("not a list");
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");

    gl.reset().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-next-page", "1")
                .set_body_json(json!([])),
        )
        .mount(&gl)
        .await;
    let e = g.poll_once().await.expect_err("a page that goes nowhere");
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let gl = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/steal", elsewhere.uri()).as_str()),
        )
        .mount(&gl)
        .await;
    let g = GitlabRunners::new(config(&gl.uri(), None)).expect("poller");
    let e = g.poll_once().await.expect_err("redirect");
    assert!(matches!(e, Error::Status { status: 302, .. }), "{e}");
    assert!(
        elsewhere
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn pause_puts_paused_true_once_and_updates_the_view() {
    let gl = MockServer::start().await;
    for class in classes() {
        let body = if class == "gl-dind" {
            json!([listed(21, "dind", false, Some(true))])
        } else {
            json!([])
        };
        list_mock(&gl, &class, 1, 1, body).await;
    }
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/21"))
        .and(header("PRIVATE-TOKEN", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(detail(21, false, &["gl-dind"])))
        .up_to_n_times(1)
        .mount(&gl)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v4/runners/21"))
        .and(header("PRIVATE-TOKEN", TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string("paused=true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(detail(21, true, &["gl-dind"])))
        .expect(1)
        .mount(&gl)
        .await;
    let g = GitlabRunners::new(config(&gl.uri(), None)).expect("poller");
    g.poll_once().await.expect("poll");
    let mut changes = g.subscribe();
    changes.borrow_and_update();
    let Change::Changed(row) = g.pause(21).await.expect("pause") else {
        panic!("expected a change");
    };
    assert_eq!(row.paused, Some(true));
    assert_eq!(row.class, "gl-dind");
    assert!(changes.has_changed().unwrap_or(false));
    assert_eq!(g.current().runners[0].paused, Some(true));
    let revision = g.current().revision;

    // Paused already: answered from GitLab's state, no second PUT.
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/21"))
        .respond_with(ResponseTemplate::new(200).set_body_json(detail(21, true, &["gl-dind"])))
        .mount(&gl)
        .await;
    assert!(matches!(g.pause(21).await, Ok(Change::Unchanged(_))));
    assert_eq!(g.current().revision, revision, "nothing changed");
}

#[tokio::test]
async fn unknown_and_untagged_runners_are_refused_without_a_put() {
    let gl = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"})))
        .mount(&gl)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(detail(9, false, &["ruby"])))
        .mount(&gl)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&gl)
        .await;
    let g = GitlabRunners::new(config(&gl.uri(), None)).expect("poller");
    assert_eq!(g.pause(404).await, Err(Error::NotFound(404)));
    assert_eq!(g.resume(9).await, Err(Error::NotCompatibility(9)));
}

#[test]
fn settings_with_credentials_in_the_url_or_an_empty_token_are_refused() {
    let mut c = config("https://user:pw@gitlab.example.com", None);
    assert!(matches!(
        GitlabRunners::new(c.clone()),
        Err(Error::Config(_))
    ));
    c.url = "https://gitlab.example.com".into();
    c.token = SecretString::from("  ".to_string());
    assert!(matches!(
        GitlabRunners::new(c.clone()),
        Err(Error::Config(_))
    ));
    c.token = SecretString::from("bad\ntoken-value".to_string());
    assert!(matches!(
        GitlabRunners::new(c.clone()),
        Err(Error::Config(_))
    ));
    assert!(!format!("{c:?}").contains("token-value"));
}

#[test]
fn jitter_stays_within_ten_percent() {
    for _ in 0..200 {
        let d = flywheel_gitlab::jittered(Duration::from_secs(60));
        assert!(
            d >= Duration::from_secs(54) && d <= Duration::from_secs(66),
            "{d:?}"
        );
    }
}

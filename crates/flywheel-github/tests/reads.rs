//! The GitHub reads against wiremock, with bodies shaped like the REST API.

use std::time::{Duration, Instant};

use flywheel_github::{Auth, ErrorKind, GitHub, Policy};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn policy() -> Policy {
    Policy {
        retries: 3,
        backoff: Duration::from_millis(10),
        budget: Duration::from_secs(5),
    }
}

async fn client(server: &MockServer) -> GitHub {
    flywheel_github::install_crypto_provider();
    GitHub::connect(
        &server.uri(),
        Some(Auth::Token(SecretString::from("ghp_test".to_string()))),
        policy(),
    )
    .await
    .expect("connect")
}

#[tokio::test]
async fn secret_names_follow_pages_and_send_the_token() {
    let server = MockServer::start().await;
    let page = |from: usize, to: usize| {
        let secrets: Vec<_> = (from..to)
            .map(|i| json!({"name": format!("SECRET_{i}"), "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}))
            .collect();
        json!({"total_count": 130, "secrets": secrets})
    };
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/secrets"))
        .and(query_param("page", "1"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer ghp_test",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(0, 100)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/secrets"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(100, 130)))
        .mount(&server)
        .await;
    let gh = client(&server).await;
    let names = gh.secret_names("o/r").await.expect("names");
    assert_eq!(names.len(), 130);
    assert_eq!(names[129], "SECRET_129");
}

#[tokio::test]
async fn server_errors_are_retried_and_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"full_name": "o/r", "default_branch": "trunk", "private": true, "visibility": "internal"})))
        .mount(&server)
        .await;
    let gh = client(&server).await;
    let repo = gh.repository("o/r").await.expect("after two 503s");
    assert_eq!(
        (repo.default_branch.as_str(), repo.visibility()),
        ("trunk", "internal")
    );
    assert_eq!(gh.requests(), 3);

    Mock::given(method("GET"))
        .and(path("/repos/o/down"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "Server Error"})))
        .mount(&server)
        .await;
    let e = gh.repository("o/down").await.expect_err("always 500");
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(e.message.contains("HTTP 500"), "{e}");
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out_a_long_one_is_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/commits/main"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/commits/main"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sha": "637b7167c400a842cdc7af0709b2251c0542a48a"})),
        )
        .mount(&server)
        .await;
    let gh = client(&server).await;
    let started = Instant::now();
    let sha = gh
        .resolve_commit("o/r", "main")
        .await
        .expect("after the wait");
    assert_eq!(sha, "637b7167c400a842cdc7af0709b2251c0542a48a");
    assert!(started.elapsed() >= Duration::from_millis(900));

    Mock::given(method("GET"))
        .and(path("/repos/o/r/commits/later"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "600")
                .set_body_json(json!({"message": "rate limit"})),
        )
        .mount(&server)
        .await;
    let started = Instant::now();
    let e = gh
        .resolve_commit("o/r", "later")
        .await
        .expect_err("past the budget");
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert!(e.message.contains("time budget"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unknown_refs_and_workflows_are_told_apart_from_failures() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/commits/nope"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"message": "No commit found for SHA: nope"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/workflows/gone.yml/runs"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/secrets"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&server)
        .await;
    let gh = client(&server).await;
    assert_eq!(
        gh.resolve_commit("o/r", "nope")
            .await
            .expect_err("422")
            .kind,
        ErrorKind::NotFound
    );
    assert!(
        gh.workflow_runs("o/r", "gone.yml", "main")
            .await
            .expect("404 is no runs")
            .is_empty()
    );
    let e = gh.secret_names("o/r").await.expect_err("forbidden");
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(e.message.contains("Resource not accessible"), "{e}");
    assert!(!e.message.contains("ghp_test"));
    assert!(gh.secret_names("not-a-repo").await.is_err());
}

#[tokio::test]
async fn github_enterprise_base_paths_are_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/o/r"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"full_name": "o/r", "default_branch": "main", "private": false}),
            ),
        )
        .mount(&server)
        .await;
    flywheel_github::install_crypto_provider();
    let gh = GitHub::connect(&format!("{}/api/v3/", server.uri()), None, policy())
        .await
        .expect("connect");
    let repo = gh.repository("o/r").await.expect("GHE path");
    assert_eq!(repo.visibility(), "public");
}

/// A GitHub that puts the request's `Authorization` header in every error.
struct Echo(u16);

impl wiremock::Respond for Echo {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        ResponseTemplate::new(self.0).set_body_json(json!({
            "message": format!("Bad credentials: you sent `Authorization: {auth}` to {}", req.url),
        }))
    }
}

#[tokio::test]
async fn a_token_the_server_echoes_never_reaches_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(Echo(401))
        .mount(&server)
        .await;
    flywheel_github::install_crypto_provider();
    let token = "tok-echoed-by-server-0123456789";
    let gh = GitHub::connect(
        &server.uri(),
        Some(Auth::Token(SecretString::from(token.to_string()))),
        policy(),
    )
    .await
    .expect("connect");
    let e = gh.repository("o/r").await.expect_err("401");
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert!(e.message.contains("Bad credentials"), "{e}");
    assert!(
        !e.message.contains(token) && e.message.contains("<redacted>"),
        "{e}"
    );
}

fn app_key() -> SecretString {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flywheel/tests/fixtures/test-github-app-key.pem");
    SecretString::from(std::fs::read_to_string(p).expect("test key"))
}

#[tokio::test]
async fn the_app_jwt_and_installation_token_never_reach_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/app/installations/7/access_tokens"))
        .respond_with(Echo(401))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/8/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "installation-token-from-server-42", "expires_at": "2099-01-01T00:00:00Z"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(Echo(403))
        .mount(&server)
        .await;
    flywheel_github::install_crypto_provider();
    let app = |installation_id| Auth::App {
        app_id: 1234,
        installation_id,
        private_key: app_key(),
    };
    let e = GitHub::connect(&server.uri(), Some(app(7)), policy())
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert!(
        e.message.contains("Authorization: Bearer <redacted>") && !e.message.contains("eyJ"),
        "{e}"
    );
    let gh = GitHub::connect(&server.uri(), Some(app(8)), policy())
        .await
        .expect("token issued");
    let e = gh.repository("o/r").await.expect_err("403");
    assert!(
        !e.message.contains("installation-token-from-server-42")
            && e.message.contains("Bearer <redacted>"),
        "{e}"
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused_not_read() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            vec![b' '; flywheel_github::MAX_BODY + 1],
            "application/json",
        ))
        .mount(&server)
        .await;
    let gh = client(&server).await;
    let e = gh.repository("o/r").await.expect_err("too large");
    assert_eq!(e.kind, ErrorKind::Decode);
    assert!(e.message.contains("larger than 8 MiB"), "{e}");
}

#[tokio::test]
async fn a_silent_server_is_a_read_timeout_in_words() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({}))
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&server)
        .await;
    flywheel_github::install_crypto_provider();
    let gh = GitHub::connect(
        &server.uri(),
        None,
        Policy {
            retries: 0,
            backoff: Duration::from_millis(10),
            budget: Duration::from_secs(1),
        },
    )
    .await
    .expect("connect");
    let started = Instant::now();
    let e = gh.repository("o/r").await.expect_err("timeout");
    assert_eq!(e.kind, ErrorKind::Network);
    assert!(
        e.message.contains("no answer within 1s") && !e.message.contains("SendRequest"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_url_with_user_and_password_is_never_echoed() {
    flywheel_github::install_crypto_provider();
    let e = GitHub::connect("https://user:hunter2pass@[broken", None, policy())
        .await
        .expect_err("not a URL");
    assert!(!e.message.contains("hunter2pass"), "{e}");
    assert!(
        e.message.contains("GITHUB_API_URL `https://<redacted>@"),
        "{e}"
    );
}

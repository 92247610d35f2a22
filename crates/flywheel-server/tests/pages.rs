//! The operator pages beside the fleet: GitLab compatibility runners,
//! the rendered contract, and the enrollment preflight.

#[path = "support/server.rs"]
mod support;

use std::time::{Duration, Instant};

use flywheel_server::enrollment::{Enrollment, Settings, without_credentials};
use flywheel_store::Role;
use serde_json::Value;
use support::{Server, call, session, start, start_custom, start_with, token};

async fn page(s: &Server, path: &str, role: Role) -> support::Answer {
    let b = session(s, role).await;
    call(s, "GET", path, &[("Cookie", &b.cookie)], "").await
}

/// A page form posted by a signed-in browser of `role`.
async fn post_form(s: &Server, path: &str, role: Role) -> support::Answer {
    let b = session(s, role).await;
    support::form(s, path, &b).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_page_shows_the_rendered_contract_escaped() {
    let s = start_with(false, &[], |t| {
        t.replace(
            "description: trusted proxy-header auth through Tailscale or mTLS",
            "description: <script>alert(1)</script> trusted proxy-header auth",
        )
    })
    .await;
    let a = page(&s, "/contract", Role::Viewer).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("id=\"contract\""), "{}", a.body);
    assert!(a.body.contains("tinyland-nix"));
    assert!(
        !a.body.contains("<script>alert"),
        "raw HTML from the contract"
    );
    assert!(
        a.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        a.body
    );
    assert!(a.body.contains("href=\"/contract\""), "nav link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gitlab_page_says_what_to_set_when_gitlab_is_not_configured() {
    let s = start(false, &[]).await;
    let a = page(&s, "/gitlab", Role::Viewer).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("id=\"gitlab-off\""), "{}", a.body);
    assert!(a.body.contains("gitlab.url") && a.body.contains("GITLAB_TOKEN"));
    assert!(a.body.contains("sse:gitlab-runners"));
    // The action without GitLab: the API's 503 as a page.
    let a = post_form(&s, "/gitlab/runners/7/pause", Role::Operator).await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.body.contains("Not paused") && a.body.contains("not configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_without_overlays_says_how_to_add_them() {
    let s = start(false, &[]).await;
    let a = page(&s, "/enrollment", Role::Viewer).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("id=\"not-configured\""), "{}", a.body);
    let t = token(&s, Role::Viewer).await;
    let a = call(
        &s,
        "GET",
        "/api/v1/enrollment",
        &[("Authorization", &format!("Bearer {t}"))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["configured"], false);
}

async fn enrollment_of(s: &Server, t: &str) -> Value {
    let a = call(
        s,
        "GET",
        "/api/v1/enrollment",
        &[("Authorization", &format!("Bearer {t}"))],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()
}

async fn until_runs(s: &Server, t: &str, n: u64) -> Value {
    let since = Instant::now();
    loop {
        let v = enrollment_of(s, t).await;
        if v["runs"].as_u64() >= Some(n) && v["running"] == false {
            return v;
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "no run {n}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_runs_the_preflight_of_each_overlay_and_unreadable_facts_are_unknown() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let platform = flywheel_contract::load(&root.join("examples/platform.yaml")).expect("contract");
    let overlays = vec![
        root.join("examples/overlays/tinyland-infra"),
        root.join("examples/overlays/jesssullivan-infra"),
    ];
    let s = start_custom(
        false,
        &[],
        |t| t,
        move |st, _| {
            st.enrollment = Enrollment::new(Settings {
                overlays,
                contract: Some(flywheel_check::Rules::from_platform(&platform)),
                options: Default::default(),
                interval: Duration::from_secs(3600),
                budget: Duration::from_secs(5),
                connector: without_credentials("no credentials in this test"),
            });
        },
    )
    .await;
    tokio::spawn(s.state.enrollment.clone().run());
    let t = token(&s, Role::Viewer).await;
    let v = until_runs(&s, &t, 1).await;
    assert_eq!(v["configured"], true);
    assert!(v["taken_at"].is_string(), "{v:#}");
    let reports = v["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 2, "{v:#}");
    for r in reports {
        let checks = r["checks"].as_array().expect("checks");
        let ids: Vec<&str> = checks.iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, flywheel_preflight::CHECKS.to_vec());
        // Remote facts could not be read: unknown, never ok.
        for id in ["app-secret", "scale-sets", "workflow-status"] {
            let c = checks.iter().find(|c| c["id"] == id).expect("check");
            assert_eq!(c["status"], "unknown", "{id}: {c:#}");
        }
    }
    assert!(v["cross_overlay"].is_object(), "two overlays: {v:#}");

    // The page: every check, unknown shown as unknown, numbered next actions.
    let a = page(&s, "/enrollment", Role::Viewer).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body.matches("data-check=").count(), 24, "{}", a.body);
    assert!(
        a.body
            .contains("<span class=\"tag unknown\">unknown</span>")
    );
    assert!(a.body.contains("<ol class=\"next-actions\">"));
    assert!(
        !a.body.contains("id=\"run-now\""),
        "a viewer has no run button"
    );
    let a = page(&s, "/enrollment", Role::Operator).await;
    assert!(a.body.contains("id=\"run-now\""));

    // On demand: an operator's run is a new run; a viewer is refused.
    for (role, want) in [(Role::Viewer, 403), (Role::Operator, 303)] {
        let a = post_form(&s, "/enrollment/run", role).await;
        assert_eq!(a.status, want, "{}: {}", role.as_str(), a.body);
    }
    let v = until_runs(&s, &t, 2).await;
    assert_eq!(v["runs"], 2, "{v:#}");
}

#[tokio::test]
async fn requests_while_nothing_is_configured_do_nothing() {
    assert!(!Enrollment::default().request());
}

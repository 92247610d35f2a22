//! Answers shaped like GitLab's REST API v4 (`doc/api/runners.md`), for
//! the wiremock GitLab of this crate's tests and of the server's
//! (`crates/flywheel-server/tests/gitlab.rs` includes this file).
#![allow(dead_code)] // each test binary uses a part

use serde_json::{Value, json};
use wiremock::ResponseTemplate;

/// A list entry as `GET /runners/all` and `GET /groups/:id/runners` answer
/// it (no `tag_list`); `online: None` is a runner that never contacted.
pub fn listed(id: u64, description: &str, paused: bool, online: Option<bool>) -> Value {
    json!({
        "active": !paused,
        "paused": paused,
        "description": description,
        "id": id,
        "ip_address": "",
        "is_shared": true,
        "runner_type": "instance_type",
        "name": "gitlab-runner",
        "online": online,
        "status": match online {
            Some(true) => "online",
            Some(false) => "offline",
            None => "never_contacted",
        },
    })
}

/// A detail or update answer (`GET|PUT /runners/:id`), with `tag_list`.
pub fn detail(id: u64, paused: bool, tags: &[&str]) -> Value {
    json!({
        "active": !paused,
        "paused": paused,
        "architecture": null,
        "description": format!("runner-{id}"),
        "id": id,
        "ip_address": "",
        "is_shared": true,
        "runner_type": "instance_type",
        "contacted_at": "2026-01-25T16:39:48.066Z",
        "maintenance_note": null,
        "name": "gitlab-runner",
        "online": true,
        "status": "online",
        "platform": null,
        "projects": [],
        "revision": null,
        "tag_list": tags,
        "version": null,
        "access_level": "not_protected",
        "maximum_timeout": 3600,
    })
}

/// One page of a list with GitLab's offset-pagination headers
/// (`x-next-page` empty on the last page) and, when `base` is given (the
/// list URL without `page`), the `Link` header.
pub fn page(body: Value, page: u32, pages: u32, base: Option<&str>) -> ResponseTemplate {
    let next = if page < pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    let mut t = ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .insert_header("x-page", page.to_string().as_str())
        .insert_header("x-per-page", "100")
        .insert_header("x-next-page", next.as_str())
        .insert_header("x-prev-page", "")
        .insert_header("x-total-pages", pages.to_string().as_str());
    if let Some(base) = base {
        let mut link = Vec::new();
        if page < pages {
            link.push(format!("<{base}&page={}>; rel=\"next\"", page + 1));
        }
        link.push(format!("<{base}&page=1>; rel=\"first\""));
        link.push(format!("<{base}&page={pages}>; rel=\"last\""));
        t = t.insert_header("link", link.join(", ").as_str());
    }
    t.set_body_json(body)
}

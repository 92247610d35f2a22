//! GitLab's runner JSON and pagination headers, as plain parsers: they
//! return errors for anything else and never panic.
//!
//! Shapes are GitLab's REST API v4 (`doc/api/runners.md`): the list
//! endpoints (`GET /runners/all`, `GET /groups/:id/runners`) answer an
//! array of short runners (`id`, `description`, `paused`, `active`,
//! `is_shared`, `runner_type`, `name`, `online`, `status`); the detail and
//! update endpoints (`GET|PUT /runners/:id`) answer one runner with
//! `tag_list` besides. `active` is deprecated in favour of `paused` and
//! older instances send only `active`; `online` and `name` may be `null`.

use serde::Deserialize;

/// One runner as GitLab sends it (only what flywheel reads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Runner {
    pub id: u64,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub paused: Option<bool>,
    /// Deprecated by GitLab; read only when `paused` is absent.
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub is_shared: Option<bool>,
    #[serde(default)]
    pub runner_type: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub online: Option<bool>,
    #[serde(default)]
    pub status: Option<String>,
    /// Only in detail and update answers.
    #[serde(default)]
    pub tag_list: Option<Vec<String>>,
}

impl Runner {
    /// Whether the runner ignores new jobs: `paused`, else `!active`, else
    /// a legacy `status: "paused"`/`"active"`; `None` when GitLab said
    /// nothing that tells.
    pub fn is_paused(&self) -> Option<bool> {
        self.paused
            .or(self.active.map(|a| !a))
            .or(match self.status.as_deref() {
                Some("paused") => Some(true),
                Some("active") => Some(false),
                _ => None,
            })
    }
}

/// Why an answer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A list answer: a JSON array of runners.
pub fn parse_runners(body: &[u8]) -> Result<Vec<Runner>, ParseError> {
    serde_json::from_slice::<Vec<Runner>>(body)
        .map_err(|e| ParseError(format!("not a list of GitLab runners: {e}")))
}

/// A detail or update answer: one runner.
pub fn parse_runner(body: &[u8]) -> Result<Runner, ParseError> {
    serde_json::from_slice::<Runner>(body)
        .map_err(|e| ParseError(format!("not a GitLab runner: {e}")))
}

/// The page after `current`, from `x-next-page` (GitLab's offset
/// pagination: empty on the last page) or else the `Link` header's
/// `rel="next"` URL's `page` parameter. Only the page number is taken: a
/// URL from the answer is never followed, so the token never goes to a
/// host the configuration did not name. A next page that does not move
/// forward is an error (no endless loop).
pub fn next_page(
    current: u32,
    x_next_page: Option<&str>,
    link: Option<&str>,
) -> Result<Option<u32>, ParseError> {
    let next =
        match x_next_page.map(str::trim) {
            Some("") => None,
            Some(n) => Some(n.parse::<u32>().map_err(|_| {
                ParseError(format!("x-next-page `{}` is not a page number", short(n)))
            })?),
            None => match link {
                Some(l) => link_next_page(l)?,
                None => None,
            },
        };
    match next {
        Some(n) if n <= current => Err(ParseError(format!(
            "the next page ({n}) is not after page {current}"
        ))),
        other => Ok(other),
    }
}

/// The `page` parameter of the `rel="next"` entry of an RFC 8288 `Link`
/// header (`<https://…?page=2&per_page=100>; rel="next", <…>; rel="first"`);
/// `None` when there is no next entry.
pub fn link_next_page(link: &str) -> Result<Option<u32>, ParseError> {
    let mut rest = link;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after
            .find('>')
            .ok_or_else(|| ParseError("a Link header entry has no closing `>`".into()))?;
        let target = &after[..close];
        let params_and_more = &after[close + 1..];
        let params = params_and_more
            .find('<')
            .map_or(params_and_more, |i| &params_and_more[..i]);
        if is_next(params) {
            return page_of(target).map(Some);
        }
        rest = &params_and_more[params.len()..];
    }
    Ok(None)
}

/// Whether `; rel="next"` (any case, quoted or not, possibly among other
/// relation types) is among an entry's parameters.
fn is_next(params: &str) -> bool {
    params.split(';').any(|p| {
        let Some((k, v)) = p.split_once('=') else {
            return false;
        };
        k.trim().eq_ignore_ascii_case("rel")
            && v.trim()
                .trim_end_matches(',')
                .trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("next"))
    })
}

fn page_of(target: &str) -> Result<u32, ParseError> {
    let query = target
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default())
        .ok_or_else(|| ParseError("the Link header's next URL has no query".into()))?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("page="))
        .ok_or_else(|| ParseError("the Link header's next URL has no page parameter".into()))?
        .parse::<u32>()
        .map_err(|_| ParseError("the Link header's next page is not a number".into()))
}

/// At most 40 characters of a header value, for an error message.
fn short(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_answer_as_documented() {
        let body = br#"[
            {"active": true, "paused": false, "description": "shared-runner-1", "id": 1,
             "ip_address": "", "is_shared": true, "runner_type": "instance_type",
             "name": null, "online": true, "status": "online"},
            {"active": true, "paused": true, "description": "test-2", "id": 8,
             "ip_address": "", "is_shared": false, "runner_type": "group_type",
             "name": "gitlab-runner", "online": null, "status": "never_contacted"}
        ]"#;
        let r = parse_runners(body).expect("runners");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].id, 1);
        assert_eq!(r[0].name, None);
        assert_eq!(r[0].is_paused(), Some(false));
        assert_eq!(r[1].online, None);
        assert_eq!(r[1].is_paused(), Some(true));
        assert_eq!(r[1].tag_list, None);
    }

    #[test]
    fn paused_falls_back_to_active_then_legacy_status() {
        let r = parse_runner(br#"{"id": 6, "active": false}"#).expect("runner");
        assert_eq!(r.is_paused(), Some(true));
        let r = parse_runner(br#"{"id": 6, "status": "paused"}"#).expect("runner");
        assert_eq!(r.is_paused(), Some(true));
        let r = parse_runner(br#"{"id": 6, "status": "online"}"#).expect("runner");
        assert_eq!(r.is_paused(), None);
        let r = parse_runner(br#"{"id": 6, "paused": false, "active": false}"#).expect("runner");
        assert_eq!(r.is_paused(), Some(false), "paused wins over active");
    }

    #[test]
    fn detail_answer_has_tags() {
        let r = parse_runner(
            br#"{"active": true, "paused": false, "id": 6, "tag_list": ["gl-nix", "ruby"],
                 "projects": [{"id": 1}], "maximum_timeout": 3600}"#,
        )
        .expect("runner");
        assert_eq!(
            r.tag_list.as_deref(),
            Some(&["gl-nix".to_string(), "ruby".to_string()][..])
        );
    }

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(parse_runners(b"{}").is_err());
        assert!(parse_runners(br#"[{"id": -1}]"#).is_err());
        assert!(parse_runners(br#"[{"id": "6"}]"#).is_err());
        assert!(parse_runner(b"[]").is_err());
        assert!(parse_runner(b"").is_err());
        let deep = "[".repeat(10_000);
        assert!(parse_runners(deep.as_bytes()).is_err());
    }

    #[test]
    fn next_page_from_either_header() {
        assert_eq!(next_page(1, Some("2"), None), Ok(Some(2)));
        assert_eq!(next_page(3, Some(""), None), Ok(None));
        assert_eq!(next_page(1, None, None), Ok(None));
        let link = r#"<https://gitlab.example.com/api/v4/runners/all?id=1&page=2&per_page=100>; rel="next", <https://gitlab.example.com/api/v4/runners/all?page=1&per_page=100>; rel="first", <https://gitlab.example.com/api/v4/runners/all?page=3&per_page=100>; rel="last""#;
        assert_eq!(next_page(1, None, Some(link)), Ok(Some(2)));
        // x-next-page wins over Link.
        assert_eq!(next_page(1, Some(""), Some(link)), Ok(None));
        let last = r#"<https://g/api/v4/runners/all?page=1&per_page=100>; rel="first", <https://g/api/v4/runners/all?page=3&per_page=100>; rel="last""#;
        assert_eq!(next_page(3, None, Some(last)), Ok(None));
        assert!(next_page(2, Some("2"), None).is_err(), "no going back");
        assert!(next_page(1, Some("two"), None).is_err());
    }

    #[test]
    fn link_variants() {
        assert_eq!(
            link_next_page(r#"<https://g/x?page=5>; REL=next"#),
            Ok(Some(5))
        );
        assert_eq!(
            link_next_page(r#"<https://g/x?per_page=1&page=7>; rel="prev next""#),
            Ok(Some(7))
        );
        assert_eq!(link_next_page(""), Ok(None));
        assert!(link_next_page(r#"<https://g/x?page=5; rel="next""#).is_err());
        assert!(link_next_page(r#"<https://g/x>; rel="next""#).is_err());
        assert!(link_next_page(r#"<https://g/x?page=x>; rel="next""#).is_err());
    }
}

//! Plain-text search: out-of-contract literals with line and column.

use crate::rules::{Kind, Trigger};
use crate::{Rules, Violation, rule};

/// Lines carrying this marker may name out-of-contract values (for example a
/// migration note that must quote the old hostname).
pub const ALLOW_LINE: &str = "flywheel: allow";
/// Within a file's first 1 KiB: the whole file may (the generated contract).
pub const ALLOW_FILE: &str = "flywheel: allow-file";

pub(crate) struct LineIndex<'a> {
    text: &'a [u8],
    /// Line number and start offset of the last line we moved to.
    line: u32,
    start: usize,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        LineIndex {
            text,
            line: 1,
            start: 0,
        }
    }

    /// Line and 1-based character column of `offset`; offsets must not go
    /// backwards between calls (matches arrive in order).
    pub fn locate(&mut self, offset: usize) -> (u32, u32, &'a [u8]) {
        let offset = offset.min(self.text.len());
        if offset >= self.start {
            let newlines = memchr::memchr_iter(b'\n', &self.text[self.start..offset]).count();
            self.line += u32::try_from(newlines).unwrap_or(u32::MAX);
            if let Some(last) = memchr::memrchr(b'\n', &self.text[self.start..offset]) {
                self.start += last + 1;
            }
        }
        let prefix = &self.text[self.start..offset];
        let column = String::from_utf8_lossy(prefix).chars().count() as u32 + 1;
        let end =
            memchr::memchr(b'\n', &self.text[offset..]).map_or(self.text.len(), |e| offset + e);
        (self.line, column, &self.text[self.start..end])
    }
}

pub(crate) fn line_text(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .trim_end_matches('\r')
        .to_string()
}

pub(crate) fn file_allows_all(text: &[u8]) -> bool {
    let head = &text[..text.len().min(1024)];
    memchr::memmem::find(head, ALLOW_FILE.as_bytes()).is_some()
}

fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A host-and-path match must not sit inside a longer hostname.
fn host_bounded(text: &[u8], start: usize, end: usize) -> bool {
    let before_ok = start == 0 || {
        let b = text[start - 1];
        !(is_host_char(b) || b == b'.')
    };
    let after_ok = match text.get(end) {
        None => true,
        Some(b) if is_host_char(*b) => false,
        // `host.example.` ends a sentence; `host.example.evil` is another host.
        Some(b'.') => !text.get(end + 1).is_some_and(|b| is_host_char(*b)),
        Some(_) => true,
    };
    before_ok && after_ok
}

/// Moves `start` left over a `scheme://` directly before it.
fn with_scheme(text: &[u8], start: usize) -> usize {
    if start < 3 || &text[start - 3..start] != b"://" {
        return start;
    }
    let mut s = start - 3;
    while s > 0 && (text[s - 1].is_ascii_alphanumeric() || text[s - 1] == b'+') {
        s -= 1;
    }
    if s == start - 3 { start } else { s }
}

/// One structural finding on a line: byte offset in the line and the rest.
struct Found {
    at: usize,
    rule: &'static str,
    severity: flywheel_contract::Severity,
    value: String,
    message: String,
    replacement: Option<String>,
}

/// The value assigned right after `key_end` (`= "v"`, `: v`, `=v`), with its
/// offset; `None` when there is no assignment or the value is a variable.
fn assigned(line: &[u8], key_end: usize) -> Option<(usize, String)> {
    let mut i = key_end;
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < line.len() && set.contains(&line[*i]) {
            *i += 1;
        }
    };
    skip(&mut i, b"\"' \t");
    if i >= line.len() || !(line[i] == b'=' || line[i] == b':') {
        return None;
    }
    i += 1;
    skip(&mut i, b" \t\"'");
    let start = i;
    while i < line.len() && !b" \t\"',;#]}\r".contains(&line[i]) {
        i += 1;
    }
    let value = String::from_utf8_lossy(&line[start..i]).to_string();
    (!value.is_empty() && !value.contains('$') && !value.contains("{{")).then_some((start, value))
}

fn word_start(line: &[u8], at: usize) -> bool {
    at == 0 || !(line[at - 1].is_ascii_alphanumeric())
}

/// Runs the structural rule `trigger` matched at `at..end` of `line`.
fn structural(
    rules: &Rules,
    trigger: Trigger,
    line: &[u8],
    at: usize,
    end: usize,
    following: &[u8],
) -> Option<Found> {
    use flywheel_contract::Severity;
    match trigger {
        Trigger::Backend => {
            if !rules.endpoints.s3_state || !word_start(line, at) {
                return None;
            }
            let rest = &line[end..];
            let mut i = rest
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            let quote = rest.get(i).copied().filter(|b| *b == b'"' || *b == b'\'');
            if quote.is_some() {
                i += 1;
            }
            if !rest.get(i..i + 4)?.eq_ignore_ascii_case(b"http") {
                return None;
            }
            i += 4;
            match quote {
                Some(q) if rest.get(i) == Some(&q) => {}
                Some(_) => return None,
                // Unquoted: only as HCL (`backend http {`), not prose.
                None => {
                    let after = &rest[i..];
                    let t = after.iter().position(|b| *b != b' ' && *b != b'\t');
                    if t.and_then(|t| after.get(t)) != Some(&b'{') {
                        return None;
                    }
                }
            }
            Some(Found {
                at,
                rule: rule::GITLAB_HTTP_STATE,
                severity: Severity::Error,
                value: String::from_utf8_lossy(&line[at..end + i + usize::from(quote.is_some())]).to_string(),
                message: "backend \"http\" (GitLab-managed state) is not the authority for the active stacks: they use backend \"s3\"".into(),
                replacement: Some("backend \"s3\" with the stack's key".into()),
            })
        }
        Trigger::TfHttp => {
            if !rules.endpoints.s3_state || !word_start(line, at) {
                return None;
            }
            let tail = line[end..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            if tail == 0 {
                return None;
            }
            let value = String::from_utf8_lossy(&line[at..end + tail]).to_string();
            Some(Found {
                at,
                rule: rule::GITLAB_HTTP_STATE,
                severity: Severity::Error,
                message: format!(
                    "`{value}` configures GitLab-managed HTTP state, which is compatibility-only"
                ),
                value,
                replacement: Some("backend \"s3\" with the stack's key".into()),
            })
        }
        Trigger::TerraformState => {
            if !rules.endpoints.s3_state {
                return None;
            }
            let api = memchr::memmem::find(&line[..at], b"/api/v4/projects/")?;
            let mut start = api;
            while start > 0 && !b" \t\"'=(".contains(&line[start - 1]) {
                start -= 1;
            }
            let mut stop = end;
            while stop < line.len() && !b" \t\"',)\r".contains(&line[stop]) {
                stop += 1;
            }
            Some(Found {
                at: start,
                rule: rule::GITLAB_HTTP_STATE,
                severity: Severity::Error,
                value: String::from_utf8_lossy(&line[start..stop]).to_string(),
                message: "a GitLab terraform/state address is GitLab-managed HTTP state, which is compatibility-only".into(),
                replacement: Some("backend \"s3\" with the stack's key".into()),
            })
        }
        Trigger::RemoteCache | Trigger::BazelCacheEndpoint => {
            let (off, value) = assigned(line, end)?;
            if Rules::is_cluster_internal(&value) {
                return None;
            }
            Some(Found {
                at: off,
                rule: rule::PUBLIC_BAZEL_ENDPOINT,
                severity: Severity::Error,
                message: format!(
                    "`{value}`: ad hoc public Bazel hostname presented as the onboarding default; shared runners use the cluster-internal cache"
                ),
                value,
                replacement: rules.bazel_runner_endpoint().map(str::to_string),
            })
        }
        Trigger::Substituters => {
            // The list may continue on the following lines (`[` ... `]`).
            let mut hay = line[end..].to_vec();
            if hay.contains(&b'[') && !hay.contains(&b']') {
                let close = memchr::memchr(b']', following).unwrap_or(following.len().min(4096));
                hay.extend_from_slice(&following[..close.min(following.len())]);
            }
            let text = String::from_utf8_lossy(&hay);
            let url = text
                .split(|c: char| c.is_whitespace() || "\"'[],;=".contains(c))
                .find(|w| w.contains('.') && rules.is_flakehub(w))?;
            Some(Found {
                at,
                rule: rule::FLAKEHUB_SUBSTITUTER,
                severity: Severity::Error,
                value: url.to_string(),
                message: format!(
                    "`{url}` as a Nix substituter: FlakeHub is publication and discovery only, not runtime authority"
                ),
                replacement: rules
                    .endpoints
                    .attic_runner
                    .as_ref()
                    .map(|(a, _)| a.clone()),
            })
        }
        Trigger::AtticServer => {
            let (off, value) = assigned(line, end)?;
            let (right, right_aud, given_aud) = rules.attic_for_people(&value)?;
            Some(Found {
                at: off,
                rule: rule::ENDPOINT_AUDIENCE,
                severity: Severity::Warning,
                message: format!(
                    "runner-side attic_server `{value}` is the endpoint for {given_aud}; runners use {right} ({right_aud})"
                ),
                value,
                replacement: Some(right.to_string()),
            })
        }
    }
}

/// Appends a violation for every out-of-contract value in `text`: literals
/// and hosts in any case, and the structural rules.
pub(crate) fn out_of_contract(rules: &Rules, file: &str, text: &[u8], out: &mut Vec<Violation>) {
    let Some(ac) = &rules.automaton else {
        return;
    };
    thread_local! {
        static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LOWER.with_borrow_mut(|lower| {
        lower.clear();
        lower.extend(text.iter().map(u8::to_ascii_lowercase));
        find_all(rules, ac, file, text, lower, out);
    });
}

/// Matches are found in `lower` (the same length as `text`, ASCII
/// lowercased) and reported from `text`.
fn find_all(
    rules: &Rules,
    ac: &aho_corasick::AhoCorasick,
    file: &str,
    text: &[u8],
    lower: &[u8],
    out: &mut Vec<Violation>,
) {
    let first = out.len();
    let mut index = LineIndex::new(text);
    for m in ac.find_iter(lower) {
        let Some(needle) = rules.needles.get(m.pattern().as_usize()) else {
            continue;
        };
        let start = match needle.kind {
            Kind::Host if !host_bounded(text, m.start(), m.end()) => continue,
            Kind::Host => with_scheme(text, m.start()),
            _ => m.start(),
        };
        let (line, column, line_bytes) = index.locate(start);
        if memchr::memmem::find(line_bytes, ALLOW_LINE.as_bytes()).is_some() {
            continue;
        }
        if let Kind::Trigger(trigger) = needle.kind {
            let line_start = line_bytes.as_ptr() as usize - text.as_ptr() as usize;
            let line_end = line_start + line_bytes.len();
            let following = text.get(line_end..).unwrap_or_default();
            let at = start - line_start;
            let Some(f) = structural(rules, trigger, line_bytes, at, at + m.len(), following)
            else {
                continue;
            };
            let col = String::from_utf8_lossy(&line_bytes[..f.at.min(line_bytes.len())])
                .chars()
                .count() as u32
                + 1;
            out.push(Violation {
                file: file.to_string(),
                line,
                column: col,
                rule: f.rule,
                severity: f.severity,
                value: f.value,
                message: f.message,
                replacement: f.replacement,
                excerpt: line_text(line_bytes),
            });
            continue;
        }
        out.push(Violation {
            file: file.to_string(),
            line,
            column,
            rule: rule::OUT_OF_CONTRACT,
            severity: needle.severity,
            value: needle.value.clone(),
            message: format!("`{}` is out of contract: {}", needle.value, needle.reason),
            replacement: needle.replacement.clone(),
            excerpt: line_text(line_bytes),
        });
    }
    // A line may hold the same finding twice (a literal and a rule that
    // read it): report each place once.
    let mut seen = std::collections::HashSet::new();
    let found: Vec<Violation> = out.drain(first..).collect();
    for v in found {
        if seen.insert((v.line, v.column)) {
            out.push(v);
        }
    }
}

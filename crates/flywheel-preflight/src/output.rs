//! Rendering: text for people, JSON for machines, GitHub annotations and a
//! Markdown job summary for Actions.

use flywheel_text::{github_data as escape_data, github_property as escape_property, human};

use crate::{CheckResult, Report, Run, Status};

fn symbol(s: Status) -> &'static str {
    match s {
        Status::Ok => "✓",
        Status::Warning => "!",
        Status::Blocker => "✗",
        Status::Unknown => "?",
        Status::Skipped => "-",
    }
}

fn paint(s: Status, text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match s {
        Status::Ok => "32",
        Status::Warning => "33",
        Status::Blocker => "31",
        Status::Unknown => "35",
        Status::Skipped => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn check_line(out: &mut String, c: &CheckResult, color: bool) {
    let head = format!("{} {:<8}", symbol(c.status), c.status.as_str());
    out.push_str(&format!(
        "  {} {:<21} {}\n",
        paint(c.status, &head, color),
        c.id,
        human(&c.summary)
    ));
    if c.status != Status::Ok {
        for d in &c.detail {
            out.push_str(&format!("      {}\n", human(d)));
        }
    }
}

/// The counts line: `N blockers / M warnings` (and unknowns when any).
pub fn counts(r: &Report) -> String {
    let mut s = format!(
        "{} blockers / {} warnings",
        r.summary.blockers, r.summary.warnings
    );
    if r.summary.unknown > 0 {
        s.push_str(&format!(" / {} unknown", r.summary.unknown));
    }
    // A gate that passes offline must say what it did not look at.
    if r.summary.skipped_offline > 0 {
        let n = r.summary.skipped_offline;
        s.push_str(&format!(
            " ({n} remote check{} skipped: offline)",
            if n == 1 { "" } else { "s" }
        ));
    }
    s
}

pub fn text_report(r: &Report, color: bool) -> String {
    let mut out = format!(
        "preflight {} ({})\n",
        human(r.overlay.repository.as_deref().unwrap_or("(no repository)")),
        human(&r.overlay.dir)
    );
    for c in &r.checks {
        check_line(&mut out, c, color);
    }
    out.push('\n');
    out.push_str(&counts(r));
    out.push('\n');
    if !r.next_actions.is_empty() {
        out.push_str("\nNext actions:\n");
        for (i, a) in r.next_actions.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, human(a)));
        }
    }
    out
}

pub fn text(run: &Run, color: bool) -> String {
    let mut parts: Vec<String> = run.reports.iter().map(|r| text_report(r, color)).collect();
    if let Some(c) = &run.cross_overlay {
        let mut s = "across overlays\n".to_string();
        check_line(&mut s, c, color);
        if let Some(n) = &c.next_action {
            s.push_str(&format!("\nNext action:\n  1. {}\n", human(n)));
        }
        parts.push(s);
    }
    parts.join("\n")
}

/// One report as an object; several (or a cross-overlay check) as
/// `{"reports": [...], "cross_overlay": {...}}`.
pub fn json(run: &Run) -> String {
    let v = if run.reports.len() == 1 && run.cross_overlay.is_none() {
        serde_json::to_value(&run.reports[0])
    } else {
        serde_json::to_value(run)
    };
    v.and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Workflow commands: an error per blocker, a warning per warning or unknown.
pub fn github_annotations(run: &Run) -> String {
    let mut out = String::new();
    let all = run.reports.iter().flat_map(|r| {
        r.checks
            .iter()
            .map(move |c| (r.overlay.repository.as_deref().unwrap_or(""), c))
    });
    let cross = run.cross_overlay.iter().map(|c| ("across overlays", c));
    for (who, c) in all.chain(cross) {
        let level = match c.status {
            Status::Blocker => "error",
            Status::Warning | Status::Unknown => "warning",
            _ => continue,
        };
        let mut body = c.summary.clone();
        for d in &c.detail {
            body.push('\n');
            body.push_str(d);
        }
        if let Some(n) = &c.next_action {
            body.push_str("\nNext: ");
            body.push_str(n);
        }
        out.push_str(&format!(
            "::{level} title={}::{}\n",
            escape_property(&format!("preflight {} {} ({who})", c.id, c.status.as_str())),
            escape_data(&body)
        ));
    }
    // Never a configured value at the start of a line: the runner reads any
    // line starting with `::` as a command.
    for r in &run.reports {
        out.push_str(&format!(
            "preflight {}: {}\n",
            escape_data(r.overlay.repository.as_deref().unwrap_or(&r.overlay.dir)),
            counts(r)
        ));
    }
    out
}

fn cell(s: &str) -> String {
    human(&s.replace('|', "\\|").replace('\n', " ")).into_owned()
}

/// The Markdown job summary (`$GITHUB_STEP_SUMMARY`).
pub fn markdown(run: &Run) -> String {
    let mut out = String::new();
    for r in &run.reports {
        out.push_str(&format!(
            "### Enrollment preflight: {}\n\n",
            cell(r.overlay.repository.as_deref().unwrap_or(&r.overlay.dir))
        ));
        out.push_str(&format!(
            "**{}**\n\n| check | status | summary |\n|---|---|---|\n",
            counts(r)
        ));
        for c in &r.checks {
            out.push_str(&format!(
                "| `{}` | {} {} | {} |\n",
                c.id,
                symbol(c.status),
                c.status.as_str(),
                cell(&c.summary)
            ));
        }
        if !r.next_actions.is_empty() {
            out.push_str("\n**Next actions**\n\n");
            for (i, a) in r.next_actions.iter().enumerate() {
                out.push_str(&format!("{}. {}\n", i + 1, cell(a)));
            }
        }
        out.push('\n');
    }
    if let Some(c) = &run.cross_overlay {
        out.push_str(&format!(
            "### Across overlays\n\n`{}`: {} {}\n",
            c.id,
            c.status.as_str(),
            cell(&c.summary)
        ));
        for d in &c.detail {
            out.push_str(&format!("- {}\n", cell(d)));
        }
    }
    out
}

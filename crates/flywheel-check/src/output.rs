//! Report rendering: text for people, JSON for machines, GitHub annotations.

use std::fmt::Write;

use flywheel_contract::Severity;
use flywheel_text::human;

use crate::Report;

pub fn json(report: &Report) -> String {
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// Grouped by file, each finding with its line of source and the fix.
pub fn text(report: &Report) -> String {
    let mut o = String::new();
    let mut current: Option<&str> = None;
    for v in &report.violations {
        if current != Some(v.file.as_str()) {
            if current.is_some() {
                o.push('\n');
            }
            let _ = writeln!(o, "{}", human(&v.file));
            current = Some(&v.file);
        }
        let _ = writeln!(
            o,
            "  {}:{} {}[{}] {}",
            v.line,
            v.column,
            v.severity.as_str(),
            v.rule,
            human(&v.message)
        );
        if !v.excerpt.is_empty() {
            let _ = writeln!(o, "     | {}", human(v.excerpt.trim_end()));
        }
        if let Some(r) = &v.replacement {
            let _ = writeln!(o, "     = use: {}", human(r));
        }
    }
    if !report.violations.is_empty() {
        o.push('\n');
    }
    let files_with = {
        let mut f: Vec<&str> = report.violations.iter().map(|v| v.file.as_str()).collect();
        f.dedup();
        f.len()
    };
    let _ = writeln!(
        o,
        "{} error{}, {} warning{} in {} file{} ({} file{} scanned)",
        report.errors(),
        plural(report.errors()),
        report.warnings(),
        plural(report.warnings()),
        files_with,
        plural(files_with),
        report.files_scanned,
        plural(report.files_scanned),
    );
    o
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Workflow-command escaping, shared with the preflight (`flywheel-text`).
pub use flywheel_text::{github_data as escape_data, github_property as escape_property};

/// `::error file=...,line=...,col=...,title=...::message` per finding.
pub fn github(report: &Report) -> String {
    let mut o = String::new();
    for v in &report.violations {
        let level = match v.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = v.message.clone();
        if let Some(r) = &v.replacement {
            let _ = write!(message, " (use: {r})");
        }
        let _ = writeln!(
            o,
            "::{level} file={},line={},col={},title={}::{}",
            escape_property(&v.file),
            v.line,
            v.column,
            escape_property(v.rule),
            escape_data(&message)
        );
    }
    o
}

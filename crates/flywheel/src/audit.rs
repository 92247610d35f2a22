//! The audit trail of command-line mutations: one JSON line per event,
//! appended and flushed to disk before the mutation runs. No record, no
//! mutation: when the intent cannot be written, the command changes nothing.
//!
//! Where: the store's hash-chained `audit_records` when `FLYWHEEL_DATABASE_URL`
//! is set (the same log `flywheel serve` writes and `flywheel audit verify`
//! checks); else `FLYWHEEL_AUDIT_LOG`, else `$XDG_STATE_HOME/flywheel/audit.jsonl`
//! (a relative `XDG_STATE_HOME` is ignored, as the XDG spec says), else
//! `~/.local/state/flywheel/audit.jsonl`.
//!
//! Every record passes the process-wide redactor (`flywheel_redact`) before
//! it is written, so a credential a server echoed into an error never lands
//! in the log. An intent is always followed by a result: an [`Audit`]
//! dropped without [`Audit::finish`] (an early return, a panic, an
//! interrupted command) records the outcome `unknown`.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

/// Where records go.
enum Sink {
    File(PathBuf),
    Store(String),
}

pub struct Audit {
    sink: Sink,
    id: String,
    action: &'static str,
    finished: std::cell::Cell<bool>,
}

impl Drop for Audit {
    fn drop(&mut self) {
        if !self.finished.get() {
            self.finish(json!({
                "outcome": "unknown",
                "reason": "the command ended before it recorded what the mutation did",
            }));
        }
    }
}

fn default_path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("FLYWHEEL_AUDIT_LOG") {
        return Some(PathBuf::from(p));
    }
    let state = var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("flywheel/audit.jsonl"))
}

/// `2026-11-27T15:04:05Z` from the system clock.
fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn actor() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl Audit {
    /// Writes the intent record; `Err` means the mutation must not run.
    pub fn begin(action: &'static str, target: Value) -> Result<Audit, String> {
        let sink = match std::env::var("FLYWHEEL_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Sink::Store(url),
            _ => Sink::File(
                default_path().ok_or("no audit log location: set FLYWHEEL_AUDIT_LOG (or HOME)")?,
            ),
        };
        let id = format!("{}-{}", now_rfc3339(), std::process::id());
        let audit = Audit {
            sink,
            id,
            action,
            finished: std::cell::Cell::new(true),
        };
        audit.append(json!({"phase": "intent", "target": target}))?;
        audit.finished.set(false);
        Ok(audit)
    }

    /// Writes the outcome record. A failure here is reported, the mutation
    /// already happened.
    pub fn finish(&self, outcome: Value) {
        self.finished.set(true);
        if let Err(e) = self.append(json!({"phase": "result", "outcome": outcome})) {
            eprintln!("warning: {e}");
        }
    }

    fn append(&self, mut event: Value) -> Result<(), String> {
        flywheel_redact::redact_json(&mut event);
        let path = match &self.sink {
            Sink::File(p) => p,
            Sink::Store(url) => return self.append_store(url, &event),
        };
        if let Some(m) = event.as_object_mut() {
            m.insert("at".into(), json!(now_rfc3339()));
            m.insert("id".into(), json!(self.id));
            m.insert("action".into(), json!(self.action));
            m.insert("actor".into(), json!(actor()));
        }
        let fail =
            |e: std::io::Error| format!("cannot write the audit record to {}: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        let mut line = event.to_string();
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)
    }

    /// One record into the store's chain, on a thread of its own (the
    /// caller may already be inside an async runtime).
    fn append_store(&self, url: &str, event: &Value) -> Result<(), String> {
        let phase = if event["phase"] == "intent" {
            flywheel_store::Phase::Intent
        } else {
            flywheel_store::Phase::Result
        };
        let (outcome, after) = match phase {
            flywheel_store::Phase::Intent => ("pending".to_string(), event["target"].clone()),
            flywheel_store::Phase::Result => {
                let o = &event["outcome"];
                let word = o["outcome"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| match o.get("applied").and_then(Value::as_bool) {
                        Some(true) => "ok".into(),
                        Some(false) => "failed".into(),
                        None if o.get("error").is_some() => "failed".into(),
                        None => "ok".into(),
                    });
                (word, o.clone())
            }
        };
        let rec = flywheel_store::NewRecord {
            actor: format!("cli:{}", actor()),
            role: "cli".into(),
            auth_method: "cli".into(),
            action: self.action.to_string(),
            target: event["target"]
                .as_object()
                .and_then(|t| t.values().find_map(Value::as_str))
                .unwrap_or(self.action)
                .to_string(),
            outcome,
            request_id: self.id.clone(),
            before: Value::Null,
            after,
        };
        let url = url.to_string();
        std::thread::scope(|s| {
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the audit writer: {e}"))?;
                rt.block_on(async {
                    let store = flywheel_store::Store::open(&url)
                        .await
                        .map_err(|e| format!("cannot write the audit record to the store: {e}"))?;
                    let r = store.audit_append(phase, &rec).await;
                    store.close().await;
                    r.map(|_| ())
                        .map_err(|e| format!("cannot write the audit record to the store: {e}"))
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the audit writer failed".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(path: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn audit_at(path: &std::path::Path, target: Value) -> Audit {
        let audit = Audit {
            sink: Sink::File(path.to_path_buf()),
            id: "t".into(),
            action: "test",
            finished: std::cell::Cell::new(true),
        };
        audit
            .append(json!({"phase": "intent", "target": target}))
            .expect("intent");
        audit.finished.set(false);
        audit
    }

    #[test]
    fn an_intent_without_a_result_is_closed_as_unknown() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("audit.jsonl");
        drop(audit_at(&log, json!({})));
        let r = records(&log);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1]["phase"], "result");
        assert_eq!(r[1]["outcome"]["outcome"], "unknown");
        let a = audit_at(&log, json!({}));
        a.finish(json!({"applied": true}));
        drop(a);
        assert_eq!(records(&log).len(), 4, "finish then drop writes one result");
    }

    #[test]
    fn records_are_redacted() {
        flywheel_redact::register("audit-secret-token-value");
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("audit.jsonl");
        let a = audit_at(&log, json!({"url": "https://u:p@h/x"}));
        a.finish(json!({"error": "server said Bearer audit-secret-token-value"}));
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(
            !text.contains("audit-secret-token-value") && !text.contains("u:p@"),
            "{text}"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        let t = now_rfc3339();
        assert!(t.parse::<jiff::Timestamp>().is_ok(), "{t}");
        assert!(t.ends_with('Z') && t.len() == 20, "{t}");
    }
}

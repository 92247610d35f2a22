//! The audit trail of command-line mutations: one JSON line per event,
//! appended and flushed to disk before the mutation runs. No record, no
//! mutation: when the intent cannot be written, the command changes nothing.
//!
//! Where: `FLYWHEEL_AUDIT_LOG`, else `$XDG_STATE_HOME/flywheel/audit.jsonl`,
//! else `~/.local/state/flywheel/audit.jsonl`. A relative `XDG_STATE_HOME` is
//! ignored, as the XDG Base Directory spec says.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub struct Audit {
    path: PathBuf,
    id: String,
    action: &'static str,
}

fn default_path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("FLYWHEEL_AUDIT_LOG") {
        return Some(PathBuf::from(p));
    }
    let state = var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute()) // the XDG spec: relative paths are invalid, ignore them
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("flywheel/audit.jsonl"))
}

/// `2026-11-27T15:04:05Z` from the system clock.
fn now_rfc3339() -> String {
    rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

fn rfc3339(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
        let path =
            default_path().ok_or("no audit log location: set FLYWHEEL_AUDIT_LOG (or HOME)")?;
        let id = format!("{}-{}", now_rfc3339(), std::process::id());
        let audit = Audit { path, id, action };
        audit.append(json!({"phase": "intent", "target": target}))?;
        Ok(audit)
    }

    /// Writes the outcome record. A failure here is reported, the mutation
    /// already happened.
    pub fn finish(&self, outcome: Value) {
        if let Err(e) = self.append(json!({"phase": "result", "outcome": outcome})) {
            eprintln!("warning: {e}");
        }
    }

    fn append(&self, mut event: Value) -> Result<(), String> {
        if let Some(m) = event.as_object_mut() {
            m.insert("at".into(), json!(now_rfc3339()));
            m.insert("id".into(), json!(self.id));
            m.insert("action".into(), json!(self.action));
            m.insert("actor".into(), json!(actor()));
        }
        let fail = |e: std::io::Error| {
            format!(
                "cannot write the audit record to {}: {e}",
                self.path.display()
            )
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail)?;
        let mut line = event.to_string();
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}

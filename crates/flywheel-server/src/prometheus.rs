//! Held jobs from ARC's listener metrics: with a contract `prometheus:`
//! section, [`poll_held_jobs`] asks Prometheus every `poll_seconds` (±10 %)
//! for `sum by (namespace, name) (gha_assigned_jobs) - sum by (namespace,
//! name) (gha_running_jobs)` and hands the answer to the fleet, which shows
//! it as `held_jobs` of paused sets. An answer that cannot be had or read
//! makes them unknown (`null`), never 0.

use std::collections::HashMap;
use std::time::Duration;

use flywheel_fleet::watch::Fleet;

/// The query: jobs each set's listener holds assigned but not running.
pub const QUERY: &str = "clamp_min(sum by (namespace, name) (gha_assigned_jobs) - sum by (namespace, name) (gha_running_jobs), 0)";

/// The largest answer read.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Reads Prometheus's `/api/v1/query` answer for [`QUERY`]: per
/// (`namespace`, `name`), the value (rounded down, negative as 0).
pub fn parse_held(body: &[u8]) -> Result<HashMap<(String, String), u64>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("status").and_then(|s| s.as_str()) != Some("success") {
        return Err(format!(
            "Prometheus answered status {}",
            v.get("status").map_or("(none)".into(), |s| s.to_string())
        ));
    }
    let result = v
        .pointer("/data/result")
        .and_then(|r| r.as_array())
        .ok_or("no data.result array")?;
    let mut out = HashMap::new();
    for (i, r) in result.iter().enumerate() {
        let label = |k: &str| {
            r.pointer(&format!("/metric/{k}"))
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or(format!("result {i}: no `{k}` label"))
        };
        let value = r
            .pointer("/value/1")
            .and_then(|x| x.as_str())
            .and_then(|x| x.parse::<f64>().ok())
            .filter(|x| x.is_finite())
            .ok_or(format!("result {i}: no numeric value"))?;
        out.insert((label("namespace")?, label("name")?), value.max(0.0) as u64);
    }
    Ok(out)
}

async fn query(
    client: &reqwest::Client,
    base: &str,
) -> Result<HashMap<(String, String), u64>, String> {
    let q: String = form_urlencoded::byte_serialize(QUERY.as_bytes()).collect();
    let url = format!("{}/api/v1/query?query={q}", base.trim_end_matches('/'));
    let mut resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("Prometheus could not be reached: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("Prometheus answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading Prometheus's answer: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err("Prometheus answered more than 4 MiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    parse_held(&body)
}

/// Asks Prometheus at `base` every `every` (±10 %) and sets the fleet's
/// held jobs; forever.
pub async fn poll_held_jobs(fleet: Fleet, base: String, every: Duration) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for Prometheus; held jobs stay unknown");
            return;
        }
    };
    let mut failing = false;
    loop {
        match query(&client, &base).await {
            Ok(held) => {
                if failing {
                    tracing::info!("Prometheus answers again: held jobs are known");
                }
                failing = false;
                fleet.set_held_jobs(Some(held));
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %flywheel_redact::redact(&e), "held jobs unknown");
                }
                failing = true;
                fleet.set_held_jobs(None);
            }
        }
        let nanos = jiff::Timestamp::now().subsec_nanosecond().unsigned_abs();
        let factor = 0.9 + 0.2 * f64::from(nanos % 1000) / 1000.0;
        tokio::time::sleep(every.mul_f64(factor)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_answer_gives_held_jobs_per_set() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"arc-runners","name":"tinyland-nix"},"value":[1764566400.1,"3"]},
            {"metric":{"namespace":"arc-runners","name":"jess-docker"},"value":[1764566400.1,"-1"]}]}}"#;
        let held = parse_held(body).expect("parsed");
        assert_eq!(held[&("arc-runners".into(), "tinyland-nix".into())], 3);
        assert_eq!(held[&("arc-runners".into(), "jess-docker".into())], 0);
    }

    #[test]
    fn anything_else_is_an_error_not_zero() {
        for bad in [
            &b"not json"[..],
            br#"{"status":"error","error":"bad query"}"#,
            br#"{"status":"success","data":{}}"#,
            br#"{"status":"success","data":{"result":[{"metric":{"name":"x"},"value":[1,"2"]}]}}"#,
            br#"{"status":"success","data":{"result":[{"metric":{"namespace":"a","name":"x"},"value":[1,"NaN"]}]}}"#,
        ] {
            assert!(parse_held(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_never_a_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_held(&bytes);
        }
    }
}

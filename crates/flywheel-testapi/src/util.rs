//! Small helpers: timestamps, base64, kind <-> plural naming.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as an RFC 3339 timestamp with second precision, like the apiserver writes.
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-since-epoch to proleptic Gregorian date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what the apiserver uses for `Secret.data`).
pub(crate) fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let idx = |shift: u32| char::from(B64[((n >> shift) & 0x3f) as usize]);
        out.push(idx(18));
        out.push(idx(12));
        out.push(if chunk.len() > 1 { idx(6) } else { '=' });
        out.push(if chunk.len() > 2 { idx(0) } else { '=' });
    }
    out
}

/// Well-known (plural, Kind) pairs, for plurals that cannot be derived or kinds with inner capitals.
const KNOWN: &[(&str, &str)] = &[
    ("pods", "Pod"),
    ("secrets", "Secret"),
    ("configmaps", "ConfigMap"),
    ("namespaces", "Namespace"),
    ("services", "Service"),
    ("serviceaccounts", "ServiceAccount"),
    ("endpoints", "Endpoints"),
    ("events", "Event"),
    ("nodes", "Node"),
    ("persistentvolumeclaims", "PersistentVolumeClaim"),
    ("persistentvolumes", "PersistentVolume"),
    ("deployments", "Deployment"),
    ("statefulsets", "StatefulSet"),
    ("daemonsets", "DaemonSet"),
    ("replicasets", "ReplicaSet"),
    ("jobs", "Job"),
    ("cronjobs", "CronJob"),
    ("roles", "Role"),
    ("rolebindings", "RoleBinding"),
    ("clusterroles", "ClusterRole"),
    ("clusterrolebindings", "ClusterRoleBinding"),
    ("customresourcedefinitions", "CustomResourceDefinition"),
    ("leases", "Lease"),
    ("ingresses", "Ingress"),
    ("networkpolicies", "NetworkPolicy"),
    ("horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("poddisruptionbudgets", "PodDisruptionBudget"),
    ("storageclasses", "StorageClass"),
    ("autoscalingrunnersets", "AutoscalingRunnerSet"),
    ("autoscalinglisteners", "AutoscalingListener"),
    ("ephemeralrunnersets", "EphemeralRunnerSet"),
    ("ephemeralrunners", "EphemeralRunner"),
];

/// Lowercase plural resource name for a kind: `Secret` -> `secrets`, `Policy` -> `policies`,
/// `Ingress` -> `ingresses`.
pub(crate) fn plural_of(kind: &str) -> String {
    if let Some((plural, _)) = KNOWN.iter().find(|(_, k)| *k == kind) {
        return (*plural).to_string();
    }
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        let vowel_before = stem.ends_with(['a', 'e', 'i', 'o', 'u']);
        if !vowel_before {
            return format!("{stem}ies");
        }
    }
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

/// Best-effort guess of a kind from a plural that was never seen (only used to name empty lists
/// and to label objects whose create body carries no kind).
pub(crate) fn guess_kind(plural: &str) -> String {
    if let Some((_, kind)) = KNOWN.iter().find(|(p, _)| *p == plural) {
        return (*kind).to_string();
    }
    let singular = if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = plural.strip_suffix("sses") {
        format!("{stem}ss")
    } else if let Some(stem) = plural.strip_suffix("ses") {
        format!("{stem}s")
    } else if let Some(stem) = plural.strip_suffix('s') {
        stem.to_string()
    } else {
        plural.to_string()
    };
    let mut chars = singular.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => singular,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural_of("Secret"), "secrets");
        assert_eq!(plural_of("AutoscalingRunnerSet"), "autoscalingrunnersets");
        assert_eq!(plural_of("ConfigMap"), "configmaps");
        assert_eq!(plural_of("Namespace"), "namespaces");
        assert_eq!(plural_of("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural_of("Gateway"), "gateways");
        assert_eq!(plural_of("Ingress"), "ingresses");
        assert_eq!(plural_of("Status"), "statuses");
        assert_eq!(guess_kind("widgets"), "Widget");
        assert_eq!(guess_kind("policies"), "Policy");
        assert_eq!(guess_kind("configmaps"), "ConfigMap");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
    }
}

//! The fleet's history: per-minute samples per workflow label and per
//! owner, made from consecutive fleet revisions. Pure: [`diff`] compares
//! two snapshots, [`Recorder`] adds them up minute by minute; the server
//! runs a task that feeds it the watches' revisions and writes completed
//! minutes to the store.
//!
//! - `running`: the highest `running_sum` seen during the minute (a peak
//!   between two revisions is not lost); `max`: the last `max_sum` of the
//!   minute (`None`: a set of the label or owner has no limit).
//! - `started`: jobs whose id first appears on a runner (`status.jobId`).
//! - `finished`: jobs that ended: their runner reached `Succeeded` or
//!   `Failed`, or disappeared after having had a job. `failed` counts the
//!   `Failed` ones, so `failed / finished` is the failure rate.
//! - Each job id is counted once per kind of event, from a bounded memory of
//!   the ids already seen ([`SEEN_JOBS`] each).
//! - A pause interval is recorded when a paused set is unpaused (or goes
//!   away): from its `flywheel.dev/paused-at` (else when it was first seen
//!   paused) to that revision's time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use jiff::{RoundMode, Timestamp, TimestampRound, Unit};

use crate::snapshot::{FleetSnapshot, SetRow};

/// How many job ids each memory keeps (oldest forgotten first).
pub const SEEN_JOBS: usize = 50_000;

/// What a series is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Label,
    Owner,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Label => "label",
            Kind::Owner => "owner",
        }
    }
}

/// A series: a label or an owner.
pub type Key = (Kind, String);

/// Job events of one series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub started: u64,
    pub finished: u64,
    pub failed: u64,
}

/// One completed minute of one series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub kind: Kind,
    pub key: String,
    /// Start of the minute.
    pub minute: Timestamp,
    pub running: i64,
    pub max: Option<i64>,
    pub counts: Counts,
}

/// A set was paused from `from` to `to`; one per label and owner of the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseInterval {
    pub kind: Kind,
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub by: Option<String>,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// A bounded set of ids: remembers the newest `cap`.
#[derive(Clone, Debug)]
pub struct Seen {
    cap: usize,
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Seen {
    pub fn new(cap: usize) -> Seen {
        Seen {
            cap: cap.max(1),
            order: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    /// Remembers `id`; `true` when it was not known.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.order.push_back(id.to_string());
        self.ids.insert(id.to_string());
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// What [`diff`] remembers between revisions.
#[derive(Clone, Debug)]
pub struct Memory {
    pub started: Seen,
    pub ended: Seen,
    /// Paused sets (`namespace`, `name`) and since when.
    pub paused_since: HashMap<(String, String), Timestamp>,
}

impl Memory {
    pub fn new(cap: usize) -> Memory {
        Memory {
            started: Seen::new(cap),
            ended: Seen::new(cap),
            paused_since: HashMap::new(),
        }
    }
}

impl Default for Memory {
    fn default() -> Self {
        Memory::new(SEEN_JOBS)
    }
}

/// What changed between two revisions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub counts: BTreeMap<Key, Counts>,
    pub pauses: Vec<PauseInterval>,
}

fn keys_of(set: &SetRow) -> impl Iterator<Item = Key> + '_ {
    set.labels
        .iter()
        .map(|l| (Kind::Label, l.clone()))
        .chain(std::iter::once((Kind::Owner, set.owner.clone())))
}

fn bump(counts: &mut BTreeMap<Key, Counts>, set: &SetRow, f: impl Fn(&mut Counts)) {
    for k in keys_of(set) {
        f(counts.entry(k).or_default());
    }
}

fn set_key(s: &SetRow) -> (String, String) {
    (s.namespace.clone(), s.name.clone())
}

/// The job events and ended pauses from `prev` to `next`, seen at `at`.
pub fn diff(prev: &FleetSnapshot, next: &FleetSnapshot, at: Timestamp, mem: &mut Memory) -> Diff {
    let mut out = Diff::default();
    let prev_sets: HashMap<(String, String), &SetRow> =
        prev.scale_sets.iter().map(|s| (set_key(s), &**s)).collect();
    let next_sets: HashMap<(String, String), &SetRow> =
        next.scale_sets.iter().map(|s| (set_key(s), &**s)).collect();
    for set in &next.scale_sets {
        for r in &set.runners {
            let phase = r.phase.as_deref().unwrap_or_default();
            if let Some(job) = &r.job_id
                && mem.started.insert(job)
            {
                bump(&mut out.counts, set, |c| c.started += 1);
            }
            let ended = match phase {
                "Succeeded" => r.job_id.clone(),
                // A runner that failed before taking a job still failed.
                "Failed" => Some(r.job_id.clone().unwrap_or_else(|| {
                    format!("runner:{}/{}/{}", set.namespace, set.name, r.name)
                })),
                _ => None,
            };
            if let Some(id) = ended
                && mem.ended.insert(&id)
            {
                let failed = phase == "Failed";
                bump(&mut out.counts, set, |c| {
                    c.finished += 1;
                    c.failed += u64::from(failed);
                });
            }
        }
    }
    for set in &prev.scale_sets {
        let now = next_sets.get(&set_key(set));
        for r in &set.runners {
            let gone = now.is_none_or(|n| n.runners.iter().all(|x| x.name != r.name));
            if gone
                && let Some(job) = &r.job_id
                && mem.ended.insert(job)
            {
                bump(&mut out.counts, set, |c| c.finished += 1);
            }
        }
    }
    for set in &next.scale_sets {
        if set.paused {
            let since = set
                .paused_at
                .as_deref()
                .and_then(|p| p.parse::<Timestamp>().ok())
                .unwrap_or(at);
            mem.paused_since.entry(set_key(set)).or_insert(since);
        }
    }
    let ended: Vec<(String, String)> = mem
        .paused_since
        .keys()
        .filter(|k| next_sets.get(*k).is_none_or(|s| !s.paused))
        .cloned()
        .collect();
    for k in ended {
        let Some(from) = mem.paused_since.remove(&k) else {
            continue;
        };
        // The set as it was while paused: its labels, owner and pauser.
        let Some(set) = prev_sets.get(&k).or_else(|| next_sets.get(&k)) else {
            continue;
        };
        for (kind, key) in keys_of(set) {
            out.pauses.push(PauseInterval {
                kind,
                key,
                namespace: set.namespace.clone(),
                name: set.name.clone(),
                by: set.paused_by.clone(),
                from,
                to: at.max(from),
            });
        }
    }
    out
}

/// The start of `at`'s minute.
pub fn minute_of(at: Timestamp) -> Timestamp {
    at.round(
        TimestampRound::new()
            .smallest(Unit::Minute)
            .mode(RoundMode::Trunc),
    )
    .unwrap_or(at)
}

/// Running and max of every series now.
fn gauges(s: &FleetSnapshot) -> BTreeMap<Key, (i64, Option<i64>)> {
    let labels = s
        .labels
        .iter()
        .map(|l| ((Kind::Label, l.label.clone()), (l.running_sum, l.max_sum)));
    let owners = s
        .owners
        .iter()
        .map(|o| ((Kind::Owner, o.owner.clone()), (o.running_sum, o.max_sum)));
    labels.chain(owners).collect()
}

/// What a recorder hands to the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flush {
    /// Completed minutes.
    pub samples: Vec<Sample>,
    /// Ended pauses.
    pub pauses: Vec<PauseInterval>,
}

impl Flush {
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.pauses.is_empty()
    }
}

/// Accumulates the current minute from the revisions it sees.
#[derive(Debug, Default)]
pub struct Recorder {
    mem: Memory,
    prev: Option<FleetSnapshot>,
    minute: Option<Timestamp>,
    /// The series of the current minute.
    current: BTreeMap<Key, (i64, Option<i64>, Counts)>,
    /// The latest running and max of every series.
    last: BTreeMap<Key, (i64, Option<i64>)>,
}

impl Recorder {
    pub fn new(mem: Memory) -> Recorder {
        Recorder {
            mem,
            ..Default::default()
        }
    }

    /// A new revision, seen at `at`. The first one only primes the memory:
    /// jobs already running when the recorder starts were started before.
    pub fn observe(&mut self, next: &FleetSnapshot, at: Timestamp) -> Flush {
        let mut flush = self.tick(at);
        let d = match &self.prev {
            Some(prev) => diff(prev, next, at, &mut self.mem),
            None => {
                diff(&FleetSnapshot::default(), next, at, &mut self.mem);
                Diff::default()
            }
        };
        self.last = gauges(next);
        for (k, (running, max)) in &self.last {
            let e = self
                .current
                .entry(k.clone())
                .or_insert((*running, *max, Counts::default()));
            e.0 = e.0.max(*running);
            e.1 = *max;
        }
        for (k, c) in d.counts {
            let e = self.current.entry(k.clone()).or_insert_with(|| {
                let (r, m) = self.last.get(&k).copied().unwrap_or((0, Some(0)));
                (r, m, Counts::default())
            });
            e.2.started += c.started;
            e.2.finished += c.finished;
            e.2.failed += c.failed;
        }
        flush.pauses = d.pauses;
        self.prev = Some(next.clone());
        flush
    }

    /// Closes the current minute when `at` is in a later one: its samples
    /// are returned, and the next minute starts from the latest values.
    pub fn tick(&mut self, at: Timestamp) -> Flush {
        let m = minute_of(at);
        let Some(cur) = self.minute else {
            self.minute = Some(m);
            return Flush::default();
        };
        if m <= cur {
            return Flush::default();
        }
        let samples = std::mem::take(&mut self.current)
            .into_iter()
            .map(|((kind, key), (running, max, counts))| Sample {
                kind,
                key,
                minute: cur,
                running,
                max,
                counts,
            })
            .collect();
        self.minute = Some(m);
        self.current = self
            .last
            .iter()
            .map(|(k, (r, mx))| (k.clone(), (*r, *mx, Counts::default())))
            .collect();
        Flush {
            samples,
            pauses: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{LabelRow, OwnerRow, RunnerRow};

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn runner(name: &str, phase: &str, job: Option<&str>) -> RunnerRow {
        RunnerRow {
            name: name.into(),
            phase: Some(phase.into()),
            job_repository: None,
            workflow_ref: None,
            job_display_name: None,
            created: None,
            pod_phase: None,
            job_id: job.map(str::to_string),
        }
    }

    fn set(name: &str, runners: Vec<RunnerRow>, paused: bool) -> SetRow {
        SetRow {
            namespace: "arc-runners".into(),
            name: name.into(),
            runner_scale_set_name: name.into(),
            owner: "tinyland-inc".into(),
            owner_kind: "overlay",
            labels: vec!["tinyland-nix".into()],
            foreign_labels: vec![],
            label_source: crate::LabelSource::ScaleSetName,
            min: 0,
            max: Some(if paused { 0 } else { 10 }),
            current: runners.len() as i64,
            pending: 0,
            running: runners.len() as i64,
            registered: true,
            paused,
            paused_by: paused.then(|| "alice".to_string()),
            paused_at: paused.then(|| "2026-12-01T10:00:00Z".to_string()),
            pause_error: None,
            listener_healthy: true,
            held_jobs: None,
            runners,
            listener: None,
            runner_set: None,
        }
    }

    fn snap(sets: Vec<SetRow>) -> FleetSnapshot {
        let running: i64 = sets.iter().map(|s| s.running).sum();
        let max = sets.iter().map(|s| s.max).sum::<Option<i64>>();
        FleetSnapshot {
            labels: vec![LabelRow {
                label: "tinyland-nix".into(),
                sets: vec![],
                max_sum: max,
                running_sum: running,
            }],
            owners: vec![OwnerRow {
                owner: "tinyland-inc".into(),
                kind: "overlay",
                sets: vec![],
                max_sum: max,
                running_sum: running,
            }],
            scale_sets: sets.into_iter().map(std::sync::Arc::new).collect(),
            ..Default::default()
        }
    }

    fn label(d: &Diff) -> Counts {
        d.counts
            .get(&(Kind::Label, "tinyland-nix".into()))
            .copied()
            .unwrap_or_default()
    }

    #[test]
    fn a_job_is_started_finished_and_counted_once() {
        let mut m = Memory::default();
        let at = t("2026-12-01T10:00:30Z");
        let a = snap(vec![set("s", vec![runner("r1", "Pending", None)], false)]);
        let b = snap(vec![set(
            "s",
            vec![runner("r1", "Running", Some("7"))],
            false,
        )]);
        let c = snap(vec![set(
            "s",
            vec![runner("r1", "Succeeded", Some("7"))],
            false,
        )]);
        let e = snap(vec![set("s", vec![], false)]);
        assert_eq!(label(&diff(&a, &b, at, &mut m)).started, 1);
        // The same revision again (a resync) counts nothing.
        assert_eq!(label(&diff(&a, &b, at, &mut m)), Counts::default());
        let done = label(&diff(&b, &c, at, &mut m));
        assert_eq!((done.started, done.finished, done.failed), (0, 1, 0));
        // Deleting the succeeded runner does not end the job twice.
        assert_eq!(label(&diff(&c, &e, at, &mut m)), Counts::default());
        let owner = diff(&a, &b, at, &mut Memory::default());
        assert_eq!(
            owner.counts[&(Kind::Owner, "tinyland-inc".into())].started,
            1
        );
    }

    #[test]
    fn failures_and_vanished_runners_end_jobs() {
        let mut m = Memory::default();
        let at = t("2026-12-01T10:00:30Z");
        let a = snap(vec![set(
            "s",
            vec![
                runner("r1", "Running", Some("1")),
                runner("r2", "Running", Some("2")),
            ],
            false,
        )]);
        let b = snap(vec![set(
            "s",
            vec![runner("r1", "Failed", Some("1"))],
            false,
        )]);
        diff(&FleetSnapshot::default(), &a, at, &mut m);
        let c = label(&diff(&a, &b, at, &mut m));
        assert_eq!((c.finished, c.failed), (2, 1));
    }

    #[test]
    fn an_ended_pause_is_an_interval_with_who_and_when() {
        let mut m = Memory::default();
        let a = snap(vec![set("s", vec![], true)]);
        let b = snap(vec![set("s", vec![], false)]);
        assert!(
            diff(&b, &a, t("2026-12-01T10:01:00Z"), &mut m)
                .pauses
                .is_empty()
        );
        let d = diff(&a, &b, t("2026-12-01T10:30:00Z"), &mut m);
        assert_eq!(d.pauses.len(), 2, "label and owner");
        let p = &d.pauses[0];
        assert_eq!(p.by.as_deref(), Some("alice"));
        assert_eq!(p.from, t("2026-12-01T10:00:00Z"));
        assert_eq!(p.to, t("2026-12-01T10:30:00Z"));
    }

    #[test]
    fn minutes_close_with_peak_running_and_last_max() {
        let mut r = Recorder::default();
        let one = snap(vec![set(
            "s",
            vec![runner("r1", "Running", Some("1"))],
            false,
        )]);
        let two = snap(vec![set(
            "s",
            vec![
                runner("r1", "Running", Some("1")),
                runner("r2", "Running", Some("2")),
            ],
            false,
        )]);
        let unlimited = {
            let mut s = snap(vec![set("s", vec![], false)]);
            s.labels[0].max_sum = None;
            s
        };
        assert!(r.observe(&one, t("2026-12-01T10:00:05Z")).is_empty());
        assert!(r.observe(&two, t("2026-12-01T10:00:20Z")).is_empty());
        assert!(r.observe(&unlimited, t("2026-12-01T10:00:50Z")).is_empty());
        let f = r.tick(t("2026-12-01T10:01:01Z"));
        let l = f
            .samples
            .iter()
            .find(|s| s.kind == Kind::Label)
            .expect("label sample");
        assert_eq!(l.minute, t("2026-12-01T10:00:00Z"));
        assert_eq!((l.running, l.max), (2, None));
        // r1's job was running at start: not counted; r2's was started.
        assert_eq!(l.counts.started, 1);
        assert_eq!(l.counts.finished, 2, "both vanished with their jobs");
        // The next minute starts from the latest values.
        let g = r.tick(t("2026-12-01T10:02:00Z"));
        let l = g.samples.iter().find(|s| s.kind == Kind::Label).expect("l");
        assert_eq!((l.running, l.max, l.counts), (0, None, Counts::default()));
    }

    #[test]
    fn the_memory_of_jobs_is_bounded() {
        let mut s = Seen::new(3);
        for id in ["a", "b", "c", "d"] {
            assert!(s.insert(id));
        }
        assert_eq!(s.len(), 3);
        assert!(!s.insert("d"));
        assert!(s.insert("a"), "the oldest was forgotten");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// However the revisions go, a job is started at most once and
            /// finished at most once, and never more fail than finish.
            #[test]
            fn each_job_counts_once(steps in proptest::collection::vec(
                proptest::collection::vec((0u8..6, 0u8..4), 0..6), 1..12)) {
                let phases = ["Pending", "Running", "Succeeded", "Failed"];
                let mut r = Recorder::default();
                let mut totals = Counts::default();
                let mut at = t("2026-12-01T10:00:00Z");
                let mut jobs = std::collections::BTreeSet::new();
                r.observe(&snap(vec![]), at);
                for step in steps {
                    let runners = step.iter().map(|(job, phase)| {
                        jobs.insert(*job);
                        runner(&format!("r{job}"), phases[*phase as usize], Some(&job.to_string()))
                    }).collect::<Vec<_>>();
                    let mut dedup = runners;
                    dedup.sort_by(|a, b| a.name.cmp(&b.name));
                    dedup.dedup_by(|a, b| a.name == b.name);
                    at = at.checked_add(jiff::SignedDuration::from_secs(40)).expect("time");
                    for s in r.observe(&snap(vec![set("s", dedup, false)]), at).samples {
                        if s.kind == Kind::Label {
                            totals.started += s.counts.started;
                            totals.finished += s.counts.finished;
                            totals.failed += s.counts.failed;
                        }
                    }
                }
                at = at.checked_add(jiff::SignedDuration::from_secs(120)).expect("time");
                for s in r.tick(at).samples {
                    if s.kind == Kind::Label {
                        totals.started += s.counts.started;
                        totals.finished += s.counts.finished;
                        totals.failed += s.counts.failed;
                    }
                }
                prop_assert!(totals.started <= jobs.len() as u64);
                prop_assert!(totals.finished <= jobs.len() as u64);
                prop_assert!(totals.failed <= totals.finished);
            }
        }
    }
}

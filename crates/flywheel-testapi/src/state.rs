//! The in-memory object store, resourceVersion counter and watch history.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::RequestRecord;
use crate::util::{base64_encode, guess_kind, now_rfc3339, plural_of};

/// Watch history kept before the oldest entries are compacted away automatically.
const HISTORY_CAP: usize = 100_000;

/// Where an object lives: `(apiVersion, plural)` plus `(namespace, name)`; namespace "" means
/// cluster-scoped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Loc {
    pub api_version: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl Loc {
    fn res(&self) -> (String, String) {
        (self.api_version.clone(), self.plural.clone())
    }
    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

/// One change, as recorded in the watch history and broadcast to live watches.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub api_version: String,
    pub plural: String,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
    /// The object before a modification, so filtered watches can turn it into ADDED/DELETED.
    pub prev: Option<Value>,
}

#[derive(Debug)]
pub(crate) struct Failure {
    pub fragment: String,
    pub status: u16,
    pub remaining: usize,
}

/// How a write treats server-owned metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `TestApiServer::insert`: caller-provided uid/creationTimestamp/generation win.
    Test,
    /// A request through HTTP: server-owned fields are (re)computed.
    Client,
}

pub(crate) struct State {
    pub rv: u64,
    uid_seq: u64,
    uid_salt: u64,
    pub compacted_rv: u64,
    objects: BTreeMap<(String, String), BTreeMap<(String, String), Value>>,
    /// `(apiVersion, plural)` -> kind.
    kinds: HashMap<(String, String), String>,
    /// `(apiVersion, kind)` -> plural.
    plurals: HashMap<(String, String), String>,
    pub history: Vec<Arc<Event>>,
    pub events: broadcast::Sender<Arc<Event>>,
    pub latency: Duration,
    pub requests: Vec<RequestRecord>,
    pub failures: Vec<Failure>,
    /// Put the request's `Authorization` header into every `Status` message.
    pub echo_credentials: bool,
    /// Spaces sent before every JSON body (a valid, oversized answer).
    pub padding: usize,
}

impl State {
    pub(crate) fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        let uid_salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()) ^ d.as_secs())
            .unwrap_or(0);
        Self {
            rv: 0,
            uid_seq: 0,
            uid_salt,
            compacted_rv: 0,
            objects: BTreeMap::new(),
            kinds: HashMap::new(),
            plurals: HashMap::new(),
            history: Vec::new(),
            events,
            latency: Duration::ZERO,
            requests: Vec::new(),
            failures: Vec::new(),
            echo_credentials: false,
            padding: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.uid_seq += 1;
        self.uid_seq
    }

    fn new_uid(&mut self) -> String {
        let seq = self.next_seq();
        let salt = self.uid_salt;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (salt & 0xffff_ffff) as u32,
            (salt >> 32) & 0xffff,
            (salt >> 48) & 0xfff,
            (seq >> 48) & 0xfff,
            seq & 0xffff_ffff_ffff
        )
    }

    /// Five random-looking characters for `metadata.generateName`.
    pub(crate) fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut x = (self.next_seq() ^ self.uid_salt)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let mut out = String::with_capacity(5);
        for _ in 0..5 {
            x ^= x >> 29;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            out.push(char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize]));
        }
        out
    }

    pub(crate) fn learn(&mut self, api_version: &str, plural: &str, kind: &str) {
        self.kinds.insert(
            (api_version.to_string(), plural.to_string()),
            kind.to_string(),
        );
        self.plurals.insert(
            (api_version.to_string(), kind.to_string()),
            plural.to_string(),
        );
    }

    pub(crate) fn known_kind(&self, api_version: &str, plural: &str) -> Option<String> {
        self.kinds
            .get(&(api_version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The kind for a plural: learned, else guessed.
    pub(crate) fn kind_for(&self, api_version: &str, plural: &str) -> String {
        self.known_kind(api_version, plural)
            .unwrap_or_else(|| guess_kind(plural))
    }

    pub(crate) fn plural_for(&self, api_version: &str, kind: &str) -> String {
        self.plurals
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
            .unwrap_or_else(|| plural_of(kind))
    }

    pub(crate) fn get(&self, loc: &Loc) -> Option<&Value> {
        self.objects.get(&loc.res())?.get(&loc.key())
    }

    /// All objects of a resource, in (namespace, name) order; `namespace: None` means all.
    pub(crate) fn list(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<&Value> {
        self.objects
            .get(&(api_version.to_string(), plural.to_string()))
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn record(&mut self, loc: &Loc, kind: &'static str, object: Value, prev: Option<Value>) {
        let event = Arc::new(Event {
            rv: self.rv,
            api_version: loc.api_version.clone(),
            plural: loc.plural.clone(),
            namespace: loc.namespace.clone(),
            kind,
            object,
            prev,
        });
        self.history.push(event.clone());
        if self.history.len() > HISTORY_CAP {
            let drop_n = self.history.len() - HISTORY_CAP;
            self.history.drain(..drop_n);
            self.compacted_rv = self.history.first().map_or(self.rv, |e| e.rv - 1);
        }
        // No receivers is fine.
        let _ = self.events.send(event);
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Creates or replaces the object at `loc`, filling in server-owned metadata, bumping the
    /// resourceVersion and emitting a watch event (unless `dry_run`). Returns the stored object.
    ///
    /// An object with a `deletionTimestamp` and no finalizers left is deleted instead.
    pub(crate) fn store(
        &mut self,
        loc: &Loc,
        kind: &str,
        mut obj: Value,
        origin: Origin,
        dry_run: bool,
    ) -> Value {
        let prev = self.get(loc).cloned();
        if !obj.is_object() {
            obj = json!({});
        }
        let secret = loc.api_version == "v1" && loc.plural == "secrets";
        if let Some(map) = obj.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(loc.api_version.clone()));
            map.insert("kind".into(), Value::String(kind.to_string()));
            if secret {
                normalize_secret(map);
            }
            let meta = map
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if !meta.is_object() {
                *meta = Value::Object(Map::new());
            }
        }
        let spec = obj.get("spec").cloned();
        let new_uid = if prev.is_none() {
            Some(self.new_uid())
        } else {
            None
        };
        let meta = obj
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut meta = meta;
        meta.insert("name".into(), Value::String(loc.name.clone()));
        if loc.namespace.is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert("namespace".into(), Value::String(loc.namespace.clone()));
        }
        meta.remove("resourceVersion");
        match &prev {
            Some(prev) => {
                let pmeta = prev.get("metadata");
                let keep = |meta: &mut Map<String, Value>, field: &str, force: bool| {
                    if let Some(v) = pmeta.and_then(|m| m.get(field))
                        && (force || !meta.contains_key(field))
                    {
                        meta.insert(field.to_string(), v.clone());
                    }
                };
                let server_owned = origin == Origin::Client;
                keep(&mut meta, "uid", server_owned);
                keep(&mut meta, "creationTimestamp", server_owned);
                keep(&mut meta, "deletionTimestamp", true);
                if server_owned || !meta.contains_key("generation") {
                    let pgen = pmeta
                        .and_then(|m| m.get("generation"))
                        .and_then(Value::as_i64);
                    let changed = prev.get("spec") != spec.as_ref();
                    match (pgen, changed) {
                        (Some(g), true) => {
                            meta.insert("generation".into(), json!(g + 1));
                        }
                        (Some(g), false) => {
                            meta.insert("generation".into(), json!(g));
                        }
                        (None, true) => {
                            meta.insert("generation".into(), json!(1));
                        }
                        (None, false) => {
                            meta.remove("generation");
                        }
                    }
                }
            }
            None => {
                let server_owned = origin == Origin::Client;
                if server_owned || !meta.contains_key("uid") {
                    meta.insert("uid".into(), Value::String(new_uid.unwrap_or_default()));
                }
                if server_owned || !meta.contains_key("creationTimestamp") {
                    meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
                }
                if server_owned {
                    meta.remove("deletionTimestamp");
                }
                if spec.is_some() && (server_owned || !meta.contains_key("generation")) {
                    meta.insert("generation".into(), json!(1));
                }
            }
        }
        let finalizers_left = meta
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let gone = meta.contains_key("deletionTimestamp") && !finalizers_left;
        // Like the real apiserver, a write that changes nothing keeps the
        // resourceVersion and emits no event.
        if let Some(prev) = &prev
            && !gone
        {
            let mut same = obj.clone();
            if let Some(map) = same.as_object_mut() {
                map.insert("metadata".into(), Value::Object(meta.clone()));
            }
            let mut before = prev.clone();
            if let Some(m) = before.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            if same == before {
                return prev.clone();
            }
        }
        let rv = if dry_run { self.rv } else { self.bump() };
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        if let Some(map) = obj.as_object_mut() {
            map.insert("metadata".into(), Value::Object(meta));
        }
        if dry_run {
            return obj;
        }
        self.learn(&loc.api_version, &loc.plural, kind);
        if gone {
            if let Some(m) = self.objects.get_mut(&loc.res()) {
                m.remove(&loc.key());
            }
            self.record(loc, "DELETED", obj.clone(), prev);
            return obj;
        }
        self.objects
            .entry(loc.res())
            .or_default()
            .insert(loc.key(), obj.clone());
        let kind = if prev.is_some() { "MODIFIED" } else { "ADDED" };
        self.record(loc, kind, obj.clone(), prev);
        obj
    }

    /// Deletes the object at `loc`. With `honour_finalizers`, an object with finalizers only gets
    /// a `deletionTimestamp`. Returns the object as of the deletion, or `None` if absent.
    pub(crate) fn delete(
        &mut self,
        loc: &Loc,
        honour_finalizers: bool,
        dry_run: bool,
    ) -> Option<Value> {
        let current = self.get(loc)?.clone();
        let has_finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if honour_finalizers && has_finalizers {
            if current.pointer("/metadata/deletionTimestamp").is_some() || dry_run {
                return Some(current);
            }
            let mut obj = current.clone();
            let rv = self.bump();
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
            }
            self.objects
                .entry(loc.res())
                .or_default()
                .insert(loc.key(), obj.clone());
            self.record(loc, "MODIFIED", obj.clone(), Some(current));
            return Some(obj);
        }
        if dry_run {
            return Some(current);
        }
        if let Some(m) = self.objects.get_mut(&loc.res()) {
            m.remove(&loc.key());
        }
        let rv = self.bump();
        let mut obj = current.clone();
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        self.record(loc, "DELETED", obj.clone(), Some(current));
        Some(obj)
    }

    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }
}

/// Like the apiserver: `stringData` is merged into `data` (base64) and dropped; `type` defaults
/// to `Opaque`.
fn normalize_secret(map: &mut Map<String, Value>) {
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Some(data) = data.as_object_mut() {
            for (k, v) in string_data {
                let raw = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                data.insert(k, Value::String(base64_encode(raw.as_bytes())));
            }
        }
    }
    map.entry("type")
        .or_insert_with(|| Value::String("Opaque".into()));
}

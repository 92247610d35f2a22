//! An in-memory Kubernetes API server for flywheel's tests. **Never shipped**: this crate is only
//! a dev-dependency of the rest of the workspace.
//!
//! [`TestApiServer::start`] binds `127.0.0.1:0` and serves, on axum, enough of the real
//! apiserver's HTTP/JSON wire format that the real `kube` client can be pointed at it (via
//! `kube::Config::new(url)` or a kubeconfig written by [`TestApiServer::write_kubeconfig`]):
//!
//! - core (`/api/v1/...`) and named-group (`/apis/{group}/{version}/...`) paths, namespaced and
//!   cluster-wide, plus the `status` subresource and `/version`;
//! - get / list (label and field selectors, `limit`/`continue`) / create / replace (optimistic
//!   concurrency) / delete (finalizers honoured) / delete-collection;
//! - merge, strategic-merge (treated as merge), JSON patch; `dryRun=All`;
//! - server-side apply with per-manager field ownership in `metadata.managedFields`: a 409
//!   `Conflict` when applying a field another manager owns with a different value (unless
//!   `force=true`, which takes ownership), removal of fields a manager applied before and leaves
//!   out (unless another manager owns them too), `metadata.resourceVersion` in the body as a
//!   precondition; other writes naming a `fieldManager` (and [`TestApiServer::insert_by`])
//!   record that manager's `Update` ownership of what they changed;
//! - watches streamed as newline-delimited JSON, with history replay from a `resourceVersion`,
//!   `410 Expired` after [`TestApiServer::compact`], bookmarks and `timeoutSeconds`;
//! - metadata-only reads (`Accept: application/json;as=PartialObjectMetadata;...`);
//! - real `Status` error bodies.
//!
//! One deliberate difference from a real cluster: the server **refuses to return Secret data**.
//! A GET / list / watch of `secrets` without the PartialObjectMetadata `Accept` header is
//! answered with `403 Forbidden` (and recorded with `refused: true`), and the responses to writes
//! of Secrets have `data`/`stringData` stripped. Tests inspect what was written with
//! [`TestApiServer::secret_data`]. This lets tests prove that code under test never reads
//! secret values.
//!
//! Tests can also inject failures ([`TestApiServer::fail_next`]), add latency
//! ([`TestApiServer::set_latency`]) and inspect every request ([`TestApiServer::requests`]).
//! A hostile server is one switch away: [`TestApiServer::echo_credentials`] puts the request's
//! `Authorization` header (the bearer token) into every `Status` message, as a careless proxy
//! or webhook might, and [`TestApiServer::pad_responses`] makes every answer oversized.

mod apply;
mod patch;
mod selector;
mod state;
mod util;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::selector::Selector;
use crate::state::{Event, Failure, Loc, Origin, State};

/// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK while idle.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// Request bodies larger than this are rejected.
const MAX_BODY: usize = 64 << 20;

const JSON: &str = "application/json";
const META_API_VERSION: &str = "meta.k8s.io/v1";

/// One request as seen by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// URL path, e.g. `/api/v1/namespaces/default/secrets/x`.
    pub path: String,
    /// Raw query string (without `?`), empty if none.
    pub query: String,
    /// The `Accept` header, empty if none.
    pub accept: String,
    /// The `Content-Type` header, empty if none.
    pub content_type: String,
    /// Whether the server refused it because it would have returned Secret data.
    pub refused: bool,
}

impl RequestRecord {
    /// Whether this request would mutate (POST/PUT/PATCH/DELETE).
    pub fn is_mutation(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// The value of a query parameter (percent-decoded), e.g. `fieldManager`.
    pub fn query_param(&self, key: &str) -> Option<String> {
        let uri: axum::http::Uri = format!("/?{}", self.query).parse().ok()?;
        Query::<HashMap<String, String>>::try_from_uri(&uri)
            .ok()?
            .0
            .remove(key)
    }
}

struct Shared {
    state: Mutex<State>,
    shutdown: watch::Receiver<()>,
    /// Bumped by [`TestApiServer::close_watches`]: every open watch ends.
    cut: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-memory apiserver. Serving stops when this is dropped.
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Dropping the sender is the shutdown signal (for the server and for open watches).
    _shutdown: watch::Sender<()>,
    /// The serving loop now: dropping it stops accepting ([`go_away`](Self::go_away)).
    serving: Mutex<Option<watch::Sender<()>>>,
}

/// Serves `shared` on `listener` until the returned sender is dropped or
/// the server is.
fn serve_on(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> watch::Sender<()> {
    let (tx, mut rx) = watch::channel(());
    let mut stop = shared.shutdown.clone();
    let app = Router::new().fallback(handle).with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = rx.changed() => {}
                    _ = stop.changed() => {}
                }
            })
            .await;
    });
    tx
}

impl std::fmt::Debug for TestApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApiServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestApiServer {
    /// Binds 127.0.0.1:0 and serves in a background tokio task (must be called inside a tokio
    /// runtime).
    pub async fn start() -> TestApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test apiserver: bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("test apiserver: local address");
        let (tx, rx) = watch::channel(());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            shutdown: rx.clone(),
            cut: watch::channel(0).0,
        });
        drop(rx);
        let serving = serve_on(listener, shared.clone());
        TestApiServer {
            shared,
            addr,
            _shutdown: tx,
            serving: Mutex::new(Some(serving)),
        }
    }

    /// The apiserver goes away: open watches end and the port stops
    /// accepting (connections are refused) until [`come_back`](Self::come_back).
    /// The stored objects stay.
    pub fn go_away(&self) {
        self.close_watches();
        self.serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Serves again on the same address (after [`go_away`](Self::go_away)).
    pub async fn come_back(&self) {
        let start = std::time::Instant::now();
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                // The old listener may still be closing.
                Err(e) if start.elapsed() < Duration::from_secs(5) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("test apiserver: rebind {}: {e}", self.addr),
            }
        };
        *self.serving.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(serve_on(listener, self.shared.clone()));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig YAML file (cluster server = [`url`](Self::url), a context named
    /// `context` with namespace `default`, a dummy token user) into `dir` and returns its path
    /// (`dir/kubeconfig-<context>`).
    pub fn write_kubeconfig(&self, dir: &Path, context: &str) -> PathBuf {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let cluster = format!("{context}-cluster");
        let user = format!("{context}-user");
        let yaml = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: {cluster}\n  cluster:\n    server: {server}\n\
             contexts:\n\
             - name: {ctx}\n  context:\n    cluster: {cluster}\n    user: {user}\n    namespace: default\n\
             current-context: {ctx}\n\
             users:\n\
             - name: {user}\n  user:\n    token: flywheel-test-token\n",
            cluster = q(&cluster),
            server = q(&self.url()),
            ctx = q(context),
            user = q(&user),
        );
        let file: String = context
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("kubeconfig-{file}"));
        std::fs::write(&path, yaml).expect("test apiserver: write kubeconfig");
        path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Inserts/replaces an object given as full JSON (`apiVersion`, `kind`, `metadata.name`,
    /// optional `metadata.namespace`). Assigns `uid` and `creationTimestamp` (if absent) and a
    /// new `resourceVersion`; emits watch events.
    ///
    /// # Panics
    /// If `apiVersion`, `kind` or `metadata.name` is missing.
    pub fn insert(&self, object: Value) {
        let field = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| panic!("TestApiServer::insert: object has no {p}: {object}"))
        };
        let api_version = field("/apiVersion");
        let kind = field("/kind");
        let name = field("/metadata/name");
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut st = self.lock();
        let plural = st.plural_for(&api_version, &kind);
        let loc = Loc {
            api_version,
            plural,
            namespace,
            name,
        };
        st.store(&loc, &kind, object, Origin::Test, false);
    }

    /// Like [`TestApiServer::insert`], written by field manager `manager` (operation `Update`,
    /// as Helm writes): the fields it sets become `manager`'s in `metadata.managedFields`, so a
    /// later server-side apply by someone else conflicts with them unless forced.
    ///
    /// # Panics
    /// If `apiVersion`, `kind` or `metadata.name` is missing.
    pub fn insert_by(&self, manager: &str, mut object: Value) {
        let field = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| panic!("TestApiServer::insert_by: object has no {p}"))
        };
        let (api_version, kind, name) = (
            field("/apiVersion"),
            field("/kind"),
            field("/metadata/name"),
        );
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let prev = self.get(&api_version, &kind, namespace.as_deref(), &name);
        apply::update(prev.as_ref(), &mut object, Some(manager));
        self.insert(object);
    }

    /// The fields (dotted leaf paths, e.g. `.spec.maxRunners`) `manager` owns in the stored
    /// object, from its `metadata.managedFields`; empty when absent.
    pub fn owned_fields(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        manager: &str,
    ) -> Vec<String> {
        self.get(api_version, kind, namespace, name)
            .map(|o| apply::owned(&o, manager))
            .unwrap_or_default()
    }

    fn loc(st: &State, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Loc {
        Loc {
            api_version: api_version.to_string(),
            plural: st.plural_for(api_version, kind),
            namespace: namespace.unwrap_or("").to_string(),
            name: name.to_string(),
        }
    }

    /// Removes an object (ignoring finalizers), emitting a DELETED event. Returns whether it
    /// existed.
    pub fn remove(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut st = self.lock();
        let loc = Self::loc(&st, api_version, kind, namespace, name);
        st.delete(&loc, false, false).is_some()
    }

    /// The stored object (including Secret data), if present.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let st = self.lock();
        let loc = Self::loc(&st, api_version, kind, namespace, name);
        st.get(&loc).cloned()
    }

    /// All stored objects of a kind, in (namespace, name) order; `namespace: None` lists every
    /// namespace (and cluster-scoped objects).
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let st = self.lock();
        let plural = st.plural_for(api_version, kind);
        st.list(api_version, &plural, namespace)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Declares the plural of a kind whose plural is not derivable (`Endpoints` etc.).
    pub fn register_kind(&self, api_version: &str, kind: &str, plural: &str) {
        self.lock().learn(api_version, plural, kind);
    }

    /// The `data` of a stored Secret (with `stringData` merged in as base64, like the real
    /// apiserver). `Some(empty)` for a Secret without data, `None` if there is no such Secret.
    pub fn secret_data(&self, namespace: &str, name: &str) -> Option<Map<String, Value>> {
        let secret = self.get("v1", "Secret", Some(namespace), name)?;
        Some(
            secret
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// The current global resourceVersion (the number of writes so far).
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Artificial latency added before every response (for benchmarks).
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Count of requests seen that would mutate (POST/PUT/PATCH/DELETE).
    pub fn mutations(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.is_mutation())
            .count()
    }

    /// Makes the next `times` requests whose path contains `path_fragment` fail with HTTP
    /// `status` and a matching `Status` body (for retry tests).
    pub fn fail_next(&self, path_fragment: &str, status: u16, times: usize) {
        if times == 0 {
            return;
        }
        self.lock().failures.push(Failure {
            fragment: path_fragment.to_string(),
            status,
            remaining: times,
        });
    }

    /// When on, every `Status` error message ends with the request's `Authorization` header
    /// (`… (request had Authorization: Bearer <token>)`): a server that reflects credentials,
    /// for tests that prove the client never prints or records them.
    pub fn echo_credentials(&self, on: bool) {
        self.lock().echo_credentials = on;
    }

    /// Sends `bytes` spaces before every JSON body: still valid JSON, but as large as asked
    /// (for tests of response-size limits).
    pub fn pad_responses(&self, bytes: usize) {
        self.lock().padding = bytes;
    }

    /// Forgets watch history up to now, so that a watch from an older resourceVersion gets
    /// `410 Gone` (an ERROR event with reason `Expired`).
    pub fn compact(&self) {
        self.lock().compact();
    }

    /// Ends every open watch stream (as an apiserver restart or a load
    /// balancer would); clients re-watch from their last resourceVersion.
    pub fn close_watches(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

#[derive(Debug, Clone)]
struct Res {
    group: String,
    version: String,
    plural: String,
}

impl Res {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or `plural` for the core group), as in apiserver messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn is_secrets(&self) -> bool {
        self.group.is_empty() && self.plural == "secrets"
    }

    fn details(&self, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": self.plural});
        if !self.group.is_empty() {
            d["group"] = Value::String(self.group.clone());
        }
        d
    }
}

#[derive(Debug, Clone)]
enum Route {
    Version,
    Collection {
        res: Res,
        ns: Option<String>,
    },
    Object {
        res: Res,
        ns: Option<String>,
        name: String,
        sub: Option<String>,
    },
    Unknown,
}

impl Route {
    fn parse(path: &str) -> Route {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segs == ["version"] {
            return Route::Version;
        }
        let (group, version, rest) = match segs.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return Route::Unknown,
        };
        let res = |plural: &str| Res {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
        };
        let s = |x: &str| x.to_string();
        match rest {
            [plural] => Route::Collection {
                res: res(plural),
                ns: None,
            },
            ["namespaces", name, sub @ ("status" | "finalize")] => Route::Object {
                res: res("namespaces"),
                ns: None,
                name: s(name),
                sub: Some(s(sub)),
            },
            ["namespaces", ns, plural] => Route::Collection {
                res: res(plural),
                ns: Some(s(ns)),
            },
            ["namespaces", ns, plural, name] => Route::Object {
                res: res(plural),
                ns: Some(s(ns)),
                name: s(name),
                sub: None,
            },
            ["namespaces", ns, plural, name, sub] => Route::Object {
                res: res(plural),
                ns: Some(s(ns)),
                name: s(name),
                sub: Some(s(sub)),
            },
            [plural, name] => Route::Object {
                res: res(plural),
                ns: None,
                name: s(name),
                sub: None,
            },
            [plural, name, sub] => Route::Object {
                res: res(plural),
                ns: None,
                name: s(name),
                sub: Some(s(sub)),
            },
            _ => Route::Unknown,
        }
    }

    fn is_secrets(&self) -> bool {
        match self {
            Route::Collection { res, .. } | Route::Object { res, .. } => res.is_secrets(),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// A `Status` object, as the apiserver returns for failures.
fn status(code: u16, reason: &str, message: impl Into<String>, details: Option<Value>) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

enum Reply {
    Json(u16, Value),
    Watch(Box<WatchPlan>),
}

fn fail(code: u16, message: impl Into<String>, details: Option<Value>) -> Reply {
    Reply::Json(code, status(code, reason_for(code), message, details))
}

fn not_found(res: &Res, name: &str) -> Reply {
    fail(
        404,
        format!("{} \"{name}\" not found", res.qualified()),
        Some(res.details(name)),
    )
}

fn conflict(res: &Res, name: &str) -> Reply {
    fail(
        409,
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            res.qualified()
        ),
        Some(res.details(name)),
    )
}

fn json_response(code: u16, body: &Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
}

fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": META_API_VERSION,
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// What goes on the wire for a stored object: metadata only if asked, never Secret data.
fn render(obj: &Value, meta: bool, secret: bool) -> Value {
    if meta {
        return partial_metadata(obj);
    }
    let mut out = obj.clone();
    if secret && let Some(map) = out.as_object_mut() {
        map.remove("data");
        map.remove("stringData");
    }
    out
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": "v1.34.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-08-27T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

// ---------------------------------------------------------------------------------------------
// Request handling

struct Ctx {
    method: String,
    route: Route,
    query: HashMap<String, String>,
    meta: bool,
    content_type: String,
    body: Bytes,
}

impl Ctx {
    fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
    fn flag(&self, key: &str) -> bool {
        matches!(self.q(key), Some("1" | "true" | "True"))
    }
    fn dry_run(&self) -> bool {
        self.q("dryRun").is_some_and(|v| v == "All")
    }
    fn body_json(&self) -> Result<Value, Reply> {
        serde_json::from_slice(&self.body).map_err(|e| {
            fail(
                400,
                format!("unable to decode request body as JSON: {e}"),
                None,
            )
        })
    }
    fn selector(&self) -> Result<Selector, Reply> {
        Selector::parse(self.q("labelSelector"), self.q("fieldSelector"))
            .map_err(|e| fail(400, e, None))
    }
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let authorization = header(header::AUTHORIZATION);
    let accept = header(header::ACCEPT);
    let content_type = header(header::CONTENT_TYPE);
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let route = Route::parse(&path);
    let meta = accept.contains("as=PartialObjectMetadata");
    let refused = method == "GET" && route.is_secrets() && !meta;

    let (latency, injected, echo, padding) = {
        let mut st = shared.lock();
        st.requests.push(RequestRecord {
            method: method.clone(),
            path: path.clone(),
            query: parts.uri.query().unwrap_or("").to_string(),
            accept,
            content_type: content_type.clone(),
            refused,
        });
        let injected = st
            .failures
            .iter_mut()
            .find(|f| f.remaining > 0 && path.contains(&f.fragment))
            .map(|f| {
                f.remaining -= 1;
                f.status
            });
        st.failures.retain(|f| f.remaining > 0);
        (st.latency, injected, st.echo_credentials, st.padding)
    };
    let respond = |code: u16, mut body: Value| {
        if echo && code >= 400 && body.get("kind").and_then(Value::as_str) == Some("Status") {
            let message = body.get("message").and_then(Value::as_str).unwrap_or("");
            body["message"] = Value::String(format!(
                "{message} (request had Authorization: {authorization})"
            ));
        }
        if padding == 0 {
            return json_response(code, &body);
        }
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let text = " ".repeat(padding) + &body.to_string();
        (code, [(header::CONTENT_TYPE, JSON)], text).into_response()
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(code) = injected {
        let body = status(
            code,
            reason_for(code),
            format!("test apiserver: injected failure ({code}) for {method} {path}"),
            None,
        );
        return respond(code, body);
    }
    if refused {
        let body = status(
            403,
            "Forbidden",
            format!(
                "the flywheel test apiserver refuses to return Secret data ({method} {path}); \
                 read Secret metadata only (Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1)"
            ),
            None,
        );
        return respond(403, body);
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let body = status(413, "RequestEntityTooLarge", e.to_string(), None);
            return respond(413, body);
        }
    };
    let ctx = Ctx {
        method,
        route,
        query,
        meta,
        content_type,
        body,
    };
    let reply = process(&mut shared.lock(), &ctx);
    match reply {
        Reply::Json(code, v) => respond(code, v),
        Reply::Watch(plan) => watch_response(shared.shutdown.clone(), shared.cut.subscribe(), plan),
    }
}

fn process(st: &mut State, c: &Ctx) -> Reply {
    let method = c.method.as_str();
    match &c.route {
        Route::Version if method == "GET" => Reply::Json(200, version_info()),
        Route::Version => fail(405, format!("{method} is not supported on /version"), None),
        Route::Unknown => fail(
            404,
            "the server could not find the requested resource",
            None,
        ),
        Route::Collection { res, ns } => match method {
            "GET" if c.flag("watch") => start_watch(st, res, ns.as_deref(), c),
            "GET" => list(st, res, ns.as_deref(), c),
            "POST" => create(st, res, ns.as_deref(), c),
            "DELETE" => delete_collection(st, res, ns.as_deref(), c),
            _ => fail(
                405,
                format!("{method} is not supported on a collection"),
                None,
            ),
        },
        Route::Object { res, ns, name, sub } => {
            if let Some(sub) = sub
                && sub != "status"
            {
                return fail(
                    404,
                    format!("the test apiserver does not serve the {sub:?} subresource"),
                    None,
                );
            }
            let status_only = sub.is_some();
            let loc = Loc {
                api_version: res.api_version(),
                plural: res.plural.clone(),
                namespace: ns.clone().unwrap_or_default(),
                name: name.clone(),
            };
            match method {
                "GET" => match st.get(&loc) {
                    Some(obj) => Reply::Json(200, render(obj, c.meta, res.is_secrets())),
                    None => not_found(res, name),
                },
                "PUT" => replace(st, res, &loc, status_only, c),
                "PATCH" => patch(st, res, &loc, status_only, c),
                "DELETE" if !status_only => delete(st, res, &loc, c),
                _ => fail(405, format!("{method} is not supported here"), None),
            }
        }
    }
}

fn list_shell(st: &State, res: &Res, meta: bool, items: Vec<Value>, extra_meta: Value) -> Value {
    let mut list_meta = json!({"resourceVersion": st.rv.to_string()});
    merge_object(&mut list_meta, extra_meta);
    if meta {
        json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": META_API_VERSION,
            "metadata": list_meta,
            "items": items,
        })
    } else {
        json!({
            "kind": format!("{}List", st.kind_for(&res.api_version(), &res.plural)),
            "apiVersion": res.api_version(),
            "metadata": list_meta,
            "items": items,
        })
    }
}

fn merge_object(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn expired(requested: u64, compacted: u64) -> Value {
    status(
        410,
        "Expired",
        format!("too old resource version: {requested} ({compacted})"),
        None,
    )
}

fn list(st: &State, res: &Res, ns: Option<&str>, c: &Ctx) -> Reply {
    if c.q("resourceVersionMatch") == Some("Exact")
        && let Some(rv) = c.q("resourceVersion").and_then(|v| v.parse::<u64>().ok())
        && rv < st.compacted_rv
    {
        return Reply::Json(410, expired(rv, st.compacted_rv));
    }
    let sel = match c.selector() {
        Ok(s) => s,
        Err(r) => return r,
    };
    let secret = res.is_secrets();
    let matching: Vec<&Value> = st
        .list(&res.api_version(), &res.plural, ns)
        .into_iter()
        .filter(|o| sel.matches(o))
        .collect();
    let start: usize = c.q("continue").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = c.q("limit").and_then(|v| v.parse().ok()).unwrap_or(0);
    let end = if limit == 0 {
        matching.len()
    } else {
        start.saturating_add(limit).min(matching.len())
    };
    let items: Vec<Value> = matching
        .get(start.min(end)..end)
        .unwrap_or_default()
        .iter()
        .map(|o| render(o, c.meta, secret))
        .collect();
    let extra = if end < matching.len() {
        json!({"continue": end.to_string(), "remainingItemCount": matching.len() - end})
    } else {
        json!({})
    };
    Reply::Json(200, list_shell(st, res, c.meta, items, extra))
}

fn create(st: &mut State, res: &Res, ns: Option<&str>, c: &Ctx) -> Reply {
    let mut obj = match c.body_json() {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body_ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(url_ns), Some(body_ns)) = (ns, &body_ns)
        && url_ns != body_ns
    {
        return fail(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
            None,
        );
    }
    let name = match obj.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => match obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
        {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}{}", st.name_suffix()),
            _ => {
                return fail(
                    422,
                    format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        res.qualified()
                    ),
                    Some(res.details("")),
                );
            }
        },
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), Value::String(name.clone()));
    }
    let loc = Loc {
        api_version: res.api_version(),
        plural: res.plural.clone(),
        namespace: ns.unwrap_or("").to_string(),
        name: name.clone(),
    };
    if st.get(&loc).is_some() {
        return fail(
            409,
            format!("{} \"{name}\" already exists", res.qualified()),
            Some(res.details(&name)),
        )
        .with_reason("AlreadyExists");
    }
    let kind = kind_of(st, res, &obj);
    let stored = st.store(&loc, &kind, obj, Origin::Client, c.dry_run());
    Reply::Json(201, render(&stored, c.meta, res.is_secrets()))
}

impl Reply {
    fn with_reason(mut self, reason: &str) -> Reply {
        if let Reply::Json(_, v) = &mut self {
            v["reason"] = Value::String(reason.to_string());
        }
        self
    }
}

/// The kind to store under: learned for this plural, else the body's, else guessed.
fn kind_of(st: &State, res: &Res, body: &Value) -> String {
    let api_version = res.api_version();
    st.known_kind(&api_version, &res.plural)
        .or_else(|| body.get("kind").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| st.kind_for(&api_version, &res.plural))
}

fn rv_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// For the status subresource: the existing object with only `status` taken from `updated`.
fn status_update(existing: &Value, updated: &Value) -> Value {
    let mut out = existing.clone();
    if let Some(map) = out.as_object_mut() {
        match updated.get("status") {
            Some(s) => {
                map.insert("status".into(), s.clone());
            }
            None => {
                map.remove("status");
            }
        }
    }
    out
}

fn replace(st: &mut State, res: &Res, loc: &Loc, status_only: bool, c: &Ctx) -> Reply {
    let obj = match c.body_json() {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(body_name) = obj.pointer("/metadata/name").and_then(Value::as_str)
        && body_name != loc.name
    {
        return fail(
            400,
            "the name of the object does not match the name on the URL",
            None,
        );
    }
    let Some(existing) = st.get(loc).cloned() else {
        return not_found(res, &loc.name);
    };
    if let Some(rv) = rv_of(&obj)
        && Some(rv) != rv_of(&existing)
    {
        return conflict(res, &loc.name);
    }
    let obj = if status_only {
        status_update(&existing, &obj)
    } else {
        let mut obj = obj;
        apply::update(Some(&existing), &mut obj, c.q("fieldManager"));
        obj
    };
    let kind = kind_of(st, res, &obj);
    let stored = st.store(loc, &kind, obj, Origin::Client, c.dry_run());
    Reply::Json(200, render(&stored, c.meta, res.is_secrets()))
}

fn patch(st: &mut State, res: &Res, loc: &Loc, status_only: bool, c: &Ctx) -> Reply {
    let content_type = c
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let body = match c.body_json() {
        Ok(v) => v,
        Err(r) => return r,
    };
    let existing = st.get(loc).cloned();
    if content_type == "application/apply-patch+yaml" && !status_only {
        return server_side_apply(st, res, loc, existing.as_ref(), &body, c);
    }
    let patched = match (content_type.as_str(), existing.as_ref()) {
        ("application/apply-patch+yaml", None) => return not_found(res, &loc.name),
        (
            "application/apply-patch+yaml"
            | "application/merge-patch+json"
            | "application/strategic-merge-patch+json",
            Some(existing),
        ) => {
            let mut doc = existing.clone();
            patch::merge_patch(&mut doc, &body);
            doc
        }
        ("application/json-patch+json", Some(existing)) => {
            let mut doc = existing.clone();
            if let Err(e) = patch::json_patch(&mut doc, &body) {
                return fail(422, e, Some(res.details(&loc.name)));
            }
            doc
        }
        (
            "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/json-patch+json",
            None,
        ) => return not_found(res, &loc.name),
        (other, _) => {
            return fail(
                415,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
                None,
            );
        }
    };
    let Some(existing) = existing else {
        return not_found(res, &loc.name);
    };
    if rv_of(&patched) != rv_of(&existing) {
        return conflict(res, &loc.name);
    }
    let obj = if status_only {
        status_update(&existing, &patched)
    } else {
        let mut patched = patched;
        apply::update(Some(&existing), &mut patched, c.q("fieldManager"));
        patched
    };
    let kind = kind_of(st, res, &obj);
    let stored = st.store(loc, &kind, obj, Origin::Client, c.dry_run());
    Reply::Json(200, render(&stored, c.meta, res.is_secrets()))
}

/// Server-side apply (see `apply.rs`): the body's `resourceVersion` is a precondition; a field
/// another manager owns with a different value is a 409 unless `force=true`.
fn server_side_apply(
    st: &mut State,
    res: &Res,
    loc: &Loc,
    existing: Option<&Value>,
    body: &Value,
    c: &Ctx,
) -> Reply {
    let Some(manager) = c.q("fieldManager").filter(|m| !m.is_empty()) else {
        return fail(
            422,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            None,
        );
    };
    if let Some(want) = rv_of(body)
        && existing.and_then(rv_of) != Some(want)
    {
        return conflict(res, &loc.name);
    }
    match apply::apply(existing, body, manager, c.flag("force")) {
        Ok(obj) => {
            let kind = kind_of(st, res, &obj);
            let stored = st.store(loc, &kind, obj, Origin::Client, c.dry_run());
            let code = if existing.is_some() { 200 } else { 201 };
            Reply::Json(code, render(&stored, c.meta, res.is_secrets()))
        }
        Err(e) => {
            let mut details = res.details(&loc.name);
            details["causes"] = Value::Array(e.causes);
            fail(409, e.message, Some(details))
        }
    }
}

/// Checks `DeleteOptions.preconditions` (uid / resourceVersion) against the object.
fn preconditions_hold(c: &Ctx, obj: &Value) -> bool {
    let Ok(opts) = serde_json::from_slice::<Value>(&c.body) else {
        return true;
    };
    let Some(pre) = opts.get("preconditions") else {
        return true;
    };
    let check = |field: &str| {
        pre.get(field).and_then(Value::as_str).is_none_or(|want| {
            obj.pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                == Some(want)
        })
    };
    check("uid") && check("resourceVersion")
}

fn delete(st: &mut State, res: &Res, loc: &Loc, c: &Ctx) -> Reply {
    let Some(existing) = st.get(loc) else {
        return not_found(res, &loc.name);
    };
    if !preconditions_hold(c, existing) {
        return conflict(res, &loc.name);
    }
    match st.delete(loc, true, c.dry_run()) {
        Some(obj) => Reply::Json(200, render(&obj, c.meta, res.is_secrets())),
        None => not_found(res, &loc.name),
    }
}

fn delete_collection(st: &mut State, res: &Res, ns: Option<&str>, c: &Ctx) -> Reply {
    let sel = match c.selector() {
        Ok(s) => s,
        Err(r) => return r,
    };
    let api_version = res.api_version();
    let locs: Vec<Loc> = st
        .list(&api_version, &res.plural, ns)
        .into_iter()
        .filter(|o| sel.matches(o))
        .map(|o| Loc {
            api_version: api_version.clone(),
            plural: res.plural.clone(),
            namespace: o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name: o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    let items: Vec<Value> = locs
        .iter()
        .filter_map(|loc| st.delete(loc, true, c.dry_run()))
        .map(|o| render(&o, c.meta, res.is_secrets()))
        .collect();
    Reply::Json(200, list_shell(st, res, c.meta, items, json!({})))
}

// ---------------------------------------------------------------------------------------------
// Watches

/// Decides which events a watch sees and how they are rendered.
struct WatchFilter {
    api_version: String,
    plural: String,
    kind: String,
    namespace: Option<String>,
    selector: Selector,
    meta: bool,
    secret: bool,
}

impl WatchFilter {
    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let mut s =
            json!({"type": kind, "object": render(obj, self.meta, self.secret)}).to_string();
        s.push('\n');
        Bytes::from(s)
    }

    /// The wire line for an event, if this watch sees it. A modification that makes an object
    /// start/stop matching the selector turns into ADDED/DELETED, like the apiserver does.
    fn translate(&self, ev: &Event) -> Option<Bytes> {
        if ev.api_version != self.api_version
            || ev.plural != self.plural
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != ev.namespace)
        {
            return None;
        }
        let now = self.selector.matches(&ev.object);
        let kind = match ev.kind {
            "MODIFIED" => {
                let before = ev.prev.as_ref().map_or(now, |p| self.selector.matches(p));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            other if now => other,
            _ => return None,
        };
        Some(self.line(kind, &ev.object))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let (kind, api_version) = if self.meta {
            (
                "PartialObjectMetadata".to_string(),
                META_API_VERSION.to_string(),
            )
        } else {
            (self.kind.clone(), self.api_version.clone())
        };
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut s = json!({
            "type": "BOOKMARK",
            "object": {"kind": kind, "apiVersion": api_version, "metadata": metadata},
        })
        .to_string();
        s.push('\n');
        Bytes::from(s)
    }
}

struct WatchPlan {
    /// Lines to send before live events (initial ADDED / replayed history / an ERROR).
    initial: Vec<Bytes>,
    /// Live events; `None` if the stream ends after `initial`.
    live: Option<broadcast::Receiver<Arc<Event>>>,
    filter: WatchFilter,
    start_rv: u64,
    bookmarks: bool,
    timeout: Option<Duration>,
}

fn start_watch(st: &State, res: &Res, ns: Option<&str>, c: &Ctx) -> Reply {
    let selector = match c.selector() {
        Ok(s) => s,
        Err(r) => return r,
    };
    let api_version = res.api_version();
    let filter = WatchFilter {
        kind: st.kind_for(&api_version, &res.plural),
        api_version: api_version.clone(),
        plural: res.plural.clone(),
        namespace: ns.map(str::to_string),
        selector,
        meta: c.meta,
        secret: res.is_secrets(),
    };
    let from = match c.q("resourceVersion") {
        None | Some("" | "0") => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return fail(400, format!("invalid resourceVersion {v:?}"), None),
        },
    };
    let send_initial = c.flag("sendInitialEvents");
    let mut initial = Vec::new();
    match from {
        Some(n) if !send_initial => {
            if n < st.compacted_rv {
                let mut line =
                    json!({"type": "ERROR", "object": expired(n, st.compacted_rv)}).to_string();
                line.push('\n');
                return Reply::Watch(Box::new(WatchPlan {
                    initial: vec![Bytes::from(line)],
                    live: None,
                    filter,
                    start_rv: st.rv,
                    bookmarks: false,
                    timeout: None,
                }));
            }
            initial.extend(
                st.history
                    .iter()
                    .filter(|ev| ev.rv > n)
                    .filter_map(|ev| filter.translate(ev)),
            );
        }
        _ => {
            initial.extend(
                st.list(&api_version, &res.plural, ns)
                    .into_iter()
                    .filter(|o| filter.selector.matches(o))
                    .map(|o| filter.line("ADDED", o)),
            );
        }
    }
    let bookmarks = c.flag("allowWatchBookmarks");
    if send_initial && bookmarks {
        initial.push(filter.bookmark(st.rv, true));
    }
    let timeout = c
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    Reply::Watch(Box::new(WatchPlan {
        initial,
        live: Some(st.events.subscribe()),
        filter,
        start_rv: st.rv,
        bookmarks,
        timeout,
    }))
}

fn watch_response(
    mut shutdown: watch::Receiver<()>,
    mut cut: watch::Receiver<u64>,
    plan: Box<WatchPlan>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let WatchPlan {
            initial,
            live,
            filter,
            start_rv,
            bookmarks,
            timeout,
        } = *plan;
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let Some(mut live) = live else {
            return;
        };
        let far = tokio::time::Instant::now() + Duration::from_secs(365 * 86_400);
        let deadline = timeout.map_or(far, |t| tokio::time::Instant::now() + t);
        let sleep = tokio::time::sleep_until(deadline);
        tokio::pin!(sleep);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        let mut seen = start_rv;
        loop {
            let line = tokio::select! {
                // A cut wins over events that arrive with it: a write made
                // after `close_watches` is never sent on the old stream.
                biased;
                _ = cut.changed() => break,
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= start_rv {
                            continue;
                        }
                        seen = seen.max(ev.rv);
                        match filter.translate(&ev) {
                            Some(line) => line,
                            None => continue,
                        }
                    }
                    // Lagged or closed: end the stream; the client re-watches from its last RV.
                    Err(_) => break,
                },
                () = &mut sleep => {
                    if bookmarks {
                        let _ = tx.send(filter.bookmark(seen, false)).await;
                    }
                    break;
                }
                _ = tick.tick(), if bookmarks => filter.bookmark(seen, false),
                _ = shutdown.changed() => break,
                () = tx.closed() => break,
            };
            if tx.send(line).await.is_err() {
                break;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, JSON)],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r =
            Route::parse("/apis/actions.github.com/v1alpha1/namespaces/ns/autoscalingrunnersets/x");
        assert!(
            matches!(r, Route::Object { ref res, ref ns, ref name, sub: None }
                if res.group == "actions.github.com" && res.plural == "autoscalingrunnersets"
                    && ns.as_deref() == Some("ns") && name == "x")
        );
        assert!(matches!(
            Route::parse("/api/v1/namespaces"),
            Route::Collection { ns: None, .. }
        ));
        assert!(matches!(
            Route::parse("/api/v1/namespaces/foo"),
            Route::Object { ns: None, ref name, .. } if name == "foo"
        ));
        assert!(matches!(
            Route::parse("/api/v1/namespaces/foo/secrets"),
            Route::Collection { ref res, ns: Some(_) } if res.is_secrets()
        ));
        assert!(matches!(
            Route::parse("/api/v1/namespaces/foo/status"),
            Route::Object { sub: Some(_), .. }
        ));
        assert!(matches!(Route::parse("/version"), Route::Version));
        assert!(matches!(Route::parse("/healthz"), Route::Unknown));
    }
}

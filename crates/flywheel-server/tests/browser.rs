//! Passkeys in a real browser: headless Chromium driven over WebDriver
//! (ChromeDriver), with Chrome's virtual authenticator standing in for a
//! platform authenticator (CTAP2, resident keys, user verification).
//!
//! The admin signs in with the bootstrap link, registers a passkey on /me,
//! signs out, signs in again with the passkey alone, and /me shows the same
//! identity and role; the store saw the signature counter move.
//!
//! The fleet: an operator signed in by the trusted proxy (a forwarding
//! proxy in the test adds the contract's identity headers) opens the
//! fleet, pauses a scale set (accepting the confirmation), sees a change
//! made on the apiserver arrive over SSE without a reload, and resumes.
//! Screenshots go to `target/test-artifacts/`.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`,
//! `chromium-driver`; `.ci/run` installs them). Without them the test
//! fails, saying so: it is never skipped silently. `FLYWHEEL_CHROMIUM` and
//! `FLYWHEEL_CHROMEDRIVER` name other binaries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_server::AppState;
use flywheel_server::access::Policy;
use flywheel_server::passkey::Passkeys;
use flywheel_store::Store;
use serde_json::{Value, json};

#[path = "support/server.rs"]
mod support;

/// How long any one wait in the browser may take.
const PATIENCE: Duration = Duration::from_secs(30);

fn binary(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the browser test needs Chromium and ChromeDriver. Run `.ci/run` \
         (it installs the Debian packages chromium and chromium-driver), or \
         `apt-get install chromium chromium-driver`, or set {var}.",
        path.display()
    );
    path
}

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
}

/// The real server on 127.0.0.1, relying party `localhost` with the origin
/// `http://localhost:PORT` (the browser's address for it).
async fn start_server() -> Server {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let text = std::fs::read_to_string(&path).expect("example");
    let platform = flywheel_contract::load_str(&path, &text).expect("contract");
    let policy = Policy::from_contract(&platform, |_| None).expect("policy");
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("fw.db").display()))
        .await
        .expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let origin = format!("http://localhost:{}", addr.port());
    let passkeys = Passkeys::new("localhost", &origin).expect("relying party");
    let state = Arc::new(
        AppState::new(store, policy, Default::default())
            .await
            .expect("state")
            .with_passkeys(passkeys),
    );
    tokio::spawn(flywheel_server::serve(
        state.clone(),
        listener,
        std::future::pending(),
    ));
    Server {
        addr,
        state,
        _dir: dir,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A blocking `DELETE` on a fresh connection (for `Drop`, which cannot
/// await).
fn delete_blocking(port: u16, path: &str) {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let req =
        format!("DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if conn.write_all(req.as_bytes()).is_err() {
        return;
    }
    // Until the whole answer is in: ChromeDriver keeps the connection open.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
}

/// ChromeDriver and the browser it starts, ended on drop (also when a
/// test fails): the WebDriver session is deleted (Chromium quits), then
/// the driver's whole process group is killed.
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            delete_blocking(self.port, &format!("/session/{id}"));
        }
        // The driver leads its own process group; anything left in it goes.
        // `--` so that the group id is never read as an option; never a
        // group id of 0 or 1 (this process's own group, or everyone).
        let pgid = self.child.id();
        if pgid > 1 {
            let _ = Command::new("kill")
                .args(["-KILL", "--"])
                .arg(format!("-{pgid}"))
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let chromium = binary("FLYWHEEL_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("FLYWHEEL_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{} did not start: {e}", chromedriver.display()))
        };
        let profile = tempfile::tempdir().expect("profile dir");
        let mut d = Driver {
            child,
            port,
            session: None,
            http: reqwest::Client::new(),
            _profile: profile,
        };
        let ready = Instant::now();
        loop {
            let status = d.call("GET", "/status", None).await;
            if status.as_ref().is_ok_and(|v| v["ready"] == true) {
                break;
            }
            assert!(
                ready.elapsed() < PATIENCE,
                "chromedriver did not become ready: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            &format!("--user-data-dir={}", d._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "unhandledPromptBehavior": "ignore",
        }}});
        let v = d
            .call("POST", "/session", Some(caps))
            .await
            .unwrap_or_else(|e| panic!("no browser session: {e}"));
        d.session = Some(v["sessionId"].as_str().expect("sessionId").to_string());
        d
    }

    /// One WebDriver command; the answer's `value`, or its error in words.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req
            .timeout(PATIENCE)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{method} {path}: {status}: {} {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    /// A command in this browser session.
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let id = self.session.as_deref().expect("a session");
        self.call(method, &format!("/session/{id}{path}"), body)
            .await
    }

    async fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    async fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The element a CSS selector finds now, if any.
    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()?;
        v.as_object()?.values().next()?.as_str().map(str::to_string)
    }

    async fn text(&self, css: &str) -> Option<String> {
        let e = self.find(css).await?;
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .await
            .ok()?
            .as_str()
            .map(str::to_string)
    }

    /// Waits for `css` to appear; what `#passkey-status` says is in the
    /// failure message.
    async fn wait_for(&self, css: &str) -> String {
        let since = Instant::now();
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            if since.elapsed() > PATIENCE {
                panic!(
                    "`{css}` did not appear within {PATIENCE:?} at {} (status: {:?})",
                    self.url().await,
                    self.text("#passkey-status").await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `css` once it is there (again when a live update replaced
    /// it between finding and clicking).
    async fn click(&self, css: &str) {
        let since = Instant::now();
        loop {
            let e = self.wait_for(css).await;
            match self
                .cmd("POST", &format!("/element/{e}/click"), Some(json!({})))
                .await
            {
                Ok(_) => return,
                Err(err) if err.contains("stale element") && since.elapsed() < PATIENCE => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("clicking {css}: {err}"),
            }
        }
    }

    /// Waits until the page is `path` and shows `css` with `text`.
    async fn wait_for_text(&self, path: &str, css: &str, text: &str) {
        let since = Instant::now();
        loop {
            let url = self.url().await;
            let here = url
                .split_once("://")
                .map_or("", |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
            if here == path && self.text(css).await.as_deref() == Some(text) {
                return;
            }
            if since.elapsed() > PATIENCE {
                panic!(
                    "{path} with {css} = {text:?} did not come within {PATIENCE:?}: at {url}, \
                     {css} = {:?}, status: {:?}",
                    self.text(css).await,
                    self.text("#passkey-status").await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The signature counter a stored passkey holds.
fn counter(stored: &str) -> u64 {
    let v: Value = serde_json::from_str(stored).expect("stored passkey JSON");
    v["cred"]["counter"].as_u64().expect("cred.counter")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_registered_on_me_signs_in_after_sign_out() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let began = Instant::now();
    let server = start_server().await;
    let port = server.addr.port();
    let base = format!("http://localhost:{port}");
    let link = flywheel_server::bootstrap_link(&server.state, server.addr, false)
        .await
        .expect("store")
        .expect("no admin yet: a link");
    // The link names 127.0.0.1; WebAuthn's origin is localhost (still
    // loopback, so the link is honoured).
    let link = link.replace(&format!("http://127.0.0.1:{port}"), &base);
    assert!(link.starts_with(&base), "{link}");

    let d = Driver::start().await;
    let auth = d
        .cmd(
            "POST",
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            })),
        )
        .await
        .expect("a virtual authenticator");
    let auth = auth.as_str().expect("authenticator id").to_string();

    // Signed in as the bootstrap admin, on /me.
    d.go(&link).await;
    d.wait_for_text("/me", "#identity", "bootstrap-admin").await;
    assert_eq!(d.text("#method").await.as_deref(), Some("bootstrap"));
    assert!(d.find("#no-passkeys").await.is_some());

    // Register: the table lists it.
    d.click("#passkey-register").await;
    d.wait_for("#passkeys").await;
    let rows = server
        .state
        .store
        .passkeys_of("bootstrap-admin")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let registered = rows[0].clone();
    assert_eq!(registered.role, flywheel_store::Role::Admin);
    assert_eq!(registered.name, "passkey");
    assert_eq!(registered.last_used_at, None);
    let table = d.text("#passkeys").await.unwrap_or_default();
    assert!(
        table.contains("passkey") && table.contains("never"),
        "{table}"
    );
    // The authenticator holds it as a discoverable (resident) credential.
    let creds = d
        .cmd(
            "GET",
            &format!("/webauthn/authenticator/{auth}/credentials"),
            None,
        )
        .await
        .expect("credentials");
    let creds = creds.as_array().expect("a list");
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["isResidentCredential"], true, "{creds:?}");
    assert_eq!(creds[0]["rpId"], "localhost");

    // The same authenticator again: excluded (the browser refuses it).
    d.click("#passkey-register").await;
    let since = Instant::now();
    loop {
        let status = d.text("#passkey-status").await.unwrap_or_default();
        if status.contains("failed") {
            // Chromium's words for an excluded credential.
            assert!(status.contains("already registered"), "{status}");
            break;
        }
        assert!(
            since.elapsed() < PATIENCE,
            "a second registration was not refused: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = server.state.store.passkeys_of("bootstrap-admin").await;
    assert_eq!(rows.expect("rows").len(), 1);

    // Sign out: the sign-in page, no session.
    d.click("#signout").await;
    d.wait_for("#passkey-signin").await;
    assert!(d.url().await.ends_with("/signin"), "{}", d.url().await);
    assert!(d.find("#identity").await.is_none());

    // Sign in with the passkey alone (no user name).
    d.click("#passkey-signin").await;
    d.wait_for_text("/me", "#method", "passkey").await;
    assert_eq!(
        d.text("#identity").await.as_deref(),
        Some("bootstrap-admin")
    );
    assert_eq!(d.text("#role").await.as_deref(), Some("admin"));

    // The store saw it used: last use and signature counter.
    let used = server
        .state
        .store
        .passkey(&registered.credential_id)
        .await
        .expect("store")
        .expect("the row");
    assert!(used.last_used_at.is_some(), "{used:?}");
    assert!(
        counter(&used.passkey) > counter(&registered.passkey),
        "counter {} -> {}",
        counter(&registered.passkey),
        counter(&used.passkey)
    );
    // And the audit log has the registration.
    let records = server
        .state
        .store
        .audit_records(&flywheel_store::AuditFilter {
            action: Some("passkey.register".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(records.len(), 2, "intent and result");
    assert_eq!(records[1].outcome, "ok");
    eprintln!("browser test took {:?}", began.elapsed());
}

/// A reverse proxy on 127.0.0.1 in front of `upstream` that adds
/// `headers` to every request (dropping any the browser sent under those
/// names), as the operator proxy of the contract does; answers pass
/// through untouched (event streams included).
async fn identity_proxy(upstream: SocketAddr, headers: Vec<(String, String)>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(forward(conn, upstream, headers.clone()));
        }
    });
    addr
}

/// One browser connection: request heads rewritten, bodies by
/// `Content-Length` (a browser's forms and fetches send one).
async fn forward(client: tokio::net::TcpStream, upstream: SocketAddr, add: Vec<(String, String)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    });
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match cr.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let mut out = format!("{}\r\n", lines.next().unwrap_or_default());
        for (k, v) in &add {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        let mut len = 0usize;
        for l in lines {
            let name = l.split(':').next().unwrap_or_default().trim();
            if add.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
                continue;
            }
            if name.eq_ignore_ascii_case("content-length") {
                len = l
                    .split_once(':')
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
            }
            out.push_str(l);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        while buf.len() < len {
            match cr.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        if sw.write_all(out.as_bytes()).await.is_err() || sw.write_all(&body).await.is_err() {
            return;
        }
    }
}

const ARC: &str = "actions.github.com/v1alpha1";

fn scale_set(name: &str, max: i64) -> Value {
    json!({"apiVersion": ARC, "kind": "AutoscalingRunnerSet",
        "metadata": {"name": name, "namespace": "arc-runners",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"runner-scale-set-id": "12",
                "actions.github.com/runner-scale-set-name": name}},
        "spec": {"githubConfigUrl": "https://github.com/tinyland-inc",
            "githubConfigSecret": "github-app-secret", "runnerScaleSetName": name,
            "minRunners": 0, "maxRunners": max,
            "template": {"spec": {"containers": [{"name": "runner"}]}}},
        "status": {"currentRunners": 1, "pendingEphemeralRunners": 0, "runningEphemeralRunners": 1}})
}

/// A set's `spec.maxRunners` on the apiserver.
fn max_runners(api: &flywheel_testapi::TestApiServer, name: &str) -> Value {
    let set = api
        .get(ARC, "AutoscalingRunnerSet", Some("arc-runners"), name)
        .unwrap_or_else(|| panic!("no set {name}"));
    set["spec"]["maxRunners"].clone()
}

/// Where screenshots are kept: `$CARGO_TARGET_DIR/test-artifacts`, else
/// the workspace's `target/test-artifacts`.
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    dir
}

impl Driver {
    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self
            .cmd("GET", "/screenshot", None)
            .await
            .expect("a screenshot");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("base64 PNG");
        let path = artifacts().join(name);
        std::fs::write(&path, bytes).expect("writing the screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    async fn script(&self, js: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .await
        .unwrap_or_else(|e| panic!("script {js}: {e}"))
    }

    /// Accepts the confirmation the last click opened (waits for it).
    async fn accept_confirm(&self) {
        let since = Instant::now();
        loop {
            match self.cmd("POST", "/alert/accept", Some(json!({}))).await {
                Ok(_) => return,
                Err(e) if since.elapsed() > PATIENCE => panic!("no confirmation: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until `css`'s text satisfies `ok`; its text.
    async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let since = Instant::now();
        loop {
            let t = self.text(css).await.unwrap_or_default();
            if ok(&t) {
                return t;
            }
            assert!(
                since.elapsed() < PATIENCE,
                "{css} never matched at {}: {t:?}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn window(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await
        .expect("window size");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_behind_the_proxy_pauses_and_resumes_and_sees_changes_arrive_live() {
    let began = Instant::now();
    let api = flywheel_testapi::TestApiServer::start().await;
    api.insert(scale_set("tinyland-nix", 10));
    api.insert(scale_set("tinyland-docker", 5));
    let dir = tempfile::tempdir().expect("tmp");
    let cluster = support::cluster_of(&api, dir.path()).await;
    let fleet = flywheel_fleet::watch::Fleet::new(flywheel_fleet::snapshot::FleetConfig {
        namespaces: flywheel_fleet::snapshot::FleetConfig::default_namespaces(),
        shared_labels: vec!["tinyland-nix".into(), "tinyland-docker".into()],
        overlay_owners: vec!["tinyland-inc".into()],
        ..Default::default()
    });
    let run = fleet.clone();
    let client = cluster.client().clone();
    tokio::spawn(async move { run.run(client).await });
    // The contract's trusted proxy mode, trusting 127.0.0.0/8.
    let server = support::start_custom(
        true,
        &[],
        |t| t,
        move |s, _| {
            s.fleet = fleet;
            s.set_kube(cluster);
        },
    )
    .await;
    let proxy = identity_proxy(
        server.addr,
        vec![
            ("Tailscale-User-Login".into(), "ops@tinyland.dev".into()),
            (
                "X-Forwarded-Groups".into(),
                "tinyland-inc/platform-operators".into(),
            ),
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{}", proxy.port());
    let d = Driver::start().await;
    d.window(1400, 1000).await;

    // The fleet, signed in by the proxy as an operator.
    d.go(&format!("{base}/")).await;
    let docker_max = "tr[data-set='arc-runners/tinyland-docker'] td:nth-child(5)";
    d.wait_text(docker_max, |t| t == "5").await;
    let who = d.text("#who").await.unwrap_or_default();
    assert!(
        who.contains("ops@tinyland.dev") && who.contains("operator"),
        "{who}"
    );
    d.screenshot("fleet-wide.png").await;
    d.window(390, 844).await;
    d.screenshot("fleet-phone.png").await;
    d.window(1400, 1000).await;

    // Open a set and pause it, confirming.
    d.click("a[href='/scale-sets/arc-runners/tinyland-nix']")
        .await;
    d.click("#pause").await;
    d.accept_confirm().await;
    d.wait_text("#state", |t| t.contains("paused")).await;
    let state = d.text("#state").await.unwrap_or_default();
    assert!(state.contains("ops@tinyland.dev"), "{state}");
    d.wait_for("#resume").await;
    assert_eq!(max_runners(&api, "tinyland-nix"), json!(0));
    d.screenshot("scale-set-paused.png").await;

    // Back on the fleet: a change made on the apiserver arrives over SSE,
    // with no reload (the markers set now survive).
    d.go(&format!("{base}/")).await;
    d.wait_text("tr[data-set='arc-runners/tinyland-nix'] td.state", |t| {
        t.contains("paused")
    })
    .await;
    // The event stream is open before anything changes.
    let since = Instant::now();
    loop {
        let open = d
            .script(
                "var d = document.getElementById('live')['htmx-internal-data']; \
                 return d && d.sseEventSource ? d.sseEventSource.readyState : -1;",
            )
            .await;
        if open == 1 {
            break;
        }
        assert!(
            since.elapsed() < PATIENCE,
            "the event stream never opened: {open}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.script(
        "document.body.dataset.marker = 'still-here'; \
         document.getElementById('live').dataset.marker = 'still-here'; return true;",
    )
    .await;
    let url_before = d.url().await;
    api.insert(scale_set("tinyland-docker", 9));
    d.wait_text(docker_max, |t| t == "9").await;
    let markers = d
        .script(
            "return [document.body.dataset.marker || '', \
             document.getElementById('live').dataset.marker || ''];",
        )
        .await;
    assert_eq!(
        markers,
        json!(["still-here", "still-here"]),
        "the page was reloaded"
    );
    assert_eq!(d.url().await, url_before);
    d.screenshot("fleet-live-update.png").await;

    // Resume.
    d.click("a[href='/scale-sets/arc-runners/tinyland-nix']")
        .await;
    d.click("#resume").await;
    d.accept_confirm().await;
    d.wait_text("#state", |t| t.contains("serving")).await;
    assert_eq!(max_runners(&api, "tinyland-nix"), json!(10));
    d.screenshot("scale-set-resumed.png").await;
    // Both actions are in the audit log under the proxy's identity.
    let records = server
        .state
        .store
        .audit_records(&flywheel_store::AuditFilter {
            actor: Some("ops@tinyland.dev".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    assert!(
        actions.contains(&"scale_set.pause") && actions.contains(&"scale_set.resume"),
        "{actions:?}"
    );
    eprintln!("fleet browser test took {:?}", began.elapsed());
}

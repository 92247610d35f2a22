//! Passkeys in a real browser: headless Chromium driven over WebDriver
//! (ChromeDriver), with Chrome's virtual authenticator standing in for a
//! platform authenticator (CTAP2, resident keys, user verification).
//!
//! The admin signs in with the bootstrap link, registers a passkey on /me,
//! signs out, signs in again with the passkey alone, and /me shows the same
//! identity and role; the store saw the signature counter move.
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

    async fn click(&self, css: &str) {
        let e = self.wait_for(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await
            .unwrap_or_else(|err| panic!("clicking {css}: {err}"));
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

//! The shared harness of the server tests: a real server on 127.0.0.1
//! over a fresh SQLite store, raw HTTP/1.1 calls, tokens and signed-in
//! browsers.
#![allow(dead_code)] // each test binary uses a part

use std::net::SocketAddr;
use std::sync::Arc;

use flywheel_server::AppState;
use flywheel_server::access::Policy;
use flywheel_store::{Role, Store};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    _dir: tempfile::TempDir,
}

/// `trust_loopback`: the test's own peer (127.0.0.1) is a trusted proxy.
pub async fn start(trust_loopback: bool, env: &[(&str, &str)]) -> Server {
    start_with(trust_loopback, env, |t| t).await
}

/// [`start`] with the example contract's text edited first.
pub async fn start_with(
    trust_loopback: bool,
    env: &[(&str, &str)],
    edit: impl Fn(String) -> String,
) -> Server {
    start_custom(trust_loopback, env, edit, |_, _| {}).await
}

/// [`start_with`], and `customize` sees the state (and the address the
/// server will listen on) before it serves.
pub async fn start_custom(
    trust_loopback: bool,
    env: &[(&str, &str)],
    edit: impl Fn(String) -> String,
    customize: impl FnOnce(&mut AppState, SocketAddr),
) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let mut text = edit(std::fs::read_to_string(&path).expect("example"));
    if trust_loopback {
        text = text.replace(
            "trusted_cidrs: [100.64.0.0/10",
            "trusted_cidrs: [127.0.0.0/8, 100.64.0.0/10",
        );
    }
    let platform = flywheel_contract::load_str(&path, &text).expect("contract");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let policy = Policy::from_contract(&platform, |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .expect("policy");
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("fw.db").display()))
        .await
        .expect("store");
    let mut state = AppState::new(store, policy, Default::default())
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    state.set_platform(platform);
    customize(&mut state, addr);
    let state = Arc::new(state);
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

pub struct Answer {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: String,
}

impl Answer {
    /// A header's value (first one, name in any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn call(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut conn = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        s.addr,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    conn.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    // To the end; an event stream (which does not end) until it pauses.
    let mut buf = [0u8; 16 * 1024];
    loop {
        let streaming = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .is_some_and(|at| {
                String::from_utf8_lossy(&raw[..at])
                    .to_ascii_lowercase()
                    .contains("content-type: text/event-stream")
            });
        let n = if streaming {
            match tokio::time::timeout(std::time::Duration::from_millis(300), conn.read(&mut buf))
                .await
            {
                Ok(r) => r.expect("read"),
                Err(_) => break,
            }
        } else {
            conn.read(&mut buf).await.expect("read")
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_string(), b.to_string()))
        .unwrap_or_default();
    // Chunked bodies: keep what is between the chunk sizes.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.lines()
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("")
    } else {
        body
    };
    Answer { status, head, body }
}

/// A signed-in browser: its cookie header and CSRF token.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

pub async fn session(s: &Server, role: Role) -> Browser {
    let (id, sess) = s
        .state
        .store
        .create_session(
            &flywheel_store::NewSession {
                identity: format!("user-{}", role.as_str()),
                groups: Vec::new(),
                role,
                method: "oidc".into(),
            },
            Default::default(),
            flywheel_store::now(),
        )
        .await
        .expect("session");
    Browser {
        cookie: format!("flywheel={}", id.expose_secret()),
        csrf: sess.csrf,
    }
}

/// A page form posted by a signed-in browser (same origin, its CSRF token).
pub async fn form(s: &Server, path: &str, b: &Browser) -> Answer {
    let origin = format!("http://{}", s.addr);
    call(
        s,
        "POST",
        path,
        &[
            ("Cookie", &b.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &origin),
        ],
        &format!("csrf={}", b.csrf),
    )
    .await
}

pub async fn token(s: &Server, role: Role) -> String {
    let t = s
        .state
        .store
        .create_token(&format!("t-{}", role.as_str()), role, None, "test")
        .await
        .expect("token");
    t.secret.expose_secret().to_string()
}

/// The cookie a response sets, as `name=value`.
pub fn set_cookie(a: &Answer) -> Option<String> {
    a.header("set-cookie")
        .and_then(|c| c.split(';').next().map(str::to_string))
}

/// The cluster behind the test apiserver `api`, through the real kube
/// client (a kubeconfig for it is written into `dir`).
pub async fn cluster_of(
    api: &flywheel_testapi::TestApiServer,
    dir: &std::path::Path,
) -> flywheel_cluster::Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = api.write_kubeconfig(dir, "fleet");
    flywheel_cluster::Cluster::from_kubeconfig_file(
        &path,
        Some("fleet"),
        flywheel_cluster::Policy::default(),
    )
    .await
    .expect("cluster")
}

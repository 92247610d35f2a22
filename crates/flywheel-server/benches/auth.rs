//! What the authentication and role check costs: p99 latency of an
//! authenticated route against an unauthenticated one, under load.
//!
//! For each backend (SQLite in a temporary file; PostgreSQL 15 started with
//! the store tests' harness, skipped loudly when `initdb` is missing) the
//! real server runs in-process on 127.0.0.1 with its own multi-thread
//! runtime (threads named `server`), and a load generator on another
//! runtime keeps 64 keep-alive HTTP/1.1 connections busy, each sending its
//! next request as soon as the previous answer is in (closed loop),
//! recording every request's latency.
//!
//! Three cases, each with its own 64 connections, run interleaved in short
//! slices (baseline, token, cookie, baseline, ...: 15 rounds of 1 s each by
//! default) so that the noise of this shared 2-core machine (other people's
//! builds come and go for tens of seconds) hits them alike; the table gives
//! medians over the rounds of each slice's p50, p99, p99.9 and requests/s:
//! - baseline: `GET /healthz` (public: the access layer lets it through
//!   without authenticating);
//! - token: `GET /api/v1/me` with `Authorization: Bearer fw_...`;
//! - cookie: `GET /api/v1/me` with `Cookie: flywheel=<session id>`.
//!
//! Budget: the authenticated cases add at most 1 ms at p99 over the
//! baseline (difference of the medians). A row over budget prints FAIL and
//! the bench exits non-zero, unless `FLYWHEEL_BENCH_REPORT_ONLY=1`. Printed
//! for judging noise: the paired difference (median over rounds of case
//! minus that round's baseline), the server threads' CPU time per request
//! (what the check costs, hardly moved by neighbours), and how much of the
//! machine other processes used meanwhile.
//!
//! Then, per backend: one uncached lookup (the first request with a fresh
//! token or session, 200 times) against the same request answered from the
//! 2 s cache, unloaded, on one connection; and what a miss costs under load
//! (64 connections asking at once with one credential, as happens each time
//! a cached entry expires): why the cache exists, and what it leaves.
//!
//! Knobs: `FLYWHEEL_BENCH_ROUNDS` (default 15), `FLYWHEEL_BENCH_MS`
//! (measured milliseconds per case per round, default 1000),
//! `FLYWHEEL_PG_BIN`. Run with `cargo bench -p flywheel-server --bench auth`.

#[path = "support/load.rs"]
mod load;
#[path = "../../flywheel-store/tests/support/pg.rs"]
mod pg;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_server::AppState;
use flywheel_server::access::Policy;
use flywheel_store::{NewSession, Role, Store};
use load::{CONNECTIONS, Conn, Run, load, median_of, ms, percentile, request};
use secrecy::ExposeSecret;
use tokio::runtime::Runtime;

/// The budget: added p99 over the baseline.
const BUDGET_MS: f64 = 1.0;
/// Fresh tokens (and sessions) for the uncached-lookup measurement.
const FRESH: usize = 200;
/// Past this share of the machine used by other processes, say the run
/// was noisy.
const NOISY: f64 = 0.15;
/// Unrecorded time at the start of every slice (the case's connections sat
/// idle while the other cases ran).
const RUN_WARMUP: Duration = Duration::from_millis(200);
/// Unrecorded time per case before the first round, per backend.
const BACKEND_WARMUP: Duration = Duration::from_secs(1);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Baseline,
    Token,
    Cookie,
}

impl Case {
    const ALL: [Case; 3] = [Case::Baseline, Case::Token, Case::Cookie];

    fn label(self) -> &'static str {
        match self {
            Case::Baseline => "baseline GET /healthz",
            Case::Token => "GET /api/v1/me, bearer token",
            Case::Cookie => "GET /api/v1/me, session cookie",
        }
    }
}

/// The example contract's access policy (a trusted-proxy mode whose
/// networks do not include loopback, so the proxy step is consulted and
/// declines, as it would for a direct caller).
fn policy() -> Policy {
    let path = root().join("examples/platform.yaml");
    let text = std::fs::read_to_string(&path).expect("examples/platform.yaml");
    let platform = flywheel_contract::load_str(&path, &text).expect("example contract");
    Policy::from_contract(&platform, |_| None).expect("policy")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running server for one backend.
struct Bench {
    server: Runtime,
    state: Arc<AppState>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Bench {
    fn start(url: &str) -> Bench {
        let server = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("server")
            .build()
            .expect("server runtime");
        let (state, addr, stop) = server.block_on(async {
            let store = Store::open(url).await.expect("store");
            let state = Arc::new(
                AppState::new(store, policy(), Default::default())
                    .await
                    .expect("state"),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(flywheel_server::serve(state.clone(), listener, async {
                let _ = stopped.await;
            }));
            (state, addr, stop)
        });
        Bench {
            server,
            state,
            addr,
            stop: Some(stop),
        }
    }

    fn token(&self, name: &str) -> String {
        self.server.block_on(async {
            let t = self
                .state
                .store
                .create_token(name, Role::Viewer, None, "bench")
                .await
                .expect("token");
            t.secret.expose_secret().to_string()
        })
    }

    /// A session last seen `seen_ago` ago (a minute or more: the next
    /// lookup also writes `last_seen_at`).
    fn session(&self, who: &str, seen_ago: jiff::SignedDuration) -> String {
        let at = flywheel_store::now()
            .checked_sub(seen_ago)
            .expect("a time in the past");
        self.server.block_on(async {
            let (id, _) = self
                .state
                .store
                .create_session(
                    &NewSession {
                        identity: who.to_string(),
                        groups: Vec::new(),
                        role: Role::Viewer,
                        method: "oidc".into(),
                    },
                    Default::default(),
                    at,
                )
                .await
                .expect("session");
            id.expose_secret().to_string()
        })
    }

    fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let state = self.state.clone();
        self.server
            .block_on(async move { state.store.close().await });
        self.server.shutdown_timeout(Duration::from_secs(5));
    }
}

/// One table row: medians over the rounds.
struct Row {
    backend: &'static str,
    case: Case,
    rps: f64,
    p50: f64,
    p99: f64,
    p99_min: f64,
    p99_max: f64,
    p999: f64,
    cpu_us: Option<f64>,
    /// Median p99 of the case less median p99 of the baseline: the verdict.
    added: Option<f64>,
    /// Median over rounds of (case p99 - baseline p99 of the same round).
    paired: Option<f64>,
}

/// Unloaded, one connection: the first request with a fresh credential
/// (a store lookup) and the same request again (from the cache), in ms.
/// 64 connections send one request each at once, all with the same
/// credential; per trial the median and the slowest answer, in ms.
struct Herd {
    kind: &'static str,
    p50: Vec<f64>,
    max: Vec<f64>,
}

/// Trials of [`herd`] per kind.
const HERDS: usize = 20;

async fn herd(conns: Vec<Conn>, req: Arc<[u8]>) -> (Vec<Conn>, f64, f64) {
    let barrier = Arc::new(tokio::sync::Barrier::new(conns.len()));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (req, barrier) = (req.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let t = Instant::now();
                let (status, body) = c.call(&req).await;
                let took = t.elapsed();
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                (c, took)
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    let mut took = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (c, d) = t.await.expect("herd task");
        conns.push(c);
        took.push(d);
    }
    took.sort_unstable();
    let max = took.last().copied().unwrap_or_default();
    (conns, ms(percentile(&took, 0.5)), ms(max))
}

struct Lookup {
    kind: &'static str,
    miss: Vec<f64>,
    hit: Vec<f64>,
}

fn run_backend(
    name: &'static str,
    url: &str,
    client: &Runtime,
    rounds: usize,
    measure: Duration,
) -> (Vec<Row>, Vec<Lookup>, Vec<Herd>) {
    let b = Bench::start(url);
    let token = b.token("bench-load");
    let session = b.session("bench-user", jiff::SignedDuration::ZERO);
    let reqs = [
        request(b.addr, "/healthz", None),
        request(
            b.addr,
            "/api/v1/me",
            Some(&format!("Authorization: Bearer {token}")),
        ),
        request(
            b.addr,
            "/api/v1/me",
            Some(&format!("Cookie: flywheel={session}")),
        ),
    ];
    // Each case answers as it should before anything is measured.
    client.block_on(async {
        let mut c = Conn::open(b.addr).await;
        for (case, req) in Case::ALL.iter().zip(&reqs) {
            let (status, body) = c.call(req).await;
            let body = String::from_utf8_lossy(&body);
            let want = match case {
                Case::Baseline => "\"status\":\"ok\"",
                Case::Token => "\"auth_method\":\"token\"",
                Case::Cookie => "\"auth_method\":\"oidc\"",
            };
            assert!(
                status == 200 && body.contains(want),
                "{}: {status} {body}",
                case.label()
            );
        }
    });
    println!("{name}: warming up ({CONNECTIONS} connections per case)...");
    let mut pools: Vec<Vec<Conn>> = Vec::new();
    for req in &reqs {
        let conns = client.block_on(async {
            let mut conns = Vec::with_capacity(CONNECTIONS);
            for _ in 0..CONNECTIONS {
                conns.push(Conn::open(b.addr).await);
            }
            conns
        });
        let (conns, _) = client.block_on(load(conns, req.clone(), BACKEND_WARMUP, Duration::ZERO));
        pools.push(conns);
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); Case::ALL.len()];
    for round in 0..rounds {
        for (i, req) in reqs.iter().enumerate() {
            let conns = std::mem::take(&mut pools[i]);
            let (conns, r) = client.block_on(load(conns, req.clone(), RUN_WARMUP, measure));
            pools[i] = conns;
            runs[i].push(r);
        }
        let line: Vec<String> = Case::ALL
            .iter()
            .zip(&runs)
            .map(|(c, r)| {
                let last = r.last().expect("a run");
                format!(
                    "{} p99 {:.3} ms",
                    c.label().split(',').next_back().unwrap_or_default().trim(),
                    ms(last.p99)
                )
            })
            .collect();
        println!("{name}: round {}/{rounds}: {}", round + 1, line.join(", "));
    }
    drop(pools);
    let others: Vec<f64> = runs.iter().flatten().filter_map(|r| r.others).collect();
    if !others.is_empty() {
        let busy = median_of(others.clone());
        println!(
            "{name}: other processes used {:.0}% of the machine's CPU during the measured slices (median; max {:.0}%){}",
            100.0 * busy,
            100.0 * others.iter().copied().fold(0.0, f64::max),
            if busy > NOISY {
                ": NOISY, the p99s below move by a millisecond or more from run to run; CPU us is the steadier measure"
            } else {
                ""
            }
        );
    }
    let base_p99 = median_of(runs[0].iter().map(|r| ms(r.p99)).collect());
    let rows = Case::ALL
        .iter()
        .zip(&runs)
        .map(|(&case, r)| {
            let p99s: Vec<f64> = r.iter().map(|x| ms(x.p99)).collect();
            let p99 = median_of(p99s.clone());
            let paired = median_of(
                r.iter()
                    .zip(&runs[0])
                    .map(|(x, b)| ms(x.p99) - ms(b.p99))
                    .collect(),
            );
            Row {
                backend: name,
                case,
                rps: median_of(r.iter().map(|x| x.rps).collect()),
                p50: median_of(r.iter().map(|x| ms(x.p50)).collect()),
                p99,
                p99_min: p99s.iter().copied().fold(f64::INFINITY, f64::min),
                p99_max: p99s.iter().copied().fold(0.0, f64::max),
                p999: median_of(r.iter().map(|x| ms(x.p999)).collect()),
                cpu_us: r
                    .iter()
                    .map(|x| x.cpu_us)
                    .collect::<Option<Vec<f64>>>()
                    .map(median_of),
                added: (case != Case::Baseline).then_some(p99 - base_p99),
                paired: (case != Case::Baseline).then_some(paired),
            }
        })
        .collect();

    // Uncached against cached, one connection, nothing else running.
    let tokens: Vec<String> = (0..FRESH).map(|i| b.token(&format!("fresh-{i}"))).collect();
    let sessions: Vec<String> = (0..FRESH)
        .map(|i| b.session(&format!("fresh-{i}"), jiff::SignedDuration::ZERO))
        .collect();
    let lookups = client.block_on(async {
        let mut c = Conn::open(b.addr).await;
        let mut out = Vec::new();
        for (kind, headers) in [
            (
                "token",
                tokens
                    .iter()
                    .map(|t| format!("Authorization: Bearer {t}"))
                    .collect::<Vec<_>>(),
            ),
            (
                "session cookie",
                sessions
                    .iter()
                    .map(|s| format!("Cookie: flywheel={s}"))
                    .collect(),
            ),
        ] {
            let (mut miss, mut hit) = (Vec::new(), Vec::new());
            for h in &headers {
                let req = request(b.addr, "/api/v1/me", Some(h));
                for into in [&mut miss, &mut hit] {
                    let t = Instant::now();
                    let (status, body) = c.call(&req).await;
                    into.push(ms(t.elapsed()));
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                }
            }
            out.push(Lookup { kind, miss, hit });
        }
        out
    });

    // Misses under load: what happens when a cached entry expires (every
    // 2 s) or a session is due its once-a-minute `last_seen_at` write.
    let minute = jiff::SignedDuration::from_secs(61);
    let herd_tokens: Vec<String> = (0..HERDS).map(|i| b.token(&format!("herd-{i}"))).collect();
    let herd_sessions: Vec<String> = (0..HERDS)
        .map(|i| b.session(&format!("herd-{i}"), jiff::SignedDuration::ZERO))
        .collect();
    let herd_stale: Vec<String> = (0..HERDS)
        .map(|i| b.session(&format!("herd-stale-{i}"), minute))
        .collect();
    let herds = client.block_on(async {
        let mut conns = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            conns.push(Conn::open(b.addr).await);
        }
        let kinds = [
            "token, uncached (up to 64 SELECTs)",
            "token, cached",
            "session, uncached (up to 64 SELECTs)",
            "session, cached",
            "session due its touch (+ UPDATEs)",
        ];
        let mut out: Vec<Herd> = kinds
            .iter()
            .map(|&kind| Herd {
                kind,
                p50: Vec::new(),
                max: Vec::new(),
            })
            .collect();
        for i in 0..HERDS {
            let token = request(
                b.addr,
                "/api/v1/me",
                Some(&format!("Authorization: Bearer {}", herd_tokens[i])),
            );
            let session = request(
                b.addr,
                "/api/v1/me",
                Some(&format!("Cookie: flywheel={}", herd_sessions[i])),
            );
            let stale = request(
                b.addr,
                "/api/v1/me",
                Some(&format!("Cookie: flywheel={}", herd_stale[i])),
            );
            for (k, req) in [token.clone(), token, session.clone(), session, stale]
                .into_iter()
                .enumerate()
            {
                let (back, p50, max) = herd(conns, req).await;
                conns = back;
                out[k].p50.push(p50);
                out[k].max.push(max);
            }
        }
        out
    });
    b.stop();
    (rows, lookups, herds)
}

/// What building and serializing each route's JSON answer costs, in ns: the
/// part of the difference between the routes that is not the access check.
fn json_cost() -> [(Case, f64); 3] {
    const N: u32 = 200_000;
    let time = |f: &dyn Fn() -> Vec<u8>| {
        let t = Instant::now();
        for _ in 0..N {
            std::hint::black_box(f());
        }
        t.elapsed().as_nanos() as f64 / f64::from(N)
    };
    let csrf = "x".repeat(43);
    [
        (
            Case::Baseline,
            time(&|| serde_json::to_vec(&serde_json::json!({"status": "ok"})).expect("json")),
        ),
        (
            Case::Token,
            time(&|| {
                let mut v = serde_json::json!({"identity": "token:bench-load", "role": "viewer", "auth_method": "token"});
                v["token_name"] = serde_json::json!("bench-load");
                v["expires_at"] = serde_json::Value::Null;
                serde_json::to_vec(&v).expect("json")
            }),
        ),
        (
            Case::Cookie,
            time(&|| {
                let mut v = serde_json::json!({"identity": "bench-user", "role": "viewer", "auth_method": "oidc"});
                v["csrf_token"] = serde_json::json!(csrf);
                serde_json::to_vec(&v).expect("json")
            }),
        ),
    ]
}

/// Whether a PostgreSQL server can be started here, and if not why.
fn postgres_available() -> Result<(), String> {
    let dirs: Vec<PathBuf> = match std::env::var_os("FLYWHEEL_PG_BIN") {
        Some(d) => vec![PathBuf::from(d)],
        None => [
            "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/16/bin",
            "/usr/lib/postgresql/17/bin",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    };
    if dirs.iter().any(|d| d.join("initdb").exists()) {
        Ok(())
    } else {
        Err(format!(
            "no initdb in {} (install postgresql-15 or set FLYWHEEL_PG_BIN)",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let report_only = std::env::var("FLYWHEEL_BENCH_REPORT_ONLY").is_ok_and(|v| v == "1");
    let rounds = env_number("FLYWHEEL_BENCH_ROUNDS", 15) as usize;
    let measure = Duration::from_millis(env_number("FLYWHEEL_BENCH_MS", 1000));
    let began = Instant::now();
    let client = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("load")
        .build()
        .expect("load runtime");
    println!(
        "auth bench: {CONNECTIONS} keep-alive connections per case, closed loop, {rounds} rounds x 3 cases x {} ms measured (+{} ms unrecorded each), {} CPUs",
        measure.as_millis(),
        RUN_WARMUP.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut rows = Vec::new();
    let mut lookups = Vec::new();
    let mut herds = Vec::new();
    let mut skipped = None;

    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (r, l, h) = run_backend("sqlite", &url, &client, rounds, measure);
    rows.extend(r);
    lookups.push(("sqlite", l));
    herds.push(("sqlite", h));

    match postgres_available() {
        Ok(()) => {
            let started = std::panic::catch_unwind(pg::PgServer::start);
            match started {
                Ok(server) => {
                    let url = server.database("bench");
                    let (r, l, h) = run_backend("postgres", &url, &client, rounds, measure);
                    rows.extend(r);
                    lookups.push(("postgres", l));
                    herds.push(("postgres", h));
                    drop(server);
                }
                Err(_) => skipped = Some("the PostgreSQL server did not start (see above)".into()),
            }
        }
        Err(why) => skipped = Some(why),
    }

    println!();
    println!(
        "medians over rounds; added p99 = median p99 of the case - median p99 of the baseline (same backend), budget {BUDGET_MS:.1} ms;"
    );
    println!(
        "paired = median over rounds of (case p99 - that round's baseline p99), for information;"
    );
    println!(
        "CPU us = CPU time of the server runtime's threads per request (noise-robust: what the access check adds)"
    );
    println!(
        "{:<9} {:<31} {:>7} {:>7} {:>7} {:>13} {:>8} {:>9} {:>7} {:>7}  verdict",
        "backend",
        "case",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99 range",
        "p99.9 ms",
        "added p99",
        "paired",
        "CPU us"
    );
    let mut failed = false;
    for r in &rows {
        let (added, verdict) = match r.added {
            None => ("-".to_string(), "baseline".to_string()),
            Some(a) if a <= BUDGET_MS => (format!("{a:+.3}"), "PASS".to_string()),
            Some(a) => {
                failed = true;
                (format!("{a:+.3}"), "FAIL".to_string())
            }
        };
        println!(
            "{:<9} {:<31} {:>7.0} {:>7.3} {:>7.3} {:>13} {:>8.3} {:>9} {:>7} {:>7}  {verdict}",
            r.backend,
            r.case.label(),
            r.rps,
            r.p50,
            r.p99,
            format!("{:.2}-{:.2}", r.p99_min, r.p99_max),
            r.p999,
            added,
            r.paired.map_or("-".to_string(), |p| format!("{p:+.3}")),
            r.cpu_us.map_or("-".to_string(), |c| format!("{c:.1}"))
        );
    }

    println!(
        "closed loop: {CONNECTIONS} connections always waiting, so latency ~ {CONNECTIONS} x CPU per request / cores; the added p99 is"
    );
    println!(
        "mostly the added CPU per request (authentication, a bigger JSON answer) times the queue, plus the cache's"
    );
    println!(
        "misses: entries live 2 s from when they were read, so every 2 s the next requests all ask the store at once (below)"
    );

    println!();
    println!(
        "one lookup, unloaded, one connection, {FRESH} fresh credentials: first request (store) vs the same again (2 s cache)"
    );
    for (backend, ls) in &lookups {
        for l in ls {
            let pct = |v: &[f64], q: f64| {
                let mut s = v.to_vec();
                s.sort_by(f64::total_cmp);
                s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1]
            };
            println!(
                "  {backend:<9} {:<15} uncached p50 {:.3} ms p99 {:.3} ms | cached p50 {:.3} ms p99 {:.3} ms | a store lookup adds {:.3} ms at p50",
                l.kind,
                pct(&l.miss, 0.5),
                pct(&l.miss, 0.99),
                pct(&l.hit, 0.5),
                pct(&l.hit, 0.99),
                pct(&l.miss, 0.5) - pct(&l.hit, 0.5)
            );
        }
    }

    println!();
    println!(
        "a miss under load: {CONNECTIONS} connections each send one request at once, all with the same credential; median of {HERDS} trials"
    );
    for (backend, hs) in &herds {
        for h in hs {
            println!(
                "  {backend:<9} {:<38} p50 {:>7.3} ms  slowest {:>7.3} ms",
                h.kind,
                median_of(h.p50.clone()),
                median_of(h.max.clone())
            );
        }
    }

    println!();
    println!(
        "the routes' JSON answers differ too: building and serializing each costs (not subtracted above):"
    );
    for (case, ns) in json_cost() {
        println!("  {:<31} {:>7.0} ns", case.label(), ns);
    }

    if let Some(why) = &skipped {
        println!();
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        println!("!!! PostgreSQL was SKIPPED: {why}");
        println!("!!! Only SQLite was measured.");
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    }
    println!();
    println!("took {:.0} s", began.elapsed().as_secs_f64());
    client.shutdown_timeout(Duration::from_secs(5));
    if failed {
        if report_only {
            println!("over budget (FLYWHEEL_BENCH_REPORT_ONLY=1: exit 0 anyway)");
        } else {
            println!("over budget: FAIL (set FLYWHEEL_BENCH_REPORT_ONLY=1 to only report)");
            std::process::exit(1);
        }
    }
}

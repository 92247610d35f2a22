//! The live fleet under load: the real `flywheel serve` binary (a child
//! process, so its memory is its own) watching the shared test apiserver
//! (in this process) that holds 2,000 AutoscalingRunnerSets as the
//! gha-runner-scale-set chart writes them, 2,000 listeners and 20,000
//! EphemeralRunners.
//!
//! Cases, each with 64 keep-alive connections in a closed loop, run
//! interleaved in short slices (baseline, fleet, page, baseline, ...) so
//! the noise of this shared 2-core machine hits them alike; the table
//! gives medians over the rounds of each slice's requests/s, p50, p99,
//! p99.9:
//! - baseline: a minimal axum server in this process sending one cached
//!   body of the same size as the fleet's (the ceiling to approach);
//! - fleet: `GET /api/v1/fleet` with an API token (uncompressed);
//! - page: `GET /` (the fleet overview, first page) with a session cookie.
//!
//! Then: Kubernetes requests during the load (counted by the test
//! apiserver; the budget is zero), the latency from a change on the
//! apiserver to its event on `/api/v1/events` (p50/p99 over
//! `FLYWHEEL_BENCH_EVENTS` changes, default 100), and the server's peak
//! RSS (VmHWM).
//!
//! Budgets (the issue's): fleet ≥ 2,000 requests/s and p99 ≤ 50 ms; page
//! p99 ≤ 50 ms; zero Kubernetes requests; events p99 ≤ 100 ms; peak RSS ≤
//! 150 MB. A row over budget prints FAIL and the bench exits non-zero,
//! unless `FLYWHEEL_BENCH_REPORT_ONLY=1`.
//!
//! Knobs: `FLYWHEEL_BENCH_ROUNDS` (default 5), `FLYWHEEL_BENCH_MS`
//! (measured milliseconds per case per round, default 2000),
//! `FLYWHEEL_BENCH_SETS` (default 2000; ten runners each). Run with
//! `cargo bench -p flywheel --bench fleet`.

#[path = "../../flywheel-server/benches/support/load.rs"]
mod load;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_store::{NewSession, Role, Store};
use flywheel_testapi::TestApiServer;
use load::{CONNECTIONS, Conn, Run, load, median_of, ms, percentile, request};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const V: &str = "actions.github.com/v1alpha1";
const LABELS: [&str; 6] = [
    "tinyland-nix",
    "tinyland-docker",
    "tinyland-dind",
    "tinyland-nix-heavy",
    "tinyland-nix-kvm",
    "tinyland-nix-gpu",
];
const RUNNERS_PER_SET: usize = 10;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn owner(i: usize) -> String {
    format!("org-{:03}", i % 150)
}

/// An AutoscalingRunnerSet as the gha-runner-scale-set chart writes it.
fn set(i: usize, max: i64) -> Value {
    let name = format!("{}-{i:04}", LABELS[i % LABELS.len()]);
    json!({"apiVersion": V, "kind": "AutoscalingRunnerSet",
        "metadata": {"name": name, "namespace": "arc-runners",
            "labels": {
                "app.kubernetes.io/component": "autoscaling-runner-set",
                "app.kubernetes.io/instance": name,
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/part-of": "gha-rs",
                "app.kubernetes.io/version": "0.13.0",
                "helm.sh/chart": "gha-rs-0.13.0",
                "actions.github.com/scale-set-name": name,
                "actions.github.com/scale-set-namespace": "arc-runners"},
            "annotations": {
                "actions.github.com/cleanup-manager-role-binding": format!("{name}-gha-rs-manager"),
                "actions.github.com/cleanup-manager-role-name": format!("{name}-gha-rs-manager"),
                "actions.github.com/runner-group-name": "Default",
                "actions.github.com/runner-scale-set-name": name,
                "actions.github.com/values-hash": "6f1c2b7d0e4a9c3f5b8d7e6a1c2b3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0",
                "meta.helm.sh/release-name": name,
                "meta.helm.sh/release-namespace": "arc-runners",
                "runner-scale-set-id": (i + 1).to_string()}},
        "spec": {
            "githubConfigUrl": format!("https://github.com/{}", owner(i)),
            "githubConfigSecret": "github-app-secret",
            "runnerScaleSetName": name,
            "runnerScaleSetLabels": [LABELS[i % LABELS.len()]],
            "minRunners": 0,
            "maxRunners": max,
            "template": {"spec": {
                "containers": [{"name": "runner", "image": "ghcr.io/actions/actions-runner:2.330.0",
                    "command": ["/home/runner/run.sh"],
                    "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}],
                "restartPolicy": "Never",
                "serviceAccountName": format!("{name}-gha-rs-no-permission")}}},
        "status": {"currentRunners": RUNNERS_PER_SET, "pendingEphemeralRunners": 2,
            "runningEphemeralRunners": RUNNERS_PER_SET - 2, "phase": "Running"}})
}

fn runner(i: usize, j: usize) -> Value {
    let set = format!("{}-{i:04}", LABELS[i % LABELS.len()]);
    let name = format!("{set}-runner-{j:02}");
    let running = j >= 2;
    json!({"apiVersion": V, "kind": "EphemeralRunner",
        "metadata": {"name": name, "namespace": "arc-runners",
            "creationTimestamp": "2026-12-01T05:00:00Z",
            "finalizers": ["ephemeralrunner.actions.github.com/finalizer"],
            "labels": {"actions.github.com/scale-set-name": set,
                "actions.github.com/scale-set-namespace": "arc-runners",
                "app.kubernetes.io/component": "runner",
                "app.kubernetes.io/part-of": "gha-runner-scale-set"},
            "annotations": {"actions.github.com/patch-id": "3", "actions.github.com/runner-group-name": "Default"}},
        "spec": {"githubConfigUrl": format!("https://github.com/{}", owner(i)),
            "githubConfigSecret": "github-app-secret", "runnerScaleSetId": i + 1,
            "spec": {"containers": [{"name": "runner", "image": "ghcr.io/actions/actions-runner:2.330.0",
                "command": ["/home/runner/run.sh"], "env": [{"name": "ACTIONS_RUNNER_INPUT_JITCONFIG",
                "valueFrom": {"secretKeyRef": {"name": name, "key": "jitToken"}}}]}],
                "restartPolicy": "Never"}},
        "status": {"phase": if running { "Running" } else { "Pending" }, "ready": running,
            "runnerId": i * 100 + j, "runnerName": name,
            "jobRepositoryName": if running { Value::from(format!("{}/app-{}", owner(i), j)) } else { Value::Null },
            "jobWorkflowRef": if running { Value::from(format!("{}/app-{j}/.github/workflows/ci.yml@refs/heads/main", owner(i))) } else { Value::Null },
            "jobDisplayName": if running { Value::from("build (x86_64-linux)") } else { Value::Null },
            "jobId": if running { Value::from(format!("{}", 9_000_000 + i * 100 + j)) } else { Value::Null }}})
}

fn listener(i: usize) -> Value {
    let set = format!("{}-{i:04}", LABELS[i % LABELS.len()]);
    json!({"apiVersion": V, "kind": "AutoscalingListener",
        "metadata": {"name": format!("{set}-754b578d-listener"), "namespace": "arc-systems",
            "labels": {"actions.github.com/scale-set-name": set,
                "actions.github.com/scale-set-namespace": "arc-runners"}},
        "spec": {"autoscalingRunnerSetName": set, "maxRunners": 10, "minRunners": 0}})
}

/// `GET path` on a fresh connection (blocking): status and body.
fn get(addr: SocketAddr, path: &str, header: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n{header}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Peak resident set of `pid` in MB (VmHWM).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn non_watch(api: &TestApiServer) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.query_param("watch").as_deref() != Some("true"))
        .count()
}

/// The minimal server: one cached body of `len` bytes.
async fn baseline(body: bytes::Bytes) -> SocketAddr {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let b = body.clone();
            async move { ([("content-type", "application/json")], b) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

struct Row {
    name: &'static str,
    runs: Vec<Run>,
}

impl Row {
    fn median(&self, f: impl Fn(&Run) -> f64) -> f64 {
        median_of(self.runs.iter().map(f).collect())
    }
}

/// Opens `/api/v1/events` (HTTP/1.0, so the body is the raw stream).
fn events(addr: SocketAddr, auth: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let req = format!("GET /api/v1/events HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // The head, then the hello event.
    loop {
        line.clear();
        r.read_line(&mut line).expect("read");
        if line.starts_with("event: hello") || line.starts_with("event:hello") {
            break;
        }
    }
    r
}

/// Reads events until a `scale-set-changed` naming `name`.
fn until_changed(r: &mut BufReader<TcpStream>, name: &str) -> bool {
    let mut line = String::new();
    let mut changed = false;
    let needle = format!("\"name\":\"{name}\"");
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line.starts_with("event:") {
            changed = line.contains("scale-set-changed");
        } else if changed && line.starts_with("data:") && line.contains(&needle) {
            return true;
        }
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let report_only = std::env::var("FLYWHEEL_BENCH_REPORT_ONLY").as_deref() == Ok("1");
    let rounds = env_number("FLYWHEEL_BENCH_ROUNDS", 5) as usize;
    let measure = Duration::from_millis(env_number("FLYWHEEL_BENCH_MS", 2000));
    let sets = env_number("FLYWHEEL_BENCH_SETS", 2000) as usize;
    let n_events = env_number("FLYWHEEL_BENCH_EVENTS", 100) as usize;

    // The apiserver (its own runtime: idle during the load but for the watches).
    let api_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("apiserver")
        .enable_all()
        .build()
        .expect("runtime");
    let api = api_rt.block_on(TestApiServer::start());
    let t = Instant::now();
    for i in 0..sets {
        api.insert(set(i, 10));
        api.insert(listener(i));
        for j in 0..RUNNERS_PER_SET {
            api.insert(runner(i, j));
        }
    }
    println!(
        "apiserver: {sets} AutoscalingRunnerSets, {sets} listeners, {} EphemeralRunners (loaded in {:.1} s)",
        sets * RUNNERS_PER_SET,
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = api.write_kubeconfig(dir.path(), "bench");
    let db = format!("sqlite://{}", dir.path().join("fw.db").display());

    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .expect("runtime");
    // A token and a session, straight into the store the server will open.
    let (token, cookie) = load_rt.block_on(async {
        let store = Store::open(&db).await.expect("store");
        let t = store
            .create_token("bench", Role::Viewer, None, "bench")
            .await
            .expect("token");
        let (id, _) = store
            .create_session(
                &NewSession {
                    identity: "bench".into(),
                    groups: Vec::new(),
                    role: Role::Viewer,
                    method: "oidc".into(),
                },
                Default::default(),
                flywheel_store::now(),
            )
            .await
            .expect("session");
        (
            t.secret.expose_secret().to_string(),
            id.expose_secret().to_string(),
        )
    });
    let addr = free_port();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--context", "bench", "--listen"])
        .arg(addr.to_string())
        .args(["--database-url", &db])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("flywheel serve");
    let pid = child.id();
    let _server = Server(child);
    let auth = format!("Authorization: Bearer {token}");
    let t = Instant::now();
    loop {
        let (status, _) = get(addr, "/readyz", "");
        if status == 200 {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
            panic!("the server was not ready within 120 s (last status {status}):\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get(addr, "/api/v1/fleet", &auth);
    assert_eq!(status, 200, "{body}");
    let fleet: Value = serde_json::from_str(&body).expect("fleet JSON");
    let shown = fleet["scale_sets"].as_array().map_or(0, Vec::len);
    assert_eq!(shown, sets, "the fleet shows every set");
    println!(
        "server: ready (watches synced) {:.1} s after start; fleet body {} kB for {shown} sets",
        t.elapsed().as_secs_f64(),
        body.len() / 1024
    );

    let base_addr = load_rt.block_on(baseline(bytes::Bytes::from(body.clone())));
    let cases: [(&'static str, SocketAddr, Arc<[u8]>); 3] = [
        (
            "baseline (one cached body)",
            base_addr,
            request(base_addr, "/", None),
        ),
        (
            "GET /api/v1/fleet (token)",
            addr,
            request(addr, "/api/v1/fleet", Some(&auth)),
        ),
        (
            "GET / fleet page (cookie)",
            addr,
            request(addr, "/", Some(&format!("Cookie: flywheel={cookie}"))),
        ),
    ];
    let k8s_before = non_watch(&api);
    let mut rows: Vec<Row> = cases
        .iter()
        .map(|(name, _, _)| Row {
            name,
            runs: Vec::new(),
        })
        .collect();
    load_rt.block_on(async {
        let mut conns = Vec::new();
        for (_, a, _) in &cases {
            let mut cs = Vec::with_capacity(CONNECTIONS);
            for _ in 0..CONNECTIONS {
                cs.push(Conn::open(*a).await);
            }
            conns.push(cs);
        }
        for round in 0..rounds {
            for (k, (_, _, req)) in cases.iter().enumerate() {
                let cs = std::mem::take(&mut conns[k]);
                let warm = if round == 0 {
                    Duration::from_millis(500)
                } else {
                    Duration::from_millis(100)
                };
                let (back, run) = load(cs, req.clone(), warm, measure).await;
                conns[k] = back;
                rows[k].runs.push(run);
            }
        }
    });
    let k8s_during = non_watch(&api) - k8s_before;

    // A change on the apiserver to its event on the stream.
    let mut stream = events(addr, &auth);
    let mut lat = Vec::with_capacity(n_events);
    for k in 0..n_events {
        let i = (k * 37) % sets;
        let name = format!("{}-{i:04}", LABELS[i % LABELS.len()]);
        let t = Instant::now();
        api.insert(set(i, 20 + k as i64));
        if !until_changed(&mut stream, &name) {
            panic!("the event stream ended before {name} changed");
        }
        lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(30));
    }
    lat.sort_unstable();
    let rss = peak_rss_mb(pid);

    println!(
        "\n{rounds} rounds x {} ms per case, {CONNECTIONS} connections each; medians over rounds:",
        measure.as_millis()
    );
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "case", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "vs base"
    );
    let base_rps = rows[0].median(|r| r.rps);
    for r in &rows {
        let rps = r.median(|x| x.rps);
        println!(
            "{:<30} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.0}%",
            r.name,
            rps,
            r.median(|x| ms(x.p50)),
            r.median(|x| ms(x.p99)),
            r.median(|x| ms(x.p999)),
            100.0 * rps / base_rps
        );
    }
    let others = median_of(
        rows.iter()
            .flat_map(|r| r.runs.iter().filter_map(|x| x.others))
            .collect(),
    );
    println!(
        "other processes used {:.0}% of the machine meanwhile (median)",
        others * 100.0
    );

    let fleet_rps = rows[1].median(|r| r.rps);
    let fleet_p99 = rows[1].median(|r| ms(r.p99));
    let page_p99 = rows[2].median(|r| ms(r.p99));
    let ev50 = ms(percentile(&lat, 0.5));
    let ev99 = ms(percentile(&lat, 0.99));
    let mut failed = false;
    let mut check = |what: String, ok: bool| {
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
        failed |= !ok;
    };
    println!();
    check(
        format!("fleet: {fleet_rps:.0} req/s (budget >= 2000)"),
        fleet_rps >= 2000.0,
    );
    check(
        format!("fleet: p99 {fleet_p99:.1} ms (budget <= 50)"),
        fleet_p99 <= 50.0,
    );
    check(
        format!("page: p99 {page_p99:.1} ms (budget <= 50)"),
        page_p99 <= 50.0,
    );
    check(
        format!("Kubernetes requests during the load: {k8s_during} (budget 0)"),
        k8s_during == 0,
    );
    check(
        format!(
            "change -> event: p50 {ev50:.1} ms, p99 {ev99:.1} ms over {n_events} (budget p99 <= 100)"
        ),
        ev99 <= 100.0,
    );
    match rss {
        Some(mb) => check(
            format!("server peak RSS {mb:.0} MB (budget <= 150)"),
            mb <= 150.0,
        ),
        None => println!("unknown server peak RSS (no /proc)"),
    }
    if failed && !report_only {
        std::process::exit(1);
    }
}

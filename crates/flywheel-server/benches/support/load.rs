//! The load generator the benchmarks share: keep-alive HTTP/1.1
//! connections in a closed loop (each sends its next request as soon as
//! the previous answer is in), latency percentiles, and CPU counters from
//! /proc to judge how noisy the machine was.
#![allow(dead_code)] // each bench uses a part

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Concurrent keep-alive connections.
pub const CONNECTIONS: usize = 64;

/// A request as bytes on the wire.
pub fn request(addr: SocketAddr, path: &str, header: Option<&str>) -> Arc<[u8]> {
    let extra = header.map(|h| format!("{h}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n")
        .into_bytes()
        .into()
}

/// One keep-alive connection with a minimal HTTP/1.1 response reader
/// (status line, `Content-Length`; axum sends a length for these JSON
/// answers).
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Conn {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends `req` and reads the whole answer: its status and body.
    pub async fn call(&mut self, req: &[u8]) -> (u16, Vec<u8>) {
        self.stream.write_all(req).await.expect("write request");
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("UTF-8 response head");
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("a Content-Length (the reader handles no chunked bodies)");
        while self.buf.len() < head_end + length {
            self.fill().await;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        (status, body)
    }

    async fn fill(&mut self) {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await.expect("read response");
        assert!(n > 0, "the server closed a keep-alive connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// What one run of one case measured.
#[derive(Clone, Copy)]
pub struct Run {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// CPU time of the server runtime's threads per request, in µs (Linux).
    pub cpu_us: Option<f64>,
    /// The share of the machine's CPU that other processes used meanwhile.
    pub others: Option<f64>,
}

/// Busy and total CPU ticks of the whole machine, from /proc/stat.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let n: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = n.first()? + n.get(1)? + n.get(2)? + n.get(5)? + n.get(6)? + n.get(7)?;
    Some((busy, busy + n.get(3)? + n.get(4)?))
}

/// CPU ticks this process has used (all threads), from /proc/self/stat.
pub fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime: fields 14 and 15, counted from the pid.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// What the CPU counters read at one moment.
#[derive(Clone, Copy)]
pub struct Counters {
    server: Option<Duration>,
    machine: Option<(u64, u64)>,
    own: Option<u64>,
}

impl Counters {
    pub fn now() -> Counters {
        Counters {
            server: server_cpu(),
            machine: machine_ticks(),
            own: own_ticks(),
        }
    }

    /// Server CPU used since `before`, and the share of the machine other
    /// processes used.
    pub fn since(self, before: Counters) -> (Option<Duration>, Option<f64>) {
        let server = self
            .server
            .zip(before.server)
            .map(|(a, b)| a.saturating_sub(b));
        let others = (|| {
            let (busy, total) = self.machine?;
            let (busy0, total0) = before.machine?;
            let own = self.own?.saturating_sub(before.own?);
            let total = total.saturating_sub(total0);
            (total > 0)
                .then(|| busy.saturating_sub(busy0).saturating_sub(own) as f64 / total as f64)
        })();
        (server, others)
    }
}

/// CPU time so far of this process's threads named `server` (the server
/// runtime's), from /proc/self/task/*/schedstat; `None` off Linux.
pub fn server_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "server" {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(Duration::from_nanos(total))
}

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// 64 connections each sending `req` back to back: unrecorded for
/// `warmup`, then recorded for `measure`. The connections are handed back
/// (kept alive for the case's next round).
pub async fn load(
    conns: Vec<Conn>,
    req: Arc<[u8]>,
    warmup: Duration,
    measure: Duration,
) -> (Vec<Conn>, Run) {
    let start = Instant::now() + Duration::from_millis(20);
    let record_from = start + warmup;
    let end = record_from + measure;
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(record_from.into()).await;
        let before = Counters::now();
        tokio::time::sleep_until(end.into()).await;
        Counters::now().since(before)
    });
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for mut conn in conns {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut took = Vec::with_capacity(1 << 14);
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let (status, body) = conn.call(&req).await;
                let d = t.elapsed();
                assert_eq!(
                    status,
                    200,
                    "unexpected answer: {}",
                    String::from_utf8_lossy(&body)
                );
                if t >= record_from {
                    took.push(d);
                }
            }
            (conn, took)
        }));
    }
    let mut all = Vec::new();
    let mut back = Vec::with_capacity(CONNECTIONS);
    for t in tasks {
        let (conn, took) = t.await.expect("load task");
        back.push(conn);
        all.extend(took);
    }
    all.sort_unstable();
    let (cpu, others) = cpu.await.expect("CPU task");
    let run = Run {
        others,
        cpu_us: cpu
            .filter(|_| !all.is_empty())
            .map(|c| c.as_secs_f64() * 1e6 / all.len() as f64),
        rps: all.len() as f64 / measure.as_secs_f64(),
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        p999: percentile(&all, 0.999),
    };
    (back, run)
}

pub fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

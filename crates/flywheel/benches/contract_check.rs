//! `contract check` against ripgrep on the same tree, in the same run.
//!
//! Generates 10,000 mixed files (~100 MB) with a known number of planted
//! out-of-contract values, checks that flywheel finds every one (and that
//! ripgrep does too), then times both end to end as processes and prints
//! medians and the ratio. Goal: flywheel <= 1.5x ripgrep.
//!
//!     cargo bench -p flywheel --bench contract_check
//!
//! Env: FLYWHEEL_BENCH_FILES (10000), FLYWHEEL_BENCH_MB (100),
//! FLYWHEEL_BENCH_RUNS (9). Needs `rg` on PATH (Debian: ripgrep).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "runner",
    "cache",
    "attic",
    "nix",
    "flake",
    "build",
    "state",
    "stack",
    "tofu",
    "apply",
    "plan",
    "label",
    "shared",
    "cluster",
    "honey",
    "operator",
    "overlay",
    "registration",
    "secret",
    "pin",
    "commit",
    "module",
    "bazel",
    "remote",
    "endpoint",
    "https://nix-cache.tinyland.dev",
    "http://attic.nix-cache.svc.cluster.local",
    "tinyland-nix",
    "arc-runners",
    "=",
    "{",
    "}",
    "#",
    "-",
    "the",
    "and",
    "of",
    "to",
    "with",
    "when",
    "grpc://bazel-cache.nix-cache.svc.cluster.local:9092",
];

const KINDS: &[&str] = &[
    "md", "yaml", "tfvars", "tf", "nix", "txt", "rs", "json", "sh",
];

/// Writes the tree; returns how many values were planted.
fn generate(root: &Path, files: usize, bytes: usize, needles: &[String]) -> usize {
    let mut rng = Rng(0x5eed_f1e1_d000_0001);
    let per_file = bytes / files;
    let mut planted = 0;
    for i in 0..files {
        let dir = root.join(format!("d{:02}/s{:02}", i % 50, (i / 50) % 20));
        let (path, mut text) = if i % 500 == 0 {
            let wf = root.join(format!("r{i}/.github/workflows"));
            std::fs::create_dir_all(&wf).expect("mkdir");
            (
                wf.join("ci.yml"),
                String::from(
                    "name: ci\njobs:\n  build:\n    runs-on: tinyland-nix\n    steps:\n      - run: |\n",
                ),
            )
        } else {
            std::fs::create_dir_all(&dir).expect("mkdir");
            (
                dir.join(format!("f{i}.{}", KINDS[i % KINDS.len()])),
                String::new(),
            )
        };
        let indent = if text.is_empty() { "" } else { "          " };
        while text.len() < per_file {
            text.push_str(indent);
            let n = 6 + rng.below(10);
            for w in 0..n {
                if w > 0 {
                    text.push(' ');
                }
                // About one planted value per 40 lines.
                if rng.below(400) == 0 {
                    text.push_str(&needles[rng.below(needles.len())]);
                    planted += 1;
                } else {
                    text.push_str(WORDS[rng.below(WORDS.len())]);
                }
            }
            text.push('\n');
        }
        std::fs::write(path, text).expect("write");
    }
    planted
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(cmd: &mut Command) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let out = cmd.stderr(Stdio::inherit()).output().expect("run");
    (start.elapsed(), out.stdout)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not run us long.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let files = env_usize("FLYWHEEL_BENCH_FILES", 10_000);
    let mb = env_usize("FLYWHEEL_BENCH_MB", 100);
    let runs = env_usize("FLYWHEEL_BENCH_RUNS", 9).max(1);
    let root_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root_dir.join("examples/platform.yaml");
    let platform = flywheel_contract::load(&config).expect("example contract");
    let rules = flywheel_check::Rules::from_platform(&platform);
    // Values a person would plant: the out-of-contract literals themselves.
    let needles: Vec<String> = rules.literals().map(str::to_string).collect();

    let tree = tempfile::tempdir().expect("tmp");
    let t0 = Instant::now();
    let planted = generate(tree.path(), files, mb * 1024 * 1024, &needles);
    println!(
        "tree: {files} files, {mb} MB, {planted} planted values, generated in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let tree_arg: PathBuf = tree.path().to_path_buf();

    let flywheel = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flywheel"));
        c.args(["contract", "check", "--config"])
            .arg(&config)
            .args(["--format", "json"])
            .arg(&tree_arg);
        c
    };
    let rg = || {
        let mut c = Command::new("rg");
        c.args([
            "-F",
            "-o",
            "-n",
            "--column",
            "--hidden",
            "--no-require-git",
            "--no-messages",
        ]);
        for n in &needles {
            c.arg("-e").arg(n);
        }
        c.arg(&tree_arg);
        c
    };

    // Correctness first: every planted value found, by both.
    let (_, out) = time(&mut flywheel());
    let report: serde_json::Value = serde_json::from_slice(&out).expect("flywheel json");
    let found = report["violations"]
        .as_array()
        .map(|v| v.iter().filter(|v| v["rule"] == "out-of-contract").count())
        .unwrap_or(0);
    println!(
        "flywheel found {found} of {planted} planted values ({} files scanned)",
        report["files_scanned"]
    );
    assert_eq!(found, planted, "flywheel must find every planted value");

    let have_rg = Command::new("rg")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !have_rg {
        println!(
            "ripgrep (rg) not on PATH: install it (apt-get install ripgrep) for the comparison"
        );
    } else {
        let (_, out) = time(&mut rg());
        let rg_found = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
        println!("ripgrep found {rg_found} of {planted}");
    }

    let mut fw_times = Vec::new();
    let mut rg_times = Vec::new();
    for _ in 0..runs {
        fw_times.push(time(&mut flywheel()).0);
        if have_rg {
            rg_times.push(time(&mut rg()).0);
        }
    }
    let fw = median(fw_times);
    println!(
        "flywheel contract check: median {:.1} ms over {runs} runs",
        fw.as_secs_f64() * 1e3
    );
    if have_rg {
        let r = median(rg_times);
        println!(
            "rg -F (same literals):   median {:.1} ms over {runs} runs",
            r.as_secs_f64() * 1e3
        );
        let ratio = fw.as_secs_f64() / r.as_secs_f64();
        println!(
            "ratio flywheel/ripgrep: {ratio:.2}x (goal <= 1.50x): {}",
            if ratio <= 1.5 { "met" } else { "NOT met" }
        );
    }
    let _ = std::io::stdout().flush();
}

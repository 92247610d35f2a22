//! `flywheel contract render|check`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use flywheel_check::{Rules, ScanOptions, output, scan};
use flywheel_contract::{Platform, render_markdown};

use crate::exit;

#[derive(Args, Clone)]
pub struct ConfigArg {
    /// The platform contract (platform.yaml).
    #[arg(long, short = 'c', env = "FLYWHEEL_CONFIG", value_name = "PATH")]
    config: PathBuf,
}

#[derive(Subcommand)]
pub enum ContractCommand {
    /// Print the live contract document generated from the configuration.
    #[command(
        after_help = "The Markdown is deterministic byte for byte: commit it and diff it.\n\
        JSON is the whole model; keys are documented in docs/platform-yaml.md\n\
        (runner_labels[].label, stacks[].name, stacks[].key, out_of_contract[].value, ...).\n\n\
        Example:\n  flywheel contract render --config examples/platform.yaml > docs/contract.md"
    )]
    Render {
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = RenderFormat::Md)]
        format: RenderFormat,
    },
    /// Scan files and folders for anything that contradicts the contract.
    #[command(
        after_help = "Finds, in every text file (respecting .gitignore, hidden folders included):\n  \
        out-of-contract      a stale value the contract lists, with its replacement\n  \
        repo-specific-label  a workflow runs-on label that is not a shared label\n  \
        gitlab-class-in-github  a GitLab class (gl-*) in a GitHub workflow\n  \
        unresolved           a runs-on expression the workflow itself cannot resolve (warning)\n  \
        gitlab-tag           a .gitlab-ci.yml tag outside the compatibility classes (warning)\n\n\
        A line containing `flywheel: allow` may name a stale value; a file with\n\
        `flywheel: allow-file` in its first 1 KiB may name them all (the generated contract does).\n\n\
        Exit codes: 0 clean (warnings allowed), 1 any error, 2 bad configuration or usage.\n\n\
        Examples:\n  flywheel contract check --config examples/platform.yaml docs .github\n  \
        flywheel contract check -c platform.yaml -o github .   # annotations in GitHub Actions"
    )]
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// Worker threads (default: one per core; at most 4 per core, 64 in all).
        #[arg(long, short = 'j', default_value_t = 0)]
        threads: usize,
        /// Files and folders to scan (default: the current folder).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RenderFormat {
    Md,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Github,
}

fn load(config: &ConfigArg) -> Result<Platform, u8> {
    flywheel_contract::load(&config.config).map_err(|e| {
        eprintln!("flywheel: invalid contract configuration:\n{e}");
        exit::USAGE
    })
}

/// Most worker threads a scan uses: 4 per core, at most 64.
fn max_threads(cores: usize) -> usize {
    cores.saturating_mul(4).clamp(1, 64)
}

/// `requested` threads clamped to [`max_threads`], with a note for stderr
/// when it was lowered.
fn clamp_threads(requested: usize, cores: usize) -> (usize, Option<String>) {
    let max = max_threads(cores);
    if requested > max {
        (
            max,
            Some(format!(
                "flywheel: -j {requested} is more than this machine uses well; using {max} threads (4 per core, at most 64)"
            )),
        )
    } else {
        (requested, None)
    }
}

fn emit(text: &str) -> u8 {
    crate::out::emit(text);
    exit::OK
}

pub fn run(cmd: ContractCommand) -> u8 {
    match cmd {
        ContractCommand::Render { config, format } => {
            let platform = match load(&config) {
                Ok(p) => p,
                Err(code) => return code,
            };
            match format {
                RenderFormat::Md => {
                    let mut doc = render_markdown(&platform);
                    doc.push('\n');
                    emit(&doc)
                }
                RenderFormat::Json => emit(&platform.to_json()),
            }
        }
        ContractCommand::Check {
            config,
            format,
            threads,
            paths,
        } => {
            let platform = match load(&config) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let rules = Rules::from_platform(&platform);
            let paths = if paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                paths
            };
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let (threads, note) = clamp_threads(threads, cores);
            if let Some(note) = note {
                eprintln!("{note}");
            }
            let options = ScanOptions {
                skip: vec![config.config.clone()],
                threads,
            };
            let report = match scan(&rules, &paths, &options) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("flywheel: cannot scan: {e}");
                    return exit::USAGE;
                }
            };
            for s in &report.skipped {
                eprintln!("flywheel: warning: skipped {s}");
            }
            let text = match format {
                CheckFormat::Text => output::text(&report),
                CheckFormat::Json => output::json(&report),
                CheckFormat::Github => output::github(&report),
            };
            let written = emit(&text);
            if written != exit::OK {
                written
            } else if report.errors() > 0 {
                exit::FOUND
            } else {
                exit::OK
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_clamped_to_four_per_core_and_64() {
        assert_eq!(clamp_threads(0, 8), (0, None), "0 = one per core");
        assert_eq!(clamp_threads(8, 2).0, 8);
        assert_eq!(clamp_threads(9, 2).0, 8);
        assert_eq!(clamp_threads(5000, 128).0, 64);
        assert!(
            clamp_threads(5000, 2)
                .1
                .is_some_and(|n| n.contains("-j 5000"))
        );
    }
}

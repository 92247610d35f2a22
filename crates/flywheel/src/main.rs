//! `flywheel`: the command line. Thin: parse arguments, call a library,
//! print, and turn the outcome into an exit code scripts can use.

// Every byte of stdout goes through `out` (closed pipes, full disks).
#![deny(clippy::print_stdout)]

/// `print!` through the one stdout writer ([`out::emit`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::emit(&format!($($arg)*)) };
}

/// `println!` through the one stdout writer ([`out::emit`]).
macro_rules! outln {
    () => { $crate::out::emit("\n") };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::out::emit(&line)
    }};
}

mod arc;
mod audit;
mod contract;
mod forge;
mod out;
mod pins;
mod plan;
mod preflight;
mod serve;
mod store_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes shared by every command.
pub mod exit {
    /// Clean: nothing to report.
    pub const OK: u8 = 0;
    /// The command ran and found problems (violations, blockers).
    pub const FOUND: u8 = 1;
    /// Bad usage, unreadable or invalid input: nothing was checked.
    pub const USAGE: u8 = 2;
}

#[derive(Parser)]
#[command(
    name = "flywheel",
    version,
    about = "Control plane for the self-hosted runner and cache platform",
    long_about = "flywheel turns the platform contract into software operators can trust.\n\n\
        One typed configuration (platform.yaml) is the source of truth: the live contract \
        document is generated from it, and docs, workflows and tfvars are checked against it. \
        Overlays enroll through a read-only preflight; the operator actions (ARC App secret, \
        guarded tofu apply, core pin refresh) validate first and audit every change.",
    after_help = "Exit codes: 0 clean, 1 problems found, 2 bad usage or input, 3 refused by the destroy guard.\n\n\
        Start with:\n  flywheel contract render --config examples/platform.yaml\n  \
        flywheel contract check --config examples/platform.yaml examples/overlays\n  \
        flywheel preflight --offline --overlay examples/overlays/jesssullivan-infra\n  \
        flywheel pins show --overlay examples/overlays/tinyland-infra"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render the platform contract or check files against it.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Judge OpenTofu plans before they are applied.
    #[command(subcommand)]
    Plan(plan::PlanCommand),
    /// Read-only enrollment preflight: what still blocks an overlay.
    Preflight(preflight::PreflightArgs),
    /// Operator actions on ARC: the App secret, guarded tofu plan and apply.
    #[command(subcommand)]
    Arc(arc::ArcCommand),
    /// Show or refresh the two core pins together.
    #[command(subcommand)]
    Pins(pins::PinsCommand),
    /// API tokens for the operator server (/api/v1): create, list, revoke.
    #[command(subcommand)]
    Token(store_cmd::TokenCommand),
    /// The store's hash-chained audit log: verify the chain, export records.
    #[command(subcommand)]
    Audit(store_cmd::AuditCommand),
    /// The operator server: API with tokens, trusted proxy identity, roles, audit.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    // One TLS crypto provider (ring) for every client in the process.
    flywheel_github::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Reports are the product of these; for the guard, arc and pins refresh
    // the outcome is, and stdout failing never changes it.
    let report = matches!(
        cli.command,
        Command::Contract(_)
            | Command::Preflight(_)
            | Command::Pins(pins::PinsCommand::Show { .. })
    );
    let code = match cli.command {
        Command::Contract(cmd) => contract::run(cmd),
        Command::Plan(cmd) => plan::run(cmd),
        Command::Preflight(args) => preflight::run(args),
        Command::Arc(cmd) => arc::run(cmd),
        Command::Pins(cmd) => pins::run(cmd),
        Command::Token(cmd) => store_cmd::run_token(cmd),
        Command::Audit(cmd) => store_cmd::run_audit(cmd),
        Command::Serve(args) => serve::run(args),
    };
    ExitCode::from(out::settle(code, report))
}

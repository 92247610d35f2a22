//! `flywheel plan guard`: the destroy guard around OpenTofu plans.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use flywheel_text::human;
use flywheel_tofu::{Plan, Verdict, counts, guard, parse_plan};

use crate::exit;

/// Exit code when the guard refuses a destructive plan.
pub const REFUSED: u8 = 3;

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Refuse a plan that deletes, replaces or forgets anything.
    #[command(
        after_help = "Input is the JSON of `tofu show -json PLANFILE` (a file, or - for stdin).\n\n\
        Refused: any `delete` in resource_changes[].change.actions (plain deletes and both\n\
        replace orders) and any `forget`. resource_drift and output_changes are reported,\n\
        never refused. Set ALLOW_ARC_DESTROY=1 only for an explicit destructive maintenance\n\
        window: the plan is then allowed with a warning naming what will be destroyed.\n\n\
        Exit codes: 0 allowed, 3 refused (also when stdout is closed or full), 2 unreadable\n\
        input, not a plan, an action list OpenTofu does not write (`[\"destroy\"]`, `[]`), a key\n\
        given twice anywhere, or `errored` that is not a boolean (never \"allowed\").\n\n\
        Example:\n  tofu show -json tfplan | flywheel plan guard -"
    )]
    Guard {
        /// Plan JSON file, or `-` for standard input.
        #[arg(value_name = "PLAN_JSON", default_value = "-")]
        plan: PathBuf,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = GuardFormat::Text)]
        format: GuardFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GuardFormat {
    Text,
    Json,
}

/// The plan JSON, bounded (a regular file, or standard input for `-`, up to
/// the plan JSON size limit): `/dev/zero` or a FIFO is refused, not read.
fn read_input(path: &Path) -> Result<String, String> {
    let kind = flywheel_fs::Kind::PlanJson;
    if path.as_os_str() == "-" {
        flywheel_fs::read_stream(std::io::stdin().lock(), Path::new("standard input"), kind)
    } else {
        flywheel_fs::read(path, kind)
    }
    .map_err(|e| e.to_string())
}

/// The counts line, then (with `detailed`) one line per changing address,
/// drift and outputs.
pub(crate) fn summary(plan: &Plan, detailed: bool) -> String {
    let mut o = String::new();
    let parts: Vec<String> = counts(plan)
        .iter()
        .map(|(k, n)| format!("{n} to {}", k.as_str()))
        .collect();
    let _ = writeln!(o, "plan: {}", parts.join(", "));
    if !detailed {
        return o;
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| c.change != flywheel_tofu::Change::Noop)
    {
        let _ = writeln!(
            o,
            "  {:<8} {}  [{}]",
            c.change.as_str(),
            human(&c.address),
            human(&c.actions.join(", "))
        );
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(o, "drift (already happened; reported, not refused):");
        for c in &plan.drift {
            let _ = writeln!(o, "  {:<8} {}", c.change.as_str(), human(&c.address));
        }
    }
    if !plan.output_changes.is_empty() {
        let _ = writeln!(
            o,
            "outputs changing (not refused): {}",
            human(&plan.output_changes.join(", "))
        );
    }
    o
}

/// A headline with the count, then one line per destroyed address.
fn listing(headline: &str, indent: &str, destroys: &[flywheel_tofu::ResourceChange]) -> String {
    let mut o = format!("{headline} {} resource(s):\n", destroys.len());
    for d in destroys {
        let _ = writeln!(o, "{indent}{} ({})", human(&d.address), d.change.as_str());
    }
    o
}

pub fn run(cmd: PlanCommand) -> u8 {
    let PlanCommand::Guard { plan, format } = cmd;
    let source = if plan.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        plan.display().to_string()
    };
    let parsed =
        read_input(&plan).and_then(|text| parse_plan(&text).map_err(|e| format!("{source}:{e}")));
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("flywheel: plan guard: {e}");
            return exit::USAGE;
        }
    };
    let allow = std::env::var("ALLOW_ARC_DESTROY").is_ok_and(|v| v == "1");
    let verdict = guard(&parsed, allow);
    report(&parsed, &verdict, format, true)
}

/// Prints the plan and the guard's verdict; the exit code for the verdict.
pub(crate) fn report(parsed: &Plan, verdict: &Verdict, format: GuardFormat, detailed: bool) -> u8 {
    match format {
        GuardFormat::Json => {
            let doc = serde_json::json!({ "plan": parsed, "verdict": verdict });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        GuardFormat::Text => {
            out!("{}", summary(parsed, detailed));
            match verdict {
                Verdict::Allowed => {
                    outln!("guard: allowed (nothing is deleted, replaced or forgotten)")
                }
                Verdict::Refused { destroys } => {
                    out!(
                        "{}",
                        listing(
                            "guard: REFUSED: this plan destroys or forgets",
                            "  ",
                            destroys
                        )
                    );
                    outln!(
                        "Record the state rehome or teardown decision first; set ALLOW_ARC_DESTROY=1 only for an explicit destructive maintenance window."
                    );
                }
                Verdict::Overridden { destroys } => {
                    eprint!(
                        "{}",
                        listing(
                            "WARNING: ALLOW_ARC_DESTROY=1: this plan WILL destroy or forget",
                            "WARNING:   ",
                            destroys
                        )
                    );
                    outln!("guard: allowed by ALLOW_ARC_DESTROY=1 (destructive)");
                }
            }
        }
    }
    match verdict {
        Verdict::Refused { .. } => REFUSED,
        _ => exit::OK,
    }
}

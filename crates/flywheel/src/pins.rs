//! `flywheel pins`: the two core pins, shown and refreshed together.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use flywheel_overlay::pins::{AtomicWriter, Change, rewrite, write_both};
use flywheel_overlay::{CorePin, find_core_pin};
use flywheel_text::human;
use flywheel_yaml::Located;

use crate::exit;

#[derive(Subcommand)]
pub enum PinsCommand {
    /// Print both core pins and whether they agree (exit 1 when they do not).
    #[command(
        after_help = "The pins are core.pinned_commit in config/organization.yaml and the commit of\n\
        the git_override whose module_name is core.module_name in MODULE.bazel."
    )]
    Show {
        /// The overlay checkout.
        #[arg(long, value_name = "DIR", default_value = ".")]
        overlay: PathBuf,
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Rewrite both pins to the commit REF names, changing nothing else.
    #[command(
        after_help = "REF is a full SHA (used as is), or a branch, tag or short SHA resolved through\n\
        --core (git) or the GitHub API for core.repository (GITHUB_TOKEN / GH_TOKEN or the\n\
        GITHUB_APP_* variables; GITHUB_API_URL). Only the 40 hex characters of each pin\n\
        change: comments, order and quoting stay byte for byte. Each file is replaced\n\
        atomically; if the second write fails the first is restored. --timeout SECS\n\
        (default 30) bounds resolving REF.\n\n\
        Afterwards `flywheel preflight --offline --expected-core-ref <SHA>` passes core-pin\n\
        and core-ref.\n\n\
        Exit codes: 0 refreshed (or already there), 1 REF could not be resolved or a write\n\
        failed (nothing changed), 2 bad input.\n\n\
        Example:\n  flywheel pins refresh --overlay ../tinyland-infra --core ../GloriousFlywheel --to main"
    )]
    Refresh {
        /// The overlay checkout.
        #[arg(long, value_name = "DIR", default_value = ".")]
        overlay: PathBuf,
        /// The core commit, branch or tag to pin.
        #[arg(long, value_name = "REF")]
        to: String,
        /// A core checkout to resolve REF with git.
        #[arg(long, value_name = "DIR", env = "GF_CORE_PATH")]
        core: Option<PathBuf>,
        /// One deadline in seconds for resolving REF (git or the GitHub API).
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Pins {
    org_path: PathBuf,
    org_text: String,
    pinned: Located<String>,
    module_path: PathBuf,
    module_text: String,
    pin: CorePin,
    core_repo: Option<String>,
}

fn load(overlay: &Path) -> Result<Pins, String> {
    // Parsed from the very text that is later rewritten.
    let org_path = overlay.join("config/organization.yaml");
    let org_text =
        flywheel_fs::read(&org_path, flywheel_fs::Kind::Organization).map_err(|e| e.to_string())?;
    let module_path = overlay.join("MODULE.bazel");
    let module_text = flywheel_fs::read(&module_path, flywheel_fs::Kind::ModuleBazel)
        .map_err(|e| e.to_string())?;
    parse(org_path, org_text, module_path, module_text)
}

/// Both pins as these texts hold them.
fn parse(
    org_path: PathBuf,
    org_text: String,
    module_path: PathBuf,
    module_text: String,
) -> Result<Pins, String> {
    let loaded =
        flywheel_overlay::load_organization(&org_path, &org_text).map_err(|e| e.to_string())?;
    let core = &loaded.organization.core;
    let missing = |key: &str| format!("{}: {key} is not set", org_path.display());
    let pinned = core
        .pinned_commit
        .clone()
        .ok_or_else(|| missing("core.pinned_commit"))?;
    let module = core
        .module_name
        .clone()
        .ok_or_else(|| missing("core.module_name"))?;
    let pin = find_core_pin(&module_path, &module_text, &module.value)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "{}: no git_override(module_name = \"{}\", commit = ...)",
                module_path.display(),
                module.value
            )
        })?;
    let core_repo = core.repository.as_ref().map(|r| r.value.clone());
    Ok(Pins {
        org_path,
        org_text,
        pinned,
        module_path,
        module_text,
        pin,
        core_repo,
    })
}

/// Proof that both texts now pin `sha` (and nothing else moved the pins).
fn prove(p: &Pins, org_text: String, module_text: String, sha: &str) -> Result<(), String> {
    let after = parse(
        p.org_path.clone(),
        org_text,
        p.module_path.clone(),
        module_text,
    )?;
    if after.pinned.value.eq_ignore_ascii_case(sha) && after.pin.commit.eq_ignore_ascii_case(sha) {
        Ok(())
    } else {
        Err(format!(
            "the pins do not agree on {sha}: {}:{} core.pinned_commit = {}, {}:{} commit = {}",
            p.org_path.display(),
            after.pinned.pos.line,
            after.pinned.value,
            p.module_path.display(),
            after.pin.pos.line,
            after.pin.commit
        ))
    }
}

pub fn run(cmd: PinsCommand) -> u8 {
    match cmd {
        PinsCommand::Show { overlay, format } => show(&overlay, format),
        PinsCommand::Refresh {
            overlay,
            to,
            core,
            timeout,
            format,
        } => refresh(&overlay, &to, core.as_deref(), timeout, format),
    }
}

fn show(overlay: &Path, format: Format) -> u8 {
    let p = match load(overlay) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("flywheel pins show: {e}");
            return exit::USAGE;
        }
    };
    let agree = p.pinned.value.eq_ignore_ascii_case(&p.pin.commit);
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::json!({
                "organization": {"file": p.org_path.display().to_string(), "line": p.pinned.pos.line, "commit": p.pinned.value},
                "module_bazel": {"file": p.module_path.display().to_string(), "line": p.pin.pos.line, "commit": p.pin.commit},
                "agree": agree,
            })
        ),
        Format::Text => {
            outln!(
                "{}:{}: core.pinned_commit = {}",
                human(&p.org_path.display().to_string()),
                p.pinned.pos.line,
                human(&p.pinned.value)
            );
            outln!(
                "{}:{}: git_override commit = {}",
                human(&p.module_path.display().to_string()),
                p.pin.pos.line,
                human(&p.pin.commit)
            );
            if agree {
                outln!("pins agree");
            } else {
                outln!(
                    "pins are SPLIT: refresh both together with `flywheel pins refresh --to REF`"
                );
            }
        }
    }
    if agree { exit::OK } else { exit::FOUND }
}

fn refresh(overlay: &Path, to: &str, core: Option<&Path>, timeout: u64, format: Format) -> u8 {
    let p = match load(overlay) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("flywheel pins refresh: {e}");
            return exit::USAGE;
        }
    };
    let rt = match crate::forge::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flywheel pins refresh: {e}");
            return exit::USAGE;
        }
    };
    let needs_api =
        !(to.len() == 40 && to.bytes().all(|b| b.is_ascii_hexdigit())) && core.is_none();
    if needs_api && let Err(e) = crate::forge::check_credential_env() {
        eprintln!("flywheel pins refresh: {e}");
        return exit::USAGE;
    }
    // One deadline for resolving REF, the GitHub connection included.
    let budget = std::time::Duration::from_secs(timeout.clamp(1, 86_400));
    let resolved = rt.block_on(async {
        let work = async {
            let github = if needs_api {
                let policy = flywheel_github::Policy {
                    budget,
                    ..Default::default()
                };
                crate::forge::github_from_env(policy).await
            } else {
                Err("not needed".to_string())
            };
            flywheel_preflight::resolve_ref(
                to,
                core,
                github.as_ref().map_err(Clone::clone),
                p.core_repo.as_deref(),
            )
            .await
        };
        tokio::time::timeout(budget, work)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within the --timeout deadline ({}s)",
                    budget.as_secs()
                ))
            })
    });
    let resolved = match resolved {
        Ok(r) => r,
        Err(e) => {
            let e = flywheel_redact::redact(&e);
            eprintln!("flywheel pins refresh: cannot resolve `{to}`: {e}; nothing changed");
            return exit::FOUND;
        }
    };
    let old = (p.pinned.value.clone(), p.pin.commit.clone());
    let already =
        old.0.eq_ignore_ascii_case(&resolved.sha) && old.1.eq_ignore_ascii_case(&resolved.sha);
    if !already {
        let (org_new, module_new) = match rewrite(
            &p.org_text,
            &p.pinned,
            &p.module_text,
            &p.pin,
            &resolved.sha,
        ) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("flywheel pins refresh: {e}; nothing changed");
                return exit::USAGE;
            }
        };
        // The edit must move exactly the pins, as the parser reads them.
        if let Err(e) = prove(&p, org_new.clone(), module_new.clone(), &resolved.sha) {
            eprintln!(
                "flywheel pins refresh: editing would not refresh both pins ({e}); nothing changed, edit by hand"
            );
            return exit::USAGE;
        }
        let first = Change {
            path: p.org_path.clone(),
            old: p.org_text.clone(),
            new: org_new,
        };
        let second = Change {
            path: p.module_path.clone(),
            old: p.module_text.clone(),
            new: module_new,
        };
        let audit = match crate::audit::Audit::begin(
            "pins.refresh",
            serde_json::json!({"overlay": overlay.display().to_string(), "to": to, "commit": resolved.sha, "via": resolved.via,
                "previous": {"organization": old.0, "module_bazel": old.1}}),
        ) {
            Ok(a) => a,
            Err(e) => {
                eprintln!(
                    "flywheel pins refresh: {e}; nothing changed (no audit record, no mutation)"
                );
                return exit::FOUND;
            }
        };
        let written = write_both(&mut AtomicWriter, &first, &second).and_then(|()| {
            // Re-read both files: proof that the pins now agree on disk.
            let read = |path: &Path| {
                std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: cannot read back ({e})", path.display()))
            };
            prove(&p, read(&p.org_path)?, read(&p.module_path)?, &resolved.sha)
                .map_err(|e| format!("after writing, {e}; check both files"))
        });
        audit.finish(
            serde_json::json!({"written": written.is_ok(), "error": written.as_ref().err()}),
        );
        if let Err(e) = written {
            eprintln!("flywheel pins refresh: {e}");
            return exit::FOUND;
        }
    }
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::json!({"to": to, "commit": resolved.sha, "via": resolved.via, "changed": !already,
                "previous": {"organization": old.0, "module_bazel": old.1}})
        ),
        Format::Text if already => outln!(
            "both pins already at {} (`{to}` via {}); nothing written",
            resolved.sha,
            human(&resolved.via)
        ),
        Format::Text => {
            outln!(
                "{}: core.pinned_commit {} -> {}",
                human(&p.org_path.display().to_string()),
                human(&old.0),
                resolved.sha
            );
            outln!(
                "{}: git_override commit {} -> {}",
                human(&p.module_path.display().to_string()),
                human(&old.1),
                resolved.sha
            );
            outln!("`{to}` resolved via {}", human(&resolved.via));
        }
    }
    exit::OK
}

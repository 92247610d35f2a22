//! `flywheel token` and `flywheel audit`: the store's API tokens and its
//! hash-chained audit log, from the command line.

use clap::{Args, Subcommand, ValueEnum};
use flywheel_store::{AuditFilter, NewRecord, Role, Store};
use secrecy::ExposeSecret;

use crate::exit;

#[derive(Args, Clone)]
pub struct DbArg {
    /// The store: sqlite://PATH or postgres://USER@HOST/DB (default: the
    /// embedded SQLite file $XDG_DATA_HOME/flywheel/flywheel.db).
    #[arg(long, env = "FLYWHEEL_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once and only its hash is stored.
    #[command(
        after_help = "The token (`fw_` and 43 URL-safe characters) is printed on stdout, \
        once; keep it in a secret store. Use it as `Authorization: Bearer fw_...` on /api/v1.\n\n\
        Examples:\n  flywheel token create --name ci-dashboard --role viewer --expires 30d\n  \
        FLYWHEEL_DATABASE_URL=postgres://flywheel@db/flywheel flywheel token create --name ops --role admin"
    )]
    Create {
        /// A name for the token (1 to 64 of A-Z a-z 0-9 . _ -); never reused.
        #[arg(long)]
        name: String,
        /// What the token may do: viewer < operator < admin.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// How long it works: 30d, 12h, 90m, 2w, or `never`.
        #[arg(long, default_value = "90d", value_name = "DURATION")]
        expires: String,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Revoke a token by name; running servers refuse it within seconds.
    Revoke {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain: exit 0 when intact, 1 naming the first broken link.
    Verify {
        #[command(flatten)]
        db: DbArg,
    },
    /// Print audit records, oldest first.
    Export {
        #[command(flatten)]
        db: DbArg,
        /// Output format (one JSON object per line).
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// RFC 3339 time, inclusive.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time, exclusive.
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

fn fail(what: &str, e: impl std::fmt::Display) -> u8 {
    eprintln!("flywheel {what}: {e}");
    exit::USAGE
}

async fn open(db: &DbArg) -> Result<Store, String> {
    let url = match &db.database_url {
        Some(u) if !u.trim().is_empty() => u.clone(),
        _ => flywheel_store::default_url().map_err(|e| e.to_string())?,
    };
    Store::open(&url).await.map_err(|e| e.to_string())
}

/// Who runs the command, as the audit records it.
fn actor() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

fn request_id() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn block_on<F: std::future::Future<Output = u8>>(what: &str, f: F) -> u8 {
    match crate::forge::runtime() {
        Ok(rt) => rt.block_on(f),
        Err(e) => fail(what, e),
    }
}

pub fn run_token(cmd: TokenCommand) -> u8 {
    block_on("token", async move {
        match cmd {
            TokenCommand::Create {
                name,
                role,
                expires,
                db,
                format,
            } => {
                let expires_at = match flywheel_store::parse_expiry(&expires, flywheel_store::now())
                {
                    Ok(e) => e,
                    Err(e) => return fail("token create", e),
                };
                let store = match open(&db).await {
                    Ok(s) => s,
                    Err(e) => return fail("token create", e),
                };
                let role = Role::from(role);
                let rec = NewRecord {
                    actor: actor(),
                    role: "admin".into(),
                    auth_method: "cli".into(),
                    action: "token.create".into(),
                    target: format!("token:{name}"),
                    outcome: "pending".into(),
                    request_id: request_id(),
                    before: serde_json::Value::Null,
                    after: serde_json::json!({"name": name, "role": role.as_str(),
                        "expires_at": expires_at.map(|e| e.to_string())}),
                };
                // No audit record, no token.
                let actor = rec.actor.clone();
                let done = store
                    .audited(
                        rec,
                        store.create_token(&name, role, expires_at, &actor),
                        flywheel_store::outcome_of,
                    )
                    .await;
                let done = match done {
                    Ok(d) => d,
                    Err(e) => {
                        return fail(
                            "token create",
                            format!("not created: the audit intent cannot be written: {e}"),
                        );
                    }
                };
                let t = match done.result {
                    Ok(t) => t,
                    Err(e) => return fail("token create", e),
                };
                if let Some(e) = done.unrecorded {
                    eprintln!(
                        "flywheel token create: warning: the audit result was not written: {e}"
                    );
                }
                match format {
                    ListFormat::Text => {
                        outln!("{}", t.secret.expose_secret());
                        eprintln!(
                            "created token `{}` ({}, expires {}); it is shown only this once",
                            t.info.name,
                            t.info.role.as_str(),
                            t.info.expires_at.as_deref().unwrap_or("never")
                        );
                    }
                    ListFormat::Json => outln!(
                        "{}",
                        serde_json::json!({"name": t.info.name, "role": t.info.role,
                            "expires_at": t.info.expires_at, "token": t.secret.expose_secret()})
                    ),
                }
                exit::OK
            }
            TokenCommand::List { db, format } => {
                let store = match open(&db).await {
                    Ok(s) => s,
                    Err(e) => return fail("token list", e),
                };
                let tokens = match store.list_tokens().await {
                    Ok(t) => t,
                    Err(e) => return fail("token list", e),
                };
                match format {
                    ListFormat::Json => outln!(
                        "{}",
                        serde_json::to_string_pretty(&tokens).unwrap_or_default()
                    ),
                    ListFormat::Text => {
                        if tokens.is_empty() {
                            outln!("no tokens");
                        }
                        let now = flywheel_store::now();
                        for t in &tokens {
                            let state = if t.revoked_at.is_some() {
                                "revoked"
                            } else if t.active(now) {
                                "active"
                            } else {
                                "expired"
                            };
                            outln!(
                                "{:<24} {:<8} {:<8} created {} by {}, expires {}",
                                t.name,
                                t.role.as_str(),
                                state,
                                t.created_at,
                                t.created_by,
                                t.expires_at.as_deref().unwrap_or("never")
                            );
                        }
                    }
                }
                exit::OK
            }
            TokenCommand::Revoke { name, db } => {
                let store = match open(&db).await {
                    Ok(s) => s,
                    Err(e) => return fail("token revoke", e),
                };
                let rec = NewRecord {
                    actor: actor(),
                    role: "admin".into(),
                    auth_method: "cli".into(),
                    action: "token.revoke".into(),
                    target: format!("token:{name}"),
                    outcome: "pending".into(),
                    request_id: request_id(),
                    before: serde_json::Value::Null,
                    after: serde_json::json!({"revoked": true}),
                };
                let done = store
                    .audited(rec, store.revoke_token(&name), |r| match r {
                        Ok(true) => "ok",
                        Ok(false) => "no-op",
                        Err(_) => "failed",
                    })
                    .await;
                let revoked = match done {
                    Ok(d) => {
                        if let Some(e) = d.unrecorded {
                            eprintln!(
                                "flywheel token revoke: warning: the audit result was not written: {e}"
                            );
                        }
                        d.result
                    }
                    Err(e) => {
                        return fail(
                            "token revoke",
                            format!("not revoked: the audit intent cannot be written: {e}"),
                        );
                    }
                };
                match revoked {
                    Ok(true) => {
                        eprintln!("revoked token `{name}`");
                        exit::OK
                    }
                    Ok(false) => {
                        eprintln!(
                            "flywheel token revoke: no active token named `{}`",
                            name.escape_debug()
                        );
                        exit::FOUND
                    }
                    Err(e) => fail("token revoke", e),
                }
            }
        }
    })
}

pub fn run_audit(cmd: AuditCommand) -> u8 {
    block_on("audit", async move {
        match cmd {
            AuditCommand::Verify { db } => {
                let store = match open(&db).await {
                    Ok(s) => s,
                    Err(e) => return fail("audit verify", e),
                };
                match store.audit_verify().await {
                    Ok(v) => match v.broken {
                        None => {
                            outln!("audit chain intact: {} records", v.records);
                            exit::OK
                        }
                        Some(b) => {
                            outln!(
                                "audit chain broken at record {}: {} ({} records verified before it)",
                                b.seq,
                                b.reason,
                                v.records
                            );
                            exit::FOUND
                        }
                    },
                    Err(e) => fail("audit verify", e),
                }
            }
            AuditCommand::Export {
                db,
                format: ExportFormat::Jsonl,
                actor,
                action,
                target,
                since,
                until,
            } => {
                let store = match open(&db).await {
                    Ok(s) => s,
                    Err(e) => return fail("audit export", e),
                };
                let mut filter = AuditFilter {
                    actor,
                    action,
                    target,
                    since,
                    until,
                    after_seq: None,
                    limit: Some(5000),
                };
                loop {
                    let page = match store.audit_records(&filter).await {
                        Ok(p) => p,
                        Err(e) => return fail("audit export", e),
                    };
                    let Some(last) = page.last().map(|r| r.seq) else {
                        return exit::OK;
                    };
                    for r in &page {
                        outln!("{}", serde_json::to_string(r).unwrap_or_default());
                    }
                    filter.after_seq = Some(last);
                }
            }
        }
    })
}

//! `flywheel serve`: the operator server (in progress: the API, tokens,
//! trusted proxy identity, roles and audit; pages and sessions follow).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::exit;

#[derive(Args)]
#[command(
    after_help = "Serves /healthz, /readyz and /api/v1 (me, audit, tokens). Every route \
    declares its least role (viewer < operator < admin); callers are a trusted proxy's identity \
    (only from auth.modes[trusted_proxy].trusted_cidrs) or an API token \
    (`Authorization: Bearer fw_...`, /api/v1 only).\n\n\
    First admin on a fresh store:\n  flywheel token create --name first-admin --role admin\n\n\
    Examples:\n  flywheel serve --config examples/platform.yaml\n  \
    flywheel serve --config platform.yaml --listen 0.0.0.0:8080 --database-url postgres://flywheel@db/flywheel"
)]
pub struct ServeArgs {
    /// The platform contract: its auth section decides identities and roles.
    #[arg(long, short = 'c', env = "FLYWHEEL_CONFIG", value_name = "PATH")]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// The store: sqlite://PATH or postgres://USER@HOST/DB (default: the
    /// embedded SQLite file in the data directory).
    #[arg(long, env = "FLYWHEEL_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
}

pub fn run(args: ServeArgs) -> u8 {
    let fail = |e: String| {
        eprintln!("flywheel serve: {e}");
        exit::USAGE
    };
    let platform = match flywheel_contract::load(&args.config) {
        Ok(p) => p,
        Err(e) => return fail(format!("invalid contract configuration:\n{e}")),
    };
    let policy = match flywheel_server::access::Policy::from_contract(&platform, |k| {
        std::env::var(k).ok()
    }) {
        Ok(p) => p,
        Err(e) => return fail(format!("{}: {e}", args.config.display())),
    };
    let url = match args.database_url.filter(|u| !u.trim().is_empty()) {
        Some(u) => u,
        None => match flywheel_store::default_url() {
            Ok(u) => u,
            Err(e) => return fail(e.to_string()),
        },
    };
    let rt = match crate::forge::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async move {
        let store = match flywheel_store::Store::open(&url).await {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {}: {e}", args.listen)),
        };
        let bound = listener.local_addr().unwrap_or(args.listen);
        eprintln!(
            "flywheel serve: listening on http://{bound} (store: {})",
            store.shown_url()
        );
        let state = Arc::new(flywheel_server::AppState {
            store,
            policy,
            spoofed: Default::default(),
        });
        match flywheel_server::serve(state, listener).await {
            Ok(()) => exit::OK,
            Err(e) => fail(e.to_string()),
        }
    })
}

//! The route table: every route the server answers, with the least role it
//! needs. The access layer looks each request's route up here; a route that
//! is missing from the table is refused (fail closed), and a test walks the
//! whole table with anonymous and under-privileged callers.

use flywheel_store::Role;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, readiness, metrics (bearer-protected when configured).
    Public,
    /// An authenticated caller with at least this role.
    Role(Role),
}

/// One route: method, axum path pattern, access, and whether it is JSON API
/// (401 JSON to the anonymous) or a page (a redirect to sign-in).
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub api: bool,
    /// A public page that still wants to know who is asking (sign-in says
    /// whom you are signed in as); the caller is never required.
    pub identify: bool,
}

const fn api(method: &'static str, path: &'static str, role: Role) -> Route {
    Route {
        method,
        path,
        access: Access::Role(role),
        api: true,
        identify: false,
    }
}

const fn page(method: &'static str, path: &'static str, role: Role) -> Route {
    Route {
        method,
        path,
        access: Access::Role(role),
        api: false,
        identify: false,
    }
}

const fn public(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        access: Access::Public,
        api: false,
        identify: false,
    }
}

const fn public_page(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        access: Access::Public,
        api: false,
        identify: true,
    }
}

/// Every route, HTML and API alike.
pub const ROUTES: &[Route] = &[
    public("GET", "/healthz"),
    public("GET", "/readyz"),
    public("GET", "/metrics"),
    public("GET", "/static/{file}"),
    public_page("GET", "/signin"),
    public("GET", "/signin/bootstrap/{token}"),
    public("GET", "/signin/oidc"),
    public("GET", "/signin/oidc/callback"),
    public("POST", "/signin/passkey/start"),
    public("POST", "/signin/passkey/finish"),
    page("GET", "/", Role::Viewer),
    page("GET", "/fleet/panel", Role::Viewer),
    page("GET", "/scale-sets/{namespace}/{name}", Role::Viewer),
    page("GET", "/scale-sets/{namespace}/{name}/panel", Role::Viewer),
    page(
        "POST",
        "/scale-sets/{namespace}/{name}/pause",
        Role::Operator,
    ),
    page(
        "POST",
        "/scale-sets/{namespace}/{name}/resume",
        Role::Operator,
    ),
    page("GET", "/runners", Role::Viewer),
    page("GET", "/runners/panel", Role::Viewer),
    page("GET", "/gitlab", Role::Viewer),
    page("GET", "/gitlab/panel", Role::Viewer),
    page("POST", "/gitlab/runners/{id}/pause", Role::Operator),
    page("POST", "/gitlab/runners/{id}/resume", Role::Operator),
    page("GET", "/contract", Role::Viewer),
    page("GET", "/enrollment", Role::Viewer),
    page("GET", "/enrollment/panel", Role::Viewer),
    page("POST", "/enrollment/run", Role::Operator),
    page("GET", "/me", Role::Viewer),
    page("POST", "/signout", Role::Viewer),
    page("POST", "/me/passkeys/{id}/delete", Role::Viewer),
    page("GET", "/tokens", Role::Admin),
    page("POST", "/tokens", Role::Admin),
    page("POST", "/tokens/{name}/revoke", Role::Admin),
    page("GET", "/audit", Role::Operator),
    api("GET", "/api/v1/me", Role::Viewer),
    api("GET", "/api/v1/audit", Role::Operator),
    api("GET", "/api/v1/tokens", Role::Admin),
    api("POST", "/api/v1/tokens", Role::Admin),
    api("DELETE", "/api/v1/tokens/{name}", Role::Admin),
    api("GET", "/api/v1/passkeys", Role::Viewer),
    api("POST", "/api/v1/passkeys/register/start", Role::Viewer),
    api("POST", "/api/v1/passkeys/register/finish", Role::Viewer),
    api("DELETE", "/api/v1/passkeys/{id}", Role::Viewer),
    api("GET", "/api/v1/fleet", Role::Viewer),
    api("GET", "/api/v1/scale-sets/{namespace}/{name}", Role::Viewer),
    api("GET", "/api/v1/events", Role::Viewer),
    api("GET", "/api/v1/history", Role::Viewer),
    api(
        "POST",
        "/api/v1/scale-sets/{namespace}/{name}/pause",
        Role::Operator,
    ),
    api(
        "POST",
        "/api/v1/scale-sets/{namespace}/{name}/resume",
        Role::Operator,
    ),
    api("GET", "/api/v1/gitlab/runners", Role::Viewer),
    api("GET", "/api/v1/enrollment", Role::Viewer),
    api("POST", "/api/v1/gitlab/runners/{id}/pause", Role::Operator),
    api("POST", "/api/v1/gitlab/runners/{id}/resume", Role::Operator),
];

/// The table entry for a matched path and method.
pub fn find(method: &str, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

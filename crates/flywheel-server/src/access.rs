//! Who is calling and what they may do. The chain, first match wins:
//! trusted proxy identity (only from a peer inside the mode's
//! `trusted_cidrs`), a verified client certificate (direct mTLS), an API
//! token (`Authorization: Bearer fw_...`, on `/api/v1` only), then an
//! interactive session cookie (OIDC, passkey or bootstrap sign-in). With
//! `auth.proxy_outranks_sessions: false` a session is consulted before the
//! proxy identity. Headers that claim an identity from any other peer are
//! ignored and counted as a spoofing attempt.
//!
//! Roles: the contract's `auth.role_mapping` (identities and groups) and
//! `FLYWHEEL_ADMINS`, `FLYWHEEL_OPERATORS`, `FLYWHEEL_VIEWERS`; the highest
//! match wins; an identity with no match gets `auth.default_role` (viewer
//! unless set; `none` refuses it).

use std::net::IpAddr;

use flywheel_contract::{AuthKind, Platform};
use flywheel_store::Role;
use serde::Serialize;

/// How a caller proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Proxy,
    Mtls,
    Token,
    Oidc,
    Passkey,
    Bootstrap,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Proxy => "proxy",
            Method::Mtls => "mtls",
            Method::Token => "token",
            Method::Oidc => "oidc",
            Method::Passkey => "passkey",
            Method::Bootstrap => "bootstrap",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        [
            Method::Proxy,
            Method::Mtls,
            Method::Token,
            Method::Oidc,
            Method::Passkey,
            Method::Bootstrap,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// Whether the browser sends this credential by itself (a cookie, a
    /// proxy's headers, a client certificate): such requests need the
    /// same-origin check and the CSRF token before they may change state.
    pub fn ambient(self) -> bool {
        self != Method::Token
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub groups: Vec<String>,
    pub method: Method,
    pub role: Role,
    pub token_name: Option<String>,
    pub expires_at: Option<String>,
    /// The CSRF token this caller's state-changing requests must carry
    /// (ambient credentials only).
    pub csrf: Option<String>,
    /// The session id's hash, when a session cookie authenticated.
    pub session: Option<String>,
}

/// A network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP network (such as 100.64.0.0/10)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The trusted-proxy mode of the contract.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub cidrs: Vec<Cidr>,
    pub user_header: String,
    pub groups_header: Option<String>,
}

/// Identity headers that only a trusted proxy may set: the mode's own and
/// the common conventions (Tailscale Serve, oauth2-proxy, sidecars). From an
/// untrusted peer any of them is a spoofing attempt.
pub const IDENTITY_HEADERS: &[&str] = &[
    "tailscale-user-login",
    "tailscale-user-name",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-webauth-user",
    "x-client-cert-cn",
];

/// Everything the access layer decides with, built once at start.
#[derive(Clone, Debug)]
pub struct Policy {
    pub proxy: Option<Proxy>,
    /// `(identity or group, role)` from the contract, in order.
    pub identities: Vec<(String, Role)>,
    pub groups: Vec<(String, Role)>,
    /// From `FLYWHEEL_ADMINS` / `FLYWHEEL_OPERATORS` / `FLYWHEEL_VIEWERS`.
    pub env: Vec<(String, Role)>,
    /// The role of an identity no mapping names; `None` refuses it.
    pub default_role: Option<Role>,
    /// `auth.proxy_outranks_sessions`.
    pub proxy_outranks_sessions: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            proxy: None,
            identities: Vec::new(),
            groups: Vec::new(),
            env: Vec::new(),
            default_role: Some(Role::Viewer),
            proxy_outranks_sessions: true,
        }
    }
}

fn role_of(r: flywheel_contract::Role) -> Role {
    match r {
        flywheel_contract::Role::Viewer => Role::Viewer,
        flywheel_contract::Role::Operator => Role::Operator,
        flywheel_contract::Role::Admin => Role::Admin,
    }
}

impl Policy {
    /// From the contract's `auth` section and the environment (`env` reads
    /// a variable). A bad CIDR is an error naming it.
    pub fn from_contract(
        p: &Platform,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Policy, String> {
        let mut policy = Policy::default();
        if let Some(mode) = p
            .auth
            .modes
            .iter()
            .find(|m| m.kind.value == AuthKind::TrustedProxy)
        {
            let cidrs = mode
                .trusted_cidrs
                .iter()
                .map(|c| {
                    Cidr::parse(&c.value)
                        .map_err(|e| format!("auth.modes trusted_cidrs (line {}): {e}", c.pos.line))
                })
                .collect::<Result<Vec<_>, _>>()?;
            policy.proxy = Some(Proxy {
                cidrs,
                user_header: mode
                    .user_header
                    .clone()
                    .unwrap_or_else(|| "Tailscale-User-Login".into())
                    .to_ascii_lowercase(),
                groups_header: mode.groups_header.as_ref().map(|g| g.to_ascii_lowercase()),
            });
        }
        policy.proxy_outranks_sessions = p.auth.proxy_outranks_sessions;
        policy.default_role = match p.auth.default_role.as_ref().map(|d| d.value) {
            None | Some(flywheel_contract::DefaultRole::Viewer) => Some(Role::Viewer),
            Some(flywheel_contract::DefaultRole::Operator) => Some(Role::Operator),
            Some(flywheel_contract::DefaultRole::Admin) => Some(Role::Admin),
            Some(flywheel_contract::DefaultRole::None) => None,
        };
        for m in &p.auth.role_mapping {
            let role = role_of(m.role.value);
            if let Some(i) = &m.identity {
                policy.identities.push((i.value.clone(), role));
            }
            if let Some(g) = &m.group {
                policy.groups.push((g.value.clone(), role));
            }
        }
        for (var, role) in [
            ("FLYWHEEL_ADMINS", Role::Admin),
            ("FLYWHEEL_OPERATORS", Role::Operator),
            ("FLYWHEEL_VIEWERS", Role::Viewer),
        ] {
            for who in env(var).unwrap_or_default().split(',') {
                let who = who.trim();
                if !who.is_empty() {
                    policy.env.push((who.to_string(), role));
                }
            }
        }
        Ok(policy)
    }

    /// Whether identity headers from `peer` are believed.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.proxy
            .as_ref()
            .is_some_and(|p| p.cidrs.iter().any(|c| c.contains(peer)))
    }

    /// The highest role the mappings give `name` with `groups`; the default
    /// role when none matches (`None`: refused).
    pub fn role_for(&self, name: &str, groups: &[String]) -> Option<Role> {
        let by_identity = self
            .identities
            .iter()
            .chain(&self.env)
            .filter(|(who, _)| who.eq_ignore_ascii_case(name))
            .map(|(_, r)| *r);
        let by_group = self
            .groups
            .iter()
            .filter(|(g, _)| groups.iter().any(|x| x == g))
            .map(|(_, r)| *r);
        by_identity.chain(by_group).max().or(self.default_role)
    }
}

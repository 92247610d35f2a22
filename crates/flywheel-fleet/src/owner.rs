//! Which overlay owns a scale set: its `githubConfigUrl`
//! (`https://github.com/<owner>` or `https://github.com/<owner>/<repo>`,
//! also on GitHub Enterprise Server hosts) matched to a configured
//! overlay's owner, else the URL itself.

use serde::Serialize;

/// A set's owner as the fleet view shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Owner {
    /// A configured overlay's owner, spelled as the overlay spells it.
    Overlay(String),
    /// No configured overlay matches: the config URL (or `unknown`).
    Url(String),
}

/// The account or organization a config URL names; `None` for an
/// enterprise URL (`/enterprises/<slug>`) or anything that is not a URL
/// with an owner.
pub fn config_owner(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://")?.1;
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    let _host = parts.next()?;
    let owner = parts.next()?;
    if owner.eq_ignore_ascii_case("enterprises") {
        return None;
    }
    let owner = owner.split(['?', '#']).next()?.trim();
    (!owner.is_empty()).then(|| owner.to_string())
}

/// The owner of a set whose config URL is `url`, among `overlay_owners`
/// (GitHub owner names compare without regard to case).
pub fn owner_of(url: Option<&str>, overlay_owners: &[&str]) -> Owner {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Owner::Url("unknown".into());
    };
    match config_owner(url).and_then(|o| overlay_owners.iter().find(|x| x.eq_ignore_ascii_case(&o)))
    {
        Some(o) => Owner::Overlay((*o).to_string()),
        None => Owner::Url(url.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_come_from_organization_and_repository_urls() {
        assert_eq!(
            config_owner("https://github.com/tinyland-inc").as_deref(),
            Some("tinyland-inc")
        );
        assert_eq!(
            config_owner("https://github.com/Jesssullivan/infra/").as_deref(),
            Some("Jesssullivan")
        );
        assert_eq!(
            config_owner("https://ghe.example.com/acme?x=1").as_deref(),
            Some("acme")
        );
        assert_eq!(config_owner("https://github.com/enterprises/big"), None);
        assert_eq!(config_owner("github.com/tinyland-inc"), None);
        assert_eq!(config_owner("https://github.com"), None);
    }

    #[test]
    fn a_set_belongs_to_the_overlay_of_its_owner_or_shows_its_url() {
        let owners = ["tinyland-inc", "jesssullivan"];
        assert_eq!(
            owner_of(Some("https://github.com/JessSullivan/infra"), &owners),
            Owner::Overlay("jesssullivan".into())
        );
        assert_eq!(
            owner_of(Some("https://github.com/someone-else"), &owners),
            Owner::Url("https://github.com/someone-else".into())
        );
        assert_eq!(owner_of(None, &owners), Owner::Url("unknown".into()));
    }
}

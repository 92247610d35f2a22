//! `tofu/stacks/arc-runners/<owner>.tfvars`: what the overlay deploys.
//!
//! Only the keys flywheel needs are read; every other key, comment and
//! layout is left alone. A known key with the wrong type is an error with
//! its line.

use std::path::Path;

use flywheel_yaml::{FileError, Located};

use crate::hcl::{Reader, key_text, parse, pos};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArcRunnersVars {
    pub cluster_context: Option<Located<String>>,
    pub github_config_url: Option<Located<String>>,
    pub github_config_secret: Option<Located<String>>,
    pub nix_runner_name: Option<Located<String>>,
    pub nix_runner_scale_set_name: Option<Located<String>>,
    pub docker_runner_name: Option<Located<String>>,
    pub docker_runner_scale_set_name: Option<Located<String>>,
    pub dind_runner_name: Option<Located<String>>,
    pub dind_runner_scale_set_name: Option<Located<String>>,
    pub deploy_docker_runner: Option<Located<bool>>,
    pub deploy_dind_runner: Option<Located<bool>>,
    pub nix_max_runners: Option<Located<u64>>,
    /// `controller_namespace` (the listeners; default `arc-systems`).
    pub controller_namespace: Option<Located<String>>,
    /// `runner_namespace` (the sets and runners; default `arc-runners`).
    pub runner_namespace: Option<Located<String>>,
    pub extra_runner_sets: Vec<ExtraRunnerSet>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraRunnerSet {
    /// The map key (also the Helm release name).
    pub key: Located<String>,
    pub github_config_url: Option<Located<String>>,
    pub github_config_secret: Option<Located<String>>,
    pub runner_label: Option<Located<String>>,
    pub runner_scale_set_name: Option<Located<String>>,
    pub max_runners: Option<Located<u64>>,
}

/// A lane of ARC runners the tfvars deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Nix,
    Docker,
    Dind,
    Extra,
}

/// One scale set the overlay deploys, with everything that identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployedSet {
    pub lane: Lane,
    /// Helm release name.
    pub release_name: Option<Located<String>>,
    /// ARC `runnerScaleSetName`: the registration identity.
    pub scale_set_name: Option<Located<String>>,
    /// The workflow-facing label.
    pub label: Located<String>,
    pub config_url: Option<Located<String>>,
    pub secret: Option<Located<String>>,
}

impl ArcRunnersVars {
    /// The nix lane always; docker and dind when their flag is true; every
    /// `extra_runner_sets` entry. Switched-off lanes are not deployed.
    pub fn deployed_sets(&self) -> Vec<DeployedSet> {
        let lane = |lane,
                    label: &str,
                    release: &Option<Located<String>>,
                    set: &Option<Located<String>>| {
            let at = set
                .as_ref()
                .or(release.as_ref())
                .map(|l| l.pos)
                .unwrap_or_default();
            DeployedSet {
                lane,
                release_name: release.clone(),
                // ARC's runnerScaleSetName defaults to the release name.
                scale_set_name: set.clone().or_else(|| release.clone()),
                label: Located::new(label.to_string(), at),
                config_url: self.github_config_url.clone(),
                secret: self.github_config_secret.clone(),
            }
        };
        let on = |f: &Option<Located<bool>>| f.as_ref().is_some_and(|f| f.value);
        let mut sets = vec![lane(
            Lane::Nix,
            "tinyland-nix",
            &self.nix_runner_name,
            &self.nix_runner_scale_set_name,
        )];
        if on(&self.deploy_docker_runner) {
            sets.push(lane(
                Lane::Docker,
                "tinyland-docker",
                &self.docker_runner_name,
                &self.docker_runner_scale_set_name,
            ));
        }
        if on(&self.deploy_dind_runner) {
            sets.push(lane(
                Lane::Dind,
                "tinyland-dind",
                &self.dind_runner_name,
                &self.dind_runner_scale_set_name,
            ));
        }
        for x in &self.extra_runner_sets {
            sets.push(DeployedSet {
                lane: Lane::Extra,
                release_name: Some(x.key.clone()),
                // ARC's runnerScaleSetName defaults to the release name.
                scale_set_name: x
                    .runner_scale_set_name
                    .clone()
                    .or_else(|| Some(x.key.clone())),
                label: x
                    .runner_label
                    .clone()
                    .unwrap_or_else(|| Located::new(String::new(), x.key.pos)),
                config_url: x
                    .github_config_url
                    .clone()
                    .or_else(|| self.github_config_url.clone()),
                secret: x
                    .github_config_secret
                    .clone()
                    .or_else(|| self.github_config_secret.clone()),
            });
        }
        sets
    }
}

pub fn load_tfvars(file: &Path, text: &str) -> Result<ArcRunnersVars, FileError> {
    let body = parse(file, text)?;
    let r = Reader { file, text };
    let mut v = ArcRunnersVars::default();
    for attr in body.attributes() {
        let key = attr.key.value().as_str();
        let e = &attr.value;
        match key {
            "cluster_context" => v.cluster_context = Some(r.string(e, key)?),
            "github_config_url" => v.github_config_url = Some(r.string(e, key)?),
            "github_config_secret" => v.github_config_secret = Some(r.string(e, key)?),
            "nix_runner_name" => v.nix_runner_name = Some(r.string(e, key)?),
            "nix_runner_scale_set_name" => v.nix_runner_scale_set_name = Some(r.string(e, key)?),
            "docker_runner_name" => v.docker_runner_name = Some(r.string(e, key)?),
            "docker_runner_scale_set_name" => {
                v.docker_runner_scale_set_name = Some(r.string(e, key)?)
            }
            "dind_runner_name" => v.dind_runner_name = Some(r.string(e, key)?),
            "dind_runner_scale_set_name" => v.dind_runner_scale_set_name = Some(r.string(e, key)?),
            "deploy_docker_runner" => v.deploy_docker_runner = Some(r.boolean(e, key)?),
            "deploy_dind_runner" => v.deploy_dind_runner = Some(r.boolean(e, key)?),
            "nix_max_runners" => v.nix_max_runners = Some(r.number(e, key)?),
            "controller_namespace" => v.controller_namespace = Some(r.string(e, key)?),
            "runner_namespace" => v.runner_namespace = Some(r.string(e, key)?),
            "extra_runner_sets" => {
                for (k, value) in r.object(e, key)? {
                    let name = key_text(k).ok_or_else(|| {
                        FileError::new(
                            file,
                            pos(text, value.expr()),
                            key,
                            "expected a name as the set's key",
                        )
                    })?;
                    let path = format!("extra_runner_sets.{name}");
                    let mut set = ExtraRunnerSet {
                        key: Located::new(name, pos(text, value.expr())),
                        github_config_url: None,
                        github_config_secret: None,
                        runner_label: None,
                        runner_scale_set_name: None,
                        max_runners: None,
                    };
                    for (fk, fv) in r.object(value.expr(), &path)? {
                        let Some(field) = key_text(fk) else { continue };
                        let fpath = format!("{path}.{field}");
                        let e = fv.expr();
                        match field.as_str() {
                            "github_config_url" => {
                                set.github_config_url = Some(r.string(e, &fpath)?)
                            }
                            "github_config_secret" => {
                                set.github_config_secret = Some(r.string(e, &fpath)?)
                            }
                            "runner_label" => set.runner_label = Some(r.string(e, &fpath)?),
                            "runner_scale_set_name" => {
                                set.runner_scale_set_name = Some(r.string(e, &fpath)?)
                            }
                            "max_runners" => set.max_runners = Some(r.number(e, &fpath)?),
                            _ => {}
                        }
                    }
                    v.extra_runner_sets.push(set);
                }
            }
            _ => {}
        }
    }
    Ok(v)
}

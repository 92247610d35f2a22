# Jesssullivan personal-boundary overlay for the shared Honey ARC substrate.
#
# PERSONAL SHAPE: a personal GitHub account has no organization runner pool and
# no runner groups. The primary nix lane registers against this private overlay
# repository (repo-scoped github_config_url). Preflight reports that as the one
# expected warning: it is allowed only as private implementation-overlay ARC
# registration plumbing.
#
# OWNER-DISTINCT NAMES: tinyland-inc/tinyland-infra already owns the tinyland-nix,
# tinyland-docker and tinyland-dind registration names on honey. Helm release
# names and ARC runnerScaleSetName values below are therefore jesssullivan-*.
# Those are registration identities only; workflows keep requesting the shared
# labels (tinyland-nix, tinyland-nix-heavy). A queued workflow is NOT a reason to
# add a personal-* or repo-specific label: it means registration is incomplete.
#
# CAPACITY: nix lane only, docker/dind OFF. The heavy expansion set below has
# its own maxRunners = 1, independent of tinyland-inc's tinyland-nix-heavy set;
# there is no global concurrency budget for the shared label yet, so Kubernetes
# scheduling on sting is the current backpressure.
#
# STATE: rehomed on 2026-04-29 to tofu/backend/honey.s3.hcl. Do not apply a
# destructive plan; `just arc-apply` keeps the destroy guard on unless
# ALLOW_ARC_DESTROY=1 is set for an explicit maintenance window.

cluster_context       = "honey"
github_config_url     = "https://github.com/Jesssullivan/jesssullivan-infra"
github_config_secret  = "github-app-secret-jesssullivan"
ghcr_pull_secret_name = "ghcr-pull"

# Controller and namespaces belong to tinyland-inc/tinyland-infra.
deploy_arc_controller       = false
create_controller_namespace = false
create_runner_namespace     = false

controller_chart_version = "0.14.0"

nix_runner_name    = "jesssullivan-nix"
docker_runner_name = "jesssullivan-docker"
dind_runner_name   = "jesssullivan-dind"

nix_runner_scale_set_name    = "jesssullivan-nix"
docker_runner_scale_set_name = "jesssullivan-docker"
dind_runner_scale_set_name   = "jesssullivan-dind"

# docker/dind names above are inert while their deploy flags are false; they
# exist so a future lane enable is a one-flag change, not a naming decision.
deploy_docker_runner = false
deploy_dind_runner   = false

nix_min_runners               = 0
nix_max_runners               = 2
nix_cpu_limit                 = "4"
nix_memory_limit              = "8Gi"
nix_ephemeral_storage_request = "8Gi"
nix_ephemeral_storage_limit   = "16Gi"
nix_store_enabled             = false
nix_warm_pool_enabled         = false
deploy_longhorn               = false

nix_runner_image     = "ghcr.io/tinyland-inc/gloriousflywheel/nix-runner"
nix_runner_image_tag = "2026.04.27-1"

attic_server         = "http://attic.nix-cache.svc.cluster.local"
attic_cache          = "main"
attic_public_key     = "main:VwlaPq5YbkpnJvw8sqhzk4EUqopK+hFtpEFxHgCD+7E="
bazel_cache_endpoint = "grpc://bazel-cache.nix-cache.svc.cluster.local:9092"

shared_runner_node_selector = {
  "kubernetes.io/hostname" = "sting"
}

shared_runner_tolerations = [
  {
    key      = "dedicated.tinyland.dev/compute-expansion"
    operator = "Equal"
    value    = "true"
    effect   = "NoSchedule"
  }
]

# Heavy compute expansion: registered at the user scope, labelled with the
# shared tinyland-nix-heavy label. The registration name must stay distinct from
# tinyland-inc's tinyland-nix-heavy set on the same cluster.
extra_runner_sets = {
  tinyland-nix-heavy-compute-expansion = {
    github_config_url     = "https://github.com/Jesssullivan"
    runner_label          = "tinyland-nix-heavy"
    runner_scale_set_name = "tinyland-nix-heavy-compute-expansion"
    max_runners           = 1
  }
}

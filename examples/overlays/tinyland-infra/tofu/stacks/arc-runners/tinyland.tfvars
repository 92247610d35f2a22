# tinyland-inc owner overlay for the shared Honey ARC substrate.
#
# ORG SHAPE: tinyland-inc registers ARC at the ORGANIZATION scope. One scale set
# per lane serves every repository in the org pool, so there are no repo-scoped
# registration anchors in this file.
#
# NAMES vs LABELS: the *_runner_name values are Helm release names and the
# *_scale_set_name values are ARC runnerScaleSetName registration identities.
# For the tinyland-inc primary overlay they happen to equal the shared
# workflow-facing labels (tinyland-nix, tinyland-docker, tinyland-dind). Other
# owner overlays on the same cluster must pick owner-distinct registration names
# (for example jesssullivan-nix) while their workflows keep using the shared
# labels. Never invent a repo-specific label to make enrollment look green.
#
# STATE: backend "s3" against RustFS, see tofu/backend/honey.s3.hcl. Apply only
# through `just arc-apply`, which runs the destroy guard by default.

cluster_context       = "honey"
github_config_url     = "https://github.com/tinyland-inc"
github_config_secret  = "github-app-secret"
ghcr_pull_secret_name = "ghcr-pull"

# The ARC controller itself is owned by this overlay (arc_controller_owner in
# config/organization.yaml). Secondary overlays set these to false.
deploy_arc_controller       = true
create_controller_namespace = true
create_runner_namespace     = true

controller_chart_version = "0.14.0"
runner_chart_version     = "0.14.0"

controller_node_selector = {
  "kubernetes.io/hostname" = "honey"
}

nix_runner_name    = "tinyland-nix"
docker_runner_name = "tinyland-docker"
dind_runner_name   = "tinyland-dind"

nix_runner_scale_set_name    = "tinyland-nix"
docker_runner_scale_set_name = "tinyland-docker"
dind_runner_scale_set_name   = "tinyland-dind"

deploy_docker_runner = true
deploy_dind_runner   = true

# Capacity is per scale set, not a global budget for the shared label. Keep the
# nix lane scale-to-zero; docker keeps one warm runner for short lint jobs.
nix_min_runners    = 0
nix_max_runners    = 4
docker_min_runners = 1
docker_max_runners = 3
dind_min_runners   = 0
dind_max_runners   = 2

nix_cpu_request               = "1"
nix_cpu_limit                 = "4"
nix_memory_request            = "2Gi"
nix_memory_limit              = "8Gi"
nix_ephemeral_storage_request = "8Gi"
nix_ephemeral_storage_limit   = "16Gi"
nix_store_enabled             = false
nix_warm_pool_enabled         = false

docker_cpu_limit    = "2"
docker_memory_limit = "4Gi"
dind_cpu_limit      = "4"
dind_memory_limit   = "8Gi"

# Runner images. Tags are bumped by the image pipeline in the core repo; keep
# these tags in sync with the core release notes.
nix_runner_image        = "ghcr.io/tinyland-inc/gloriousflywheel/nix-runner"
nix_runner_image_tag    = "2026.04.27-1"
docker_runner_image     = "ghcr.io/actions/actions-runner"
docker_runner_image_tag = "2.323.0"
dind_image_tag          = "27.5-dind"

# Shared caches. Runners reach them over cluster-internal DNS only; the
# human-facing read endpoint (https://nix-cache.tinyland.dev) is not wired
# into runner pods.
attic_server         = "http://attic.nix-cache.svc.cluster.local"
attic_cache          = "main"
attic_public_key     = "main:VwlaPq5YbkpnJvw8sqhzk4EUqopK+hFtpEFxHgCD+7E="
bazel_cache_endpoint = "grpc://bazel-cache.nix-cache.svc.cluster.local:9092"

listener_node_selector = {
  "kubernetes.io/hostname" = "honey"
}

shared_runner_tolerations = []
shared_runner_affinity    = {}

# Heavy lane: memory-heavy Rust and Nix workloads. The registration identity is
# tinyland-nix-heavy; workflows request the shared label tinyland-nix-heavy.
# Other owners add their own owner-distinct sets behind the same label (e.g.
# tinyland-nix-heavy-compute-expansion in jesssullivan-infra), each with its
# own maxRunners.
extra_runner_sets = {
  tinyland-nix-heavy = {
    github_config_url     = "https://github.com/tinyland-inc"
    runner_label          = "tinyland-nix-heavy"
    runner_scale_set_name = "tinyland-nix-heavy"
    min_runners           = 0
    max_runners           = 1
    cpu_limit             = "8"
    memory_limit          = "24Gi"
    node_selector = {
      "kubernetes.io/hostname" = "sting"
    }
  }
}

# arc-runners stack state on the honey cluster (RustFS, S3-compatible).
# Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the
# operator environment; never commit them here.
#
#   tofu -chdir=tofu/stacks/arc-runners init -backend-config=../../backend/honey.s3.hcl

bucket = "tofu-state"
key    = "tinyland-infra/arc-runners/terraform.tfstate"
region = "us-east-1"

endpoints = {
  s3 = "http://tofu-state-rustfs.nix-cache.svc:9000"
}

use_path_style              = true
skip_credentials_validation = true
skip_region_validation      = true
skip_metadata_api_check     = true
skip_requesting_account_id  = true
skip_s3_checksum            = true

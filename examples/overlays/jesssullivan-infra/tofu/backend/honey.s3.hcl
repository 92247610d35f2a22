# arc-runners stack state on honey (RustFS). Written before the OpenTofu
# `endpoints` block existed; the top-level `endpoint` and `force_path_style`
# arguments are deprecated but still accepted. Migrate with the next
# backend touch, not as part of a state rehome.

bucket           = "tofu-state"
key              = "jesssullivan-infra/arc-runners/terraform.tfstate"
region           = "us-east-1"
endpoint         = "http://tofu-state-rustfs.nix-cache.svc:9000"
force_path_style = true

skip_credentials_validation = true
skip_region_validation      = true
skip_metadata_api_check     = true

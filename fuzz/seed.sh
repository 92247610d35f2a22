#!/bin/sh
# Fills fuzz/corpus/<target> with the seed inputs used for the runs recorded
# in docs/reliability.md: the example contract, overlay files and workflows,
# and a few plan JSON files shaped like `tofu show -json`.
set -eu
cd "$(dirname "$0")"
ex=../examples
for t in yaml_tree contract organization module_bazel tfvars backend plan_json; do
  mkdir -p "corpus/$t"
done
cp "$ex/platform.yaml" corpus/contract/
cp "$ex/platform.yaml" corpus/yaml_tree/
for o in "$ex"/overlays/*/; do
  n=$(basename "$o")
  cp "$o/config/organization.yaml" "corpus/organization/$n.yaml"
  cp "$o/config/organization.yaml" "corpus/yaml_tree/$n-organization.yaml"
  cp "$o/MODULE.bazel" "corpus/module_bazel/$n"
  for f in "$o"/tofu/stacks/arc-runners/*.tfvars; do cp "$f" "corpus/tfvars/$n-$(basename "$f")"; done
  for f in "$o"/tofu/backend/*; do cp "$f" "corpus/backend/$n-$(basename "$f")"; done
  for f in "$o"/.github/workflows/*.y*ml; do cp "$f" "corpus/yaml_tree/$n-$(basename "$f")"; done
done
i=0
for a in '"create"' '"update"' '"delete"' '"delete","create"' '"forget"' '"no-op"'; do
  printf '{"format_version":"1.2","terraform_version":"1.8.5","planned_values":{"root_module":{}},"resource_drift":[{"address":"kubernetes_secret.x","change":{"actions":["update"]}}],"resource_changes":[{"address":"helm_release.set[0]","mode":"managed","type":"helm_release","name":"set","index":0,"provider_name":"registry.opentofu.org/hashicorp/helm","change":{"actions":[%s],"before":{},"after":{},"after_unknown":{}}}],"output_changes":{"release":{"actions":["update"]}},"configuration":{},"timestamp":"2026-04-29T10:00:00Z","applyable":true,"complete":true,"errored":false}' "$a" > "corpus/plan_json/seed$i.json"
  i=$((i + 1))
done

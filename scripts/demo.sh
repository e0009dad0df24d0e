#!/usr/bin/env bash
# The end-to-end demo on the embedded defaults: SQLite online store, Parquet offline data, no server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
demo=demo
rm -rf "$demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "repast init $demo   (a driver-stats project with generated Parquet data)"
repast init "$demo"
cd "$demo/feature_repo"

step "repast apply"
repast apply
step "repast plan   (nothing changed since apply)"
repast plan
step "repast feature-views list"
repast feature-views list
step "repast feature-services list"
repast feature-services list

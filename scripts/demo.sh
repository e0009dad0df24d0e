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

step "repast materialize-incremental <now>   (latest row per driver into the SQLite online store)"
repast materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"
step "repast get-online-features   (two drivers, read back from SQLite)"
repast get-online-features -e driver_id=1001 -e driver_id=1002 \
  -f driver_hourly_stats:conv_rate -f driver_hourly_stats:acc_rate \
  -f driver_hourly_stats:avg_daily_trips

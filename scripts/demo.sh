#!/usr/bin/env bash
# The end-to-end demo on the embedded defaults: SQLite online store, Parquet offline data, no server.
set -euo pipefail
cd "$(dirname "$0")/.."
# REPAST_VENV: the environment whose `repast` runs (default: the repo's dev venv; the packaging
# test points it at a venv holding only the built wheels). REPAST_DEMO_DIR: where the demo repo goes.
export PATH="${REPAST_VENV:-$PWD/.venv}/bin:$PATH"
demo=${REPAST_DEMO_DIR:-demo}
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

step "repast get-historical-features   (a training frame, point-in-time correct, from Parquet)"
now=$(date -u +%Y-%m-%dT%H:00:00Z)
day_ago=$(date -u -d '-1 day' +%Y-%m-%dT%H:00:00Z)
repast get-historical-features \
  -d "[{\"driver_id\": 1001, \"event_timestamp\": \"$now\"},
       {\"driver_id\": 1002, \"event_timestamp\": \"$day_ago\"},
       {\"driver_id\": 1003, \"event_timestamp\": \"2000-01-01T00:00:00Z\"}]" \
  -f driver_hourly_stats:conv_rate -f driver_hourly_stats:avg_daily_trips

step "repast serve   (the feature server: Feast's HTTP API, started in the background)"
port=${REPAST_DEMO_PORT:-6566}
repast serve -p "$port" --no-access-log > serve.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "localhost:$port/health" > /dev/null && break; sleep 0.1; done
read_body='{"entities": {"driver_id": [1001]},
  "features": ["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:avg_daily_trips"]}'
step "curl /get-online-features   (driver 1001)"
curl -s "localhost:$port/get-online-features" -d "$read_body"; echo
pushed=$(date -u +%Y-%m-%dT%H:%M:%SZ)
step "curl /push   (a fresh row for driver 1001: conv_rate 0.99, avg_daily_trips 42)"
curl -s -w 'HTTP %{http_code}\n' "localhost:$port/push" -d "{\"push_source_name\": \"driver_stats_push_source\",
  \"df\": {\"driver_id\": [1001], \"event_timestamp\": [\"$pushed\"], \"created\": [\"$pushed\"],
         \"conv_rate\": [0.99], \"acc_rate\": [0.5], \"avg_daily_trips\": [42]}}"
step "curl /get-online-features   (the pushed values, at once)"
curl -s "localhost:$port/get-online-features" -d "$read_body"; echo
step "stop the server"
kill "$server"
wait "$server" || true

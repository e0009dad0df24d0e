#!/usr/bin/env bash
# The Go and Java clients' cost per 1 entity x 50 features call on top of a real `repast serve`
# (+ redis-server), serial and with 32 concurrent callers. The servers run on CPU 0 and the
# client on CPU 1 (taskset), so "client CPU per call" is the client's alone and, at 32
# callers, the server's CPU is the one that runs out first if the client is cheap enough.
# Figures: median of the rounds; recorded in load-tests/RESULTS.md with the machine's load.
#
#   bash load-tests/bench_clients.sh [rounds] [calls per round]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
calls=${2:-3000}
export REPAST_PYTHON=${REPAST_PYTHON:-$PWD/.venv/bin/python}
export REPAST_SERVER_CPUS=${REPAST_SERVER_CPUS:-0}
client_cpus=${REPAST_CLIENT_CPUS:-1}
out=${BENCH_OUT:-load-tests/results/clients-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== commit $(git rev-parse --short HEAD); servers on CPU $REPAST_SERVER_CPUS, client on CPU $client_cpus"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { grep -o " $1=[0-9.]*" | cut -d= -f2; }

echo "== Go: go test -bench, $rounds rounds of $calls calls"
(cd clients/go && taskset -c "$client_cpus" go test -run '^$' -bench 'GetOnlineFeatures1x50$|Floor' \
  -benchtime "${calls}x" -count "$rounds") | tee "$out-go.txt"
# 32 callers: long enough runs (~1 s) for the servers' CPU, read from /proc in 10 ms ticks.
(cd clients/go && taskset -c "$client_cpus" go test -run '^$' -bench 'Callers32' \
  -benchtime "$((calls * 4))x" -count "$rounds") | tee -a "$out-go.txt"
echo "== Go: encode + decode only (no network)"
(cd clients/go && taskset -c "$client_cpus" go test -run '^$' -bench 'EncodeDecode' -benchtime 20000x -count "$rounds") \
  | tee -a "$out-go.txt"

echo "== Java: timed loop, $rounds rounds of $calls calls"
(cd clients/java && mvn -q -B test-compile dependency:build-classpath -Dmdep.outputFile=target/bench.cp -Dmdep.includeScope=test >/dev/null \
  && taskset -c "$client_cpus" java -cp "target/test-classes:target/classes:$(cat target/bench.cp)" \
    dev.repast.client.BenchClient "$rounds" "$calls") | tee "$out-java.txt"

echo "== medians"
# The name has a -N suffix unless GOMAXPROCS is 1 (one CPU under taskset).
bench() { grep -E "^Benchmark$1(-[0-9]+)? " "$out-go.txt"; }
cpu_of() { grep -o '[0-9.]* client-cpu-us/op' | cut -d' ' -f1 | median; }
go_serial=$(bench GetOnlineFeatures1x50)
go_par=$(bench GetOnlineFeatures1x50Callers32)
printf 'go   serial:     %s us/call wall, %s us client CPU/call\n' \
  "$(echo "$go_serial" | awk '{print $3/1000}' | median)" \
  "$(echo "$go_serial" | cpu_of)"
printf 'go   32 callers: %s calls/s, %s us client CPU/call, server+redis %s CPUs busy\n' \
  "$(echo "$go_par" | grep -o '[0-9.]* calls/s' | cut -d' ' -f1 | median)" \
  "$(echo "$go_par" | cpu_of)" \
  "$(echo "$go_par" | grep -o '[0-9.]* server-cpus' | cut -d' ' -f1 | median)"
printf 'go   floors:     net/http alone %s us, bare TCP %s us client CPU/call\n' \
  "$(bench FloorNetHTTP1x50 | cpu_of)" "$(bench FloorTCP1x50 | cpu_of)"
printf 'go   decode:     %s us/op (encode + decode, no network)\n' \
  "$(bench EncodeDecode1x50 | awk '{print $3/1000}' | median)"
printf 'java serial:     %s us/call wall, %s us client CPU/call\n' \
  "$(grep '^serial' "$out-java.txt" | field 'us/call' | median)" \
  "$(grep '^serial' "$out-java.txt" | field 'client-cpu-us/call' | median)"
printf 'java 32 callers: %s calls/s, %s us client CPU/call, server+redis %s CPUs busy\n' \
  "$(grep '^callers32' "$out-java.txt" | field 'calls/s' | median)" \
  "$(grep '^callers32' "$out-java.txt" | field 'client-cpu-us/call' | median)" \
  "$(grep '^callers32' "$out-java.txt" | field 'server-cpus' | median)"
printf 'java floor:      java.net.http alone %s us client CPU/call\n' \
  "$(grep '^floor' "$out-java.txt" | field 'client-cpu-us/call' | median)"

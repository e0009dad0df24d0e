#!/usr/bin/env bash
# Fetches an Apache Kafka broker (org.apache.kafka:kafka_2.13 and its runtime classpath, plus a
# log4j slf4j binding) from Maven Central for the tests' single-node KRaft broker, and prints the
# folder holding the jars. Needs only Java 17+ and Maven.
#
# Why Maven and not the release tarball: Maven Central is the only place this project's machines
# and CI can download Kafka from. The jars go to a cache OUTSIDE the repo so a fresh clone (CI)
# reuses them; Maven's own ~/.m2 cache makes a rerun after wiping that cache fast too.
#
# Usage: scripts/fetch-kafka.sh            -> prints e.g. ~/.cache/repast/kafka/4.4.0/libs
#        KAFKA_VERSION=4.3.1 scripts/fetch-kafka.sh
# Idempotent: when the libs folder is complete it only prints its path.
set -euo pipefail

# Keep in step with KAFKA_VERSION in tests/kafka_service.py (a test checks they match).
# 4.4.0 is the newest kafka_2.13 that Maven Central was seen serving whole.
version="${KAFKA_VERSION:-4.4.0}"
cache_root="${REPAST_CACHE:-$HOME/.cache/repast}"
dest="$cache_root/kafka/$version"
libs="$dest/libs"
# Written last, after every jar is in place: its presence is what "already fetched" means, so an
# interrupted fetch is redone rather than leaving a broker with half a classpath.
marker="$libs/.complete"

if [[ -f "$marker" ]]; then
  echo "$libs"
  exit 0
fi

for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "fetch-kafka: '$tool' not found; Kafka needs Java 17+ and Maven" \
      "(Debian: apt-get install openjdk-17-jre-headless maven)" >&2
    exit 1
  fi
done

pom="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka/pom.xml"
mkdir -p "$dest"

# Two test sessions (or CI's prefetch and a test) may fetch at once: serialise on a lock file and
# re-check the marker once we hold it.
exec 9>"$dest/.lock"
flock 9
if [[ -f "$marker" ]]; then
  echo "$libs"
  exit 0
fi

# Copy into a scratch folder and rename it into place, so $libs is either absent or complete.
tmp="$(mktemp -d "$dest/libs.tmp.XXXXXX")"
log="$dest/fetch.log"
trap 'rm -rf "$tmp"' EXIT
if ! mvn -B -q -f "$pom" -Dkafka.version="$version" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
  echo "fetch-kafka: mvn failed to fetch kafka_2.13 $version; last lines of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
if ! compgen -G "$tmp/kafka_2.13-$version.jar" >/dev/null; then
  echo "fetch-kafka: mvn succeeded but kafka_2.13-$version.jar is missing from $tmp" >&2
  exit 1
fi
touch "$tmp/.complete"
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "$libs"

#!/usr/bin/env bash
# Resolve crossdata's JVM jars from Maven Central once, into the project-local cache.
# Spark then loads them from disk through spark.jars: no run, test or CI job resolves again.
# Usage: infra/fetch-jars.sh [cache_dir]   (default .cache/jars; Maven's own repo: .cache/m2)
# Maven itself is the pinned one infra/get-maven.py installs under .cache/maven (with PYTHON,
# default python3), never one found on the machine: the same resolver everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.cache/jars}"
repo="$(pwd)/.cache/m2"
pom=infra/jars/pom.xml
mkdir -p "$out" "$repo"
out="$(cd "$out" && pwd)"
mvn="$("${PYTHON:-python3}" infra/get-maven.py .cache/maven)"
echo "jars: resolving with $mvn"
mvn_copy() {
  "$mvn" -B -q -f "$pom" -Dmaven.repo.local="$repo" "$@" \
    dependency:copy-dependencies -DoutputDirectory="$out"
}
echo "jars: resolving Delta into $out"
mvn_copy
if mvn_copy -Pgraphframes >/dev/null 2>&1; then
  echo "jars: GraphFrames resolved"
else
  echo "jars: warning: Maven could not serve the GraphFrames jar; identity resolution will use" \
       "crossdata's native connected-components engine (crossdata doctor shows this), or" \
       "build the jar from a GraphFrames checkout with infra/jars/graphframes-from-source.sh"
fi
# Prove the cache is complete: the same resolution must now succeed offline.
mvn_copy -o
echo "jars: cache complete ($(ls "$out"/*.jar | wc -l) jars), offline re-resolution passed"

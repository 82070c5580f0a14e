#!/usr/bin/env bash
# Build the GraphFrames jar for this stack (Spark 4.2, Scala 2.13) from a GraphFrames source
# checkout, for machines whose Maven mirror does not serve io.graphframes (see README,
# "GraphFrames"). Where Maven Central is reachable, `make setup` fetches the published jar and
# this script is not needed.
#
#   bash infra/jars/graphframes-from-source.sh PATH/TO/graphframes [JAR_CACHE]
#
# It compiles the `graphx` and `core` modules of the checkout with the Scala compiler that
# pyspark already ships in its jars folder (no sbt, nothing downloaded), against pyspark's own
# jars, and writes one jar into JAR_CACHE (relative to the repository; default .cache/jars),
# where the Spark session puts every jar on the classpath. `identity.engine: auto` then picks
# GraphFrames and `crossdata doctor` reports it. The jar's name carries the checkout's commit,
# so nobody takes it for the published artifact. Remove the file to go back to the native
# engine. Tested with graphframes commit e49a655b9393 (after 0.11.0) and pyspark 4.2.0.
set -euo pipefail

src=$(cd "${1:?usage: graphframes-from-source.sh PATH/TO/graphframes [JAR_CACHE]}" && pwd)
cd "$(dirname "$0")/../.."
cache=${2:-.cache/jars}
python=${PYTHON:-.venv/bin/python}

for module in graphx core; do
  if [[ ! -d "$src/$module/src/main" ]]; then
    echo "$src has no $module/src/main: not a GraphFrames checkout" >&2
    exit 2
  fi
done
sparkjars=$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
scalac_cp=$(ls "$sparkjars"/scala-compiler-2.13.*.jar "$sparkjars"/scala-library-2.13.*.jar \
  "$sparkjars"/scala-reflect-2.13.*.jar | paste -sd:)
commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/classes/META-INF"
# graphx is GraphFrames' own copy of GraphX; core adds the Spark 4 shims beside its main sources.
find "$src/graphx/src/main" "$src/core/src/main/scala" "$src/core/src/main/scala-spark-4" \
  "$src/core/src/main/java" -name '*.scala' -o -name '*.java' | sort > "$work/sources"
grep '\.java$' "$work/sources" > "$work/java" || true
echo "graphframes-from-source: $(wc -l < "$work/sources") sources at $commit"

# The upstream build compiles with Scala 3 syntax allowed (`import a.b as c`): -Xsource:3.
java -Xmx2g -cp "$scalac_cp" scala.tools.nsc.Main -Xsource:3 -nowarn -release 17 \
  -classpath "$sparkjars/*" -d "$work/classes" "@$work/sources"
if [[ -s "$work/java" ]]; then
  javac -nowarn --release 17 -cp "$work/classes:$sparkjars/*" -d "$work/classes" "@$work/java"
fi
for f in LICENSE NOTICE; do
  if [[ -f "$src/$f" ]]; then cp "$src/$f" "$work/classes/META-INF/"; fi
done

mkdir -p "$cache"
out="$cache/graphframes-spark4_2.13-src-$commit.jar"
jar cf "$out" -C "$work/classes" .
echo "graphframes-from-source: wrote $out ($(find "$work/classes" -name '*.class' | wc -l) classes)"

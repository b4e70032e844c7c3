#!/usr/bin/env bash
# scripts/build-kafka.sh — Apache Kafka's broker for the end-to-end tests of the Kafka instrumentations
# (test/support/kafka.ts starts it in KRaft mode on loopback with its own data directory, and stops it).
#
# usage: scripts/build-kafka.sh            (a no-op when the jars are already there)
#
# Kafka 3.9.1, the last line kafka-go's consumer groups work with: Kafka 4.0 dropped JoinGroup v1, which
# kafka-go sends (kafka-go issue 1378). Its jars and their dependencies come from Maven Central through Maven
# (a generated pom, `dependency:copy-dependencies`), with reload4j as the log backend as in Kafka's own
# distribution; the JRE is the machine's Java 17 (Debian's openjdk-17-jre-headless and maven, installed with
# apt-get when missing).
#
# Outputs: build/kafka/libs/*.jar, build/kafka/java (the java binary to run them with)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$ROOT/build/kafka"
KAFKA_VERSION=3.9.1
SLF4J_VERSION=1.7.36

inputs=$(sha256sum "$HERE/build-kafka.sh" | cut -d' ' -f1)
if [ -f "$OUT/.inputs" ] && [ "$(cat "$OUT/.inputs")" = "$inputs" ] && [ -x "$(cat "$OUT/java" 2>/dev/null)" ]; then
  exit 0
fi

java_ok() { command -v java >/dev/null && java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; }
if ! java_ok || ! command -v mvn >/dev/null; then
  echo "kafka: installing a Java 17 runtime and Maven from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
fi
java_ok || { echo "kafka: ERROR: no Java >= 17 (java -version: $(java -version 2>&1 | head -1))" >&2; exit 1; }

mkdir -p "$OUT/pom"
cat >"$OUT/pom/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>gotel.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
echo "kafka: fetching Kafka $KAFKA_VERSION's jars through Maven"
rm -rf "$OUT/libs"
mvn -q -B -f "$OUT/pom/pom.xml" dependency:copy-dependencies -DoutputDirectory="$OUT/libs"
[ -f "$OUT/libs/kafka_2.13-$KAFKA_VERSION.jar" ] || { echo "kafka: ERROR: kafka_2.13-$KAFKA_VERSION.jar missing after Maven" >&2; exit 1; }
command -v java >"$OUT/java"
echo "$inputs" >"$OUT/.inputs"
echo "kafka: $(ls "$OUT/libs" | wc -l) jars in build/kafka/libs, $(java -version 2>&1 | head -1)"

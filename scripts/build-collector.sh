#!/usr/bin/env bash
# scripts/build-collector.sh — builds the OpenTelemetry Collector that the end-to-end tests export to.
#
# usage: scripts/build-collector.sh            (a no-op when the binary is up to date)
#
# A minimal distribution described by test/collector/builder-config.yaml (otlp receiver; file and debug
# exporters), generated and compiled with the OpenTelemetry Collector Builder (ocb), which is itself built from
# the Go module proxy. Everything comes through Go modules: the only host prerequisite is a `go` command. When
# it is older than the builder needs, a newer toolchain is fetched through the module proxy (GOTOOLCHAIN, or
# for a go older than 1.21, by downloading the golang.org/toolchain module into build/).
#
# Outputs:  build/otelcol/otelcol-gotel-test (+ .inputs-hash)
# Work dir: build/otelcol-src/ (generated sources, go.mod/go.sum, build.log), build/ocb/<version>/builder
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

# ---- pinned inputs -----------------------------------------------------------------------------------------
OCB_VERSION=v0.165.0        # go.opentelemetry.io/collector/cmd/builder; the manifest's versions match it
MIN_GO=1.26.0               # the builder's and the components' go.mod `go` line
FALLBACK_GO=1.26.8          # fetched through the module proxy when the local go is older than MIN_GO

CONFIG="$ROOT/test/collector/builder-config.yaml"
RECIPE_FILES=("$HERE/build-collector.sh" "$CONFIG")
NAME=otelcol-gotel-test
OUT="$ROOT/build/otelcol"
WORK="$ROOT/build/otelcol-src"        # must match dist.output_path in the manifest
OCB_DIR="$ROOT/build/ocb/$OCB_VERSION"

T0=$(date +%s.%N)
step() { printf 'otelcol: %s\n' "$*"; }
die() { printf 'otelcol: ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

inputs_hash() {
  { cat "${RECIPE_FILES[@]}"; echo "$OCB_VERSION $(uname -m)"; } | sha256sum | cut -d' ' -f1
}
up_to_date() {
  [ -x "$OUT/$NAME" ] && [ -f "$OUT/.inputs-hash" ] && [ "$(cat "$OUT/.inputs-hash")" = "$(inputs_hash)" ]
}

[ -f "$CONFIG" ] || die "missing ${CONFIG#"$ROOT"/}"
up_to_date && exit 0   # quiet when there is nothing to do

# Several test processes may ask for the collector at once: one builds, the others wait and reuse it.
mkdir -p "$OUT" "$ROOT/build/ocb"
exec 9>"$OUT/.lock"
if command -v flock >/dev/null; then flock 9; fi
up_to_date && exit 0

command -v go >/dev/null || die "needs a go command on PATH (any version; a newer toolchain is fetched when needed)"

# ---- Go toolchain --------------------------------------------------------------------------------------------
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }  # $1 >= $2
GO=go
LOCAL_GO=$(go env GOVERSION 2>/dev/null | sed 's/^go//; s/[^0-9.].*$//')
[ -n "$LOCAL_GO" ] || LOCAL_GO=$(go version | sed -n 's/^go version go\([0-9.]*\).*/\1/p')
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"   # build/otelcol-src sits inside our git checkout
if version_ge "$LOCAL_GO" "$MIN_GO"; then
  export GOTOOLCHAIN=local
elif version_ge "$LOCAL_GO" 1.21; then
  step "go $LOCAL_GO is older than $MIN_GO: using go $FALLBACK_GO through GOTOOLCHAIN"
  export GOTOOLCHAIN="go$FALLBACK_GO"
else
  # Too old for GOTOOLCHAIN: the same toolchain module, downloaded by hand and made executable in build/.
  case "$(uname -m)" in x86_64) garch=amd64 ;; aarch64) garch=arm64 ;; *) die "unsupported host $(uname -m)" ;; esac
  tc="$ROOT/build/go-toolchain/go$FALLBACK_GO"
  if [ ! -x "$tc/bin/go" ]; then
    step "go $LOCAL_GO is older than 1.21: downloading go $FALLBACK_GO (golang.org/toolchain) into build/"
    dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "golang.org/toolchain@v0.0.1-go$FALLBACK_GO.linux-$garch" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] && [ -d "$dir" ] || die "could not download golang.org/toolchain@v0.0.1-go$FALLBACK_GO.linux-$garch"
    rm -rf "$tc.tmp"; mkdir -p "$(dirname "$tc")"; cp -r "$dir" "$tc.tmp"; chmod -R u+w "$tc.tmp"
    chmod +x "$tc.tmp"/bin/* "$tc.tmp"/pkg/tool/*/*
    rm -rf "$tc"; mv "$tc.tmp" "$tc"
  fi
  GO="$tc/bin/go"; export PATH="$tc/bin:$PATH" GOTOOLCHAIN=local
fi

# ---- builder (ocb) -------------------------------------------------------------------------------------------
OCB="$OCB_DIR/builder"
if [ ! -x "$OCB" ]; then
  step "installing ocb $OCB_VERSION (go.opentelemetry.io/collector/cmd/builder) into build/ocb"
  mkdir -p "$OCB_DIR"
  GOBIN="$OCB_DIR" "$GO" install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >"$OCB_DIR/install.log" 2>&1 \
    || { tail -n 30 "$OCB_DIR/install.log" >&2; die "go install of the builder failed"; }
fi

# ocb runs `go mod tidy`, which also loads the tests of every imported package in other modules. The file
# exporter's tests import contrib's otlpencodingextension, whose module zips the Go module proxy refuses
# ("403 Forbidden: This module version is not available"), so plain tidy fails although the collector does not
# need that module. ocb finds `go` on PATH: a shim in front of it adds -e to `go mod tidy` only (tidy then
# records every module it can resolve; a module really missing from the build still fails `go build`).
SHIM="$ROOT/build/ocb/go-shim"
REAL_GO=$(command -v "$GO")
mkdir -p "$SHIM"
printf '#!/bin/sh
# generated by scripts/build-collector.sh
if [ "$1" = mod ] && [ "$2" = tidy ]; then shift 2; exec "%s" mod tidy -e "$@"; fi
exec "%s" "$@"
' \
  "$REAL_GO" "$REAL_GO" >"$SHIM/go.tmp"
chmod +x "$SHIM/go.tmp"; mv "$SHIM/go.tmp" "$SHIM/go"

# ---- generate + compile --------------------------------------------------------------------------------------
step "generating and compiling $NAME with ocb (first build downloads the collector's modules)"
t1=$(date +%s.%N)
rm -rf "$WORK"; mkdir -p "$WORK"
log="$ROOT/build/otelcol-build.log"
# Strict versioning: every component must resolve to the release train named in the manifest.
if ! (cd "$ROOT" && PATH="$SHIM:$PATH" "$OCB" --config="$CONFIG" --skip-strict-versioning=false) >"$log" 2>&1; then
  echo "--- last lines of ${log#"$ROOT"/} ---" >&2; tail -n 40 "$log" >&2
  die "ocb failed"
fi
mv "$log" "$WORK/build.log"
[ -x "$WORK/$NAME" ] || die "ocb finished but $WORK/$NAME is missing"
step "compiled in $(elapsed "$t1") s"

# ---- check: the binary runs and holds exactly the components we asked for -------------------------------------
step "checking the components"
comps=$("$WORK/$NAME" components 2>&1) || { echo "$comps" >&2; die "$NAME components failed"; }
for want in otlp file debug; do
  grep -qE "^[[:space:]]*-?[[:space:]]*name: $want\$" <<<"$comps" || { echo "$comps" >&2; die "component '$want' missing"; }
done

# ---- install -------------------------------------------------------------------------------------------------
cp "$WORK/$NAME" "$OUT/$NAME.tmp" && mv "$OUT/$NAME.tmp" "$OUT/$NAME"
inputs_hash >"$OUT/.inputs-hash"
size=$(stat -c %s "$OUT/$NAME")
step "built build/otelcol/$NAME ($(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }'), $("$OUT/$NAME" --version 2>&1 | head -n 1)) in $(elapsed "$T0") s"

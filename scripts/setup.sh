#!/usr/bin/env bash
# Installs and builds what gotel's build and tests need on a fresh Debian 12 / Ubuntu machine, as root.
# Idempotent: every step is skipped when its result is already there.
#   - clang/llvm (BPF compiler, llvm-strip) and Go from the system's apt, only when missing
#   - node_modules (Bun itself is a pinned npm dev dependency)
#   - our libbpf for x64 and arm64 (vendor/libbpf/build.sh, cached by its inputs)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v clang >/dev/null || missing+=(clang)
command -v llvm-strip >/dev/null || missing+=(llvm)
command -v go >/dev/null || missing+=(golang-go) # 1.19 on Debian 12: a newer toolchain is fetched below
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v make >/dev/null || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install ${missing[*]} (run as root, e.g. sudo npm test)" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the tests' check that gotel leaves nothing attached asks the kernel through bpftool; not every distribution
# packages it under that name (Ubuntu's comes with linux-tools), so its absence stops nothing here: that test
# says it is missing
if ! command -v bpftool >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "setup: installing bpftool"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bpftool; } >/dev/null 2>&1 ||
    echo "setup: bpftool is not installable here; the test of what gotel leaves attached will say so"
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Tests and the demo build Go programs whose go.mod needs Go >= 1.22; they also pick other releases through
# GOTOOLCHAIN, which needs a go >= 1.21 to start from (scripts/lib/go-toolchain.sh explains).
ROOT=$PWD
# shellcheck source=lib/go-toolchain.sh
source scripts/lib/go-toolchain.sh
use_go 1.22 1.26.8

bash vendor/libbpf/build.sh x64 arm64

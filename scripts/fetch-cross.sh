#!/usr/bin/env bash
# fetch-cross.sh — unpack Debian's aarch64 cross toolchain (gcc 12, binutils, glibc headers and libraries) and
# qemu-user-static into build/cross/ with the private APT config. Nothing is installed into the system.
#
# Afterwards:
#   build/cross/usr/bin/aarch64-linux-gnu-gcc --sysroot=build/cross ...        (see cross_env below)
#   build/cross/usr/bin/qemu-aarch64-static -L build/cross/usr/aarch64-linux-gnu ./arm64-program
#
# Idempotent and quiet: a second run with the same package list does nothing and prints nothing.
# Sourcing it (instead of running it) defines cross_env, which prints the environment the tools need.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CROSS=${GOTEL_CROSS_DIR:-$ROOT/build/cross}

# Debian bookworm packages. Host (amd64) libraries the cross tools link against are fetched too, so the
# toolchain does not depend on which of them the host happens to have (they are found via LD_LIBRARY_PATH).
CROSS_PACKAGES=(
  gcc-12-aarch64-linux-gnu cpp-12-aarch64-linux-gnu gcc-12-aarch64-linux-gnu-base gcc-12-cross-base
  binutils-aarch64-linux-gnu
  libc6-dev-arm64-cross libc6-arm64-cross linux-libc-dev-arm64-cross
  libgcc-12-dev-arm64-cross libgcc-s1-arm64-cross
  libisl23 libmpc3 libmpfr6 libjansson4 libbinutils libcc1-0
  qemu-user-static
)

cross_env() {
  # PATH and LD_LIBRARY_PATH for running the unpacked cross tools from the host.
  echo "PATH=$CROSS/usr/bin:$PATH"
  echo "LD_LIBRARY_PATH=$CROSS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

fetch_cross() {
  local want stamp="$CROSS/.fetch-cross-complete"
  want=$(printf '%s\n' "${CROSS_PACKAGES[@]}" | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$CROSS/usr/bin/aarch64-linux-gnu-gcc" ]; then
    return 0
  fi
  # shellcheck source=lib/private-apt.sh
  source "$ROOT/scripts/lib/private-apt.sh"
  papt_update
  local debs="$PAPT_DIR/debs"
  papt_fetch_debs "$debs" "${CROSS_PACKAGES[@]}"
  # Unpack exactly the newest file of each listed package (the cache may hold older versions).
  local p files=() f
  for p in "${CROSS_PACKAGES[@]}"; do
    f=$(ls -1 "$debs/${p}_"*.deb 2>/dev/null | sort -V | tail -n 1)
    [ -n "$f" ] || { echo "fetch-cross: $p was not downloaded" >&2; return 1; }
    files+=("$f")
  done
  mkdir -p "$CROSS"
  papt_extract "$CROSS" "${files[@]}"
  # qemu-user-static brings ~30 emulators (~450 MB); only the aarch64 one is used.
  find "$CROSS/usr/bin" -name 'qemu-*-static' ! -name qemu-aarch64-static -delete
  # The unversioned driver name normally comes from the gcc-aarch64-linux-gnu meta package.
  ln -sf aarch64-linux-gnu-gcc-12 "$CROSS/usr/bin/aarch64-linux-gnu-gcc"
  ln -sf aarch64-linux-gnu-cpp-12 "$CROSS/usr/bin/aarch64-linux-gnu-cpp"
  # Smoke test: the compiler runs from its unpacked location.
  if ! env "$(cross_env | sed -n 2p)" "$CROSS/usr/bin/aarch64-linux-gnu-gcc" --version >/dev/null 2>&1; then
    echo "fetch-cross: the unpacked aarch64-linux-gnu-gcc does not run" >&2; return 1
  fi
  [ -x "$CROSS/usr/bin/qemu-aarch64-static" ] || { echo "fetch-cross: qemu-aarch64-static missing" >&2; return 1; }
  echo "$want" >"$stamp"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  fetch_cross
fi

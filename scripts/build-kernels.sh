#!/usr/bin/env bash
# build-kernels.sh — other Linux kernels to boot gotel on (test/kernel/older-kernels.test.ts), and what boots them.
#
# Fetches Debian's cloud kernels (bookworm's 6.1: no uprobe.multi, so classic links; bullseye's 5.10: the oldest
# LTS with everything gotel needs; bookworm's arm64 6.1, for the arm64 build) and busybox through the private APT
# configuration, and unpacks each into build/kernels/<name>/ (vmlinuz, busybox). qemu-system-x86 and
# qemu-system-arm come from the machine's apt when missing (as scripts/setup.sh installs build tools). Cached: a
# kernel already unpacked is not fetched again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/kernels
say() { printf 'kernels: %s\n' "$*" >&2; }

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "missing ${missing[*]}; install them or run as root"; exit 1; }
  say "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# name  suite  architecture (the cloud flavour: small, serial console and virtio built in, BPF and uprobes as in
# the others). arm64: the only kernel that runs gotel's arm64 build and eBPF objects here.
KERNELS=("6.1 bookworm amd64" "5.10 bullseye amd64" "6.1-arm64 bookworm arm64")

fetch() {  # name suite arch
  local name=$1 suite=$2 arch=$3 dir=$OUT/$1
  [ -s "$dir/vmlinuz" ] && [ -x "$dir/busybox" ] && return 0
  say "fetching Debian $suite's $arch cloud kernel ($name) and busybox"
  (
    export PAPT_DIR=$ROOT/build/apt-$suite-$arch PAPT_SUITE=$suite PAPT_ARCH=$arch
    [ "$suite" = bookworm ] || export PAPT_OTHER_RELEASE=1
    # shellcheck source=lib/private-apt.sh
    source "$ROOT/scripts/lib/private-apt.sh"
    papt_update
    # the metapackage names the current ABI's image package
    local image
    image=$(papt_apt_cache depends "linux-image-cloud-$arch" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$image" ] || { say "no linux-image-cloud-$arch in $suite"; exit 1; }
    papt_fetch_debs "$dir/debs" "$image" busybox-static
    rm -rf "$dir/root"
    papt_extract "$dir/root" "$dir"/debs/*.deb
    cp "$(ls "$dir"/root/boot/vmlinuz-* | head -n 1)" "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
    cp "$dir/root/bin/busybox" "$dir/busybox"
    rm -rf "$dir/root" "$dir/debs"
  )
  say "$name: $(file -b "$dir/vmlinuz" | grep -o 'version [^ ]*' || echo kernel)"
}

for k in "${KERNELS[@]}"; do
  # shellcheck disable=SC2086
  fetch $k
done

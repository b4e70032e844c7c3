#!/usr/bin/env bash
# build-kernels.sh — older Linux kernels to boot gotel on (test/kernel/older-kernels.test.ts), and what boots them.
#
# Fetches Debian's cloud kernels (bookworm's 6.1: no uprobe.multi, so classic links; bullseye's 5.10: the oldest
# LTS with everything gotel needs) and busybox through the private APT configuration, and unpacks each into
# build/kernels/<name>/ (vmlinuz, busybox). qemu-system-x86 comes from the machine's apt when missing (as
# scripts/setup.sh installs build tools). Cached: a kernel already unpacked is not fetched again.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/kernels
say() { printf 'kernels: %s\n' "$*" >&2; }

if ! command -v qemu-system-x86_64 >/dev/null; then
  [ "$(id -u)" = 0 ] || { say "qemu-system-x86_64 missing; install qemu-system-x86 or run as root"; exit 1; }
  say "installing qemu-system-x86"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
fi

# name  suite  (the cloud flavour: small, serial console and virtio built in, BPF and uprobes as in the others)
KERNELS=("6.1 bookworm" "5.10 bullseye")

fetch() {  # name suite
  local name=$1 suite=$2 dir=$OUT/$1
  [ -s "$dir/vmlinuz" ] && [ -x "$dir/busybox" ] && return 0
  say "fetching Debian $suite's cloud kernel ($name) and busybox"
  (
    export PAPT_DIR=$ROOT/build/apt-$suite PAPT_SUITE=$suite
    [ "$suite" = bookworm ] || export PAPT_OTHER_RELEASE=1
    # shellcheck source=lib/private-apt.sh
    source "$ROOT/scripts/lib/private-apt.sh"
    papt_update
    # the metapackage names the current ABI's image package
    local image
    image=$(papt_apt_cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$image" ] || { say "no linux-image-cloud-amd64 in $suite"; exit 1; }
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

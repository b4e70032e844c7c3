#!/usr/bin/env bash
# vendor/libbpf/build.sh — builds gotel's self-contained libbpf shared object, per architecture.
#
# usage: vendor/libbpf/build.sh [x64] [arm64]        (default: both; names are Bun's process.arch names)
#
# From Debian source packages fetched at build time with a private APT config (scripts/lib/private-apt.sh):
# libbpf (bookworm-backports), libelf from elfutils and zlib (bookworm), all compiled -fPIC, linked into one
# .so with gotel_helpers.c. Only libbpf's API and gotel_* are exported; its only runtime dependency is glibc,
# at most GLIBC_2.28 (checked after linking). arm64 is cross-compiled with Debian's gcc-12 cross toolchain
# unpacked into build/cross/ by scripts/fetch-cross.sh (nothing is installed into the system).
#
# Outputs:  build/libbpf/<arch>/libbpf.so, build/libbpf/<arch>/VERSION, build/libbpf/include/bpf/*.h
# Work dir: build/libbpf-src/<arch>/ (rebuilt from scratch whenever the recipe's inputs change)
#
# Host prerequisites (installed with the system apt only if a command is missing): gcc, make, binutils
# (objdump, readelf, nm, ar), bzip2 and xz-utils (tarballs), dpkg (dpkg -x). Nothing else: elfutils' configure
# needs flex/bison/gawk only in maintainer mode, and pkg-config is not used.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# ---- pinned inputs -----------------------------------------------------------------------------------------
LIBBPF_VERSION=1.4.6
LIBBPF_SRC="libbpf=1.4.6-1~bpo12+1"        # bookworm-backports
ELFUTILS_SRC="elfutils=0.188-2.1"          # bookworm
ZLIB_SRC="zlib=1:1.2.13.dfsg-1"            # bookworm
GLIBC_FLOOR=2.28                           # highest GLIBC_x.y symbol version the .so may require
JOBS=2

# Our own C sources linked into the .so: every vendor/libbpf/gotel_*.c (gotel_helpers.c holds the glibc shim).
HELPER_SRCS=("$HERE"/gotel_*.c)
RECIPE_FILES=(
  "$HERE/build.sh" "${HELPER_SRCS[@]}" "$HERE/gotel.map"
  "$ROOT/scripts/lib/private-apt.sh" "$ROOT/scripts/fetch-cross.sh"
)
OUT="$ROOT/build/libbpf"
WORK="$ROOT/build/libbpf-src"

T0=$(date +%s.%N)
step() { printf 'libbpf %s: %s\n' "$ARCH" "$*"; }
die() { printf 'libbpf %s: ERROR: %s\n' "${ARCH:-?}" "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

inputs_hash() {  # $1 = arch
  { cat "${RECIPE_FILES[@]}"; echo "$1 $LIBBPF_VERSION $LIBBPF_SRC $ELFUTILS_SRC $ZLIB_SRC $GLIBC_FLOOR"; } \
    | sha256sum | cut -d' ' -f1
}

up_to_date() {  # $1 = arch
  local d="$OUT/$1"
  [ -s "$d/libbpf.so" ] && [ -s "$d/VERSION" ] && [ -f "$OUT/include/bpf/libbpf.h" ] \
    && [ -f "$d/.inputs-hash" ] && [ "$(cat "$d/.inputs-hash")" = "$(inputs_hash "$1")" ]
}

# ---- arguments -----------------------------------------------------------------------------------------------
ARCHES=()
for a in "$@"; do
  case "$a" in
    x64|arm64) ARCHES+=("$a") ;;
    -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [x64] [arm64]   (unknown architecture '$a')" >&2; exit 2 ;;
  esac
done
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(x64 arm64)

TODO=()
for ARCH in "${ARCHES[@]}"; do
  if up_to_date "$ARCH"; then step "up to date"; else TODO+=("$ARCH"); fi
done
[ ${#TODO[@]} -gt 0 ] || exit 0

# ---- host prerequisites --------------------------------------------------------------------------------------
ensure_host_tools() {
  local missing=() pair cmd pkg
  for pair in gcc:gcc make:make objdump:binutils readelf:binutils nm:binutils ar:binutils \
              bzip2:bzip2 xz:xz-utils dpkg:dpkg sha256sum:coreutils; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "libbpf: installing missing host packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "missing host packages (${missing[*]}); install them or run as root"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
ensure_host_tools

# shellcheck source=../../scripts/lib/private-apt.sh
source "$ROOT/scripts/lib/private-apt.sh"

ARCH=all
step "fetching sources (${LIBBPF_SRC}, ${ELFUTILS_SRC}, ${ZLIB_SRC})"
papt_update
papt_source "$LIBBPF_SRC";   LIBBPF_TAR=${PAPT_SOURCE_FILES[0]}
papt_source "$ELFUTILS_SRC"; ELFUTILS_TAR=${PAPT_SOURCE_FILES[0]}
papt_source "$ZLIB_SRC";     ZLIB_TAR=${PAPT_SOURCE_FILES[0]}

unpack() {  # tarball destdir  — unpacks the single top-level directory of a tarball as destdir
  local tmp="$2.unpack"
  rm -rf "$tmp" "$2"; mkdir -p "$tmp"
  tar -xf "$1" -C "$tmp"
  mv "$tmp"/* "$2"; rmdir "$tmp"
}

# Builds one architecture. Runs in a subshell so that PATH and the toolchain variables do not leak.
build_arch() (
  local t0 W P log
  t0=$(date +%s.%N)
  W="$WORK/$ARCH"; P="$W/prefix"; log="$W/build.log"
  rm -rf "$W"; mkdir -p "$W" "$P/include" "$P/lib"
  : >"$log"

  # -- toolchain
  local HOST_TRIPLE BUILD_TRIPLE
  BUILD_TRIPLE=$(gcc -dumpmachine)
  if [ "$ARCH" = arm64 ]; then
    step "fetching the aarch64 cross toolchain into build/cross"
    "$ROOT/scripts/fetch-cross.sh"
    local CROSS="$ROOT/build/cross" TB="$W/toolbin" t
    HOST_TRIPLE=aarch64-linux-gnu
    # Wrappers: the unpacked tools find their host libraries through LD_LIBRARY_PATH, and gcc needs
    # --sysroot because glibc's libc.so linker script holds absolute paths.
    mkdir -p "$TB"
    for t in gcc ar ranlib nm objdump readelf strip; do
      local real="$CROSS/usr/bin/$HOST_TRIPLE-$t" extra=""
      [ "$t" = gcc ] && extra="--sysroot=$CROSS"
      printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" %s "$@"\n' \
        "$CROSS/usr/lib/x86_64-linux-gnu" "$real" "$extra" >"$TB/$HOST_TRIPLE-$t"
      chmod +x "$TB/$HOST_TRIPLE-$t"
    done
    export PATH="$TB:$PATH"
    CC=$HOST_TRIPLE-gcc AR=$HOST_TRIPLE-ar RANLIB=$HOST_TRIPLE-ranlib
    NM=$HOST_TRIPLE-nm OBJDUMP=$HOST_TRIPLE-objdump READELF=$HOST_TRIPLE-readelf
  else
    [ "$(uname -m)" = x86_64 ] || die "x64 is built natively and needs an x86_64 host"
    HOST_TRIPLE=$BUILD_TRIPLE
    CC=gcc AR=ar RANLIB=ranlib NM=nm OBJDUMP=objdump READELF=readelf
  fi
  export CC AR RANLIB NM
  local CFLAGS_PIC="-O2 -g0 -fPIC -ffunction-sections -fdata-sections"

  # Run a build command with its output in the log; on failure show the log's tail.
  run() {
    if ! "$@" >>"$log" 2>&1; then
      echo "--- last lines of ${log#"$ROOT"/} ---" >&2; tail -n 30 "$log" >&2
      die "failed: $*"
    fi
  }

  # -- zlib (static, PIC, symbols hidden: they are internal to the .so)
  step "building zlib"
  unpack "$ZLIB_TAR" "$W/zlib"
  (cd "$W/zlib" && run env CFLAGS="$CFLAGS_PIC -fvisibility=hidden" CHOST="$HOST_TRIPLE" \
      ./configure --static --prefix="$P" && run make -j"$JOBS" libz.a)
  cp "$W/zlib/libz.a" "$P/lib/"; cp "$W/zlib/zlib.h" "$W/zlib/zconf.h" "$P/include/"

  # -- elfutils: libelf only; libelf_pic.a is its PIC archive
  step "building libelf (elfutils)"
  unpack "$ELFUTILS_TAR" "$W/elfutils"
  (cd "$W/elfutils" && run ./configure --build="$BUILD_TRIPLE" --host="$HOST_TRIPLE" \
      --disable-debuginfod --disable-libdebuginfod --disable-nls \
      --without-zstd --without-bzlib --without-lzma --disable-valgrind \
      CC="$CC" CFLAGS="$CFLAGS_PIC -I$P/include" LDFLAGS="-L$P/lib" \
    && run make -j"$JOBS" -C lib && run make -j"$JOBS" -C libelf libelf_pic.a)

  # -- libbpf (static archive only; OBJDIR must exist before make writes libbpf.pc into it)
  step "building libbpf $LIBBPF_VERSION"
  unpack "$LIBBPF_TAR" "$W/libbpf"
  local v
  v=$(sed -n 's/^LIBBPF_\(MAJOR\|MINOR\|PATCH\)_VERSION := //p' "$W/libbpf/src/Makefile" | paste -sd.)
  [ "$v" = "$LIBBPF_VERSION" ] || die "the libbpf tarball is version $v, expected $LIBBPF_VERSION"
  mkdir -p "$W/libbpf-obj"
  run make -j"$JOBS" -C "$W/libbpf/src" BUILD_STATIC_ONLY=1 NO_PKG_CONFIG=1 OBJDIR="$W/libbpf-obj" \
    CC="$CC" AR="$AR" CFLAGS="$CFLAGS_PIC -Wall -std=gnu89" \
    EXTRA_CFLAGS="-I$W/elfutils/libelf -I$P/include"
  # Headers for clang's BPF builds and for gotel_helpers.c (arch independent).
  run make -C "$W/libbpf/src" install_headers NO_PKG_CONFIG=1 OBJDIR="$W/libbpf-obj" \
    DESTDIR="$W/headers" PREFIX=/ INCLUDEDIR=/include

  # -- link (our sources see the same linux/bpf.h UAPI as libbpf itself, not the host's older one)
  step "linking libbpf.so"
  local src objs=()
  for src in "${HELPER_SRCS[@]}"; do
    objs+=("$W/$(basename "${src%.c}").o")
    run "$CC" $CFLAGS_PIC -Wall -Wextra -Wno-unused-parameter -fvisibility=hidden \
      -DGOTEL_LIBBPF_VERSION="\"$LIBBPF_VERSION\"" -I"$W/headers/include" -I"$W/libbpf/include/uapi" -I"$W/elfutils/libelf" \
      -c "$src" -o "${objs[-1]}"
  done
  run "$CC" -shared -fPIC -o "$W/libbpf.so" "${objs[@]}" \
    -Wl,--whole-archive "$W/libbpf-obj/libbpf.a" -Wl,--no-whole-archive \
    "$W/elfutils/libelf/libelf_pic.a" "$P/lib/libz.a" \
    -Wl,--version-script="$W/libbpf/src/libbpf.map" -Wl,--version-script="$HERE/gotel.map" \
    -Wl,-z,defs -Wl,-z,now -Wl,-z,relro -Wl,--gc-sections \
    -Wl,-soname,libbpf-gotel.so -static-libgcc -s

  # -- checks
  step "checking exports, dependencies and the glibc floor"
  local so="$W/libbpf.so" needed glibc_vers max exports want bad
  needed=$("$READELF" -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd' ')
  for n in $needed; do
    case "$n" in libc.so.6|ld-linux-x86-64.so.2|ld-linux-aarch64.so.1) ;; *) die "unexpected NEEDED $n (only glibc allowed)";; esac
  done
  if "$READELF" -d "$so" | grep -qE '\((TEXTREL|RPATH|RUNPATH)\)'; then die "the .so has TEXTREL/RPATH/RUNPATH"; fi
  glibc_vers=$("$OBJDUMP" -T "$so" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | paste -sd' ')
  max=$(tr ' ' '\n' <<<"$glibc_vers" | sed 's/GLIBC_//' | sort -V | tail -n 1)
  step "requires ${glibc_vers} (highest $max, NEEDED: $needed)"
  if [ "$(printf '%s\n%s\n' "$max" "$GLIBC_FLOOR" | sort -V | tail -n 1)" != "$GLIBC_FLOOR" ]; then
    echo "symbols above GLIBC_$GLIBC_FLOOR:" >&2
    "$OBJDUMP" -T "$so" | grep 'GLIBC_' | while read -r line; do
      v=$(grep -o 'GLIBC_[0-9.]*' <<<"$line" | sed 's/GLIBC_//')
      [ "$(printf '%s\n%s\n' "$v" "$GLIBC_FLOOR" | sort -V | tail -n 1)" = "$GLIBC_FLOOR" ] || echo "  $line" >&2
    done
    die "glibc floor exceeded: needs GLIBC_$max > $GLIBC_FLOOR (add a shim to vendor/libbpf/gotel_helpers.c)"
  fi
  # Exactly libbpf's API plus the gotel_* functions of our objects: nothing from libelf or zlib.
  exports=$("$NM" -D --defined-only "$so" | awk '{ sub(/@.*/, "", $NF); print $NF }' | grep -v '^LIBBPF_\|^GOTEL_' | sort -u)
  want=$( { sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);[[:space:]]*$/\1/p' "$W/libbpf/src/libbpf.map";
            "$NM" -g --defined-only "${objs[@]}" | awk '$3 ~ /^gotel_/ { print $3 }'; } | sort -u)
  bad=$(comm -3 <(echo "$exports") <(echo "$want") | sed 's/^\t/  missing: /; t; s/^/  extra: /')
  [ -z "$bad" ] || { head -n 20 <<<"$bad" >&2; die "the exported symbols are not exactly libbpf's API plus gotel_*"; }

  # -- install
  mkdir -p "$OUT/$ARCH"
  cp "$so" "$OUT/$ARCH/libbpf.so.tmp" && mv "$OUT/$ARCH/libbpf.so.tmp" "$OUT/$ARCH/libbpf.so"
  echo "$LIBBPF_VERSION" >"$OUT/$ARCH/VERSION"
  rm -rf "$OUT/include.tmp"; cp -r "$W/headers/include" "$OUT/include.tmp"
  rm -rf "$OUT/include"; mv "$OUT/include.tmp" "$OUT/include"
  inputs_hash "$ARCH" >"$OUT/$ARCH/.inputs-hash"
  step "built ${OUT#"$ROOT"/}/$ARCH/libbpf.so ($(stat -c %s "$OUT/$ARCH/libbpf.so") bytes, $(wc -l <<<"$exports") exports) in $(elapsed "$t0") s"
)

for ARCH in "${TODO[@]}"; do
  build_arch
done
ARCH=all
step "done in $(elapsed "$T0") s"

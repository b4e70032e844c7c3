#!/usr/bin/env bash
# scripts/build-postgres.sh — unpacks Debian's PostgreSQL server for the end-to-end tests of the database/sql
# instrumentation (test/support/postgres.ts starts it on loopback with its own data directory).
#
# usage: scripts/build-postgres.sh            (a no-op when it is already unpacked)
#
# Nothing is installed on the machine: the .debs are fetched with the private APT configuration
# (scripts/lib/private-apt.sh: no dpkg lock, the machine's apt state untouched) and unpacked under
# build/postgres/root; the libraries the host lacks come from the same place and are found through
# LD_LIBRARY_PATH (build/postgres/env prints it). The server runs as an unprivileged user (it refuses root).
#
# Outputs: build/postgres/root/usr/lib/postgresql/15/bin/{postgres,initdb,pg_ctl}, build/postgres/env
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$ROOT/build/postgres"
PG_MAJOR=15
# the server, and every library it links that a minimal Debian may not have (already present ones are harmless)
PACKAGES=(postgresql-$PG_MAJOR libpq5 libicu72 libxml2 libxslt1.1 libldap-2.5-0 libsasl2-2 libgssapi-krb5-2
  libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libssl3 liblz4-1 libzstd1 libsystemd0 libpam0g libselinux1
  libuuid1 libcap2 libgcrypt20 libgpg-error0 liblzma5 libpcre2-8-0 zlib1g)
STAMP="$OUT/.inputs"
BIN="$OUT/root/usr/lib/postgresql/$PG_MAJOR/bin"

inputs() { { cat "$HERE/build-postgres.sh"; uname -m; } | sha256sum | cut -d' ' -f1; }
[ -x "$BIN/postgres" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs)" ] && exit 0

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
command -v flock >/dev/null && flock 9
[ -x "$BIN/postgres" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(inputs)" ] && exit 0

# shellcheck source=lib/private-apt.sh
source "$HERE/lib/private-apt.sh"
echo "postgres: fetching PostgreSQL $PG_MAJOR from the Debian archive"
papt_update
papt_fetch_debs "$OUT/debs" "${PACKAGES[@]}"
rm -rf "$OUT/root"
papt_extract "$OUT/root" "$OUT"/debs/*.deb

libdir=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
env_line="LD_LIBRARY_PATH=$OUT/root/usr/lib/$libdir:$OUT/root/lib/$libdir"
echo "$env_line" >"$OUT/env"
# every library of the server must resolve (the host's first, then ours)
if env "$env_line" ldd "$BIN/postgres" | grep -q 'not found'; then
  env "$env_line" ldd "$BIN/postgres" | grep 'not found' >&2
  echo "postgres: ERROR: libraries missing for $BIN/postgres (add their packages to PACKAGES)" >&2
  exit 1
fi
env "$env_line" "$BIN/postgres" --version
inputs >"$STAMP"

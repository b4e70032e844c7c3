#!/usr/bin/env bash
# scripts/build-databases.sh — unpacks Debian's PostgreSQL and MariaDB servers for the end-to-end tests of the
# database/sql instrumentation (test/support/databases.ts starts them on loopback with their own data
# directories, as an unprivileged user: both refuse to run as root).
#
# usage: scripts/build-databases.sh            (a no-op when both are already unpacked)
#
# Nothing is installed on the machine: the .debs are fetched with the private APT configuration
# (scripts/lib/private-apt.sh: no dpkg lock, the machine's apt state untouched) and unpacked under
# build/<server>/root; the libraries the host lacks come from the same place and are found through
# LD_LIBRARY_PATH (build/<server>/env holds it).
#
# Outputs: build/postgres/root/usr/lib/postgresql/15/bin/{postgres,initdb,pg_ctl},
#          build/mariadb/root/usr/{sbin/mariadbd,bin/mariadb-install-db}, and build/<server>/env
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

# unpack NAME SERVER_BINARY(relative to the root) PACKAGE...
#   the server and every library it links that a minimal Debian may not have (already present ones are harmless)
unpack() {
  local name=$1 server=$2; shift 2
  local out="$ROOT/build/$name" stamp inputs
  stamp="$out/.inputs"
  inputs=$({ cat "$HERE/build-databases.sh"; uname -m; echo "$*"; } | sha256sum | cut -d' ' -f1)
  [ -x "$out/root/$server" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] && return 0
  mkdir -p "$out"
  (
    exec 9>"$out/.lock"
    command -v flock >/dev/null && flock 9
    [ -x "$out/root/$server" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] && exit 0
    echo "databases: fetching $name from the Debian archive"
    papt_update
    papt_fetch_debs "$out/debs" "$@"
    rm -rf "$out/root"
    papt_extract "$out/root" "$out"/debs/*.deb
    local libdir env_line
    libdir=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
    env_line="LD_LIBRARY_PATH=$out/root/usr/lib/$libdir:$out/root/lib/$libdir"
    echo "$env_line" >"$out/env"
    # every library of the server must resolve (the host's first, then ours)
    if env "$env_line" ldd "$out/root/$server" | grep -q 'not found'; then
      env "$env_line" ldd "$out/root/$server" | grep 'not found' >&2
      echo "databases: ERROR: libraries missing for $out/root/$server (add their packages)" >&2
      exit 1
    fi
    env "$env_line" "$out/root/$server" --version
    echo "$inputs" >"$stamp"
  )
}

# shellcheck source=lib/private-apt.sh
source "$HERE/lib/private-apt.sh"

unpack postgres usr/lib/postgresql/15/bin/postgres postgresql-15 libpq5 libicu72 libxml2 libxslt1.1 libldap-2.5-0 \
  libsasl2-2 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libssl3 liblz4-1 libzstd1 \
  libsystemd0 libpam0g libselinux1 libuuid1 libcap2 libgcrypt20 libgpg-error0 liblzma5 libpcre2-8-0 zlib1g
# mariadb-server has mariadb-install-db; the -core packages the server, its system tables and the client tools
unpack mariadb usr/sbin/mariadbd mariadb-server-core mariadb-server mariadb-client-core libaio1 libnuma1 liburing2 \
  libssl3 libsystemd0 libpcre2-8-0 zlib1g libcrypt1 liblz4-1 libzstd1 libcap2 libgcrypt20 libgpg-error0 liblzma5

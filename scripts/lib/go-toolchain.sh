# Sourced. A Go toolchain new enough for what follows, whatever `go` the machine has: with Go >= 1.21 a newer
# release is selected through GOTOOLCHAIN; an older go (Debian 12's golang-go is 1.19) cannot switch, so the
# same golang.org/toolchain module is downloaded through the module proxy into build/go-toolchain/ instead.
#
#   use_go MIN FALLBACK    sets GO (the command to run) and exports PATH / GOTOOLCHAIN accordingly
# Needs ROOT (the checkout) and a `go` on PATH (any version).

go_version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }  # $1 >= $2

use_go() {
  local min=$1 fallback=$2 local_go garch tc dir
  command -v go >/dev/null || { echo "go: no go command on PATH" >&2; return 1; }
  local_go=$(go env GOVERSION 2>/dev/null | sed 's/^go//; s/[^0-9.].*$//')
  [ -n "$local_go" ] || local_go=$(go version | sed -n 's/^go version go\([0-9.]*\).*/\1/p')
  GO=go
  if go_version_ge "$local_go" "$min"; then
    export GOTOOLCHAIN=local
  elif go_version_ge "$local_go" 1.21; then
    export GOTOOLCHAIN="go$fallback"
  else
    case "$(uname -m)" in x86_64) garch=amd64 ;; aarch64) garch=arm64 ;; *) echo "go: unsupported host $(uname -m)" >&2; return 1 ;; esac
    tc="$ROOT/build/go-toolchain/go$fallback"
    if [ ! -x "$tc/bin/go" ]; then
      echo "go: go $local_go is older than 1.21: downloading go $fallback (golang.org/toolchain) into build/go-toolchain" >&2
      dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "golang.org/toolchain@v0.0.1-go$fallback.linux-$garch" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
      [ -n "$dir" ] && [ -d "$dir" ] || { echo "go: could not download golang.org/toolchain@v0.0.1-go$fallback.linux-$garch" >&2; return 1; }
      rm -rf "$tc.tmp"; mkdir -p "$(dirname "$tc")"; cp -r "$dir" "$tc.tmp"; chmod -R u+w "$tc.tmp"
      chmod +x "$tc.tmp"/bin/* "$tc.tmp"/pkg/tool/*/*
      rm -rf "$tc"; mv "$tc.tmp" "$tc"
    fi
    GO="$tc/bin/go"
    export PATH="$tc/bin:$PATH" GOTOOLCHAIN=local
  fi
}

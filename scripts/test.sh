#!/usr/bin/env bash
# The test command (npm test): sets up and builds everything from a clean checkout, runs every test (unit
# tests, and kernel tests which need root), and ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
log=build/test-output.txt

if ! bash scripts/setup.sh || ! node_modules/.bin/bun scripts/build.ts || ! node_modules/.bin/bun scripts/build-fixtures.ts || ! bash scripts/build-collector.sh || ! bash scripts/build-databases.sh || ! bash scripts/build-kafka.sh || ! bash scripts/build-kernels.sh; then
  echo "setup or build failed (see above)"
  echo "0 passed, 1 failed"
  exit 1
fi

# a toolchain setup.sh fetched for an old machine go comes first (tests also run go themselves)
for d in build/go-toolchain/go*/bin; do [ -x "$d/go" ] && PATH="$PWD/$d:$PATH"; done
export PATH
node_modules/.bin/bun test --timeout 120000 "$@" test/ 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -n 1 | tr -dc 0-9)
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -n 1 | tr -dc 0-9)
passed=${passed:-0}
failed=${failed:-0}
# a crash of the runner itself, or no tests at all, must not look like success
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
if [ "$passed" = 0 ] && [ "$failed" = 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# The Node.js binding's tests, from anywhere (CI calls it from the repository root):
#   bash bindings/node/run_tests.sh
# Installs node, npm and redis-server with apt-get when missing, builds the library
# (cargo build --release --lib; a no-op when it is up to date), installs the pinned
# packages (npm ci), checks the TypeScript declarations (tsc --noEmit on a typed usage
# file) and runs the tests (node --test). Exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "==> cargo build --release --lib"
cd "$repo"
cargo build --release --lib
target_dir="$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () =>
    console.log(JSON.parse(s).target_directory))')"
library="$target_dir/release/libsession.so.0"
if [ ! -e "$library" ]; then
  echo "run_tests.sh: $library is missing after the build" >&2
  exit 1
fi
export LIBSESSION_LIBRARY="$library"

cd "$here"
echo "==> npm ci (bindings/node)"
npm ci --no-audit --no-fund
echo "==> tsc --noEmit (index.d.ts against test/types/usage.ts)"
./node_modules/.bin/tsc --noEmit -p test/types
echo "==> node --test (LIBSESSION_LIBRARY=$LIBSESSION_LIBRARY)"
node --test test/*.test.js

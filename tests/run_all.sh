#!/usr/bin/env bash
# The whole test suite, as the README documents it and as CI runs it:
#   bash tests/run_all.sh
# Installs what the tests need (C compiler, cmake, pkg-config, binutils, valgrind,
# redis-server, openssl) with apt-get when it is missing, then runs formatting and
# lint checks, `cargo test` (Rust tests; the C programs compiled against the real
# header and library, once under valgrind; an install into a temporary prefix with
# C consumers built by pkg-config and find_package) and the CMake build with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "==> cargo clippy --no-default-features --lib -- -D warnings (the build without Redis)"
cargo clippy --no-default-features --lib -- -D warnings
echo "==> cargo test"
cargo test
echo "==> cmake build and ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j 2
ctest --test-dir build --output-on-failure

#!/usr/bin/env bash
# The whole test suite, as the README documents it and as CI runs it:
#   bash tests/run_all.sh
# Installs what the tests need (C compiler, cmake, pkg-config, binutils, valgrind,
# redis-server, openssl, python3-venv, Node.js, libmicrohttpd, curl, Chromium) with
# apt-get when it is missing, then runs formatting and lint checks, `cargo test`
# (Rust tests; the C programs compiled against the real header and library, once
# under valgrind; an install into a temporary prefix with C consumers built by
# pkg-config and find_package), a smoke run of every fuzz target, the CMake build
# with ctest, the Python and Node.js packages' tests, and the web demo's end-to-end
# tests.
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
# The Python and Node.js packages, and the web demo (libmicrohttpd, curl, Chromium).
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v curl >/dev/null 2>&1 || missing+=(curl)
pkg-config --exists libmicrohttpd >/dev/null 2>&1 || missing+=(libmicrohttpd-dev)
[ -x /usr/bin/chromium ] || missing+=(chromium)
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
echo "==> the build without Redis: clippy and its unit tests (cargo --no-default-features)"
cargo clippy --no-default-features --lib -- -D warnings
cargo test --no-default-features --lib
echo "==> cargo test"
cargo test
echo "==> fuzz smoke run: every target, ${FUZZ_SMOKE_RUNS:-20000} inputs from a fixed seed (fuzz/run.sh)"
bash fuzz/run.sh smoke
echo "==> cmake build and ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j 2
ctest --test-dir build --output-on-failure
echo "==> Python package: bindings/python/run_tests.sh"
bash bindings/python/run_tests.sh
echo "==> Node.js package: bindings/node/run_tests.sh"
bash bindings/node/run_tests.sh
echo "==> web demo: c_examples/web/run_tests.sh (curl, headless Chromium, valgrind)"
bash c_examples/web/run_tests.sh

#!/bin/sh
# The README demo: builds libsession, compiles c_examples/crud.c against it and
# runs it in target/demo, where the embedded default keeps the sessions in
# ./sessions. Works from any directory; needs only the Rust toolchain and cc.
#
#   sh c_examples/run_demo.sh
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
demo="$repo/target/demo"
lib="$repo/target/release"
CC=${CC:-cc}

command -v cargo >/dev/null 2>&1 || { echo "run_demo: cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
command -v "$CC" >/dev/null 2>&1 || { echo "run_demo: $CC not found: apt-get install gcc libc6-dev" >&2; exit 1; }

echo "==> cargo build --release"
(cd "$repo" && cargo build --release --lib)

mkdir -p "$demo"
echo "==> $CC c_examples/crud.c -> $demo/crud"
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic -I"$repo/include" "$repo/c_examples/crud.c" \
    -o "$demo/crud" -L"$lib" -Wl,-rpath,"$lib" -lsession -lpthread

echo "==> running $demo/crud in $demo"
cd "$demo"
./crud

echo "==> session files are kept in $demo/sessions:"
ls -la "$demo/sessions"
echo "(crud logged out, so its session file was deleted; a live session is one file named by its id)"

#!/usr/bin/env bash
# Builds the web demo: libsession and sessionctl (cargo build --release), then
# c_examples/web/server.c against it and libmicrohttpd, into target/web/server.
# Installs gcc, pkg-config and libmicrohttpd-dev with apt-get when missing.
# Works from any directory; prints the server's path last.
#
#   bash c_examples/web/build.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$repo/c_examples/web/deps.sh"
web_need cc microhttpd

out="$repo/target/web"
CC=${CC:-cc}
mkdir -p "$out"
echo "==> cargo build --release --lib --bin sessionctl"
(cd "$repo" && cargo build --release --lib --bin sessionctl --quiet)
echo "==> $CC c_examples/web/server.c -> target/web/server"
cd "$repo"
# Where cargo put the library (CARGO_TARGET_DIR or a cargo config may move it).
lib=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)/release
[ -e "$lib/libsession.so.0" ] || ln -sf libsession.so "$lib/libsession.so.0"
# The README's link line for libsession (from the build tree), pkg-config for MHD.
# shellcheck disable=SC2046
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic -O2 -g \
  -Iinclude $(pkg-config --cflags libmicrohttpd) \
  c_examples/web/server.c -o "$out/server" \
  -L"$lib" -Wl,-rpath,"$lib" -lsession \
  $(pkg-config --libs libmicrohttpd) -lpthread
echo "$out/server"

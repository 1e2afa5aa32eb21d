#!/usr/bin/env bash
# Load test of the web demo with wrk: GET /profile with a valid session cookie
# (one session_get_value per request) on the file and Redis drivers, and GET /
# (a static page, no libsession call) as the server's own floor. Prints wrk's
# requests/s and latency distribution for each; fails if any answer was not 200
# or wrk reported socket errors. Not part of run_tests.sh:
#
#   bash c_examples/web/load.sh
#
# Settings (environment): LOAD_SECS=10 per run, LOAD_CONNS=32 connections,
# LOAD_THREADS=2 wrk threads, WEB_THREADS=4 server threads, LOAD_DRIVERS="file redis"
# (memory also works). Installs wrk, curl, redis-server, gcc, pkg-config and
# libmicrohttpd-dev with apt-get when missing. Traffic goes to 127.0.0.1 only.
set -uo pipefail

WEB_DIR=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$WEB_DIR/../.." && pwd)
secs=${LOAD_SECS:-10}
conns=${LOAD_CONNS:-32}
threads=${LOAD_THREADS:-2}
export WEB_THREADS=${WEB_THREADS:-4}

# shellcheck source=c_examples/web/deps.sh
. "$WEB_DIR/deps.sh"
web_need cc microhttpd curl redis wrk || exit 1
bash "$WEB_DIR/build.sh" >/dev/null || { echo "FATAL: build failed" >&2; exit 1; }
export WEB_SERVER="$repo/target/web/server"
WEB_WORK=$(mktemp -d "${TMPDIR:-/tmp}/web-load.XXXXXX")
# shellcheck source=c_examples/web/testlib.sh
. "$WEB_DIR/testlib.sh"
trap web_cleanup EXIT

failures=0
# run_wrk LABEL PATH [wrk args]: one wrk run against $BASE, output shown.
run_wrk() {
  local label=$1 path=$2 out
  shift 2
  echo
  local shown=""
  [ "$#" -eq 0 ] || shown=$(printf '%q ' "$@")
  echo "==> $label: wrk -t$threads -c$conns -d${secs}s --latency $shown$BASE$path"
  out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$@" "$BASE$path" 2>&1)
  echo "$out"
  if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
    echo "FAIL $label: some answers were not 200"; failures=$((failures + 1))
  elif grep -q 'Socket errors' <<<"$out"; then
    echo "FAIL $label: socket errors"; failures=$((failures + 1))
  elif ! grep -q 'Requests/sec' <<<"$out"; then
    echo "FAIL $label: wrk did not run"; failures=$((failures + 1))
  fi
}

echo "wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}'), $(nproc) cores, server thread pool $WEB_THREADS"
for driver in ${LOAD_DRIVERS:-file redis}; do
  case "$driver" in
    file) config="$WEB_DIR/config.file.json" ;;
    memory) config="$WEB_DIR/config.memory.json" ;;
    redis)
      start_redis "$WEB_WORK/redis"
      config="$WEB_WORK/config.redis.json"
      redis_config "$REDIS_PORT" "$config" ;;
    *) echo "unknown driver $driver" >&2; exit 2 ;;
  esac
  start_server "$driver" "$config"
  login "$WEB_WORK/$driver.jar"
  http GET /profile -b "$WEB_WORK/$driver.jar"
  if [ "$STATUS $BODY" != "200 User ID: 42" ]; then
    echo "FATAL: [$driver] login then profile answered $STATUS $BODY" >&2
    exit 1
  fi
  if [ "$driver" = file ]; then
    run_wrk "[$driver] GET / (static page, no session call: the floor)" /
  fi
  run_wrk "[$driver] GET /profile with a valid session cookie" /profile -H "Cookie: session_id=$SID"
  http GET /profile -b "$WEB_WORK/$driver.jar"
  [ "$STATUS $BODY" = "200 User ID: 42" ] || { echo "FAIL [$driver] profile after the load: $STATUS"; failures=$((failures + 1)); }
  stop_server
  [ "$SERVER_STATUS" = 0 ] || { echo "FAIL [$driver] server exit status $SERVER_STATUS"; failures=$((failures + 1)); }
done
echo
if [ "$failures" -eq 0 ]; then echo "load: all runs answered 200"; else echo "load: $failures failed"; fi
[ "$failures" -eq 0 ]

# Sourced by run_tests.sh and load.sh: starting and stopping the demo server and a
# private redis-server on free loopback ports, and one HTTP request with curl.
# Needs: $WEB_WORK (a scratch directory), $WEB_SERVER (the built server), $WEB_DIR.
# It sets variables for its callers (STATUS, BODY, SID, PORT, ...):
# shellcheck disable=SC2034

WEB_PIDS=()        # every process started here, stopped by web_cleanup

web_die() { echo "FATAL: $*" >&2; exit 1; }

# Stops what was started (by pid, never by name) and removes $WEB_WORK unless
# WEB_KEEP=1.
web_cleanup() {
  local pid
  for pid in "${WEB_PIDS[@]}"; do
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${WEB_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "${WEB_KEEP:-0}" = 1 ]; then
    echo "kept $WEB_WORK"
  else
    rm -rf "$WEB_WORK"
  fi
}

# start_server NAME CONFIG [PREFIX...]: runs the server in $WEB_WORK/NAME (made,
# with the file config's relative root web-storage in it) on port 0, waits for
# its "listening on 127.0.0.1:PORT" line. Sets SERVER_PID, PORT, BASE, SDIR.
# PREFIX (e.g. valgrind ...) runs in front of the server.
start_server() {
  local name=$1 config=$2
  shift 2
  SDIR="$WEB_WORK/$name"
  mkdir -p "$SDIR/web-storage"
  (cd "$SDIR" && exec "$@" "$WEB_SERVER" "$config" 0 "${WEB_THREADS:-4}" >"$SDIR/stdout" 2>"$SDIR/stderr") &
  SERVER_PID=$!
  WEB_PIDS+=("$SERVER_PID")
  local i line
  for ((i = 0; i < ${WEB_START_TRIES:-100}; i++)); do
    line=$(head -n 1 "$SDIR/stdout" 2>/dev/null)
    case "$line" in
      "listening on 127.0.0.1:"*)
        PORT=${line#listening on 127.0.0.1:}
        BASE="http://127.0.0.1:$PORT"
        return 0 ;;
    esac
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$SDIR/stderr" >&2
  web_die "server $name ($config) did not start"
}

# stop_server: SIGTERM, then its exit status in SERVER_STATUS.
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null
  # Bounded: a server that does not stop within 30 s is killed and fails the run.
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    web_die "server did not stop within 30 s of SIGTERM"
  fi
  wait "$SERVER_PID"
  SERVER_STATUS=$?
}

# start_redis DIR [PORT]: a redis-server of our own with an append-only file
# (fsync always: a SIGKILL loses nothing) in DIR, on PORT or a free random port
# (retried until one binds). Sets REDIS_PID and REDIS_PORT.
start_redis() {
  local dir=$1 want=${2:-} port try i
  mkdir -p "$dir"
  for ((try = 0; try < 20; try++)); do
    # Below the ephemeral range (32768 and up), where other tests' servers and
    # clients take their ports.
    port=${want:-$((20000 + RANDOM % 12000))}
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' \
      --appendonly yes --appendfsync always --daemonize no --loglevel warning \
      --logfile "$dir/redis.log" &
    REDIS_PID=$!
    WEB_PIDS+=("$REDIS_PID")
    for ((i = 0; i < 100; i++)); do
      # PONG from *our* server: another Redis already on that port would answer
      # too while ours fails to bind.
      if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && kill -0 "$REDIS_PID" 2>/dev/null \
        && redis-cli -p "$port" INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$REDIS_PID"; then
        REDIS_PORT=$port
        return 0
      fi
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill -TERM "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    [ -z "$want" ] || break
  done
  tail -5 "$dir/redis.log" >&2
  web_die "cannot start redis-server${want:+ on port $want}"
}

# redis_config PORT OUT: config.redis.json with its port replaced by PORT.
redis_config() {
  sed "s/\"port\": 6379/\"port\": $1/" "$WEB_DIR/config.redis.json" >"$2"
  grep -q "\"port\": $1" "$2" || web_die "could not set the Redis port in $2"
}

# http METHOD PATH [CURL ARGS...]: one request to $BASE. Sets STATUS, BODY and
# HEADERS (the response headers, CR removed). POST sends an empty form body
# unless the arguments carry one.
http() {
  local method=$1 path=$2
  shift 2
  local extra=()
  case "$method" in
    HEAD) extra=(--head) ;;
    POST) case " $* " in *" -d "* | *" --data"*) ;; *) extra=(--data '') ;; esac ;;
    *) extra=(-X "$method") ;;
  esac
  STATUS=$(curl -sS --max-time 15 --path-as-is "${extra[@]}" -D "$WEB_WORK/.headers" \
    -o "$WEB_WORK/.body" -w '%{http_code}' "$@" "$BASE$path" 2>"$WEB_WORK/.curlerr") \
    || STATUS="curl-error($(tr '\n' ' ' <"$WEB_WORK/.curlerr"))"
  BODY=$(cat "$WEB_WORK/.body" 2>/dev/null)
  HEADERS=$(tr -d '\r' <"$WEB_WORK/.headers" 2>/dev/null)
}

# header NAME: the values of response header NAME of the last request, one a line.
header() {
  printf '%s\n' "$HEADERS" | sed -n "s/^$1: //Ip"
}

# login JAR: POST /login with a cookie jar; sets SID to the id it received.
login() {
  http POST /login -b "$1" -c "$1"
  SID=$(header set-cookie | sed -n 's/^session_id=\([0-9a-f]\{64\}\);.*/\1/p')
}

#!/usr/bin/env bash
# End-to-end tests of the web demo (c_examples/web/server.c), from any directory:
#
#   bash c_examples/web/run_tests.sh
#
# Builds libsession and the server (build.sh), installs what is missing with
# apt-get (gcc, pkg-config, libmicrohttpd-dev, curl, redis-server, chromium,
# valgrind), then drives real servers on free loopback ports:
#   - curl with cookie jars on the file, memory and Redis drivers: login, profile,
#     logout, a re-login that replaces the id, logout-everywhere, forged, malformed,
#     stale and destroyed cookies, the exact Set-Cookie values, 303s for browsers,
#     404/405, hostile requests, concurrent requests;
#   - files: a planted and a tampered session (CORRUPT: 401), an expired one, the
#     session directory gone (503) and back;
#   - Redis (a redis-server of its own): frozen (503), killed (503), restarted on
#     the same port (the same cookie works again, the demo never restarted);
#   - headless Chromium logging in through the HTML form and keeping the cookie;
#   - the server under valgrind: no invalid access, no leak, clean exit.
# Every check prints "ok" or "FAIL"; it ends with "N passed, N failed" and exits
# non-zero when any failed. WEB_KEEP=1 keeps the scratch directory.
set -uo pipefail

WEB_DIR=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$WEB_DIR/../.." && pwd)
started=$(date +%s)

# shellcheck source=c_examples/web/deps.sh
. "$WEB_DIR/deps.sh"
web_need cc microhttpd curl redis chromium valgrind || exit 1
bash "$WEB_DIR/build.sh" || { echo "FATAL: build failed" >&2; exit 1; }
export WEB_SERVER="$repo/target/web/server"
SESSIONCTL="$(cd "$repo" && cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)/release/sessionctl"
CHROMIUM=/usr/bin/chromium

WEB_WORK=$(mktemp -d "${TMPDIR:-/tmp}/web-demo.XXXXXX")
# shellcheck source=c_examples/web/testlib.sh
. "$WEB_DIR/testlib.sh"
trap web_cleanup EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
# expect NAME EXPECTED ACTUAL
expect() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
# expect_match NAME REGEX VALUE (bash extended regex)
expect_match() {
  if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1: [$3] does not match /$2/"; fi
}
# expect_contains NAME NEEDLE HAYSTACK
expect_contains() {
  case "$3" in *"$2"*) pass "$1" ;; *) fail "$1: [$2] not in [${3:0:300}]" ;; esac
}

random_id() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
lifetime_of() { sed -n 's/.*"lifetime": *\([0-9]*\).*/\1/p' "$1" | head -n 1; }

# The Set-Cookie of a login: exactly one, every attribute as configured, Expires
# now + lifetime (within 5 s).
check_set_cookie() {
  local what=$1 lifetime=$2 cookies count expires when now
  cookies=$(header set-cookie)
  count=$(printf '%s' "$cookies" | grep -c '^' || true)
  expect "$what: exactly one Set-Cookie" 1 "$count"
  local date='[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT'
  expect_match "$what: Set-Cookie is session_id=<64 hex>; Max-Age=$lifetime; Expires=<date>; Path=/; Secure; HttpOnly; SameSite=Lax" \
    "^session_id=[0-9a-f]{64}; Max-Age=$lifetime; Expires=$date; Path=/; Secure; HttpOnly; SameSite=Lax\$" \
    "$cookies"
  expires=$(printf '%s' "$cookies" | sed -n 's/.*; Expires=\([^;]*\);.*/\1/p')
  when=$(date -d "$expires" +%s 2>/dev/null || echo 0)
  now=$(date +%s)
  if [ $((when - now - lifetime)) -le 5 ] && [ $((when - now - lifetime)) -ge -5 ]; then
    pass "$what: Expires is now + $lifetime s"
  else
    fail "$what: Expires $expires is not now + $lifetime s"
  fi
}

# The Set-Cookie of a logout: exactly the clearing cookie.
check_clear_cookie() {
  expect "$1: Set-Cookie clears the cookie" \
    "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax" \
    "$(header set-cookie)"
}

# profile_status COOKIE_HEADER_VALUE: STATUS of GET /profile with that Cookie.
profile_with() { http GET /profile -H "Cookie: $1"; }

# The whole flow with curl, on the server at $BASE. $1: label, $2: config.
flow() {
  local d=$1 config=$2 lifetime jar="$WEB_WORK/$1" first before forged
  lifetime=$(lifetime_of "$config")

  http GET /
  expect "[$d] GET / answers 200" 200 "$STATUS"
  expect "[$d] GET / is HTML" "text/html; charset=utf-8" "$(header content-type)"
  expect_contains "[$d] GET / has the login form" '<form id="login" method="post" action="/login">' "$BODY"
  expect_contains "[$d] GET / has the logout button" 'action="/logout"' "$BODY"
  expect_contains "[$d] GET / has the logout-everywhere button" 'action="/logout-everywhere"' "$BODY"
  expect_contains "[$d] GET / links the profile" 'href="/profile"' "$BODY"

  http GET /profile
  expect "[$d] profile without a cookie: 401" 401 "$STATUS"

  login "$jar.a"
  expect "[$d] login: 200" 200 "$STATUS"
  expect "[$d] login: body" "Login successful" "$BODY"
  check_set_cookie "[$d] login" "$lifetime"
  expect_contains "[$d] login: the cookie jar holds the cookie" "session_id	$SID" "$(cat "$jar.a")"
  first=$SID
  if [ -n "${STORED_CMD:-}" ]; then
    expect "[$d] the session holds exactly {\"user_id\":42,\"role\":\"admin\"}" \
      '{"user_id":42,"role":"admin"}' "$($STORED_CMD "$SID")"
  fi

  http GET /profile -b "$jar.a" -c "$jar.a"
  expect "[$d] profile with the jar: 200" 200 "$STATUS"
  expect "[$d] profile with the jar: body" "User ID: 42" "$BODY"
  expect "[$d] profile sets no cookie" "" "$(header set-cookie)"

  login "$jar.a"
  expect "[$d] re-login: 200" 200 "$STATUS"
  check_set_cookie "[$d] re-login" "$lifetime"
  if [ -n "$SID" ] && [ "$SID" != "$first" ]; then pass "[$d] re-login: a new id"; else fail "[$d] re-login: the id did not change"; fi
  http GET /profile -b "$jar.a"
  expect "[$d] profile after re-login: 200 User ID: 42" "200 User ID: 42" "$STATUS $BODY"
  profile_with "session_id=$first"
  expect "[$d] stale cookie (the id from before the re-login): 401" 401 "$STATUS"

  before=$SID
  http POST /logout -b "$jar.a" -c "$jar.a"
  expect "[$d] logout: 200 Logged out" "200 Logged out" "$STATUS $BODY"
  check_clear_cookie "[$d] logout"
  if grep -q session_id "$jar.a"; then fail "[$d] logout: the jar still holds the cookie"; else pass "[$d] logout: the jar dropped the cookie"; fi
  http GET /profile -b "$jar.a"
  expect "[$d] profile after logout: 401" 401 "$STATUS"
  profile_with "session_id=$before"
  expect "[$d] the logged-out id sent again: 401" 401 "$STATUS"
  http POST /logout -b "$jar.a"
  expect "[$d] logout without a session: 200" 200 "$STATUS"

  forged=$(random_id)
  profile_with "session_id=$forged"
  expect "[$d] forged cookie (random 64 hex digits): 401" 401 "$STATUS"
  local upper case
  upper=$(printf '%s' "$forged" | tr a-f A-F)
  for case in "short|session_id=abc" "uppercase hex|session_id=$upper" \
    "63 hex digits|session_id=${forged:0:63}" "65 hex digits|session_id=${forged}0" \
    "a path|session_id=../../../../etc/passwd" "quoted, 65 chars|session_id=\"${forged}x\"" \
    "empty value|session_id=" "no value|session_id" \
    "a slash inside|session_id=${forged:0:32}/${forged:32:31}" \
    "non-hex letters|session_id=${forged:0:60}wxyz" "another cookie's name|other=$forged" \
    "only separators|;;;=;"; do
    profile_with "${case#*|}"
    expect "[$d] malformed cookie ($(printf '%s' "${case%%|*}")): 401" 401 "$STATUS"
  done

  login "$jar.b"
  local b=$SID
  login "$jar.c"
  local c=$SID
  http GET /profile -b "$jar.b"
  expect "[$d] second browser B: 200" 200 "$STATUS"
  http GET /profile -b "$jar.c"
  expect "[$d] third browser C: 200" 200 "$STATUS"
  http POST /logout-everywhere -b "$jar.b" -c "$jar.b"
  expect "[$d] logout-everywhere from B: 200, both sessions ended" \
    "200 Logged out everywhere: 2 sessions ended" "$STATUS $BODY"
  check_clear_cookie "[$d] logout-everywhere"
  http GET /profile -b "$jar.b"
  expect "[$d] B after logout-everywhere: 401" 401 "$STATUS"
  expect_contains "[$d] C's jar still holds its cookie" "session_id	$c" "$(cat "$jar.c")"
  http GET /profile -b "$jar.c"
  expect "[$d] C after logout-everywhere (its cookie sent): 401" 401 "$STATUS"
  profile_with "session_id=$b"
  expect "[$d] B's id sent again: 401" 401 "$STATUS"
  http POST /logout-everywhere
  expect "[$d] logout-everywhere without a session: 401" 401 "$STATUS"

  # A browser's form post: 303 to /profile, then the HTML profile.
  http POST /login -H 'Accept: text/html,application/xhtml+xml' -d 'username=admin&password=demo' \
    -b "$jar.d" -c "$jar.d"
  expect "[$d] form login (Accept: text/html): 303" 303 "$STATUS"
  expect "[$d] form login: Location /profile" "/profile" "$(header location)"
  check_set_cookie "[$d] form login" "$lifetime"
  http GET /profile -H 'Accept: text/html' -b "$jar.d"
  expect "[$d] HTML profile: 200" 200 "$STATUS"
  expect "[$d] HTML profile: text/html" "text/html; charset=utf-8" "$(header content-type)"
  expect_contains "[$d] HTML profile shows User ID: 42" '<p id="message">User ID: 42</p>' "$BODY"
  local raw
  raw=$(exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'HEAD /profile HTTP/1.0\r\nCookie: %s\r\n\r\n' \
    "$(sed -n 's/.*\tsession_id\t/session_id=/p' "$jar.d")" >&3 && timeout 5 cat <&3 | tr -d '\r')
  expect "[$d] HEAD /profile: 200, Content-Length 11, no body" "HTTP/1.1 200 OK|Content-Length: 11|" \
    "$(printf '%s' "$raw" | head -n 1)|$(printf '%s\n' "$raw" | grep -i '^content-length:')|$(printf '%s\n' "$raw" | sed '1,/^$/d')"
  http GET '/profile?tab=1' -b "$jar.d"
  expect "[$d] profile with a query string: 200" 200 "$STATUS"
  http POST /logout -H 'Accept: text/html' -b "$jar.d" -c "$jar.d"
  expect "[$d] form logout: 303 to /" "303 /" "$STATUS $(header location)"
  check_clear_cookie "[$d] form logout"
  http GET /profile -H 'Accept: text/html' -b "$jar.d"
  expect "[$d] HTML profile after logout: 401" 401 "$STATUS"

  http GET /nope
  expect "[$d] unknown path: 404" 404 "$STATUS"
  http GET /profile/
  expect "[$d] /profile/: 404" 404 "$STATUS"
  http GET /login
  expect "[$d] GET /login: 405, Allow: POST" "405 POST" "$STATUS $(header allow)"
  http DELETE /profile
  expect "[$d] DELETE /profile: 405, Allow: GET, HEAD" "405 GET, HEAD" "$STATUS $(header allow)"
  http POST /profile
  expect "[$d] POST /profile: 405" 405 "$STATUS"
  http PUT /
  expect "[$d] PUT /: 405" 405 "$STATUS"
  http GET /logout
  expect "[$d] GET /logout: 405" 405 "$STATUS"
  http GET /logout-everywhere
  expect "[$d] GET /logout-everywhere: 405" 405 "$STATUS"
}

# Requests no browser sends; afterwards the server still answers.
hostile() {
  local d=$1 jar="$WEB_WORK/$1.hostile" sid big i args=()
  login "$jar"
  sid=$SID
  big=$(head -c 20000 /dev/zero | tr '\0' a)
  profile_with "session_id=$sid; junk=$big"
  expect_match "[$d] a 20 kB Cookie header: 4xx" '^4[0-9][0-9]$' "$STATUS"
  http GET /profile -H "X-Big: $(head -c 100000 /dev/zero | tr '\0' b)"
  expect_match "[$d] a 100 kB header line: 4xx" '^4[0-9][0-9]$' "$STATUS"
  http POST /login -H 'Expect: 100-continue' --data-binary "@$WEB_WORK/big.bin"
  expect "[$d] a 1 MB login body announced with Expect: 100-continue: 413, before the body" 413 "$STATUS"
  http POST /login -H 'Expect:' --data-binary "@$WEB_WORK/mid.bin"
  expect "[$d] a 20 kB login body (Content-Length): 413" 413 "$STATUS"
  http POST /login -H 'Transfer-Encoding: chunked' --data-binary "@$WEB_WORK/mid.bin"
  expect "[$d] a 20 kB chunked login body: 413" 413 "$STATUS"
  http POST /login -H 'Transfer-Encoding: chunked' --data-binary "@$WEB_WORK/huge.bin"
  expect_match "[$d] a 3 MB chunked login body: connection closed" '^(curl-error|100$|413$)' "$STATUS"
  http POST /login -H 'Content-Length: 99999999999999999999999' -H 'Expect: 100-continue'
  expect_match "[$d] Content-Length past 2^64: 4xx" '^4[0-9][0-9]$' "$STATUS"
  profile_with "$(printf 'session_id=\377\376\001%s' "$sid")"
  expect "[$d] 8-bit and control bytes in the cookie: 401" 401 "$STATUS"
  profile_with "session_id=$sid%00"
  expect "[$d] id followed by %00: 401" 401 "$STATUS"
  for ((i = 0; i < 40; i++)); do args+=(-H "Cookie: c$i=v$i"); done
  http GET /profile "${args[@]}" -H "Cookie: session_id=$sid"
  expect "[$d] the session cookie in the 41st Cookie: line: 200" "200 User ID: 42" "$STATUS $BODY"
  profile_with "session_id=$(random_id); session_id=$sid"
  expect "[$d] a forged session_id before the real one: 401 (the first well-formed wins)" 401 "$STATUS"
  profile_with "session_id=junk; session_id=$sid"
  expect "[$d] a malformed session_id before the real one: 200" 200 "$STATUS"
  http GET /../../../etc/passwd
  expect_match "[$d] GET /../../../etc/passwd: 404 or 400" '^(404|400)$' "$STATUS"
  http GET '/%2e%2e/%00'
  expect_match "[$d] GET /%2e%2e/%00: 404 or 400" '^(404|400)$' "$STATUS"
  http BREW /profile
  expect_match "[$d] method BREW: 405 or 501" '^(405|501)$' "$STATUS"
  local reply
  reply=$(exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GARBAGE\r\n\r\n' >&3 && timeout 5 head -n 1 <&3 | tr -d '\r')
  expect_match "[$d] a garbage request line: 400 or closed" '^(HTTP/1\.[01] 400.*)?$' "$reply"
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc' >&3) 2>/dev/null
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GET /profile HTTP/1.1\r\nHost: x\r\nCookie: session_id=' >&3) 2>/dev/null
  reply=$(exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GET /profile HTTP/1.0\r\nCookie: session_id=%s\r\n\r\n' "$sid" >&3 && timeout 5 cat <&3 | tr -d '\r' | tail -n 1)
  expect "[$d] HTTP/1.0 without Host, raw socket: User ID: 42" "User ID: 42" "$reply"
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && head -c $((RANDOM % 3000 + 1)) /dev/urandom >&3) 2>/dev/null
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && { printf 'GET /profile HTTP/1.1\r\nHost: x\r\nCookie: '; head -c $((RANDOM % 500)) /dev/urandom; printf '\r\n\r\n'; } >&3 && timeout 5 head -c 1 <&3 >/dev/null) 2>/dev/null
  done
  pass "[$d] 100 connections of random bytes and 100 requests with random Cookie bytes sent"
  if kill -0 "$SERVER_PID" 2>/dev/null; then pass "[$d] the server is still running"; else fail "[$d] the server died"; fi
  http GET /profile -b "$jar"
  expect "[$d] after all that, profile: 200" 200 "$STATUS"
}

# 200 requests, 16 at a time, and 40 logins, 8 at a time.
concurrent() {
  local d=$1 sid codes
  login "$WEB_WORK/$d.conc"
  sid=$SID
  codes=$(seq 200 | xargs -P 16 -I{} curl -s --max-time 15 -o /dev/null -w '%{http_code}\n' \
    -H "Cookie: session_id=$sid" "$BASE/profile" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
  expect "[$d] 200 profile requests, 16 at a time: all 200" "200 200 " "${codes# }"
  codes=$(seq 40 | xargs -P 8 -I{} curl -s --max-time 15 -o /dev/null -w '%{http_code}\n' --data '' \
    "$BASE/login" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
  expect "[$d] 40 logins, 8 at a time: all 200" "40 200 " "${codes# }"
}

stop_and_check() {
  stop_server
  expect "[$1] SIGTERM: the server exits 0" 0 "$SERVER_STATUS"
  expect "[$1] SIGTERM: it said stopped" "stopped" "$(tail -n 1 "$SDIR/stdout")"
}

head -c 1000000 /dev/zero >"$WEB_WORK/big.bin"
head -c 20000 /dev/zero >"$WEB_WORK/mid.bin"
head -c 3000000 /dev/zero >"$WEB_WORK/huge.bin"

# ---- files --------------------------------------------------------------------
echo "==> file driver (c_examples/web/config.file.json)"
config="$WEB_DIR/config.file.json"
start_server file "$config"
echo "    server on $BASE, sessions in $SDIR/web-storage"
file_stored() { (cd "$SDIR" && "$SESSIONCTL" --config "$config" get "$1"); }
STORED_CMD=file_stored flow file "$config"
hostile file
concurrent file

login "$WEB_WORK/file.plant"
planted=$(random_id)
cp "$SDIR/web-storage/sessions/$SID" "$SDIR/web-storage/sessions/$planted"
profile_with "session_id=$planted"
expect "[file] a session file copied under another id (CORRUPT): 401" 401 "$STATUS"
expect_contains "[file] ... and the server logged a corrupt session" "corrupt session" "$(cat "$SDIR/stderr")"
profile_with "session_id=$SID"
expect "[file] the original still reads: 200" 200 "$STATUS"

# The session directory deleted (kept aside first), then put back.
cp -a "$SDIR/web-storage/sessions" "$WEB_WORK/sessions.saved"
rm -rf "$SDIR/web-storage/sessions"
profile_with "session_id=$SID"
expect "[file] session directory deleted: profile 503 (not 401)" 503 "$STATUS"
expect "[file] 503 has Retry-After" 1 "$(header retry-after)"
http POST /login
expect "[file] session directory deleted: login 503" 503 "$STATUS"
profile_with "session_id=$SID"
expect "[file] session directory deleted: profile still 503" 503 "$STATUS"
mv "$WEB_WORK/sessions.saved" "$SDIR/web-storage/sessions"
sleep 1.2
profile_with "session_id=$SID"
expect "[file] directory back: the same cookie answers 200 User ID: 42" "200 User ID: 42" "$STATUS $BODY"
login "$WEB_WORK/file.back"
expect "[file] directory back: login 200" 200 "$STATUS"

# ---- headless Chromium ---------------------------------------------------------
# The demo's page submits its own login form when opened as /#autologin (nobody
# clicks in a headless browser): the POST answers 303 + Set-Cookie, and the
# browser follows to /profile, which says "User ID: 42" only when the browser sent
# the cookie back. A second Chromium process on the same profile directory then
# opens /profile directly: the cookie was kept on disk and is sent. Each run is
# --dump-dom: the DOM once the page and its navigations settled
# (--virtual-time-budget), printed on stdout.
echo "==> headless Chromium against $BASE"
profile_dir="$WEB_WORK/chromium-profile"
mkdir -p "$profile_dir"
browse() {
  timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --no-first-run --disable-component-update --disable-sync --disable-quic \
    --disable-dev-shm-usage --user-data-dir="$profile_dir" --virtual-time-budget=5000 \
    --dump-dom "$1" 2>>"$WEB_WORK/chromium.log"
}
dom=$(browse "$BASE/profile")
expect_contains "[chromium] /profile before login: Not authenticated" '<p id="message">Not authenticated</p>' "$dom"
dom=$(browse "$BASE/#autologin")
expect_contains "[chromium] the login form posted, redirected to the profile" '<title>Profile</title>' "$dom"
expect_contains "[chromium] the profile shows User ID: 42 (the browser sent the cookie)" '<p id="message">User ID: 42</p>' "$dom"
dom=$(browse "$BASE/profile")
expect_contains "[chromium] a new browser process, same profile: User ID: 42 (cookie kept)" '<p id="message">User ID: 42</p>' "$dom"
dom=$(browse "$BASE/#autologout")
expect_contains "[chromium] the logout form posted, redirected home" '<form id="login"' "$dom"
dom=$(browse "$BASE/profile")
expect_contains "[chromium] /profile after logout: Not authenticated (cookie cleared)" '<p id="message">Not authenticated</p>' "$dom"
stop_and_check file

# ---- files, encrypted, short lifetime -------------------------------------------
echo "==> file driver with a secret and a 2 s lifetime"
config="$WEB_WORK/config.secret.json"
sed -e 's/"lifetime": 3600,/"lifetime": 2, "secret": "web demo test secret: 32 bytes or more, not for production",/' \
  "$WEB_DIR/config.file.json" >"$config"
start_server secret "$config"
login "$WEB_WORK/secret.a"
check_set_cookie "[secret] login" 2
http GET /profile -b "$WEB_WORK/secret.a"
expect "[secret] profile: 200 User ID: 42" "200 User ID: 42" "$STATUS $BODY"
if grep -q user_id "$SDIR/web-storage/sessions/$SID"; then fail "[secret] the session file holds plaintext"; else pass "[secret] no plaintext in the session file"; fi
a=$SID
login "$WEB_WORK/secret.b"
b=$SID
cp "$SDIR/web-storage/sessions/$a" "$SDIR/web-storage/sessions/$b"
http GET /profile -b "$WEB_WORK/secret.b"
expect "[secret] B's file replaced by A's record (CORRUPT): 401" 401 "$STATUS"
login "$WEB_WORK/secret.c"
file="$SDIR/web-storage/sessions/$SID"
size=$(stat -c %s "$file")
last=$(od -An -j $((size - 1)) -N1 -tu1 "$file" | tr -d ' ')
printf '%b' "\\0$(printf '%03o' $(((last + 1) % 256)))" | dd of="$file" bs=1 seek=$((size - 1)) conv=notrunc status=none
http GET /profile -b "$WEB_WORK/secret.c"
expect "[secret] a flipped byte in the sealed record (CORRUPT): 401" 401 "$STATUS"
expect "[secret] the server logged both corrupt sessions" 2 "$(grep -c 'corrupt session' "$SDIR/stderr")"
login "$WEB_WORK/secret.d"
http GET /profile -b "$WEB_WORK/secret.d"
expect "[secret] fresh session: 200" 200 "$STATUS"
sleep 3
http GET /profile -b "$WEB_WORK/secret.d"
expect "[secret] after its 2 s lifetime (expired): 401" 401 "$STATUS"
stop_and_check secret

# ---- memory -------------------------------------------------------------------
echo "==> memory driver (c_examples/web/config.memory.json)"
config="$WEB_DIR/config.memory.json"
start_server memory "$config"
STORED_CMD='' flow memory "$config"
concurrent memory
stop_and_check memory

# ---- memory, under valgrind -----------------------------------------------------
echo "==> memory driver under valgrind"
WEB_START_TRIES=600 start_server valgrind "$config" \
  valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all \
  --show-leak-kinds=all --log-file="$WEB_WORK/valgrind.log"
jar="$WEB_WORK/vg"
login "$jar"
expect "[valgrind] login: 200" 200 "$STATUS"
http GET /profile -b "$jar"
expect "[valgrind] profile: 200 User ID: 42" "200 User ID: 42" "$STATUS $BODY"
http GET /profile -H 'Accept: text/html' -b "$jar"
expect "[valgrind] HTML profile: 200" 200 "$STATUS"
profile_with "session_id=$(random_id)"
expect "[valgrind] forged cookie: 401" 401 "$STATUS"
login "$jar"
http POST /logout-everywhere -b "$jar" -c "$jar"
expect "[valgrind] logout-everywhere: 200" 200 "$STATUS"
login "$jar"
http POST /logout -b "$jar" -c "$jar" -H 'Accept: text/html'
expect "[valgrind] form logout: 303" 303 "$STATUS"
http GET /nope
expect "[valgrind] 404" 404 "$STATUS"
http POST /login -H 'Expect: 100-continue' --data-binary "@$WEB_WORK/big.bin"
expect "[valgrind] 413 before the body" 413 "$STATUS"
http POST /login -H 'Transfer-Encoding: chunked' --data-binary "@$WEB_WORK/mid.bin"
expect "[valgrind] 413 after a chunked body" 413 "$STATUS"
http POST /login -H 'Transfer-Encoding: chunked' --data-binary "@$WEB_WORK/huge.bin"
expect_match "[valgrind] connection closed on a 3 MB chunked body" '^(curl-error|100$|413$)' "$STATUS"
stop_server
expect "[valgrind] exit status 0 (99: valgrind found errors or leaks)" 0 "$SERVER_STATUS"
if [ -s "$WEB_WORK/valgrind.log" ]; then
  fail "[valgrind] report: $(head -c 2000 "$WEB_WORK/valgrind.log")"
else
  pass "[valgrind] nothing reported: no invalid access, no leak of any kind"
fi

# ---- Redis --------------------------------------------------------------------
echo "==> Redis driver (c_examples/web/config.redis.json with the port of our own redis-server)"
start_redis "$WEB_WORK/redis"
echo "    redis-server on 127.0.0.1:$REDIS_PORT"
config="$WEB_WORK/config.redis.json"
redis_config "$REDIS_PORT" "$config"
start_server redis "$config"
redis_stored() { redis-cli -p "$REDIS_PORT" --raw HGET "web-demo:session:$1" d; }
STORED_CMD=redis_stored flow redis "$config"
hostile redis
concurrent redis

jar="$WEB_WORK/redis.outage"
login "$jar"
sid=$SID
pttl=$(redis-cli -p "$REDIS_PORT" PTTL "web-demo:session:$sid")
if [ "$pttl" -gt 3590000 ] && [ "$pttl" -le 3600000 ]; then pass "[redis] the key's TTL is the lifetime ($pttl ms)"; else fail "[redis] TTL $pttl ms"; fi

kill -STOP "$REDIS_PID"
t0=$(date +%s%N)
http GET /profile -b "$jar"
t1=$(date +%s%N)
expect "[redis] Redis frozen (SIGSTOP): profile 503 (timeout, not 401)" 503 "$STATUS"
if [ $(((t1 - t0) / 1000000)) -lt 5000 ]; then pass "[redis] ... within $(((t1 - t0) / 1000000)) ms"; else fail "[redis] frozen Redis took $(((t1 - t0) / 1000000)) ms"; fi
expect_contains "[redis] the server logged SESSION_ERROR_TIMEOUT" 'store unavailable (code 5)' "$(cat "$SDIR/stderr")"
kill -CONT "$REDIS_PID"
http GET /profile -b "$jar"
expect "[redis] Redis thawed: 200 User ID: 42" "200 User ID: 42" "$STATUS $BODY"

kill -KILL "$REDIS_PID"
{ wait "$REDIS_PID"; } 2>/dev/null
http GET /profile -b "$jar"
expect "[redis] Redis killed: profile 503 (not 401)" 503 "$STATUS"
expect_contains "[redis] the server logged SESSION_ERROR_STORAGE_UNAVAILABLE" 'store unavailable (code 4)' "$(cat "$SDIR/stderr")"
http POST /login -b "$WEB_WORK/redis.down"
expect "[redis] Redis killed: login 503" 503 "$STATUS"
http POST /logout -b "$jar"
expect "[redis] Redis killed: logout 503 (the session still lives)" 503 "$STATUS"
if kill -0 "$SERVER_PID" 2>/dev/null; then pass "[redis] the demo keeps running"; else fail "[redis] the demo died"; fi
start_redis "$WEB_WORK/redis" "$REDIS_PORT"
http GET /profile -b "$jar"
expect "[redis] Redis restarted on the same port: the same cookie answers 200 User ID: 42" "200 User ID: 42" "$STATUS $BODY"
login "$WEB_WORK/redis.after"
http GET /profile -b "$WEB_WORK/redis.after"
expect "[redis] ... and a new login works: 200 User ID: 42" "200 User ID: 42" "$STATUS $BODY"
stop_and_check redis

elapsed=$(($(date +%s) - started))
echo
echo "web demo tests took ${elapsed}s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

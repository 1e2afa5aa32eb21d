# Sourced by the web demo's scripts: installs, with apt-get (sudo when not root),
# the Debian packages behind the commands the caller needs, only when missing,
# as tests/run_all.sh does.
#
#   . c_examples/web/deps.sh
#   web_need cc curl redis          # names below; unknown names are an error

web_need() {
  local missing=() what
  for what in "$@"; do
    case "$what" in
      cc) command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev) ;;
      pkg-config) command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config) ;;
      microhttpd)
        # The headers and the .pc file: pkg-config is needed to ask.
        command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
        { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libmicrohttpd; } \
          || missing+=(libmicrohttpd-dev) ;;
      curl) command -v curl >/dev/null 2>&1 || missing+=(curl) ;;
      redis)
        command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
        command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools) ;;
      chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
      wrk) command -v wrk >/dev/null 2>&1 || missing+=(wrk) ;;
      valgrind) command -v valgrind >/dev/null 2>&1 || missing+=(valgrind) ;;
      *) echo "web_need: unknown dependency $what" >&2; return 1 ;;
    esac
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  command -v cargo >/dev/null 2>&1 \
    || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; return 1; }
}

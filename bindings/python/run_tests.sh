#!/usr/bin/env bash
# Tests of the Python bindings, for CI and by hand (from any directory):
#   bash bindings/python/run_tests.sh [pytest arguments, e.g. -k redis -x]
# Builds the library if needed (cargo build --release --lib), makes a fresh venv in
# target/python-venv, pip-installs pytest (from PyPI) and the package, then runs
# bindings/python/tests against target/release/libsession.so through the installed
# package. Exits non-zero on any failure.
#
# Needs: cargo, python3 >= 3.9 with the venv module (Debian: apt-get install
# python3-venv), redis-server on PATH (Debian: apt-get install redis-server; the
# Redis tests fail without it), and access to PyPI. PYTHON=/path/to/python3
# picks another interpreter; LIBSESSION_PY_VENV another venv directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
python=${PYTHON:-python3}
venv=${LIBSESSION_PY_VENV:-$root/target/python-venv}
# Where cargo puts the library (CARGO_TARGET_DIR or a cargo config may move it).
lib=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)/release/libsession.so

echo "==> cargo build --release --lib"
cargo build --release --lib
if [ ! -f "$lib" ]; then
  echo "error: $lib is missing after the build" >&2
  exit 1
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
  echo "error: the bindings need Python 3.9 or later; $python is $("$python" -V 2>&1)" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "warning: redis-server is not on PATH: the Redis tests will fail" \
    "(Debian: apt-get install redis-server)" >&2
fi

echo "==> $python -m venv --clear $venv"
if ! "$python" -m venv --clear "$venv"; then
  rm -rf "$venv"
  echo "error: '$python -m venv' failed. On Debian or Ubuntu install the venv module:" \
    "apt-get install python3-venv" >&2
  exit 1
fi
vpy=$venv/bin/python
pip=("$vpy" -m pip --disable-pip-version-check)

echo "==> pip install pytest"
"${pip[@]}" install --quiet pytest

# Install from a copy, so that the build leaves no build/ or *.egg-info in the
# sources. setuptools >= 61 reads pyproject.toml; before 70.1 it needs the wheel
# package too. When the venv has neither (Python 3.11's venv has setuptools 65
# and no wheel), pip builds in an isolated environment with setuptools from PyPI.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/package"
cp -R bindings/python/pyproject.toml bindings/python/README.md bindings/python/src "$work/package/"
find "$work/package" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
build_flags=()
if "$vpy" - <<'PY'
import sys
try:
    import setuptools
except ImportError:
    sys.exit(1)
version = tuple(int(p) for p in setuptools.__version__.split(".")[:2])
try:
    import wheel  # noqa: F401
except ImportError:
    wheel = None
sys.exit(0 if version >= (70, 1) or (version >= (61, 0) and wheel) else 1)
PY
then
  build_flags=(--no-build-isolation)
fi
echo "==> pip install ${build_flags[*]} bindings/python"
"${pip[@]}" install --quiet "${build_flags[@]}" "$work/package"

echo "==> pytest bindings/python/tests (LIBSESSION_LIBRARY=$lib)"
# Run from the scratch directory: neither the sources nor target/release (whose
# libsession.so Python would take for an extension module) on sys.path.
cd "$work"
LIBSESSION_LIBRARY=$lib LIBSESSION_TEST_INSTALLED=1 PYTHONDONTWRITEBYTECODE=1 \
  "$vpy" -m pytest -p no:cacheprovider -q "$root/bindings/python/tests" "$@"

"""pip installs the package into a fresh venv, which imports it and calls the
library named by LIBSESSION_LIBRARY."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUILT_LIBRARY, PACKAGE_ROOT

SMOKE = r"""
import libsession, sys
print(libsession.__file__)
with libsession.Store.from_json('{"sessions": {"driver": "memory"}}') as s:
    sid = s.create('{"user_id": 42}')
    assert s.get(sid) == '{"user_id": 42}'
    assert s.get_value(sid, "user_id") == "42"
try:
    libsession.Store.from_json("{")
except libsession.ConfigError as e:
    assert e.code == 6
print(libsession.version())
"""


def run(cmd, **kwargs):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out


# setuptools >= 61 reads pyproject.toml; before 70.1 it needs the wheel package to
# build a wheel. A fresh venv of Python 3.11 has setuptools 65 without wheel: then
# pip builds in isolation, fetching setuptools from PyPI.
CAN_BUILD_OFFLINE = """
import sys
try:
    import setuptools
except ImportError:
    sys.exit(1)
v = tuple(int(p) for p in setuptools.__version__.split(".")[:2])
try:
    import wheel  # noqa: F401
    has_wheel = True
except ImportError:
    has_wheel = False
sys.exit(0 if v >= (70, 1) or (v >= (61, 0) and has_wheel) else 1)
"""


def can_build_offline(python):
    return subprocess.run([python, "-c", CAN_BUILD_OFFLINE], capture_output=True).returncode == 0


def test_pip_install_into_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    try:
        run([sys.executable, "-m", "venv", str(venv)])
    except AssertionError as err:
        pytest.fail(f"python3 -m venv failed (Debian: apt-get install python3-venv): {err}")
    python = str(venv / "bin" / "python")
    cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if can_build_offline(python):
        cmd.append("--no-build-isolation")
    # From a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    shutil.copytree(PACKAGE_ROOT, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    run(cmd + [str(source)], cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env["LIBSESSION_LIBRARY"] = str(BUILT_LIBRARY)
    out = run([python, "-c", SMOKE], env=env, cwd=tmp_path)
    location, version = out.stdout.split()
    assert Path(location).resolve().is_relative_to(venv.resolve()), location
    assert (Path(location).parent / "py.typed").is_file()
    assert version.count(".") == 2
    # No runtime dependencies: only pip/setuptools and the package in the venv.
    listed = run([python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                 cwd=tmp_path).stdout
    names = {line.split("==")[0].lower() for line in listed.split()}
    assert "libsession" in names
    assert names <= {"libsession", "pip", "setuptools", "wheel"}, names

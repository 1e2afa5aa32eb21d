"""How the package finds the library: $LIBSESSION_LIBRARY, else the soname."""

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import libsession
from conftest import BUILT_LIBRARY

# The directory that holds the package under test (installed or ../src).
PACKAGE_PARENT = str(Path(libsession.__file__).resolve().parent.parent)


def run_import(env_changes, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("LIBSESSION_LIBRARY", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = PACKAGE_PARENT
    env.update(env_changes)
    code = "import libsession; print(libsession.library_path); print(libsession.version())"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_loaded_library_is_the_one_named():
    assert libsession.library_path == os.path.abspath(os.environ["LIBSESSION_LIBRARY"])


def test_env_path():
    out = run_import({"LIBSESSION_LIBRARY": str(BUILT_LIBRARY)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(BUILT_LIBRARY), libsession.version()]


def test_env_relative_path(tmp_path):
    # A bare file name means the file in the working directory, not a soname to
    # search for. (Not named libsession.so: `python -c` puts the working directory
    # on sys.path, where `import libsession` would take libsession.so for an
    # extension module.)
    (tmp_path / "session-lib.so").symlink_to(BUILT_LIBRARY)
    out = run_import({"LIBSESSION_LIBRARY": "session-lib.so"}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == str(tmp_path / "session-lib.so")


def test_soname_through_the_loader():
    # The build leaves libsession.so.0 beside libsession.so; LD_LIBRARY_PATH finds it.
    out = run_import({"LD_LIBRARY_PATH": str(BUILT_LIBRARY.parent)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["libsession.so.0", libsession.version()]


def test_bad_env_path_names_both():
    out = run_import({"LIBSESSION_LIBRARY": "/nonexistent/libsession.so"})
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert "LIBSESSION_LIBRARY='/nonexistent/libsession.so'" in out.stderr
    assert "libsession.so.0" in out.stderr


def test_no_library_names_both(tmp_path):
    probe = subprocess.run(
        [sys.executable, "-c", "import ctypes; ctypes.CDLL('libsession.so.0')"],
        env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"},
        capture_output=True,
    )
    out = run_import({"LD_LIBRARY_PATH": str(tmp_path)})
    if probe.returncode == 0:
        # Installed system-wide: the loader finds it, as it should.
        assert out.returncode == 0, out.stderr
        return
    assert out.returncode != 0
    assert "LIBSESSION_LIBRARY is not set" in out.stderr
    assert "libsession.so.0" in out.stderr


def test_a_library_without_the_functions():
    libm = ctypes.util.find_library("m")  # a real library that is not libsession
    out = run_import({"LIBSESSION_LIBRARY": libm})
    assert out.returncode != 0
    assert "lacks session_create" in out.stderr

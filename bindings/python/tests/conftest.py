"""Fixtures: the library under test, stores of every driver, a real redis-server.

The library: $LIBSESSION_LIBRARY if set, else the repository's
target/release/libsession.so (cargo build --release --lib). The package: the
installed one if there is one (run_tests.sh installs it and sets
LIBSESSION_TEST_INSTALLED=1, which makes an uninstalled package an error), else
the sources in ../src.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent  # bindings/python
REPO = PACKAGE_ROOT.parent.parent
HEADER = Path(os.environ.get("LIBSESSION_HEADER", REPO / "include" / "session.h"))
BUILT_LIBRARY = REPO / "target" / "release" / "libsession.so"

if not os.environ.get("LIBSESSION_LIBRARY"):
    if not BUILT_LIBRARY.exists():
        raise RuntimeError(
            f"{BUILT_LIBRARY} is missing: run `cargo build --release --lib` in {REPO} "
            "or set LIBSESSION_LIBRARY"
        )
    os.environ["LIBSESSION_LIBRARY"] = str(BUILT_LIBRARY)

try:
    import libsession  # noqa: E402
except ModuleNotFoundError:
    if os.environ.get("LIBSESSION_TEST_INSTALLED") == "1":
        raise
    sys.path.insert(0, str(PACKAGE_ROOT / "src"))
    import libsession  # noqa: E402

if os.environ.get("LIBSESSION_TEST_INSTALLED") == "1":
    assert Path(libsession.__file__).resolve().parent != (PACKAGE_ROOT / "src" / "libsession"), (
        "LIBSESSION_TEST_INSTALLED=1 but the tests import the source tree"
    )

# A secret of at least 32 bytes for encrypted stores.
SECRET = "pytest secret: at least thirty-two bytes long, not a real one"

DRIVERS = ["file", "memory", "redis"]


# ---------------------------------------------------------------------------------
# A real redis-server on a free loopback port.


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"unexpected redis reply {line!r}")


class RedisServer:
    """redis-server in its own temporary directory; stop() kills it."""

    def __init__(self):
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail(
                "redis-server is not on PATH: the Redis tests need it "
                "(Debian: apt-get install redis-server)",
                pytrace=False,
            )
        self.exe = exe
        self.dir = tempfile.mkdtemp(prefix="libsession-py-redis-")
        self.proc = None
        self.port = None
        for _ in range(5):
            self.port = free_port()
            if self._spawn():
                return
        raise RuntimeError(f"redis-server did not start on a free port; see {self.dir}")

    def _spawn(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self.dir],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False  # e.g. the port was taken meanwhile
            try:
                if self.command("PING") == "PONG":
                    return True
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within 10 s")

    def command(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(_resp_encode(args))
            return _Reader(sock).reply()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def signal(self, sig):
        if self.proc is not None:
            self.proc.send_signal(sig)

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
def own_redis():
    """A redis-server for one test (to stop, freeze or kill)."""
    server = RedisServer()
    yield server
    server.close()


# ---------------------------------------------------------------------------------
# Stores.


def store_config(driver, root=None, redis=None, **options):
    """The config.json text of a store of `driver` with extra `options`: files
    under the existing directory `root`, Redis on `redis` with a fresh key prefix."""
    sessions = {"lifetime": 3600}
    config = {"sessions": sessions}
    if driver == "file":
        sessions.update(driver="storage", storage_name="s")
        config["storages"] = {"s": {"type": "filesystem", "root": str(root)}}
    elif driver == "memory":
        sessions["driver"] = "memory"
    elif driver == "redis":
        sessions.update(driver="redis", url=redis.url, key_prefix=f"py:{uuid.uuid4().hex}:")
    else:
        raise ValueError(driver)
    sessions.update(options)
    return json.dumps(config)


class StoreFactory:
    def __init__(self, driver, tmp_path, request):
        self.driver = driver
        self.tmp_path = tmp_path
        self.request = request
        self.opened = []
        self.root = None  # the file driver's root of the last config()

    @property
    def redis(self):
        return self.request.getfixturevalue("redis_server") if self.driver == "redis" else None

    def config(self, **options):
        if self.driver == "file":
            self.root = self.tmp_path / f"root-{uuid.uuid4().hex[:8]}"
            self.root.mkdir()
        text = store_config(self.driver, self.root, self.redis, **options)
        self.last = json.loads(text)["sessions"]
        return text

    def __call__(self, **options):
        store = libsession.Store.from_json(self.config(**options))
        self.opened.append(store)
        return store

    def close(self):
        for store in self.opened:
            store.close()


def cached_gets(store, sid, at_least=2, most=50):
    """Gets `sid` (data '{"user_id":42}') through `store` (a Store or `default`
    with local_cache) `at_least` times, then, only if no get was answered from the
    local cache yet, again (at most `most` gets in all, 20 ms apart): on a loaded
    machine the create's own invalidation may arrive after the first get filled
    the cache and drop that entry. Returns the last cache_stats()."""
    for n in range(1, most + 1):
        assert store.get(sid) == '{"user_id":42}'
        stats = store.cache_stats()
        if n >= at_least:
            if stats["hits"] >= 1:
                break
            time.sleep(0.02)
    return stats


@pytest.fixture(params=DRIVERS)
def make_store(request, tmp_path):
    """make_store(**options): a new Store of the parametrised driver."""
    factory = StoreFactory(request.param, tmp_path, request)
    yield factory
    factory.close()


@pytest.fixture
def store(make_store):
    return make_store()

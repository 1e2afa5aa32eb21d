"""Error classes and codes: each code of session.h raised by a real failure."""

import json
import os
import shutil
import signal
import time

import pytest

import libsession
from conftest import SECRET, free_port, store_config
from libsession import (
    ConfigError,
    Conflict,
    Corrupt,
    ErrorCode,
    Full,
    Internal,
    InvalidArgument,
    NotFound,
    SessionError,
    Timeout,
    TooLarge,
    Unavailable,
)

CLASSES = {
    NotFound: 1,
    InvalidArgument: 2,
    TooLarge: 3,
    Unavailable: 4,
    Timeout: 5,
    ConfigError: 6,
    Internal: 7,
    Full: 8,
    Conflict: 9,
    Corrupt: 10,
}


def test_classes_and_codes():
    assert [c.name for c in ErrorCode] == [
        "OK", "NOT_FOUND", "INVALID_ARGUMENT", "TOO_LARGE", "STORAGE_UNAVAILABLE",
        "TIMEOUT", "CONFIG", "INTERNAL", "FULL", "CONFLICT", "CORRUPT",
    ]
    assert [int(c) for c in ErrorCode] == list(range(11))
    for cls, code in CLASSES.items():
        assert issubclass(cls, SessionError) and issubclass(cls, Exception)
        assert cls.code == code
        err = libsession._errors.error_for(code, "why")
        assert type(err) is cls and err.code == code
        assert err.message == str(err) == "why"
        assert repr(err) == f"{cls.__name__}('why', code={code})"
    future = libsession._errors.error_for(99, "a newer code")
    assert type(future) is SessionError and future.code == 99
    assert type(libsession._errors.error_for(0, None)) is Internal


def test_header_codes_match(tmp_path):
    from conftest import HEADER
    import re

    text = HEADER.read_text()
    found = dict(re.findall(r"SESSION_ERROR_(\w+) = (\d+),", text))
    assert {k: int(v) for k, v in found.items()} == {c.name: int(c) for c in ErrorCode}


def test_not_found_and_invalid_argument():
    with libsession.Store.from_json('{"sessions": {"driver": "memory"}}') as store:
        with pytest.raises(NotFound) as info:
            store.update("ab" * 32, "{}")
        assert info.value.code == 1
        assert libsession.last_error_code() == ErrorCode.NOT_FOUND  # read on this thread
        assert libsession.last_error() == info.value.message
        with pytest.raises(InvalidArgument) as info:
            store.get("not-an-id")
        assert info.value.code == 2
        assert "malformed session id" in info.value.message
        store.create("{}")
        assert libsession.last_error_code() == ErrorCode.OK
        assert libsession.last_error() is None


def test_config_errors(tmp_path):
    bad = [
        "not json",
        '{"sessions": {"driver": "memory", "lifetime": 0}}',
        '{"sessions": {"driver": "memory", "lifetme": 10}}',
        '{"sessions": {"driver": "postgres"}}',
        '{"sessions": {"driver": "storage", "storage_name": "nope"}}',
        json.dumps({"sessions": {"driver": "storage", "storage_name": "s"},
                    "storages": {"s": {"type": "filesystem", "root": str(tmp_path / "absent")}}}),
        '{"sessions": {"driver": "memory", "secret": "too short"}}',
        '{"sessions": {"driver": "memory", "pool_size": 4}}',
        '{"sessions": {"a": {"driver": "memory"}, "b": {"driver": "memory"}}}',
    ]
    for text in bad:
        with pytest.raises(ConfigError) as info:
            libsession.Store.from_json(text)
        assert info.value.code == ErrorCode.CONFIG == 6 and info.value.message, text
    with pytest.raises(ConfigError, match="lifetime"):
        libsession.Store.from_json('{"sessions": {"driver": "memory", "lifetime": 0}}')
    with pytest.raises(ConfigError, match="too short|32"):
        libsession.Store.from_json('{"sessions": {"driver": "memory", "secret": "too short"}}')
    two = '{"sessions": {"a": {"driver": "memory"}, "b": {"driver": "memory"}}}'
    with libsession.Store.from_json(two, "b") as store:  # by name it opens
        store.create("{}")
    with pytest.raises(ConfigError, match='"c"'):
        libsession.Store.from_json(two, "c")
    with pytest.raises(ConfigError, match="cannot read"):
        libsession.Store.from_file(tmp_path / "missing.json")
    config = tmp_path / "config.json"
    config.write_text('{"sessions": {"driver": "memory", "idle_timeout": -5}}')
    with pytest.raises(ConfigError, match="idle_timeout"):
        libsession.Store.from_file(config)


def test_full():
    with libsession.Store.from_json('{"sessions": {"driver": "memory", "max_sessions": 2}}') as store:
        store.create("1")
        store.create("2")
        with pytest.raises(Full) as info:
            store.create("3")
        assert info.value.code == ErrorCode.FULL == 8
        assert store.count() == 2


def test_conflict():
    with libsession.Store.from_json('{"sessions": {"driver": "memory"}}') as store:
        sid = store.create("v0")
        _, version = store.get_versioned(sid)
        store.update(sid, "v1")
        with pytest.raises(Conflict) as info:
            store.update_if(sid, "v2", version)
        assert info.value.code == ErrorCode.CONFLICT
        assert store.get(sid) == "v1"


def file_config(root, **options):
    sessions = {"driver": "storage", "storage_name": "s", **options}
    return json.dumps({"sessions": sessions,
                       "storages": {"s": {"type": "filesystem", "root": str(root)}}})


def test_corrupt_file(tmp_path):
    with libsession.Store.from_json(file_config(tmp_path, secret=SECRET)) as store:
        sid = store.create('{"user_id":42,"marker":"PLAINTEXT-MARKER"}')
        path = tmp_path / "sessions" / sid
        original = path.read_bytes()
        assert b"PLAINTEXT-MARKER" not in original  # encrypted at rest
        # One flipped byte of the sealed record.
        flipped = bytearray(original)
        flipped[-1] ^= 1
        path.write_bytes(bytes(flipped))
        for call in (
            lambda: store.get(sid),
            lambda: store.get_bytes(sid),
            lambda: store.get_versioned(sid),
            lambda: store.get_value(sid, "user_id"),
            lambda: store.set_value(sid, "k", "1"),
            lambda: store.delete_value(sid, "user_id"),
            lambda: store.pop_value(sid, "user_id"),
            lambda: store.regenerate(sid),
        ):
            with pytest.raises(Corrupt) as info:
                call()
            assert info.value.code == ErrorCode.CORRUPT == 10
            assert sid not in info.value.message
        assert path.read_bytes() == bytes(flipped)  # failed writes left it alone
        path.write_bytes(original)
        assert store.get(sid) == '{"user_id":42,"marker":"PLAINTEXT-MARKER"}'
        # The file copied under another id.
        other = libsession.create_id()
        shutil.copy(path, tmp_path / "sessions" / other)
        with pytest.raises(Corrupt):
            store.get(other)
        store.destroy(other)  # a server may destroy it
        assert store.exists(other) is False
    # Another secret: the record does not open.
    other_secret = SECRET.replace("pytest", "PYTEST")
    with libsession.Store.from_json(file_config(tmp_path, secret=other_secret)) as store:
        with pytest.raises(Corrupt):
            store.get(sid)
        assert store.exists(sid) is True  # exists does not decrypt
    # The rotation: the old secret as a fallback reads it again.
    rotated = file_config(tmp_path, secret=other_secret, secret_fallbacks=[SECRET])
    with libsession.Store.from_json(rotated) as store:
        assert store.get(sid) == '{"user_id":42,"marker":"PLAINTEXT-MARKER"}'


def test_corrupt_redis(redis_server, tmp_path):
    text = store_config("redis", redis=redis_server, secret=SECRET)
    prefix = json.loads(text)["sessions"]["key_prefix"]
    with libsession.Store.from_json(text) as store:
        sid = store.create('{"user_id":42,"marker":"PLAINTEXT-MARKER"}')
        key = prefix + sid
        record = redis_server.command("HGET", key, "d")
        assert record and b"PLAINTEXT-MARKER" not in record
        flipped = bytearray(record)
        flipped[len(flipped) // 2] ^= 0x01
        redis_server.command("HSET", key, "d", bytes(flipped))
        with pytest.raises(Corrupt):
            store.get(sid)
        with pytest.raises(Corrupt):
            store.set_value(sid, "k", "1")
        redis_server.command("HSET", key, "d", record)
        assert store.get_value(sid, "user_id") == "42"


def test_unavailable_and_timeout(own_redis):
    text = store_config("redis", redis=own_redis, command_timeout_ms=300, connect_timeout_ms=300)
    with libsession.Store.from_json(text) as store:
        sid = store.create("{}")
        # A frozen server: TIMEOUT after command_timeout_ms, never a hang.
        own_redis.signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(Timeout) as info:
                store.get(sid)
            assert info.value.code == ErrorCode.TIMEOUT == 5
            assert time.monotonic() - start < 5
        finally:
            own_redis.signal(signal.SIGCONT)
        # A dead server: STORAGE_UNAVAILABLE, which a server answers with 503.
        own_redis.stop()
        for call in (lambda: store.get(sid), lambda: store.create("{}"), store.count):
            with pytest.raises(Unavailable) as info:
                call()
            assert info.value.code == ErrorCode.STORAGE_UNAVAILABLE == 4
            assert "127.0.0.1" in info.value.message


def test_unreachable_redis_at_open():
    port = free_port()  # nothing listens there
    text = json.dumps({"sessions": {"driver": "redis", "url": f"redis://127.0.0.1:{port}",
                                    "connect_timeout_ms": 300}})
    with pytest.raises(Unavailable, match=str(port)):
        libsession.Store.from_json(text)
    lazy = json.dumps({"sessions": {"driver": "redis", "url": f"redis://127.0.0.1:{port}",
                                    "connect_timeout_ms": 300, "lazy_connect": True}})
    with libsession.Store.from_json(lazy) as store:
        with pytest.raises(Unavailable):
            store.get("ab" * 32)


def test_errors_do_not_leak_between_threads():
    """The code is thread-local in the library: a failure on one thread is not
    seen by another, and each exception carries its own thread's code."""
    import threading

    with libsession.Store.from_json('{"sessions": {"driver": "memory"}}') as store:
        sid = store.create("{}")
        barrier = threading.Barrier(2)
        seen = {}

        def fail():
            barrier.wait()
            for _ in range(2000):
                with pytest.raises(InvalidArgument):
                    store.get("bad")
            seen["fail"] = libsession.last_error_code()

        def succeed():
            barrier.wait()
            for _ in range(2000):
                assert store.get(sid) == "{}"
            seen["ok"] = libsession.last_error_code()

        threads = [threading.Thread(target=fail), threading.Thread(target=succeed)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {"fail": ErrorCode.INVALID_ARGUMENT, "ok": ErrorCode.OK}

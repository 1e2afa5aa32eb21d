"""The global API: init, init_json, shutdown, the default store (every session_*
function without a handle), Store.named, create_id, version, last_error."""

import json
import re
import time

import pytest

import libsession
from conftest import cached_gets, store_config
from libsession import ConfigError, Conflict, ErrorCode, InvalidArgument, NotFound, default

MEMORY = json.dumps({
    "sessions": {"driver": "memory", "lifetime": 3600, "max_lifetime": 7200,
                 "owner_key": "user_id",
                 "cookie": {"name": "__Host-sid", "same_site": "Strict"}},
})


@pytest.fixture(autouse=True)
def global_config(tmp_path, monkeypatch):
    # The embedded default would write ./sessions: keep any such fallback in tmp.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSION_CONFIG", raising=False)
    yield
    libsession.shutdown()


def test_default_store_every_call():
    assert libsession.init_json(MEMORY) is None
    sid = default.create('{"user_id":42}')
    assert re.fullmatch(r"[0-9a-f]{64}", sid)
    assert default.get(sid) == '{"user_id":42}'
    assert default.get_bytes(sid) == b'{"user_id":42}'
    default.update(sid, '{"user_id":42,"cart":[]}')
    assert default.exists(sid) is True
    default.touch(sid)
    assert 3590 <= default.ttl(sid) <= 3600
    long = default.create('{"user_id":42}', ttl=7000)
    assert default.ttl(long) > 3600
    assert default.count() == 2
    # Per-key values and compare-and-set.
    default.set_value(sid, "flash", '"Saved."')
    assert default.get_value(sid, "flash") == '"Saved."'
    assert default.pop_value(sid, "flash") == '"Saved."'
    assert default.pop_value(sid, "flash") is None
    default.set_value(sid, "x", "1")
    default.delete_value(sid, "x")
    assert default.get_value(sid, "x") is None
    data, version = default.get_versioned(sid)
    assert data == '{"user_id":42,"cart":[]}'
    assert default.get_versioned_bytes(sid) == (data.encode(), version)
    default.update_if(sid, '{"user_id":42,"cart":[1]}', version)
    with pytest.raises(Conflict):
        default.update_if(sid, "{}", version)
    # Regenerate.
    new = default.regenerate(sid)
    assert default.get(sid) is None and default.get(new) == '{"user_id":42,"cart":[1]}'
    # Cookies of the global configuration.
    header = default.cookie_header(new)
    assert header.startswith(f"__Host-sid={new}; Max-Age=3600; Expires=")
    assert header.endswith("; Path=/; Secure; HttpOnly; SameSite=Strict")
    assert default.cookie_clear_header().startswith("__Host-sid=; Max-Age=0;")
    assert default.id_from_cookie_header(f"a=b; __Host-sid={new}") == new
    assert default.id_from_cookie_header("a=b") is None
    # The owner index.
    assert default.count_owner("42") == 2
    assert default.list_owner("42") == [new, long]
    assert default.destroy_owner("42") == 2
    assert default.count() == 0
    # No local cache (that is the Redis driver's local_cache).
    with pytest.raises(InvalidArgument) as info:
        default.cache_stats()
    assert info.value.code == ErrorCode.INVALID_ARGUMENT
    # Expiry.
    short = default.create("{}", ttl=1)
    time.sleep(2.1)
    assert default.get(short) is None
    assert default.remove_expired() == 1
    default.create("{}", ttl=1)
    time.sleep(2.1)
    assert libsession.remove_expired() is None  # session_remove_expired: void
    assert default.count() == 0
    # Missing and malformed.
    assert default.get("ab" * 32) is None
    assert default.ttl("ab" * 32) is None
    assert default.get_versioned("ab" * 32) is None
    with pytest.raises(NotFound):
        default.update("ab" * 32, "{}")
    with pytest.raises(InvalidArgument):
        default.get("nope")
    default.destroy("ab" * 32)


def test_default_store_cache_stats(redis_server):
    # session_cache_stats: the default store on Redis with local_cache.
    libsession.init_json(store_config("redis", redis=redis_server,
                                      local_cache={"max_stale_ms": 2000}))
    assert default.cache_stats()["hits"] == 0
    sid = default.create('{"user_id":42}')
    stats = cached_gets(default, sid)
    assert stats["hits"] >= 1 and stats["entries"] >= 1, stats
    assert stats["channel_up"] is True, stats
    with libsession.Store.named() as same:  # the same store: the same counters
        assert same.cache_stats()["hits"] >= stats["hits"]
    libsession.init_json(store_config("redis", redis=redis_server))
    with pytest.raises(InvalidArgument, match="local_cache") as info:
        default.cache_stats()
    assert info.value.code == 2


def test_init_from_a_file(tmp_path):
    root = tmp_path / "storage"
    root.mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "sessions": {"driver": "storage", "storage_name": "sessions", "lifetime": 600},
        "storages": {"sessions": {"type": "filesystem", "root": str(root)}},
    }))
    libsession.init(config)
    sid = default.create("{}")
    assert (root / "sessions" / sid).is_file()
    assert default.ttl(sid) <= 600
    libsession.init(str(config))  # str works too
    assert default.get(sid) == "{}"


def test_failed_init_keeps_the_previous_configuration(tmp_path):
    libsession.init_json(MEMORY)
    sid = default.create("kept")
    with pytest.raises(ConfigError) as info:
        libsession.init_json('{"sessions": {"driver": "memory", "lifetime": -1}}')
    assert "lifetime" in info.value.message
    assert libsession.last_error_code() == ErrorCode.CONFIG
    assert default.get(sid) == "kept"
    with pytest.raises(ConfigError):
        libsession.init(tmp_path / "absent.json")
    assert default.get(sid) == "kept"


def test_failed_first_init_is_reported_by_every_call():
    libsession.shutdown()
    with pytest.raises(ConfigError):
        libsession.init_json('{"sessions": {"driver": "nope"}}')
    with pytest.raises(ConfigError, match="nope"):
        default.create("{}")
    with pytest.raises(ConfigError):
        default.get("ab" * 32)  # not None: the store is not there at all
    with pytest.raises(ConfigError):
        libsession.remove_expired()
    libsession.init_json(MEMORY)
    default.create("{}")


def test_named_stores_and_shutdown():
    libsession.init_json(json.dumps({"sessions": {
        "default": {"driver": "memory", "lifetime": 100},
        "api": {"driver": "memory", "lifetime": 86400},
    }}))
    with libsession.Store.named("api") as api, libsession.Store.named() as dflt:
        token = api.create("{}")
        assert api.ttl(token) > 100
        sid = dflt.create("{}")
        assert default.get(sid) == "{}"  # the same store as the global calls
        assert default.get(token) is None  # another store
        with pytest.raises(ConfigError, match="nope"):
            libsession.Store.named("nope")
        # A handle keeps its store after shutdown and a new init.
        libsession.shutdown()
        libsession.init_json(MEMORY)
        assert api.get(token) == "{}"
        assert dflt.get(sid) == "{}"
        assert default.get(sid) is None
    assert "named 'api'" in repr(api)


def test_create_id_and_version():
    ids = {libsession.create_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)
    assert len(next(iter(ids))) == libsession.ID_LEN
    assert re.fullmatch(r"\d+\.\d+\.\d+", libsession.version())


def test_last_error():
    libsession.init_json(MEMORY)
    default.create("{}")
    assert libsession.last_error() is None
    assert libsession.last_error_code() == ErrorCode.OK
    with pytest.raises(InvalidArgument) as info:
        default.touch("short")
    assert libsession.last_error() == info.value.message
    assert libsession.last_error_code() is ErrorCode.INVALID_ARGUMENT
    # version() and last_error() do not clear it.
    libsession.version()
    assert libsession.last_error_code() == ErrorCode.INVALID_ARGUMENT
